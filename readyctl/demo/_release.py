"""Release and maintenance behaviour of the demo API, as one pure ASGI middleware.

- Maintenance mode: while the flag file (READYCTL_DEMO_MAINTENANCE_FILE) exists, every route
  but the health probes answers 503 with `Retry-After` and a small JSON body; a request whose
  `X-Maintenance-Bypass` header carries the demo's secret passes (as Laravel's
  `down --secret`). The file is stat'ed per request (a few microseconds); its optional JSON
  content ({"retry_after": s, "message": "..."}) is re-read only when its mtime changes.
- Release v2 marks every response with `X-Release: v2`; under slow-release it adds 2.5 s to
  every request but the health probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from readyctl.demo.releases import BYPASS_HEADER, MAINTENANCE_RETRY_AFTER_S, RELEASE_HEADER
from readyctl.demo.settings import Settings

SLOW_RELEASE_S = 2.5
MAINTENANCE_MESSAGE = "The service is down for maintenance; try again shortly."
_BYPASS = BYPASS_HEADER.lower().encode()


class MaintenanceSwitch:
    """The maintenance flag file: on while it exists; its content is cached by mtime."""

    def __init__(self, path: str) -> None:
        """Watch `path` (empty: maintenance is never on)."""
        self.path = path
        self._mtime_ns: int | None = None
        self._retry_after = MAINTENANCE_RETRY_AFTER_S
        self._message = MAINTENANCE_MESSAGE

    def state(self) -> tuple[int, str] | None:
        """Return (Retry-After seconds, message) while maintenance is on, else None."""
        if not self.path:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        if st.st_mtime_ns != self._mtime_ns:
            self._mtime_ns = st.st_mtime_ns
            self._retry_after, self._message = MAINTENANCE_RETRY_AFTER_S, MAINTENANCE_MESSAGE
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                with open(self.path, encoding="utf-8") as fh:
                    text = fh.read(4096).strip()
                data = json.loads(text) if text else {}
                self._retry_after = max(1, int(data.get("retry_after", self._retry_after)))
                self._message = str(data.get("message") or self._message)[:200]
        return self._retry_after, self._message


class ReleaseMiddleware:
    """Maintenance mode, the X-Release header and the slow-release fault."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        """Wrap `app` for the release and maintenance settings."""
        self.app = app
        shape = settings.api_shape
        self.health = {shape.live_path, shape.ready_path}
        if not shape.alt:
            self.health.add("/health")
        self.switch = MaintenanceSwitch(settings.maintenance_file)
        self.secret = settings.maintenance_secret.encode()
        self.release = settings.release
        self.tag = settings.release != "v1"
        self.slow = settings.release != "v1" and settings.has("slow-release")

    def _bypassed(self, scope: Scope) -> bool:
        """True when the request carries the bypass secret (compared in constant time)."""
        if not self.secret:
            return False
        for name, value in scope["headers"]:
            if name == _BYPASS:
                return hmac.compare_digest(value, self.secret)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.tag:
            inner_send = send

            async def send_tagged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message).append(RELEASE_HEADER, self.release)
                await inner_send(message)

            send = send_tagged
        if scope["path"] in self.health:
            await self.app(scope, receive, send)
            return
        down = self.switch.state()
        if down is not None and not self._bypassed(scope):
            await _maintenance_answer(send, *down)
            return
        if self.slow:
            await asyncio.sleep(SLOW_RELEASE_S)
        await self.app(scope, receive, send)


async def _maintenance_answer(send: Send, retry_after: int, message: str) -> None:
    """Send the 503 maintenance answer."""
    body: dict[str, Any] = {
        "error": {"code": "maintenance", "message": message, "retry_after": retry_after}
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
