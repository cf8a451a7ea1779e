"""Control of a running demo from another process: its state file, releases and maintenance.

A managed demo writes a JSON state file (mode 0600) in its workdir, and `readyctl demo up
--state-file PATH` writes one at PATH too: URLs, CA bundle, database URL, env file, the
alembic ini of every release, the release served, the pid of the process that owns the demo,
the maintenance flag file, the bypass header and secret, and the control socket.

- Maintenance is a flag file the server checks per request: `set_maintenance` creates or
  removes it; no round trip to the owning process.
- A release swap must be done by the process that owns the demo (it holds the listening
  sockets): `request_release` sends one JSON line over the owner's Unix control socket
  (`ControlServer`, a daemon thread started with the demo) and waits for the answer; the
  owner runs `ManagedDemo.deploy_release` (graceful restart on the same sockets) and answers
  when the new release serves ready, or with the reason it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_VERSION = 1
STATE_ENV = "READYCTL_DEMO_STATE"
"""Where `readyctl check`/`deploy` tell their commands the managed demo's state file is."""
CONTROL_TIMEOUT_MARGIN_S = 15.0


class ControlError(RuntimeError):
    """The demo could not be reached or refused the request (one line, no secrets)."""


def write_state_file(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write the state atomically, readable by the owner only (it holds secrets)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a demo state file; raise ControlError when it is missing or not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ControlError(f"no demo state file at {path} (is the demo up?)") from None
    except (OSError, ValueError) as exc:
        raise ControlError(
            f"cannot read the demo state file {path}: {type(exc).__name__}"
        ) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ControlError(f"{path} is not a readyctl demo state file")
    return data


def owner_alive(state: dict[str, Any]) -> bool:
    """Tell whether the process that owns the demo still runs."""
    pid = int(state.get("pid") or 0)
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def set_maintenance(
    path: str | os.PathLike[str],
    on: bool,
    *,
    retry_after: int | None = None,
    message: str | None = None,
) -> bool:
    """Switch maintenance on (create the flag file) or off (remove it); return whether it was on.

    The server stats the file on every request, so the switch takes effect at once.
    """
    flag = Path(path)
    was_on = flag.exists()
    if on:
        body: dict[str, Any] = {}
        if retry_after is not None:
            body["retry_after"] = int(retry_after)
        if message:
            body["message"] = message
        tmp = flag.with_name(f".{flag.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body) + "\n", encoding="utf-8")
        os.replace(tmp, flag)
    else:
        with contextlib.suppress(FileNotFoundError):
            flag.unlink()
    return was_on


def request(socket_path: str, payload: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    """Send one request to a demo's control socket and return its JSON answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(socket_path)
            sock.sendall(json.dumps(payload).encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
    except TimeoutError:
        raise ControlError(f"the demo did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ControlError(
            f"cannot reach the demo's control socket ({type(exc).__name__}: is the demo up?)"
        ) from None
    try:
        answer = json.loads(b"".join(chunks).decode())
    except ValueError:
        raise ControlError("the demo answered something that is not JSON") from None
    if not isinstance(answer, dict):
        raise ControlError("the demo answered something that is not a JSON object")
    return answer


def request_release(state: dict[str, Any], release: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Ask the demo's owner to swap to `release`; return its answer or raise ControlError."""
    path = state.get("control_socket") or ""
    if not path:
        raise ControlError("the state file names no control socket")
    if not owner_alive(state):
        raise ControlError(f"the process that owns the demo (pid {state.get('pid')}) is gone")
    answer = request(
        path,
        {"op": "release", "release": release, "timeout_s": timeout_s},
        timeout_s + CONTROL_TIMEOUT_MARGIN_S,
    )
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error") or "the release swap failed")[:300])
    return answer


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    """A Unix-socket server (daemon threads) answering one JSON request per connection."""

    def __init__(self, path: str, handler: Handler) -> None:
        """Listen on `path` (mode 0600) and answer with `handler`."""
        self.path = path
        self.handler = handler
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old_umask)
        self._sock.listen(8)
        self._sock.settimeout(0.5)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name="readyctl-demo-control", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        """Accept connections until closed; each is answered in its own thread."""
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(
                target=self._answer, args=(conn,), name="readyctl-demo-control-req", daemon=True
            ).start()

    def _answer(self, conn: socket.socket) -> None:
        """Read one JSON line, answer one JSON line."""
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while not data.endswith(b"\n") and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                payload = json.loads(data.decode() or "{}")
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")
                conn.settimeout(None)
                answer = self.handler(payload)
            except Exception as exc:  # the answer is the error; the server keeps running
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")

    def close(self) -> None:
        """Stop accepting and remove the socket file. Idempotent."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if self._thread is not threading.current_thread():
            self._thread.join(2)


def wait_for_file(path: str | os.PathLike[str], alive: Callable[[], bool], deadline: float) -> bool:
    """Wait until `path` exists; False when `alive()` turns false or time runs out."""
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if not alive():
            return False
        time.sleep(0.02)
    return os.path.exists(path)


def probe_ready(state: dict[str, object], timeout_s: float = 10) -> tuple[int, str | None]:
    """GET the ready endpoint once: (status, X-Release header); (0, reason) when unreachable."""
    import ssl
    import urllib.error
    import urllib.request

    from readyctl.demo.releases import RELEASE_HEADER

    url = f"{state['base_url']}{state.get('ready_path') or '/health/ready'}"
    ctx = ssl.create_default_context(cafile=str(state["ca_bundle"]))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout_s) as resp:
            return resp.status, resp.headers.get(RELEASE_HEADER)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get(RELEASE_HEADER)
    except (OSError, ssl.SSLError) as exc:
        return 0, type(exc).__name__
