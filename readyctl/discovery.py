"""Discovery: learn a target's API map from what it publishes.

In order: the OpenAPI document (`api.openapi`: a file, a URL, or `auto`, which tries the usual
places anonymously), OAuth 2.0 Authorization Server Metadata (RFC 8414) for the token
endpoint, and, when the document is hidden from the public, the usual places again with the
test session (a production API that hides its docs is healthy and may still show them to a
logged-in user). Every request is bounded; nothing here raises on a target's answer: what is
not found stays unknown, with a note saying why.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

    from readyctl.context import Context

MAX_DOC_BYTES = 20 * 1024 * 1024
BUDGET_S = 30.0  # all discovery requests of one run together
REQUEST_S = 5.0
WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
# where API documentation UIs usually live (the OpenAPI documents: openapi.CANDIDATE_PATHS)
DOC_UI_PATHS = ("/docs", "/redoc", "/swagger", "/swagger-ui", "/api/docs", "/api-docs")
# where a site usually keeps its legal pages (compliance.legal_pages tries them anonymously
# when the map has no api.privacy_policy / api.terms)
LEGAL_PAGE_PLACES: dict[str, tuple[str, ...]] = {
    "privacy_policy": (
        "/privacy",
        "/privacy-policy",
        "/legal/privacy",
        "/legal/privacy-policy",
        "/policies/privacy",
    ),
    "terms": ("/terms", "/terms-of-service", "/tos", "/legal/terms", "/legal/terms-of-service"),
}


class Budget:
    """The time all discovery requests of one run may take together (BUDGET_S)."""

    def __init__(self, seconds: float = BUDGET_S) -> None:
        self.until = time.monotonic() + seconds
        self.stalled = False  # a request got no answer in time: the rest is not tried

    def stall(self) -> None:
        """A request timed out: a target that accepts connections and never answers would
        spend the whole budget 5 s at a time, so discovery stops here."""
        self.stalled = True
        self.until = time.monotonic()

    def left(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.until - time.monotonic())

    def request_stop(self) -> float | None:
        """The monotonic time one request must be done by, or None when the budget is spent."""
        left = self.left()
        return None if left < 0.2 else time.monotonic() + min(REQUEST_S, left)


def _get(
    ctx: Context, client: httpx.Client, path: str, headers: dict[str, str], budget: Budget
) -> httpx.Response | None:
    """GET `path` within one request's share of the budget (whole exchange, trickles too);
    None when it failed, timed out or the budget is spent."""
    import httpx

    from readyctl.errors import DeadlineExceeded
    from readyctl.httpread import DEADLINE, BodyDeadline, BodyTooLarge

    stop = budget.request_stop()
    if stop is None or ctx.remaining() <= 0.2:
        return None
    try:
        return client.get(
            path,
            headers=headers,
            timeout=ctx.timeout(stop - time.monotonic()),
            extensions={DEADLINE: stop},
        )
    except (httpx.TimeoutException, BodyDeadline):
        budget.stall()
        return None
    except (httpx.HTTPError, BodyTooLarge, DeadlineExceeded, ValueError):
        return None


@dataclasses.dataclass
class Found:
    """What one discovery pass learned: map values (ApiConfig keys) and where."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""
    at: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    hidden: bool = False  # a candidate answered 401/403: the doc may be there for a session


def _client(ctx: Context) -> httpx.Client:
    return ctx.http(timeout=REQUEST_S, max_body=MAX_DOC_BYTES, max_wire=MAX_DOC_BYTES)


def _parse(text: bytes, where: str, found: Found) -> bool:
    from readyctl import openapi

    try:
        doc = openapi.parse_document(text, source=where)
    except openapi.OpenApiError as e:
        found.notes.append(f"{where}: {e}")
        return False
    derived = openapi.derive_map(doc)
    security = derived.pop("security", None) or {}
    found.values = {**derived, **{k: v for k, v in security.items() if k in ("header", "scheme")}}
    found.at = where
    found.source = "openapi"
    if doc.problems:
        found.notes.append(
            f"{where}: OpenAPI {doc.version} document has problems (used anyway): "
            + "; ".join(doc.problems[:2])
        )
    return True


def from_file(ctx: Context, spec: str) -> Found:
    """The document in a repository file."""
    from readyctl._files import read_text
    from readyctl.errors import ConfigError

    found = Found()
    try:
        text = read_text(
            ctx.resolve(spec),
            limit=MAX_DOC_BYTES,
            what="OpenAPI document",
            typical="an API description is a few MB at most",
        )
    except ConfigError as e:
        found.notes.append(f"api.openapi: {e}")
        return found
    _parse(text.encode(), str(spec), found)
    return found


def from_url(
    ctx: Context, url: str, budget: Budget, headers: dict[str, str] | None = None
) -> Found:
    """The document at a URL (absolute, or a path on the target)."""
    found = Found()
    _fetch_doc(ctx, _client(ctx), url, headers or {}, found, budget)
    return found


