"""Cross-cutting pieces of the demo API: errors, JSON logs, metrics and the core middleware."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from readyctl.demo.shapes import DEFAULT_SHAPE, SHAPES, Shape

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
SENSITIVE_KEYS = re.compile(r"pass|secret|token|authorization|api_key|cookie|dsn", re.I)

HSTS = "max-age=31536000; includeSubDomains"
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
MAX_BODY_BYTES = 1_000_000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ApiError(Exception):
    """An error answered as {"error": {"code", "message"}} with a status code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        """Create the error."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_body(
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    details: list[dict[str, Any]] | None = None,
    exc: BaseException | None = None,
    with_trace: bool = False,
) -> dict[str, Any]:
    """Return the one error shape; with_trace adds a traceback (the stack-traces fault)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    if request_id:
        err["request_id"] = request_id
    if with_trace and exc is not None:
        err["exception"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        err["traceback"] = traceback.format_exception(exc)
    return {"error": err}


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class JsonLog:
    """Structured JSON lines on stderr; values of sensitive keys are never written."""

    def __init__(self, level: str = "info", stream: TextIO | None = None) -> None:
        """Create a logger writing at or above `level`."""
        self.threshold = LEVELS.get(level.lower(), 20)
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def log(self, level: str, event: str, **fields: Any) -> None:
        """Write one JSON line."""
        if LEVELS.get(level, 20) < self.threshold:
            return
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "logger": "counsel-api",
            "event": event,
        }
        for key, value in fields.items():
            record[key] = "[redacted]" if SENSITIVE_KEYS.search(key) else value
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(line)

    def info(self, event: str, **fields: Any) -> None:
        """Log at info level."""
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log at warning level."""
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log at error level."""
        self.log("error", event, **fields)


class Metrics:
    """Prometheus counters and a latency histogram per route, rendered by hand."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self) -> None:
        """Start with empty series."""
        self.requests: dict[tuple[str, str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.started = time.time()
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        key = (route, method, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        rm = (route, method)
        if status >= 500:
            self.errors[rm] = self.errors.get(rm, 0) + 1
        series = self.latency.get(rm)
        if series is None:
            series = self.latency[rm] = [0.0] * (len(self.BUCKETS) + 2)
        for i, bound in enumerate(self.BUCKETS):
            if seconds <= bound:
                series[i] += 1
                break
        series[-2] += seconds
        series[-1] += 1

    @staticmethod
    def _labels(**labels: str) -> str:
        """Format a label set."""
        inner = ",".join(
            f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in labels.items()
        )
        return "{" + inner + "}"

    def render(self) -> str:
        """Render the exposition text format (version 0.0.4)."""
        out = [
            "# HELP http_requests_total Total HTTP requests by route, method and status.",
            "# TYPE http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f"http_requests_total{self._labels(route=route, method=method, status=status)} {n}"
            )
        out += [
            "# HELP http_request_errors_total Requests answered with a 5xx status, by route.",
            "# TYPE http_request_errors_total counter",
        ]
        for (route, method), n in sorted(self.errors.items()):
            out.append(f"http_request_errors_total{self._labels(route=route, method=method)} {n}")
        out += [
            "# HELP http_request_duration_seconds Request latency by route and method.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for (route, method), series in sorted(self.latency.items()):
            cumulative = 0.0
            for i, bound in enumerate(self.BUCKETS):
                cumulative += series[i]
                labels = self._labels(route=route, method=method, le=repr(bound))
                out.append(f"http_request_duration_seconds_bucket{labels} {int(cumulative)}")
            labels = self._labels(route=route, method=method, le="+Inf")
            out.append(f"http_request_duration_seconds_bucket{labels} {int(series[-1])}")
            labels = self._labels(route=route, method=method)
            out.append(f"http_request_duration_seconds_sum{labels} {series[-2]:.6f}")
            out.append(f"http_request_duration_seconds_count{labels} {int(series[-1])}")
        out += [
            "# HELP process_start_time_seconds Start time of the process since the epoch.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started:.3f}",
        ]
        for name, fn in sorted(self.gauges.items()):
            out += [f"# TYPE {name} gauge", f"{name} {fn():g}"]
        return "\n".join(out) + "\n"


class CoreMiddleware:
    """Pure ASGI middleware: request ids, headers, metrics, access logs and the 500 answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: frozenset[str],
        log: JsonLog,
        metrics: Metrics,
        server_header: str,
        powered_by: str,
        shape: Shape = SHAPES[DEFAULT_SHAPE],
    ) -> None:
        """Wrap `app`; behaviour depends on the fault set and the API shape."""
        self.app = app
        self.shape = shape
        self.log = log
        self.metrics = metrics
        self.hsts = "no-hsts" not in faults
        self.sec_headers = "no-security-headers" not in faults
        self.banner = "server-banner" in faults
        self.traces = "stack-traces" in faults
        self.unversioned = "unversioned-api" in faults
        self.server_header = server_header.encode()
        self.powered_by = powered_by.encode()

    def _rewrite(self, scope: Scope) -> None:
        """Under unversioned-api, serve other versions and bare paths as the versioned route."""
        new = self.shape.unversioned_path(scope["path"])
        if new is not None:
            scope["path"] = new
            scope["raw_path"] = new.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        if self.unversioned:
            self._rewrite(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        https = scope.get("scheme") == "https"
        request_id = ""
        content_length = 0
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = -1
        if not request_id:
            request_id = uuid.uuid4().hex
        scope["request_id"] = request_id
        no_store = not self.shape.cacheable(path)
        state = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = MutableHeaders(scope=message)
                headers.append("X-Request-ID", request_id)
                if self.banner:
                    headers.append("Server", self.server_header.decode())
                    headers.append("X-Powered-By", self.powered_by.decode())
                else:
                    headers.append("Server", "counsel-api")
                if https and self.hsts:
                    headers.append("Strict-Transport-Security", HSTS)
                if self.sec_headers:
                    headers.append("X-Content-Type-Options", "nosniff")
                    headers.append("X-Frame-Options", "DENY")
                    headers.append("Referrer-Policy", "no-referrer")
                    headers.append("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
                    if "content-security-policy" not in headers:
                        headers.append("Content-Security-Policy", API_CSP)
                elif "content-security-policy" in headers:
                    del headers["content-security-policy"]
                if no_store and "cache-control" not in headers:
                    headers.append("Cache-Control", "no-store")
            await send(message)

        try:
            if content_length > MAX_BODY_BYTES or content_length < 0:
                await self._send_json(
                    send_wrapper,
                    413 if content_length > 0 else 400,
                    error_body(
                        "payload_too_large" if content_length > 0 else "bad_request",
                        "Request body too large." if content_length > 0 else "Bad Content-Length.",
                        request_id=request_id,
                    ),
                )
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            self.log.error(
                "http.unhandled_exception",
                request_id=request_id,
                method=method,
                path=path,
                exception=type(exc).__name__,
                trace="".join(traceback.format_exception(exc))[-4000:],
            )
            if not state["started"]:
                body = error_body(
                    "internal_error",
                    "Internal server error.",
                    request_id=request_id,
                    exc=exc,
                    with_trace=self.traces,
                )
                await self._send_json(send_wrapper, 500, body)
        finally:
            elapsed = time.perf_counter() - start
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or "<unmatched>"
            status = int(state["status"])
            self.metrics.observe(route, method, status, elapsed)
            self.log.log(
                "error" if status >= 500 else "info",
                "http.request",
                request_id=request_id,
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=(scope.get("client") or ("", 0))[0],
            )

    @staticmethod
    async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
        """Send a complete JSON response."""
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
