"""Bounded HTTP exchanges for checks against a running API: size cap, wall-clock cap, one error."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import BeforeValidator

from readyctl.httpread import DEADLINE, read_body
from readyctl.redact import clip
from readyctl.result import ErrorReason

if TYPE_CHECKING:
    from readyctl.context import Context

MAX_BODY = 1_000_000
SNIPPET = 300

# an HTTP method setting; any spelling is accepted and kept upper case
HttpMethod = Annotated[
    Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]


class TargetError(Exception):
    """An exchange with the target could not complete; `detail` is one sentence."""

    def __init__(self, reason: ErrorReason, detail: str) -> None:
        """Keep the reason enum and the one-sentence detail."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Answer:
    """A complete (or capped) response: status, headers, body bytes and time taken."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    elapsed_ms: float
    over: str = ""  # when truncated: "body exceeded 1 MB after gzip decoding: stopped reading"

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (or was truncated)."""
        if self.truncated:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def snippet(self, n: int = SNIPPET) -> str:
        """The start of the body as text, for evidence (redacted before it is shortened)."""
        text = clip(self.body.decode("utf-8", "replace"), n)
        return text + ("..." if len(self.body) > n or self.truncated else "")

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


def describe(exc: BaseException) -> TargetError:
    """Turn an httpx (or socket) exception into a TargetError with a one-sentence reason."""
    if isinstance(exc, TargetError):
        return exc
    text = clip((str(exc) or type(exc).__name__).splitlines()[0], 160)
    if isinstance(exc, httpx.TimeoutException):
        return TargetError(ErrorReason.TIMEOUT, f"no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        if "SSL" in text or "certificate" in text:
            kind = "TLS handshake failed"
        elif "refused" in text.lower():
            kind = "connection refused"
        else:
            kind = "connection failed"
        return TargetError(ErrorReason.CONNECTIVITY, f"{kind} ({text})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TargetError(ErrorReason.CONNECTIVITY, f"malformed or dropped response ({text})")
    if isinstance(exc, httpx.DecodingError):
        return TargetError(ErrorReason.CONNECTIVITY, f"undecodable response body ({text})")
    if isinstance(exc, httpx.HTTPError | OSError):
        return TargetError(ErrorReason.CONNECTIVITY, f"{type(exc).__name__}: {text}")
    return TargetError(ErrorReason.BUG, f"{type(exc).__name__}: {text}")


def fetch(
    ctx: Context,
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    content: Any = None,
    headers: dict[str, str] | None = None,
    cap: int = MAX_BODY,
    budget_s: float = 10.0,
) -> Answer:
    """One request whose body is read up to `cap` bytes and within `budget_s` seconds.

    The budget bounds the whole exchange (connect, headers, body: readyctl/httpread.py); a body
    over `cap` comes back `truncated`, with `over` saying so in one sentence.
    """
    budget = max(0.05, min(budget_s, ctx.remaining()))
    t0 = time.perf_counter()
    stop_at = time.monotonic() + budget
    try:
        request = client.build_request(
            method,
            path,
            json=json_body,
            content=content,
            headers=headers,
            timeout=ctx.timeout(budget),
            extensions={DEADLINE: stop_at},
        )
        response = client.send(request, stream=True)
    except Exception as e:
        raise describe(e) from None
    try:
        body = read_body(response, cap=cap, stop_at=stop_at)
    except httpx.TimeoutException:  # BodyDeadline, or a socket read cut at the deadline
        raise TargetError(
            ErrorReason.TIMEOUT,
            f"{method} {path}: the response body did not end within {budget:.3g} s",
        ) from None
    except Exception as e:
        raise describe(e) from None
    finally:
        response.close()
    return Answer(
        status=response.status_code,
        headers=response.headers,
        body=body.data,
        truncated=body.truncated,
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 2),
        over=body.over,
    )


def header_evidence(headers: httpx.Headers, names: tuple[str, ...]) -> dict[str, str]:
    """The named headers that are present, truncated for evidence."""
    return {n: clip(headers[n], 120) for n in names if n in headers}
