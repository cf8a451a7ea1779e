"""tls.hsts: HTTPS responses carry Strict-Transport-Security with max-age of 180 days or more."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
from pydantic import Field
from readyctl.checks.tls._probe import endpoint

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

MIN_MAX_AGE_S = 15_552_000  # 180 days
FAIL_BELOW_S = 86_400  # 1 day
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def parse_hsts(value: str) -> tuple[dict[str, str | None], str]:
    """RFC 6797 directives of one header value (lower-case names), or why it is invalid."""
    directives: dict[str, str | None] = {}
    for raw in value.split(";"):
        part = raw.strip()
        if not part:
            continue
        name, sep, val = part.partition("=")
        name, val = name.strip().lower(), val.strip()
        if not _TOKEN.match(name):
            return {}, "a directive is not a token"
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        if name in directives:
            return {}, f"directive {name} appears twice"
        directives[name] = val if sep else None
    if "max-age" not in directives:
        return {}, "no max-age directive"
    if not (directives["max-age"] or "").isdigit():
        return {}, "max-age is not a number of seconds"
    return directives, ""


def span(seconds: int) -> str:
    """Seconds in words: days from one day up, else seconds."""
    if seconds >= 86400:
        days = round(seconds / 86400, 1)
        return f"{days:g} day" + ("" if days == 1 else "s")
    return f"{seconds} s"


class Settings(CheckSettings):
    """Settings of tls.hsts."""

    paths: tuple[str, ...] | None = Field(
        None,
        description='paths on the HTTPS base URL whose answers are judged (default: "/" and '
        "the public paths of the API map, api.health)",
    )
    min_max_age_s: int = Field(
        MIN_MAX_AGE_S, ge=0, description="max-age (seconds) from which HSTS passes (180 days)"
    )
    fail_below_s: int = Field(
        FAIL_BELOW_S, ge=0, description="max-age (seconds) under which HSTS fails (one day)"
    )
    timeout_s: float = Field(5.0, gt=0, description="seconds per request")


class TlsHsts(Check):
    """Strict-Transport-Security on HTTPS responses, max-age at least 180 days.

    Per path (setting `paths`, default "/" and the API map's public paths, api.health): no
    header, an invalid header (browsers ignore it) or max-age under `fail_below_s` (default
    86400, one day; max-age=0 switches HSTS off) fails; max-age from one day up to
    `min_max_age_s` (default 15552000, 180 days) warns; 180 days or more passes.
    includeSubDomains and preload are reported in the summary and the
    evidence, not required. Only the first header field counts (RFC 6797 section 8.1).
    """

    meta = CheckMeta(
        id="tls.hsts",
        title="HSTS is sent with a long max-age",
        failure_title="HSTS is missing or too short",
        description=(
            "Without Strict-Transport-Security a browser's first request can go out over plain "
            "HTTP and be stripped to HTTP by an attacker on the network. See "
            "https://www.rfc-editor.org/rfc/rfc6797."
        ),
        remediation=RemediationSpec(
            text="Send Strict-Transport-Security with max-age of at least 15552000 (180 days; "
            "a year is usual) on every HTTPS response, with includeSubDomains once every "
            "subdomain serves HTTPS.",
            snippet='add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" '
            "always;",
            link="https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Strict-Transport-Security",
        ),
        category=Category.TRANSPORT,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("tls", "headers"),
        refs=("5",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One GET per path on the HTTPS base URL; the body is never read."""
        ep = endpoint(ctx)
        if isinstance(ep, str):
            yield self.skipped("*", ep)
            return
        s: Settings = ctx.settings()
        paths = list(s.paths) if s.paths is not None else ["/", *ctx.api().public_paths()]
        minimum = s.min_max_age_s
        floor = s.fail_below_s
        wait = s.timeout_s
        client = ctx.http(timeout=wait)
        for path in paths:
            ctx.check_deadline()
            try:
                with client.stream("GET", path, timeout=ctx.timeout(wait)) as resp:
                    values = resp.headers.get_list("strict-transport-security")
                    status = resp.status_code
            except httpx.TimeoutException:
                yield self.errored(path, ErrorReason.TIMEOUT, f"{path} did not answer in time")
                continue
            except (httpx.RemoteProtocolError, httpx.DecodingError) as e:
                yield self.failed(
                    path,
                    f"{path}: the HTTPS answer is not valid HTTP ({ctx.redactor.clip(e, 120)})",
                )
                continue
            except httpx.HTTPError as e:
                detail = ctx.redactor.clip(e, 160) or type(e).__name__
                yield self.errored(path, ErrorReason.CONNECTIVITY, f"{path}: {detail}")
                continue
            yield self._judge(path, status, values, minimum, floor)

    def _judge(self, path: str, status: int, values: list[str], minimum: int, floor: int) -> Result:
        """Judge the first Strict-Transport-Security field of one response."""
        if not values:
            return self.failed(
                path,
                f"{path}: no Strict-Transport-Security header on the HTTPS response ({status})",
                evidence={"status": status},
            )
        raw = values[0]
        evidence: dict[str, object] = {"status": status, "header": clip(raw, 200)}
        if len(values) > 1:
            evidence["fields"] = len(values)
        directives, problem = parse_hsts(raw)
        if problem:
            return self.failed(
                path,
                f"{path}: Strict-Transport-Security is invalid ({problem}), so browsers ignore it",
                evidence=evidence,
            )
        age = int(directives["max-age"] or 0)
        subdomains = "includesubdomains" in directives
        preload = "preload" in directives
        evidence.update(max_age=age, include_subdomains=subdomains, preload=preload)
        extras = "".join(
            [", includeSubDomains" if subdomains else "", ", preload" if preload else ""]
        )
        told = f"{path}: Strict-Transport-Security max-age={age} ({span(age)}{extras})"
        kw = {"measured": age, "threshold": minimum, "unit": " s", "evidence": evidence}
        if age == 0:
            return self.failed(path, f"{told} switches HSTS off", **kw)
        if age < floor:
            return self.failed(path, f"{told} is below {span(floor)}", **kw)
        if age < minimum:
            return self.warned(path, f"{told} is below {span(minimum)}", **kw)
        return self.passed(path, told, **kw)
