"""http.pagination: list endpoints are paginated and cap the page size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    Paths,
    ProbeError,
    fetch_answer,
    with_query,
)

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

PAGE_HINTS = (
    "next",
    "next_offset",
    "next_cursor",
    "nextCursor",
    "cursor",
    "has_more",
    "hasMore",
    "total",
    "count",
    "page",
    "links",
    "_links",
    "pagination",
)
BODY_CAP = 4_000_000


def dig(data: Any, path: str | None) -> Any:
    """Follow a dotted path into JSON."""
    if not path:
        return None
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def items_of(data: Any, items_path: str | None) -> list[Any] | None:
    """The page's rows: at `items_path`, the body itself, or the first list among common keys."""
    if items_path:
        found = dig(data, items_path)
        return found if isinstance(found, list) else None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("items", "data", "results", "rows", "records"):
            if isinstance(data.get(key), list):
                return data[key]
    return None


class Settings(HttpSettings):
    """Settings of http.pagination."""

    endpoints: Paths = Field(
        ("/v1/counsel/sessions",), description="list endpoints, fetched with the session"
    )
    max_page_size: int = Field(100, ge=1, description="the largest page an endpoint may return")
    probe_limit: int = Field(10_000, ge=1, description="the page size asked for")
    limit_param: str = Field("limit", min_length=1, description="query parameter of the page size")
    offset_param: str = Field(
        "offset", min_length=1, description="query parameter of the page offset"
    )
    items_path: str | None = Field(
        None,
        min_length=1,
        description='dotted path of the rows (default: the body if it is a list, else "items", '
        '"data", "results", ...)',
    )
    total_path: str = Field("total", description="dotted path of the total row count")


class Pagination(Check):
    """Ask each list endpoint for 10,000 rows; expect at most the cap (read-only).

    The positive control needs more rows than the cap to exist (from the response's total,
    or a non-empty next page); with fewer the result is inconclusive. The demo's test account
    has 150 sessions, so nothing is created.

    Settings (`checks: {http.pagination: {...}}`):
    - `endpoints` (default ["/v1/counsel/sessions"]): list endpoints, fetched with the session.
    - `max_page_size` (default 100), `probe_limit` (default 10000).
    - `limit_param` (default "limit"), `offset_param` (default "offset").
    - `items_path` (default: the body if it is a list, else "items", "data", "results", ...),
      `total_path` (default "total").
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.pagination",
        title="List endpoints cap their page size",
        failure_title="List endpoints return unbounded pages",
        description=(
            "A list endpoint that returns as many rows as asked lets one request pull a whole "
            "table, exhausting memory and the database as data grows. See "
            "https://owasp.org/API-Security/editions/2023/en/0xa4-unrestricted-resource-consumption/."
        ),
        remediation=RemediationSpec(
            text="Clamp the page size server-side (or reject larger limits with 400/422) and "
            "return a next cursor or offset.",
            snippet="limit = min(int(request.query.get('limit', 20)), 100)",
            link="https://owasp.org/API-Security/editions/2023/en/0xa4-unrestricted-resource-consumption/",
        ),
        category=Category.HTTP,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("payloads", "seed"),
        refs=("15",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per endpoint."""
        s: Settings = ctx.settings()
        endpoints = s.endpoints
        client = ctx.authed_http(timeout=15)
        for path in endpoints:
            try:
                yield self._endpoint(ctx, client, path, s)
            except ProbeError as e:
                yield self.errored(path, e.reason, e.detail)

    def _endpoint(self, ctx: Context, client: httpx.Client, path: str, s: Settings) -> Result:
        """Probe one endpoint."""
        cap = s.max_page_size
        probe = s.probe_limit
        limit_param = s.limit_param
        offset_param = s.offset_param
        items_path = s.items_path
        total_path = s.total_path

        def get(**params: Any) -> Fetched:
            return fetch_answer(ctx, client, "GET", with_query(path, **params), cap=BODY_CAP)

        big = get(**{limit_param: probe})
        evidence: dict[str, Any] = {"request": big.label, "status": big.status, "cap": cap}
        if big.status in (400, 422):
            # rejecting an oversized limit is a cap too; prove the endpoint works at the cap
            ok = get(**{limit_param: cap})
            evidence["at_cap_status"] = ok.status
            if 200 <= ok.status < 300:
                return self.passed(
                    path,
                    f"{path} rejects {limit_param}={probe} with {big.status} and serves "
                    f"{limit_param}={cap}",
                    evidence=evidence,
                )
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"{path} answered {big.status} for {limit_param}={probe} and {ok.status} at "
                f"the cap",
                evidence=evidence,
            )
        if not 200 <= big.status < 300:
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"GET {big.path} answered {big.status}",
                evidence=evidence,
            )
        if big.truncated:
            return self.failed(
                path,
                f"{path}?{limit_param}={probe} returned more than {BODY_CAP // 1_000_000} MB; "
                "the page size is not capped",
                evidence=evidence,
            )
        data = big.json()
        rows = items_of(data, items_path)
        if rows is None:
            return self.errored(
                path,
                ErrorReason.CONFIG,
                f"no list of rows found in the {path} response; set items_path",
                evidence={**evidence, "body": big.excerpt(200)},
            )
        n = len(rows)
        evidence["rows"] = n
        if n > cap:
            return self.failed(
                path,
                f"{path} returned {n} rows for {limit_param}={probe}; the cap is {cap}",
                measured=n,
                threshold=cap,
                unit=" rows",
                evidence=evidence,
            )
        hints = [k for k in PAGE_HINTS if isinstance(data, dict) and k in data]
        if big.headers.get("link"):
            hints.append("Link header")
        evidence["pagination_fields"] = hints
        # positive control: more rows than the cap must exist
        total = dig(data, total_path)
        more = isinstance(total, int) and not isinstance(total, bool) and total > cap
        if not more and n > 0:
            nxt = get(**{limit_param: cap, offset_param: n})
            nxt_rows = items_of(nxt.json(), items_path) if 200 <= nxt.status < 300 else None
            evidence["next_page_rows"] = len(nxt_rows) if nxt_rows is not None else None
            more = bool(nxt_rows) and nxt_rows != rows
        if isinstance(total, int) and not isinstance(total, bool):
            evidence["total"] = total
        if not more:
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"{path} has only {n} rows for this account, not more than the cap of {cap}; "
                "use an account with more data",
                evidence=evidence,
            )
        if not hints:
            return self.warned(
                path,
                f"{path} caps {limit_param}={probe} at {n} rows but tells the client no way "
                "to the next page (no next/total/cursor field or Link header)",
                measured=n,
                threshold=cap,
                unit=" rows",
                evidence=evidence,
            )
        return self.passed(
            path,
            f"{path} returned {n} rows for {limit_param}={probe} (cap {cap})",
            measured=n,
            threshold=cap,
            unit=" rows",
            evidence=evidence,
        )
