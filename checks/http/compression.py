"""http.compression: large JSON responses are compressed when the client accepts it."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.http._fetch import (
    HttpSettings,
    Paths,
    ProbeError,
    clip,
    fetch_answer,
    list_url,
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
from readyctl.httpread import DECODED_ENCODINGS
from readyctl.result import ErrorReason, Result

LARGE_PAGE = 100  # rows asked of a list: large enough to deserve compression


class Settings(HttpSettings):
    """Settings of http.compression."""

    paths: Paths | None = Field(
        None,
        description="JSON endpoints (fetched with the session) with large responses; default: "
        "from the API map (the first of api.lists, asked for a page of 100 rows)",
    )
    min_bytes: int = Field(1024, ge=0, description="responses this large must be compressed")
    accept_encoding: str = Field(
        "gzip, br", min_length=1, description="the Accept-Encoding header sent"
    )


class Compression(Check):
    """GET a large JSON response with Accept-Encoding: gzip, br; expect Content-Encoding.

    Settings (`checks: {http.compression: {...}}`):
    - `paths` (default: from the API map (the first of api.lists, asked for a page of 100 rows
      with its own size parameter)): JSON endpoints (fetched with the session) whose response
      is larger than `min_bytes`; the demo's test account has 150 sessions, so a 100-row page
      is about 35 KB.
    - `min_bytes` (default 1024): responses at least this large must be compressed.
    - `accept_encoding` (default "gzip, br").
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.compression",
        title="Large responses are compressed",
        failure_title="Large responses are not compressed",
        description=(
            "JSON compresses five to ten times; sending it raw wastes bandwidth and makes "
            "mobile clients slow. See "
            "https://developer.mozilla.org/en-US/docs/Web/HTTP/Compression."
        ),
        remediation=RemediationSpec(
            text="Enable gzip or brotli for JSON above about 1 KB in the app or the proxy.",
            snippet="app.add_middleware(GZipMiddleware, minimum_size=1000)\n"
            "# nginx: gzip on; gzip_types application/json; gzip_min_length 1000;",
            link="https://developer.mozilla.org/en-US/docs/Web/HTTP/Compression",
        ),
        category=Category.HTTP,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("payloads", "performance", "seed"),
        refs=("13",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per configured path."""
        s: Settings = ctx.settings()
        if s.paths is not None:
            paths = s.paths
        else:
            first = ctx.api().need("lists", "a JSON list to ask for a large page")[0]
            paths = (list_url(first, LARGE_PAGE),)
        min_bytes = s.min_bytes
        accept = s.accept_encoding
        client = ctx.authed_http(timeout=10)
        for path in paths:
            try:
                r = fetch_answer(ctx, client, "GET", path, headers={"Accept-Encoding": accept})
            except ProbeError as e:
                yield self.errored(path, e.reason, e.detail)
                continue
            encoding = ",".join(r.values("content-encoding")).strip().lower()
            evidence = {
                "status": r.status,
                "content_type": clip(r.content_type, 80),
                "content_encoding": clip(encoding, 40) or None,
                "wire_bytes": r.wire_bytes,
                "vary": clip(",".join(r.values("vary")), 80) or None,
            }
            if not 200 <= r.status < 300:
                yield self.errored(
                    path,
                    ErrorReason.INCONCLUSIVE,
                    f"GET {path} answered {r.status}, not a response to measure",
                    evidence=evidence,
                )
                continue
            compressed = encoding not in ("", "identity")
            if r.truncated and compressed:
                # a compressed body over the cap is evidence (a decompression bomb, an unbounded
                # list), never a pass: there is no size or ratio to measure
                yield self.failed(
                    path,
                    f"GET {path} answered {r.status}, but its {r.over}",
                    measured=len(r.body),
                    unit=" bytes",
                    evidence={**evidence, "body_limit_bytes": len(r.body)},
                )
                continue
            size = len(r.body) if (not compressed or encoding in DECODED_ENCODINGS) else None
            evidence["uncompressed_bytes"] = size
            if compressed:
                if size is None:
                    yield self.passed(
                        path,
                        f"GET {path} is compressed with {clip(encoding, 20)} "
                        f"({r.wire_bytes} bytes on the wire)",
                        evidence=evidence,
                    )
                    continue
                ratio = round(size / max(1, r.wire_bytes), 1)
                yield self.passed(
                    path,
                    f"GET {path} is compressed with {clip(encoding, 20)}: {size} -> "
                    f"{r.wire_bytes} bytes ({ratio}x)",
                    measured=ratio,
                    unit="x",
                    evidence=evidence,
                )
                continue
            # positive control: the response must be large enough to deserve compression
            if size is not None and size < min_bytes:
                yield self.errored(
                    path,
                    ErrorReason.INCONCLUSIVE,
                    f"GET {path} is only {size} bytes (under {min_bytes}); give a list with "
                    "more rows (api.lists) or a larger response in checks.http.compression.paths",
                    evidence=evidence,
                )
                continue
            yield self.failed(
                path,
                f"GET {path} sends {'over ' if r.truncated else ''}{size} bytes of "
                f"{clip(r.content_type, 40) or 'data'} "
                f"uncompressed although the client accepts {accept}",
                measured=size,
                threshold=min_bytes,
                unit=" bytes",
                evidence=evidence,
            )
