"""http.security_headers: API responses and HTML pages carry the browser-hardening headers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from pydantic import Field, model_validator
from readyctl.checks.http._cachecontrol import is_no_store
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    Paths,
    ProbeError,
    auth_headers,
    clip,
    fetch_answer,
    list_url,
    login_known,
    optional_session,
)

from readyctl.apimap import ApiMap, RouteUnknown
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

Hit = Callable[[str, str], None]
Rule = Callable[[Fetched], str | None]


@dataclasses.dataclass(frozen=True)
class Modifier:
    """One row of the scoring table: what is wrong and how many points it costs."""

    key: str
    points: int
    status: str
    text: str


# The scoring table, in the spirit of Mozilla's HTTP Observatory: start at 100, apply each
# modifier at most once (the responses it applies to are listed as evidence), clamp to 0..100.
MODIFIERS: dict[str, Modifier] = {
    m.key: m
    for m in (
        Modifier("nosniff-missing", -5, "fail", "X-Content-Type-Options is not 'nosniff'"),
        Modifier("framing-missing", -20, "fail", "no frame-ancestors (CSP) and no X-Frame-Options"),
        Modifier("framing-weak", -10, "warn", "framing allowed broadly (ALLOW-FROM, *, scheme)"),
        Modifier("referrer-missing", -5, "fail", "no Referrer-Policy"),
        Modifier("referrer-unsafe", -5, "fail", "unsafe Referrer-Policy (unsafe-url, ...)"),
        Modifier("cache-not-no-store", -15, "fail", "authenticated response without no-store"),
        Modifier("cookie-no-secure", -20, "fail", "a cookie without Secure"),
        Modifier("cookie-no-httponly", -20, "fail", "a cookie without HttpOnly"),
        Modifier("cookie-no-samesite", -10, "fail", "a cookie without a valid SameSite"),
        Modifier("cookie-samesite-none", -5, "warn", "a cookie with SameSite=None"),
        Modifier("csp-missing", -25, "fail", "HTML page without Content-Security-Policy"),
        Modifier("csp-unsafe-script", -20, "fail", "CSP allows inline/any-origin scripts"),
        Modifier("csp-unsafe-eval", -10, "warn", "CSP allows 'unsafe-eval'"),
        Modifier("csp-object-src", -10, "fail", "CSP does not set object-src 'none'"),
    )
}

_SAFE_REFERRER = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "origin",
    "origin-when-cross-origin",
}
_UNSAFE_REFERRER = {"unsafe-url", "no-referrer-when-downgrade"}
_BROAD_SOURCES = {"*", "http:", "https:", "data:", "blob:", "filesystem:"}


def parse_csp(values: list[str]) -> dict[str, list[str]]:
    """Each directive as first set by any policy (simplified: browsers enforce every policy)."""
    out: dict[str, list[str]] = {}
    for value in values:
        for part in value.split(";"):
            tokens = part.strip().split()
            if tokens:
                out.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    return out


def csp_problems(values: list[str]) -> list[str]:
    """Modifier keys for the browser profile's CSP rules."""
    if not values:
        return ["csp-missing"]
    csp = parse_csp(values)
    problems = []
    script = csp.get("script-src", csp.get("default-src"))
    if script is None:
        problems.append("csp-unsafe-script")
    else:
        nonce_or_hash = any(
            s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in script
        )
        if ("'unsafe-inline'" in script and not nonce_or_hash) or _BROAD_SOURCES & set(script):
            problems.append("csp-unsafe-script")
        if "'unsafe-eval'" in script:
            problems.append("csp-unsafe-eval")
    obj = csp.get("object-src", csp.get("default-src"))
    if obj != ["'none'"]:
        problems.append("csp-object-src")
    return problems


def nosniff(resp: Fetched) -> str | None:
    """None when X-Content-Type-Options is exactly nosniff."""
    values = [v.strip().lower() for v in resp.values("x-content-type-options")]
    return None if values and all(v == "nosniff" for v in values) else "nosniff-missing"


def framing(resp: Fetched) -> str | None:
    """None when framing is restricted, else the modifier key."""
    ancestors = parse_csp(resp.values("content-security-policy")).get("frame-ancestors")
    if ancestors is not None:
        # an empty source list means 'none'
        return "framing-weak" if _BROAD_SOURCES & set(ancestors) else None
    xfo = [v.strip().upper() for v in resp.values("x-frame-options")]
    if not xfo:
        return "framing-missing"
    if all(v in ("DENY", "SAMEORIGIN") for v in xfo):
        return None
    return "framing-weak"


