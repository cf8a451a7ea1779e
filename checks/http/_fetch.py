"""Shared HTTP probing for the http hygiene checks: capped, deadline-bound reads."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BeforeValidator, Field, WithJsonSchema

from readyctl.apimap import ListSpec
from readyctl.check import CheckSettings
from readyctl.context import AuthError, AuthSession, Context, LoginUnknown
from readyctl.httpread import DEADLINE, BodyDeadline, read_body
from readyctl.redact import clip as redact_clip
from readyctl.result import ErrorReason

BODY_CAP = 1_000_000
REQUEST_TIMEOUT_S = 10.0
EVIDENCE_CHARS = 300


def _one_or_many(value: Any) -> Any:
    """A single path may be given as a plain string."""
    return (value,) if isinstance(value, str) else value


# a settings value that is one path or a list of paths
Paths = Annotated[
    tuple[str, ...],
    BeforeValidator(_one_or_many),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class HttpSettings(CheckSettings):
    """Settings every http hygiene check takes (its own keys come on top)."""

    request_timeout_s: float = Field(
        REQUEST_TIMEOUT_S, gt=0, description="budget of each request, body included"
    )


class ProbeError(Exception):
    """A probe got no usable answer; `detail` is one sentence naming the request."""

    def __init__(self, reason: ErrorReason, detail: str) -> None:
        """Keep the reason enum and the sentence."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Fetched:
    """One answered request: status, headers and a size-capped, decoded body."""

    method: str
    path: str
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    wire_bytes: int
    over: str = ""  # when truncated: "body exceeded 1 MB after gzip decoding: stopped reading"

    @property
    def label(self) -> str:
        """'GET /path' for summaries."""
        return f"{self.method} {self.path}"

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def is_html(self) -> bool:
        """True for text/html and application/xhtml+xml answers."""
        return self.content_type in ("text/html", "application/xhtml+xml")

    @property
    def is_json(self) -> bool:
        """True when the media type says JSON (application/json, problem+json, ...)."""
        ct = self.content_type
        return ct == "application/json" or ct.endswith("+json")

    def text(self) -> str:
        """The body as text (replacement characters for bad bytes)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not (or was cut off)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def values(self, name: str) -> list[str]:
        """Every value of header `name` (repeated headers included)."""
        return self.headers.get_list(name)

    def excerpt(self, limit: int = EVIDENCE_CHARS) -> str:
        """The start of the body for evidence."""
        return clip(self.text(), limit)


def clip(value: str, limit: int = 120) -> str:
    """A value from the target, redacted and only then shortened for a summary or evidence."""
    return redact_clip(value.replace("\r", " ").replace("\n", " "), limit, marker="…")


def fetch(
    ctx: Context,
    client: httpx.Client,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    json_body: Any = None,
    cap: int = BODY_CAP,
    budget_s: float | None = None,
) -> Fetched:
    """Send one request and read at most `cap` body bytes within `budget_s` (and the deadline).

    The budget defaults to the check's `request_timeout_s` setting (10 s) and bounds the
    whole exchange (connect, headers, body); a body over `cap` is `truncated` (with `over`).
    """
    ctx.check_deadline()
    if budget_s is None:
        settings = ctx.settings()
        budget_s = (
            settings.request_timeout_s if isinstance(settings, HttpSettings) else REQUEST_TIMEOUT_S
        )
    budget = ctx.timeout(budget_s)
    stop_at = time.monotonic() + budget
    label = f"{method} {path}"
    kwargs: dict[str, Any] = {"headers": headers or {}, "timeout": budget}
    if content is not None:
        kwargs["content"] = content
    elif json_body is not None:
        kwargs["json"] = json_body
    kwargs["extensions"] = {DEADLINE: stop_at}
    try:
        with client.stream(method, path, **kwargs) as resp:
            try:
                body = read_body(resp, cap=cap, stop_at=stop_at)
            except httpx.TimeoutException:  # the headers came, the body trickles
                raise BodyDeadline("body") from None
            return Fetched(
                method,
                path,
                resp.status_code,
                resp.headers,
                body.data,
                body.truncated,
                body.wire_bytes,
                body.over,
            )
    except BodyDeadline:
        raise ProbeError(
            ErrorReason.TIMEOUT,
            f"{label}: the response body did not finish within {budget:.3g} s",
        ) from None
    except httpx.TooManyRedirects:
        raise ProbeError(ErrorReason.CONNECTIVITY, f"{label} redirects in a loop") from None
    except httpx.TimeoutException:
        raise ProbeError(
            ErrorReason.TIMEOUT, f"{label} did not answer within {budget:.3g} s"
        ) from None
    except httpx.DecodingError as e:
        raise ProbeError(
            ErrorReason.CONNECTIVITY, f"{label}: the body could not be decoded ({clip(str(e))})"
        ) from None
    except (httpx.RemoteProtocolError, httpx.LocalProtocolError) as e:
        raise ProbeError(
            ErrorReason.CONNECTIVITY, f"{label}: malformed HTTP response ({clip(str(e), 100)})"
        ) from None
    except httpx.HTTPError as e:
        raise ProbeError(
            ErrorReason.CONNECTIVITY,
            f"{label} failed: {type(e).__name__} ({clip(str(e), 100)})",
        ) from None


def fetch_answer(
    ctx: Context, client: httpx.Client, method: str, path: str, *, tries: int = 3, **kw: Any
) -> Fetched:
    """`fetch`, repeated (up to `tries` times) while the target answers 5xx.

    For positive controls: one transient 500 must not make a probe inconclusive.
    """
    r = fetch(ctx, client, method, path, **kw)
    for _ in range(tries - 1):
        if r.status < 500 or ctx.remaining() < 1:
            break
        r = fetch(ctx, client, method, path, **kw)
    return r


def login_known(ctx: Context) -> bool:
    """True when the API map says how to get a session (api.login with a route, or api.token)."""
    api = ctx.api()
    return api.token is not None or (api.login is not None and api.login.path is not None)


def optional_session(ctx: Context) -> tuple[AuthSession | None, str]:
    """The run's session when the API map has a login (or token) that works; else None and
    why not."""
    if not login_known(ctx):
        return None, f"no login in the API map (set environments.{ctx.env_name}.api.login)"
    try:
        return ctx.auth(), ""
    except LoginUnknown:
        return None, f"no login in the API map (set environments.{ctx.env_name}.api.login)"
    except AuthError as e:
        return None, f"auth.session failed: {e}"


def auth_headers(session: AuthSession | None) -> dict[str, str]:
    """The session header as a dict (empty without a session)."""
    return {session.header: session.header_value} if session else {}


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, or None when it has no scheme or host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def page_params(spec: ListSpec, size: int, *, offset: int = 0) -> dict[str, Any]:
    """The query asking `spec` for `size` rows from `offset`, in the list's own style.

    page/size style (page=1&size=N: the page holding `offset`) or limit/offset style; a list
    with no size parameter gets none (it serves its default page).
    """
    params: dict[str, Any] = {}
    if spec.size_param:
        params[spec.size_param] = size
    if spec.offset_param:
        if offset:
            params[spec.offset_param] = offset
    elif spec.page_param:
        params[spec.page_param] = offset // max(1, size) + 1
    return params


def list_url(spec: ListSpec, size: int, *, offset: int = 0) -> str:
    """The list's path with the query of `page_params`."""
    return with_query(spec.path, **page_params(spec, size, offset=offset))


def with_query(path: str, **params: Any) -> str:
    """`path` with query parameters added (existing ones kept)."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not query:
        return path
    return path + ("&" if "?" in path else "?") + query
