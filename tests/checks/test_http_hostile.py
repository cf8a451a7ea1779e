"""HTTP hygiene checks against hostile or broken targets: they end as fail or error, in time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from readyctl.config import AuthConfig, Config, Environment
from tests.helpers import make_context, run_checks
from tests.servers import free_port, serve

MINE = [
    "http.security_headers",
    "http.banner",
    "http.cors",
    "http.error_hygiene",
    "http.compression",
    "http.pagination",
    "http.versioning",
    "http.docs_exposure",
]
CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}
SCRIPT = "<script>alert(1)</script>"
REQUEST_TIMEOUT = 1.0


def hostile(mode: str) -> Any:
    """A raw ASGI app: /health and login behave, everything else is hostile in one way."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health" or path == "/v1/auth/login":
            while (await receive()).get("more_body"):
                pass
            body = b'{"access_token": "tok-hostile"}' if "login" in path else b'{"ok":true}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if mode == "loop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", path.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/json")]
        if mode == "script":
            evil = SCRIPT.encode()
            headers += [
                (b"server", b"evil/1.0 " + evil),
                (b"x-powered-by", evil),
                (b"access-control-allow-origin", evil),
                (b"content-security-policy", evil),
                (b"set-cookie", evil + b"=1"),
                (b"location", evil),
            ]
            body = json.dumps({"items": [SCRIPT] * 200, "error": SCRIPT}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunk = b" " * 65536 if mode == "huge" else b" " * 512
        sent = 0
        stop = time.monotonic() + 20
        # huge: 10 MB; endless: a trickle that never ends (bounded so the test cleans up)
        while not gone.is_set() and time.monotonic() < stop:
            if mode == "huge" and sent >= 10_000_000:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            await asyncio.sleep(0.05 if mode == "endless" else 0)
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"{}"})
        watcher.cancel()

    return app


@contextlib.contextmanager
def malformed_server() -> Iterator[str]:
    """A raw socket server: /health and login are fine, everything else has broken headers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(4096)
                if not more:
                    return
                data += more
            head, _, rest = data.partition(b"\r\n\r\n")
            line = head.split(b"\r\n")[0].split()
            path = line[1].decode() if len(line) > 1 else "/"
            length = 0
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip() or 0)
            while len(rest) < length:
                more = conn.recv(4096)
                if not more:
                    break
                rest += more
            if path.startswith(("/health", "/v1/auth/login")):
                body = b'{"access_token": "tok-raw"}' if "login" in path else b'{"ok":true}'
                resp = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            else:
                resp = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"this line is not a header\r\nX-Bad\x00: <script>\r\n"
                    b"Content-Length: 2\r\n\r\n{}"
                )
            with contextlib.suppress(OSError):
                conn.sendall(resp)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        sock.close()


def _run(url: str) -> Any:
    checks = {cid: {"request_timeout_s": REQUEST_TIMEOUT} for cid in MINE}
    env = Environment(base_url=url, auth=AuthConfig(), production=True)
    ctx = make_context(environment=env, environ=dict(CREDS), config=Config(checks=checks))
    t0 = time.monotonic()
    out = run_checks(ctx, only=MINE, jobs=8)
    return out, time.monotonic() - t0


def _assert_sane(out: Any, took: float, limit: float) -> None:
    assert took < limit, f"took {took:.1f} s"
    for cid in MINE:
        results = [r for r in out.results if r.check_id == cid]
        assert results, cid
        for r in results:
            assert r.error_reason is None or r.error_reason.value != "bug", (
                cid,
                r.summary,
                r.trace,
            )
            assert "\n" not in r.summary and len(r.summary) < 400, (cid, r.summary)
            assert r.status.value in ("pass", "warn", "fail", "skip", "error", "blocked")


@pytest.mark.parametrize("mode", ["huge", "endless", "script", "loop"])
def test_hostile_targets_end_in_time_without_bugs(mode: str) -> None:
    with serve(hostile(mode)) as s:
        out, took = _run(s.url)
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    by = {(r.check_id, r.subject): r for r in out.results}
    if mode == "endless":
        # every check that reads a never-ending body gives up with a timeout error
        for cid in ("http.compression", "http.pagination", "http.security_headers"):
            assert any(
                r.check_id == cid and r.status.value == "error" and "within" in r.summary
                for r in out.results
            ), cid
    if mode == "huge":
        # a 10 MB body: read to the cap and judged (fail), or cut off by the deadline on a
        # busy machine (error); either way a one-line reason, never a pass
        comp = by[("http.compression", "/v1/counsel/sessions?limit=100")]
        assert comp.status.value in ("fail", "error")
        pag = by[("http.pagination", "/v1/counsel/sessions")]
        assert pag.status.value in ("fail", "error")
    if mode == "script":
        assert by[("http.banner", "X-Powered-By")].status.value == "fail"
        assert by[("http.cors", "allowed origin")].status.value == "error"
        assert len(by[("http.banner", "Server")].summary) < 200
    if mode == "loop":
        assert by[("http.versioning", "version prefix /v1")].status.value in ("fail", "warn")


def test_malformed_headers_end_as_errors() -> None:
    with malformed_server() as url:
        out, took = _run(url)
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    errors = [r for r in out.results if r.check_id in MINE and r.status.value == "error"]
    assert len({r.check_id for r in errors}) == len(MINE)
    assert any("malformed" in r.summary for r in errors)


def test_connection_refused_blocks_every_check() -> None:
    out, took = _run(f"http://127.0.0.1:{free_port()}")
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    for cid in MINE:
        assert {r.status.value for r in out.results if r.check_id == cid} == {"blocked"}
