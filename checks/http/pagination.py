"""http.pagination: list endpoints are paginated and cap the page size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import Field
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    Paths,
    ProbeError,
    fetch_answer,
    page_params,
    with_query,
)

from readyctl.apimap import ListSpec
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

    endpoints: Paths | None = Field(
        None,
        description="list endpoints, fetched with the session; default: from the API map "
        "(api.lists)",
    )
    max_page_size: int = Field(100, ge=1, description="the largest page an endpoint may return")
    probe_limit: int = Field(10_000, ge=1, description="the page size asked for")
    limit_param: str | None = Field(
        None,
        min_length=1,
        description="query parameter of the page size; default: from the API map (the list's "
        'size_param; "limit" for an endpoint the map does not list)',
    )
    offset_param: str | None = Field(
        None,
        min_length=1,
        description="query parameter of the page offset; default: from the API map (the list's "
        'offset_param, else its page_param; "offset" for an endpoint the map does not list)',
    )
    items_path: str | None = Field(
        None,
        min_length=1,
        description="dotted path of the rows; default: from the API map (the list's items), else "
        'the body if it is a list, else "items", "data", "results", ...',
    )
    total_path: str | None = Field(
        None,
        description="dotted path of the total row count; default: from the API map (the list's "
        'total), else "total"',
    )


def lists_of(ctx: Context, s: Settings) -> list[ListSpec]:
    """The lists to probe: the map's (api.lists), or the configured endpoints, with the
    settings' parameter names on top; RouteUnknown("lists") when none is known."""
    mapped = ctx.api().lists
    if s.endpoints is None:
        specs = list(mapped) if mapped else list(ctx.api().need("lists", "list endpoints"))
    else:
        by_path = {spec.path: spec for spec in mapped}
        specs = [
            by_path.get(path) or ListSpec(path=path, size_param="limit", offset_param="offset")
            for path in s.endpoints
        ]
    update = {
        k: v
        for k, v in (
            ("size_param", s.limit_param),
            ("offset_param", s.offset_param),
            ("items", s.items_path),
            ("total", s.total_path),
        )
        if v is not None
    }
    if s.offset_param is not None:
        update["page_param"] = None
    return [spec.model_copy(update=update) if update else spec for spec in specs]


class Pagination(Check):
    """Ask each list endpoint for 10,000 rows; expect at most the cap (read-only).

    The lists, their page parameters (limit/offset or page/size style) and where the rows and
    the total are come from the API map (api.lists); a list without a page-size parameter is
    fetched as it is. The positive control needs more rows than the cap to exist (from the
    response's total, or a non-empty next page); with fewer the result is inconclusive. The
    demo's test account has 150 sessions, so nothing is created.

    Settings (`checks: {http.pagination: {...}}`):
    - `endpoints` (default: from the API map (api.lists)): list endpoints, fetched with the
      session.
    - `max_page_size` (default 100), `probe_limit` (default 10000).
    - `limit_param`, `offset_param` (default: from the API map (the list's size_param and
      offset_param or page_param)).
    - `items_path` (default: from the API map (the list's items, else the body if it is a
      list, else "items", "data", "results", ...)), `total_path` (default: from the API map
      (the list's total), else "total").
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
        """One result per list endpoint."""
        s: Settings = ctx.settings()
        specs = lists_of(ctx, s)
        client = ctx.authed_http(timeout=15)
        for spec in specs:
            try:
                yield self._endpoint(ctx, client, spec, s)
            except ProbeError as e:
                yield self.errored(spec.path, e.reason, e.detail)

    def _endpoint(self, ctx: Context, client: httpx.Client, spec: ListSpec, s: Settings) -> Result:
        """Probe one endpoint."""
        path = spec.path
        cap = s.max_page_size
        probe = s.probe_limit
        items_path = spec.items
        total_path = spec.total or "total"

        def get(params: dict[str, Any]) -> Fetched:
            return fetch_answer(ctx, client, "GET", with_query(path, **params), cap=BODY_CAP)

        def asked(params: dict[str, Any]) -> str:
            return urlencode(params) or "its default page (no page-size parameter)"

        big_params = page_params(spec, probe)
        big = get(big_params)
        ask = asked(big_params)
        evidence: dict[str, Any] = {"request": big.label, "status": big.status, "cap": cap}
        if big.status in (400, 422) and spec.size_param:
            # rejecting an oversized limit is a cap too; prove the endpoint works at the cap
            at_cap = page_params(spec, cap)
            ok = get(at_cap)
            evidence["at_cap_status"] = ok.status
            if 200 <= ok.status < 300:
                return self.passed(
                    path,
                    f"{path} rejects {ask} with {big.status} and serves {asked(at_cap)}",
                    evidence=evidence,
                )
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"{path} answered {big.status} for {ask} and {ok.status} at the cap",
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
                f"{path} returned more than {BODY_CAP // 1_000_000} MB for {ask}; "
                "the page size is not capped",
                evidence=evidence,
            )
        data = big.json()
        rows = items_of(data, items_path)
        if rows is None:
            return self.errored(
                path,
                ErrorReason.CONFIG,
                f"no list of rows found in the {path} response; set its items in "
                f"environments.{ctx.env_name}.api.lists",
                evidence={**evidence, "body": big.excerpt(200)},
            )
        n = len(rows)
        evidence["rows"] = n
        if n > cap:
            return self.failed(
                path,
                f"{path} returned {n} rows for {ask}; the cap is {cap}",
                measured=n,
                threshold=cap,
                unit=" rows",
                evidence=evidence,
            )
        hints = [k for k in PAGE_HINTS if isinstance(data, dict) and k in data]
        if spec.total and dig(data, spec.total) is not None and spec.total not in hints:
            hints.append(spec.total)
        if big.headers.get("link"):
            hints.append("Link header")
        evidence["pagination_fields"] = hints
        # positive control: more rows than the cap must exist
        total = dig(data, total_path)
        more = isinstance(total, int) and not isinstance(total, bool) and total > cap
        if not more and n > 0 and (spec.offset_param or spec.page_param):
            # the next page: offset n (limit/offset), or page 2 of n rows (page/size)
            size = cap if spec.offset_param else n
            nxt = get(page_params(spec, size, offset=n))
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
                f"{path} caps {ask} at {n} rows but tells the client no way to the next page "
                "(no next/total/cursor field or Link header)",
                measured=n,
                threshold=cap,
                unit=" rows",
                evidence=evidence,
            )
        return self.passed(
            path,
            f"{path} returned {n} rows for {ask} (cap {cap})",
            measured=n,
            threshold=cap,
            unit=" rows",
            evidence=evidence,
        )