def _fetch_doc(
    ctx: Context,
    client: httpx.Client,
    where: str,
    headers: dict[str, str],
    found: Found,
    budget: Budget,
) -> bool:
    accept = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.1"}
    resp = _get(ctx, client, where, {**accept, **headers}, budget)
    if resp is None:
        return False
    if resp.status_code in (401, 403):
        found.hidden = True
        return False
    if resp.status_code != 200:
        return False
    if "html" in resp.headers.get("content-type", "").lower():
        return False
    return _parse(resp.content, where, found)


def anonymous(ctx: Context, spec: str, budget: Budget) -> Found:
    """The OpenAPI document as the public sees it (`auto`: the usual places)."""
    from readyctl import openapi

    if spec not in ("auto", ""):
        if "://" in spec or spec.startswith("/"):
            return from_url(ctx, spec, budget)
        return from_file(ctx, spec)
    found = Found()
    client = _client(ctx)
    for path in openapi.CANDIDATE_PATHS:
        if _fetch_doc(ctx, client, path, {}, found, budget):
            return found
    if budget.stalled:
        found.notes.append(f"discovery stopped: the target did not answer within {REQUEST_S:.0f} s")
    elif budget.left() < 0.2:
        found.notes.append(f"discovery stopped after {BUDGET_S:.0f} s (the target answers slowly)")
    return found


def with_session(ctx: Context, spec: str, header: str, value: str, budget: Budget) -> Found:
    """The usual places (or the configured URL) again, as the logged-in test account."""
    from readyctl import openapi

    found = Found()
    client = _client(ctx)
    paths = openapi.CANDIDATE_PATHS if spec in ("auto", "") else (spec,)
    for path in paths:
        if _fetch_doc(ctx, client, path, {header: value}, found, budget):
            found.notes.append(f"the OpenAPI document at {path} is served only to a session")
            return found
    return found


def oauth_metadata(ctx: Context, budget: Budget) -> Found:
    """The token endpoint from RFC 8414 server metadata (or OpenID discovery), same origin."""
    found = Found(source="oauth metadata")
    base = ctx.environment.base_url or ""
    client = ctx.http(timeout=REQUEST_S, max_body=1_000_000)
    for path in WELL_KNOWN:
        resp = _get(ctx, client, path, {"Accept": "application/json"}, budget)
        if resp is None or resp.status_code != 200:
            continue
        try:
            meta = resp.json()
        except ValueError:
            continue
        if not isinstance(meta, dict):
            continue
        endpoint = meta.get("token_endpoint")
        grants = meta.get("grant_types_supported")
        if not isinstance(endpoint, str):
            continue
        if isinstance(grants, list) and "password" not in grants:
            found.notes.append(f"{path}: the token endpoint does not offer the password grant")
            continue
        token_path = _same_origin_path(base, endpoint)
        if token_path is None:
            found.notes.append(f"{path}: token_endpoint is on another origin; set api.login")
            continue
        found.values = {
            "login": {
                "method": "POST",
                "path": token_path,
                "body": "form",
                "username_field": "username",
                "password_field": "password",
                "extra": {"grant_type": "password"},
            }
        }
        found.at = path
        return found
    return found


def _same_origin_path(base: str, url: str) -> str | None:
    """`url`'s path when it is on the base URL's origin (or already a path)."""
    if url.startswith("/"):
        return url
    b, u = urlsplit(base), urlsplit(url)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc) or not u.path.startswith("/"):
        return None
    return u.path + (f"?{u.query}" if u.query else "")


def readable_lists(
    ctx: Context, lists: list[Any], header: str, value: str, budget: Budget
) -> tuple[list[Any], list[str]]:
    """Discovered lists ordered by what the test account may read: those answering 2xx to
    the session first; a list answering 401/403 (an admin route, another role) is dropped
    with a note, one that cannot be asked (path parameters) or did not answer is kept last."""
    client = ctx.http(timeout=REQUEST_S, max_body=2_000_000)
    ok: list[Any] = []
    unknown: list[Any] = []
    notes: list[str] = []
    for spec in lists:
        if "{" in spec.path:
            unknown.append(spec)
            continue
        query = {p: 1 for p in (spec.size_param,) if p}
        if spec.page_param:
            query[spec.page_param] = 1
        path = spec.path
        if query:
            from urllib.parse import urlencode

            path += ("&" if "?" in path else "?") + urlencode(query)
        resp = _get(ctx, client, path, {header: value, "Accept": "application/json"}, budget)
        if resp is None or resp.status_code >= 500:
            unknown.append(spec)
        elif resp.status_code in (401, 403, 404):
            notes.append(
                f"list {spec.path} answers {resp.status_code} to the test account: not used"
            )
        elif resp.status_code < 300:
            ok.append(spec)
        else:
            unknown.append(spec)
    return ok + unknown, notes
