"""http.cache_headers: cacheable public GETs send max-age and a validator, and answer 304."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from pydantic import Field
from readyctl.checks.http._cachecontrol import cache_directives, seconds
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    Paths,
    ProbeError,
    clip,
    fetch_answer,
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


class Settings(HttpSettings):
    """Settings of http.cache_headers."""

    paths: Paths | None = Field(
        None,
        description="public GET routes whose answers should be cacheable (fetched without a "
        "session); default: from the API map (api.cacheable)",
    )


def _headers(r: Fetched) -> dict[str, str | None]:
    """The caching headers of an answer, for evidence."""
    return {
        name: clip(", ".join(r.values(name)), 200) or None
        for name in ("cache-control", "etag", "last-modified", "vary", "expires")
    }


class CacheHeaders(Check):
    """GET each cacheable public route, then again conditionally; expect caching headers and 304.

    A route passes when its `Cache-Control` has a max-age (or s-maxage) above 0, is neither
    `no-store` nor `private`, it sends a validator (`ETag` or `Last-Modified`), and a
    conditional GET (`If-None-Match`, else `If-Modified-Since`) answers 304. The routes come
    from the API map (`api.cacheable`); without them the check skips naming that key.

    Authenticated answers must be `no-store`: http.security_headers owns that rule (modifier
    `cache-not-no-store`); both checks parse Cache-Control with the same helper, and this one
    does not judge authenticated answers, so one fault never counts twice.

    Settings (`checks: {http.cache_headers: {...}}`):
    - `paths` (default: from the API map (api.cacheable)): public GET routes that should be
      cacheable, fetched without a session.
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.cache_headers",
        title="Public GETs are cacheable and revalidate",
        failure_title="Public GETs are not cacheable or do not revalidate",
        description=(
            "Public, rarely changing answers (reference lists, resources) that carry a max-age "
            "and an ETag or Last-Modified can be served by browsers and CDNs, and revalidated "
            "with a cheap 304, instead of hitting the database on every request. See "
            "https://developer.mozilla.org/en-US/docs/Web/HTTP/Caching."
        ),
        remediation=RemediationSpec(
            text="On public GETs that are the same for every caller, send Cache-Control with a "
            "max-age, an ETag (a hash of the body) or Last-Modified, and answer 304 when "
            "If-None-Match matches. Keep no-store on authenticated answers.",
            snippet=(
                "Cache-Control: public, max-age=300\n"
                'ETag: "<sha256 of the body>"\n'
                "# If-None-Match matches the ETag -> 304 Not Modified, no body"
            ),
            link="https://developer.mozilla.org/en-US/docs/Web/HTTP/Caching",
        ),
        category=Category.HTTP,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("caching", "performance", "seed"),
        refs=("12", "13"),
    )
    Settings = Settings

    @classmethod
    def explain_extra(cls) -> str:
        """Which rule each check owns, for `readyctl explain`."""
        return (
            "Per route: max-age (or s-maxage) > 0, not no-store/private, a validator (ETag or\n"
            "Last-Modified), and 304 to a conditional GET. Authenticated answers must be\n"
            "no-store: http.security_headers judges that (modifier cache-not-no-store)."
        )

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per cacheable route."""
        s: Settings = ctx.settings()
        if s.paths is not None:
            paths = s.paths
        else:
            paths = ctx.api().need("cacheable", "public GET routes whose answers should be cached")
        client = ctx.http(timeout=10)
        for path in paths:
            try:
                yield self._route(ctx, client, path)
            except ProbeError as e:
                yield self.errored(path, e.reason, e.detail)

    def _route(self, ctx: Context, client: httpx.Client, path: str) -> Result:
        """Judge one route: its caching headers, then a conditional request."""
        r = fetch_answer(ctx, client, "GET", path)
        evidence: dict[str, object] = {"status": r.status, "headers": _headers(r)}
        if not 200 <= r.status < 300:
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"GET {path} (no session) answered {r.status}, not a public answer to judge; "
                "check api.cacheable",
                evidence=evidence,
            )
        cc = cache_directives(r.values("cache-control"))
        max_age = seconds(cc, "max-age")
        s_maxage = seconds(cc, "s-maxage")
        lifetime = max(max_age or 0, s_maxage or 0)
        etag = ",".join(r.values("etag")).strip()
        modified = ",".join(r.values("last-modified")).strip()
        missing: list[str] = []
        if not r.values("cache-control"):
            missing.append("no Cache-Control")
        elif lifetime <= 0:
            missing.append("no max-age (or s-maxage) above 0")
        if "no-store" in cc:
            missing.append("Cache-Control no-store")
        if "private" in cc:
            missing.append("Cache-Control private (shared caches may not keep it)")
        if not etag and not modified:
            missing.append("no validator (ETag or Last-Modified)")
            evidence["conditional"] = None
        else:
            header, value = ("If-None-Match", etag) if etag else ("If-Modified-Since", modified)
            again = fetch_answer(ctx, client, "GET", path, headers={header: value})
            evidence["conditional"] = {
                "sent": f"{header}: {clip(value, 100)}",
                "status": again.status,
                "bytes": len(again.body),
            }
            if again.status != 304:
                missing.append(f"{header} answered {again.status}, not 304")
        if missing:
            return self.failed(
                path,
                f"GET {path} is not cacheable: " + "; ".join(missing),
                measured=lifetime,
                unit=" s",
                evidence={**evidence, "missing": missing},
            )
        validator = "ETag" if etag else "Last-Modified"
        return self.passed(
            path,
            f"GET {path} is cacheable for {lifetime} s with {validator} and answers 304 "
            "when not modified",
            measured=lifetime,
            unit=" s",
            evidence=evidence,
        )
