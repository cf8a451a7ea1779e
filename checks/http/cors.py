"""http.cors: only allow-listed origins get CORS access; never any origin with credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import Field
from readyctl.checks.health._http import HttpMethod
from readyctl.checks.http._fetch import Fetched, HttpSettings, ProbeError, clip, fetch, origin_of

from readyctl.apimap import RouteUnknown
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

FOREIGN = "https://evil.readyctl.invalid"


def grant(resp: Fetched, origin: str) -> tuple[str | None, bool]:
    """(what Access-Control-Allow-Origin grants to `origin`, whether credentials are allowed)."""
    acao = [v.strip() for v in resp.values("access-control-allow-origin")]
    creds = any(
        v.strip().lower() == "true" for v in resp.values("access-control-allow-credentials")
    )
    if not acao:
        return None, creds
    if "*" in acao:
        return "*", creds
    if origin in acao or origin.lower() in (a.lower() for a in acao):
        return "reflected", creds
    return "other", creds


def probed_route(ctx: Context) -> str:
    """api.me, else the first of api.lists; RouteUnknown("me") when the map has neither."""
    api = ctx.api()
    if api.me:
        return api.me
    if api.lists:
        return api.lists[0].path
    raise RouteUnknown("me", ctx.env_name, "a route to send CORS requests to; api.lists works too")


class Settings(HttpSettings):
    """Settings of http.cors."""

    path: str | None = Field(
        None,
        description="the route probed; default: from the API map (api.me, else the first of "
        "api.lists)",
    )
    method: HttpMethod = Field("GET", description="the method asked for in the preflight")
    request_headers: str = Field(
        "authorization,content-type",
        description="headers asked for in the preflight (empty: none)",
    )
    allowed_origin: str | None = Field(
        None,
        description="an origin that must be accepted, the positive control; default: from the "
        "API map (api.cors_origin), else the origin of WEB_APP_URL in the target's env file",
    )
    foreign_origins: tuple[str, ...] | None = Field(
        None,
        description=f"origins that must not be accepted (default: {FOREIGN}, null and a "
        "look-alike of the allowed origin)",
    )
    enabled: bool = Field(
        True, description="false when the API serves no browser clients (no CORS at all)"
    )


class Cors(Check):
    """Preflight and simple requests from foreign origins get no Access-Control-Allow-Origin.

    Settings (`checks: {http.cors: {...}}`):
    - `path` (default: from the API map (api.me, else the first of api.lists)), `method`
      (default "GET"): the route probed.
    - `request_headers` (default "authorization,content-type"): asked for in the preflight.
    - `allowed_origin`: an origin that must be accepted (the positive control); default from
      the API map (api.cors_origin), else the origin of WEB_APP_URL in the target's env file.
    - `foreign_origins` (default ["https://evil.readyctl.invalid", "null"] plus a look-alike
      of the allowed origin): origins that must not be accepted.
    - `enabled` (default true): false when the API serves no browser clients (no CORS at all).
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.cors",
        title="CORS only admits allow-listed origins",
        failure_title="CORS admits arbitrary origins",
        description=(
            "A CORS policy that reflects any Origin lets every web page read API responses in "
            "its visitors' browsers, and with credentials act as them. See "
            "https://portswigger.net/web-security/cors."
        ),
        remediation=RemediationSpec(
            text="Allow an explicit list of origins (the web app's); never reflect the Origin "
            "header or combine a wildcard with credentials.",
            snippet="app.add_middleware(CORSMiddleware,\n"
            '    allow_origins=["https://app.example.org"], allow_credentials=True)',
            link="https://developer.mozilla.org/en-US/docs/Web/HTTP/CORS",
        ),
        category=Category.HTTP,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("security", "cors"),
    )
    Settings = Settings

    def _allowed_origin(self, ctx: Context) -> str | None:
        """The configured allowed origin, else the map's api.cors_origin, else WEB_APP_URL's
        origin from the env file."""
        s: Settings = ctx.settings()
        if s.allowed_origin:
            return origin_of(s.allowed_origin) or s.allowed_origin
        mapped = ctx.api().cors_origin
        if mapped:
            return origin_of(mapped) or mapped
        try:
            values = ctx.env_source().values
        except Exception:
            values = {}
        for name in ("WEB_APP_URL", "CORS_ORIGINS"):
            raw = (values.get(name) or "").split(",")[0]
            origin = origin_of(raw) if raw else None
            if origin:
                return origin
        return None

    def run(self, ctx: Context) -> Iterator[Result]:
        """Positive control first, then foreign preflights and simple GETs."""
        s: Settings = ctx.settings()
        path = s.path or probed_route(ctx)
        method = s.method
        req_headers = s.request_headers
        enabled = s.enabled
        allowed = self._allowed_origin(ctx)
        if s.foreign_origins is not None:
            foreign = list(s.foreign_origins)
        else:
            foreign = [FOREIGN, "null"]
            if allowed and allowed.startswith("http"):
                foreign.append(allowed + ".readyctl.invalid")
        client = ctx.http(timeout=10)

        def preflight(origin: str) -> Fetched:
            headers = {"Origin": origin, "Access-Control-Request-Method": method}
            if req_headers:
                headers["Access-Control-Request-Headers"] = req_headers
            return fetch(ctx, client, "OPTIONS", path, headers=headers, cap=64_000)

        def simple(origin: str) -> Fetched:
            return fetch(ctx, client, "GET", path, headers={"Origin": origin}, cap=64_000)

        control_subject = "allowed origin"
        try:
            control_ok = False
            if not enabled:
                control = self.skipped(control_subject, "CORS is off for this API (enabled: false)")
            elif not allowed:
                # without a positive control the foreign probes still tell whether arbitrary
                # origins are admitted (the risk); only the allow side stays unverified
                control = self.skipped(
                    control_subject,
                    f"no allowed origin known: set environments.{ctx.env_name}.api.cors_origin "
                    "(or checks.http.cors.allowed_origin, or WEB_APP_URL in the env file)",
                )
            else:
                r = preflight(allowed)
                granted, _ = grant(r, allowed)
                if granted in ("reflected", "*"):
                    control_ok = True
                    control = self.passed(
                        control_subject,
                        f"preflight from allowed origin {allowed} is accepted ({r.status})",
                    )
                else:
                    control = self.errored(
                        control_subject,
                        ErrorReason.INCONCLUSIVE,
                        f"preflight from the allowed origin {allowed} got no "
                        f"Access-Control-Allow-Origin ({r.status}); set allowed_origin, or "
                        "enabled: false if the API serves no browsers",
                    )
            yield control
            controlled = control_ok or not enabled or not allowed
            note = "" if allowed or not enabled else " (no allowed origin known to compare with)"
            yield self._probe("preflight", path, foreign, preflight, controlled, note)
            yield self._probe("simple GET", path, foreign, simple, controlled, note)
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)

    def _probe(
        self,
        kind: str,
        path: str,
        origins: list[str],
        send: Callable[[str], Fetched],
        controlled: bool,
        note: str = "",
    ) -> Result:
        """Send one kind of request from every foreign origin; the worst grant decides."""
        subject = f"{kind} from a foreign origin"
        seen: dict[str, dict[str, object]] = {}
        worst: tuple[int, str, str, bool] | None = None
        rank = {"reflected": 3, "other": 1, "*": 2}
        for origin in origins:
            r = send(origin)
            granted, creds = grant(r, origin)
            seen[origin] = {
                "status": r.status,
                "access-control-allow-origin": clip(
                    ", ".join(r.values("access-control-allow-origin")), 120
                )
                or None,
                "access-control-allow-credentials": creds,
            }
            if granted is None:
                continue
            score = rank[granted] + (10 if creds else 0)
            if worst is None or score > worst[0]:
                worst = (score, origin, granted, creds)
        evidence = {"path": path, "origins": seen}
        if worst is None:
            if not controlled:
                return self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"foreign origins got no Access-Control-Allow-Origin on {path}, but the "
                    "allowed origin was not accepted either",
                    evidence=evidence,
                )
            return self.passed(
                subject,
                f"{kind} on {path} from {len(origins)} foreign origins gets no "
                f"Access-Control-Allow-Origin{note}",
                evidence=evidence,
            )
        _, origin, granted, creds = worst
        if granted == "reflected" and creds:
            return self.failed(
                subject,
                f"{kind} on {path} reflects any origin ({origin}) WITH credentials: any web "
                "page can act as a signed-in user",
                score=0.0,
                evidence={**evidence, "risk": "critical"},
            )
        if granted == "*" and creds:
            return self.failed(
                subject,
                f"{kind} on {path} answers Access-Control-Allow-Origin: * with "
                "Access-Control-Allow-Credentials: true",
                evidence=evidence,
            )
        if granted == "reflected":
            return self.failed(
                subject,
                f"{kind} on {path} reflects the foreign origin {origin} in "
                "Access-Control-Allow-Origin",
                evidence=evidence,
            )
        if granted == "*":
            return self.warned(
                subject,
                f"{kind} on {path} answers Access-Control-Allow-Origin: * (no credentials); "
                "fine for a public API only",
                evidence=evidence,
            )
        if not controlled:
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"{kind} on {path} names another origin, and the allowed origin was not accepted",
                evidence=evidence,
            )
        return self.passed(
            subject,
            f"{kind} on {path} from foreign origins only names other (allowed) origins{note}",
            evidence=evidence,
        )