def referrer(resp: Fetched) -> str | None:
    """None for a privacy-preserving Referrer-Policy, else the modifier key."""
    values = [
        t.strip().lower() for v in resp.values("referrer-policy") for t in v.split(",") if t.strip()
    ]
    if not values:
        return "referrer-missing"
    # browsers use the last value they understand
    known = [v for v in values if v in _SAFE_REFERRER | _UNSAFE_REFERRER]
    if not known or known[-1] in _UNSAFE_REFERRER:
        return "referrer-unsafe"
    return None


def cookie_problems(set_cookie: str) -> tuple[str, list[str]]:
    """The cookie's name and its modifier keys (the value is never kept)."""
    parts = [p.strip() for p in set_cookie.split(";")]
    name = parts[0].split("=", 1)[0].strip() or "?"
    attrs: dict[str, str] = {}
    for p in parts[1:]:
        key, _, val = p.partition("=")
        attrs[key.strip().lower()] = val.strip().lower()
    problems = []
    if "secure" not in attrs:
        problems.append("cookie-no-secure")
    if "httponly" not in attrs:
        problems.append("cookie-no-httponly")
    samesite = attrs.get("samesite")
    if samesite not in ("strict", "lax", "none"):
        problems.append("cookie-no-samesite")
    elif samesite == "none":
        problems.append("cookie-samesite-none")
    return name, problems


class Settings(HttpSettings):
    """Settings of http.security_headers."""

    public_paths: Paths | None = Field(
        None,
        description="JSON endpoints fetched without a session; default: from the API map (the "
        "health probes, api.health)",
    )
    auth_paths: Paths | None = Field(
        None,
        description="fetched with the session (when there is one); must send no-store"
        "; default: from the API map (api.me and the first of api.lists)",
    )
    html_paths: Paths | None = Field(
        None,
        description="HTML pages (browser profile, CSP required), with the session if any"
        "; default: from the API map (the documentation UI paths among api.docs)",
    )
    warn_under: float = Field(90.0, ge=0, le=100, description="a score below this warns")
    fail_under: float = Field(70.0, ge=0, le=100, description="a score below this fails")

    @model_validator(mode="after")
    def _ordered(self) -> Settings:
        if self.fail_under > self.warn_under:
            raise ValueError(
                f"fail_under ({self.fail_under:g}) must not be above warn_under "
                f"({self.warn_under:g})"
            )
        return self


def auth_routes(api: ApiMap) -> tuple[str, ...]:
    """api.me and the first list (asked for one row): the routes answering a session."""
    paths = [api.me] if api.me else []
    if api.lists:
        paths.append(list_url(api.lists[0], 1))
    return tuple(paths)


def docs_ui_paths(docs: tuple[str, ...]) -> tuple[str, ...]:
    """The documentation UI pages among `docs` (not the JSON or YAML documents)."""
    out = []
    for path in docs:
        last = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
        document = last.endswith((".json", ".yaml", ".yml")) or any(
            w in last for w in ("json", "yaml", "openapi")
        )
        if not document and last != "api-docs":
            out.append(path)
    return tuple(out)


