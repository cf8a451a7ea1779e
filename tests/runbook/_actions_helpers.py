"""Helpers for the built-in action tests: a StepContext factory and a tiny local HTTP server."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from readyctl.config import Environment
from readyctl.runbook.actions.base import NeedsConfirmation, StepContext


def make_sc(
    tmp_path: Path,
    params: Mapping[str, Any] | None = None,
    *,
    step_id: str = "step",
    target: Environment | None = None,
    config_path: Path | None = None,
    env_name: str | None = None,
    records: dict[str, dict[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
    release: str | None = None,
    previous_release: str | None = None,
    confirm: bool | None = True,
    timeout_s: float = 60,
    run_id: str = "run1",
    log: list[str] | None = None,
) -> StepContext:
    """A StepContext as the engine builds one; `confirm=None` means no TTY (NeedsConfirmation)."""
    lines = log if log is not None else []
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        if confirm is None:
            raise NeedsConfirmation(question)
        return confirm

    workdir = tmp_path / ".readyctl" / "runs" / run_id
    workdir.mkdir(parents=True, exist_ok=True)
    sc = StepContext(
        run_id=run_id,
        step_id=step_id,
        params=dict(params or {}),
        release=release,
        previous_release=previous_release,
        config_path=config_path,
        env_name=env_name,
        environ=dict(environ or {}),
        records=records if records is not None else {},
        workdir=workdir,
        log=lines.append,
        confirm=ask,
        check_deadline=lambda: None,
        timeout_s=timeout_s,
        target=target,
    )
    sc.asked = asked  # type: ignore[attr-defined]
    return sc


def with_uses(uses: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as the engine keeps it (with the step's `uses`)."""
    return {**record, "uses": uses}


@dataclasses.dataclass
class Seen:
    """One request the local server answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen, int], tuple[int, bytes, float]]
"""(request, its number from 0) -> (status, body, seconds to wait before answering)."""


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 answering through `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        outer = self

        class _H(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                with outer.lock:
                    n = len(outer.seen)
                    outer.seen.append(req)
                status, body, delay = outer.handler(req, n)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok_json(body: Any = None) -> bytes:
    """A JSON body."""
    return json.dumps(body if body is not None else {"status": "ok"}).encode()