class SecurityHeaders(Check):
    """Observatory-style header audit of public, authenticated and HTML responses.

    Only routes the API map (or a setting) gives are fetched; a route the map lacks skips its
    part, naming the key to set. Settings (`checks: {http.security_headers: {...}}`):
    - `public_paths` (default: from the API map (the health probes, api.health)): JSON
      endpoints fetched without a session.
    - `auth_paths` (default: from the API map (api.me and the first of api.lists, one row)):
      fetched with the session when the map has a login; these must also send
      `Cache-Control: no-store`.
    - `html_paths` (default: from the API map (the documentation UI paths among api.docs,
      not the JSON documents)): HTML pages (browser profile, CSP required), fetched with the
      session when there is one.
    - `warn_under` (default 90), `fail_under` (default 70): score thresholds.
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.security_headers",
        title="Security headers are set",
        failure_title="Security headers are missing or weak",
        description=(
            "Headers such as nosniff, frame-ancestors, Referrer-Policy and no-store stop "
            "browsers from sniffing, framing, leaking or caching API data; HTML pages also need a "
            "strict CSP. See https://developer.mozilla.org/en-US/observatory/docs/tests_and_scoring."
        ),
        remediation=RemediationSpec(
            text="Add the headers in one middleware or at the proxy for every response; send "
            "no-store on authenticated responses and a strict CSP on HTML pages.",
            snippet=(
                "X-Content-Type-Options: nosniff\n"
                "X-Frame-Options: DENY\n"
                "Referrer-Policy: no-referrer\n"
                "Cache-Control: no-store            # authenticated responses\n"
                "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'  # HTML"
            ),
            link="https://cheatsheetseries.owasp.org/cheatsheets/HTTP_Headers_Cheat_Sheet.html",
        ),
        category=Category.HTTP,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("headers", "security"),
    )
    Settings = Settings

    @classmethod
    def explain_extra(cls) -> str:
        """The scoring table, for `readyctl explain`."""
        lines = [
            "Scoring (in the spirit of Mozilla's HTTP Observatory): start at 100, subtract each",
            "modifier once (listing the responses it applies to), clamp to 0..100.",
            "Score >= warn_under (90) passes, >= fail_under (70) warns, below fails.",
            "",
            f"  {'modifier':<22}{'points':>7}  {'status':<6} meaning",
        ]
        for m in MODIFIERS.values():
            lines.append(f"  {m.key:<22}{m.points:>7}  {m.status:<6} {m.text}")
        lines += [
            "",
            "API profile (JSON): nosniff, framing, Referrer-Policy; no-store when authenticated;",
            "cookies Secure+HttpOnly+SameSite. A CSP is not required on JSON responses.",
            "Browser profile (HTML pages): the same plus a CSP without inline or any-origin",
            "scripts and with object-src 'none' (directly or through default-src).",
        ]
        return "\n".join(lines)

    def run(self, ctx: Context) -> Iterator[Result]:
        """Fetch each configured response, grade each header, then the overall score."""
        s: Settings = ctx.settings()
        api = ctx.api()
        public = s.public_paths if s.public_paths is not None else tuple(api.public_paths())
        authed = s.auth_paths if s.auth_paths is not None else auth_routes(api)
        html = s.html_paths if s.html_paths is not None else docs_ui_paths(api.docs)
        warn_under = s.warn_under
        fail_under = s.fail_under
        session, no_session = optional_session(ctx)
        if not public and not html and not (authed and session is not None):
            raise RouteUnknown(
                "health.live",
                ctx.env_name,
                "no route to read headers from: set api.health, api.me, api.lists or api.docs",
            )
        client = ctx.http(timeout=10)
        hits: dict[str, list[str]] = {}
        results: list[Result] = []
        json_answers: list[Fetched] = []
        authed_ok: list[Fetched] = []
        pages: list[Fetched] = []

        def hit(key: str, where: str) -> None:
            hits.setdefault(key, []).append(where)

        try:
            for path in public:
                r = fetch_answer(ctx, client, "GET", path)
                if r.status >= 500 or r.status == 404:
                    yield self.errored(
                        path, ErrorReason.INCONCLUSIVE, f"GET {path} answered {r.status}"
                    )
                    continue
                (pages if r.is_html else json_answers).append(r)
            cache_subject = "Cache-Control (authenticated)"
            if session is None and login_known(ctx):
                results.append(self.blocked(cache_subject, no_session))
            elif session is None:
                results.append(self.skipped(cache_subject, no_session))
            elif not authed:
                unknown = RouteUnknown("me", ctx.env_name, "an authenticated route")
                results.append(self.skipped(cache_subject, unknown.message))
            else:
                for path in authed:
                    r = fetch_answer(ctx, client, "GET", path, headers=auth_headers(session))
                    if r.status in (401, 403, 404) or r.status >= 500:
                        results.append(
                            self.errored(
                                cache_subject,
                                ErrorReason.INCONCLUSIVE,
                                f"GET {path} with the session answered {r.status}, so it is "
                                "not an authenticated response",
                            )
                        )
                        continue
                    (pages if r.is_html else json_answers).append(r)
                    authed_ok.append(r)
                if authed_ok:
                    results.append(self._cache(cache_subject, authed_ok, hit))
            html_results: list[Result] = []
            for path in html:
                r = fetch_answer(ctx, client, "GET", path, headers=auth_headers(session))
                subject = f"CSP on {path}"
                if r.status >= 400 or not r.is_html:
                    why = (
                        f"GET {path} answered {r.status}"
                        if r.status >= 400
                        else f"GET {path} is not HTML ({clip(r.content_type, 40) or 'no type'})"
                    )
                    extra = f" ({no_session})" if r.status in (401, 403) and no_session else ""
                    html_results.append(self.skipped(subject, why + extra))
                    continue
                pages.append(r)
                html_results.append(self._csp(subject, r, hit))
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)
            return

        everything = json_answers + pages
        if not everything:
            yield self.errored("*", ErrorReason.INCONCLUSIVE, "no probed path gave a usable answer")
            return
        yield self._header(
            "X-Content-Type-Options", ("x-content-type-options",), everything, nosniff, hit
        )
        yield self._header(
            "frame-ancestors / X-Frame-Options",
            ("content-security-policy", "x-frame-options"),
            everything,
            framing,
            hit,
        )
        yield self._header("Referrer-Policy", ("referrer-policy",), everything, referrer, hit)
        yield from results
        yield from self._cookies(everything, hit)
        yield from html_results

        score = 100 + sum(MODIFIERS[k].points for k in hits)
        score = max(0, min(100, score))
        applied = {k: {"points": MODIFIERS[k].points, "where": v[:6]} for k, v in hits.items()}
        kind = (
            self.passed
            if score >= warn_under
            else self.warned
            if score >= fail_under
            else self.failed
        )
        worst = ", ".join(sorted(hits, key=lambda k: MODIFIERS[k].points)[:4]) or "none"
        yield kind(
            "score",
            f"security header score is {score}/100 over {len(everything)} responses "
            f"(modifiers: {worst})",
            measured=score,
            threshold=warn_under if score >= fail_under else fail_under,
            unit="/100",
            score=score / 100,
            evidence={"modifiers": applied, "responses": [r.label for r in everything]},
        )

    def _header(
        self,
        subject: str,
        names: tuple[str, ...],
        responses: list[Fetched],
        rule: Rule,
        hit: Hit,
    ) -> Result:
        """Apply one per-response rule; the worst finding sets the status."""
        bad: dict[str, list[str]] = {}
        seen: dict[str, dict[str, str]] = {}
        for r in responses:
            key = rule(r)
            seen[r.label] = {n: clip(", ".join(r.values(n)), 200) for n in names if r.values(n)}
            if key:
                bad.setdefault(key, []).append(r.label)
                hit(key, r.label)
        evidence = {"values": seen}
        if not bad:
            return self.passed(
                subject,
                f"{subject} is set correctly on all {len(responses)} responses",
                evidence=evidence,
            )
        keys = sorted(bad, key=lambda k: MODIFIERS[k].points)
        worst = MODIFIERS[keys[0]]
        where = bad[worst.key]
        make = self.failed if worst.status == "fail" else self.warned
        return make(
            subject,
            f"{worst.text} on {len(where)} of {len(responses)} responses (e.g. {where[0]})",
            measured=worst.points,
            evidence={**evidence, "modifiers": {k: v for k, v in bad.items()}},
        )

    def _cache(self, subject: str, responses: list[Fetched], hit: Hit) -> Result:
        """Authenticated responses must not be stored by any cache.

        This check alone owns the rule (http.cache_headers judges the cacheable public GETs
        and leaves authenticated answers to it); both parse Cache-Control with _cachecontrol.
        """
        bad = []
        values = {}
        for r in responses:
            cc = ",".join(r.values("cache-control"))
            values[r.label] = clip(cc, 200)
            if not is_no_store(r.values("cache-control")):
                bad.append(r.label)
                hit("cache-not-no-store", r.label)
        if bad:
            return self.failed(
                subject,
                f"{bad[0]} (authenticated) has Cache-Control {values[bad[0]] or 'absent'!r}, "
                "not no-store",
                evidence={"values": values},
            )
        return self.passed(
            subject,
            f"authenticated responses send Cache-Control: no-store ({len(responses)} checked)",
            evidence={"values": values},
        )

    def _cookies(self, responses: list[Fetched], hit: Hit) -> Iterator[Result]:
        """Every Set-Cookie seen has Secure, HttpOnly and SameSite."""
        found: dict[str, list[str]] = {}
        for r in responses:
            for raw in r.values("set-cookie"):
                name, problems = cookie_problems(raw)
                found[clip(name, 60)] = problems
                for k in problems:
                    hit(k, f"{r.label} cookie {clip(name, 60)}")
        if not found:
            yield self.skipped("Set-Cookie", "no probed response sets a cookie")
            return
        bad = {n: p for n, p in found.items() if p}
        if not bad:
            yield self.passed(
                "Set-Cookie", f"{len(found)} cookies are Secure, HttpOnly and SameSite"
            )
            return
        keys = sorted({k for p in bad.values() for k in p}, key=lambda k: MODIFIERS[k].points)
        worst = MODIFIERS[keys[0]]
        name = next(n for n, p in bad.items() if worst.key in p)
        make = self.failed if worst.status == "fail" else self.warned
        yield make(
            "Set-Cookie",
            f"cookie {name!r}: {worst.text.removeprefix('a cookie ')}",
            evidence={"cookies": bad},
        )

    def _csp(self, subject: str, r: Fetched, hit: Hit) -> Result:
        """The browser profile's CSP rules for one HTML page."""
        values = r.values("content-security-policy")
        problems = csp_problems(values)
        for k in problems:
            hit(k, r.label)
        evidence = {"csp": clip("; ".join(values), 300) if values else None}
        if not problems:
            return self.passed(subject, f"{r.label} has a strict CSP", evidence=evidence)
        keys = sorted(problems, key=lambda k: MODIFIERS[k].points)
        worst = MODIFIERS[keys[0]]
        make = self.failed if any(MODIFIERS[k].status == "fail" for k in keys) else self.warned
        return make(
            subject,
            f"{r.label}: {worst.text}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""),
            evidence={**evidence, "problems": keys},
        )
