"""tls.https_redirect: plain HTTP redirects permanently to the same path on HTTPS, or is closed."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx
from pydantic import Field
from readyctl.checks.tls._probe import excerpt, refused

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
from readyctl.result import ErrorReason, Result

# added to the default paths: a redirect must keep the query string as well as the path
PROBE_QUERY = "from=readyctl&check=redirect"
PERMANENT = (301, 308)
TEMPORARY = (302, 303, 307)


def default_paths(ctx: Context) -> list[str]:
    """ "/" and each public path of the API map (else "/" again) with the probe's query."""
    public = ctx.api().public_paths() or ["/"]
    return ["/", *(f"{p}?{PROBE_QUERY}" for p in public)]


class Settings(CheckSettings):
    """Settings of tls.https_redirect."""

    paths: tuple[str, ...] | None = Field(
        None,
        description='paths (with query) requested on the plain-HTTP URL (default: "/" and the '
        'public paths of the API map, api.health, with a query string; "/" with one when the '
        "map has none)",
    )
    timeout_s: float = Field(5.0, gt=0, description="seconds per request")


class TlsHttpsRedirect(Check):
    """GET on the environment's http_url: 301/308 to the same path and query on HTTPS, or closed.

    Per path: 301/308 to https with the same path and query on the API's host passes; a
    temporary redirect (302/303/307), a redirect that drops the path or changes the host, or
    426 Upgrade Required warns; any other answer over plain HTTP, or a redirect to a non-https
    URL, fails. A refused connection (or a connect timeout: filtered) passes once for the whole
    port. Redirects are never followed. Settings: `paths` (default "/" and the API map's
    public paths, api.health, with a query string; "/" with one when the map has none),
    `timeout_s` (5).
    """

    meta = CheckMeta(
        id="tls.https_redirect",
        title="Plain HTTP redirects to HTTPS",
        failure_title="API is served over plain HTTP",
        description=(
            "Anything answered over plain HTTP can be read and altered on the way, and a client "
            "configured with an http:// URL keeps sending credentials in clear text. See "
            "https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html."
        ),
        remediation=RemediationSpec(
            text="Answer every plain-HTTP request with a 301 or 308 to the same path and query "
            "on https (or close port 80), and send HSTS on the HTTPS side.",
            snippet="server {\n  listen 80;\n  return 308 https://$host$request_uri;\n}",
            link="https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html",
        ),
        category=Category.TRANSPORT,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("tls", "http"),
        refs=("5",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One GET per configured path on the plain-HTTP URL, without following redirects."""
        env = ctx.environment
        http_url = env.http_url
        if not http_url:
            yield self.skipped("*", "no http_url configured for this environment")
            return
        if urlsplit(http_url).scheme != "http":
            yield self.errored(http_url, ErrorReason.CONFIG, "http_url must be a plain http:// URL")
            return
        s: Settings = ctx.settings()
        paths = list(s.paths) if s.paths is not None else default_paths(ctx)
        wait = s.timeout_s
        client = ctx.http(timeout=wait)
        for path in paths:
            ctx.check_deadline()
            url = http_url + (path if path.startswith("/") else "/" + path)
            try:
                with client.stream("GET", url, timeout=ctx.timeout(wait)) as resp:
                    status = resp.status_code
                    location = resp.headers.get("location")
                    body = ""
                    if not 300 <= status < 400:
                        try:
                            body = excerpt(resp.iter_bytes())
                        except httpx.HTTPError:
                            body = ""
            except httpx.ConnectTimeout:
                yield self.passed(
                    http_url,
                    f"{http_url} did not accept a connection within {ctx.timeout(wait):.3g} s "
                    "(filtered): nothing is served over plain HTTP",
                )
                return
            except httpx.ConnectError as e:
                if refused(e):
                    yield self.passed(
                        http_url,
                        f"{http_url} refuses connections (port closed): nothing is served over "
                        "plain HTTP",
                    )
                    return
                yield self.errored(
                    path,
                    ErrorReason.CONNECTIVITY,
                    f"{url}: {ctx.redactor.clip(e, 160) or type(e).__name__}",
                )
                continue
            except httpx.TimeoutException:
                yield self.errored(path, ErrorReason.TIMEOUT, f"{url} did not answer in time")
                continue
            except httpx.HTTPError as e:
                detail = ctx.redactor.clip(e, 160) or type(e).__name__
                yield self.errored(
                    path, ErrorReason.CONNECTIVITY, f"{url} gave no usable HTTP answer ({detail})"
                )
                continue
            yield self._judge(ctx, path, url, status, location, body)

    def _judge(
        self, ctx: Context, path: str, url: str, status: int, location: str | None, body: str
    ) -> Result:
        """Classify one plain-HTTP answer."""
        evidence: dict[str, object] = {"url": url, "status": status}
        if status in PERMANENT or status in TEMPORARY:
            if not location:
                return self.failed(
                    path, f"{path}: answered {status} without a Location header", evidence=evidence
                )
            target = urljoin(url, location.strip())
            evidence["location"] = ctx.redactor.clip(target, 300)
            parts = urlsplit(target)
            if parts.scheme != "https":
                return self.failed(
                    path,
                    f"{path}: answered {status} to {ctx.redactor.clip(target, 120)}, "
                    "which is not HTTPS",
                    evidence=evidence,
                )
            problems = []
            if status in TEMPORARY:
                problems.append(f"a temporary {status} (clients do not remember it)")
            if not self._same_path(ctx, path, parts.path, parts.query):
                problems.append("a different path or query")
            if not self._same_host(ctx, parts):
                problems.append(f"another host ({ctx.redactor.clip(parts.netloc, 80)})")
            if problems:
                return self.warned(
                    path,
                    f"{path}: redirects to HTTPS, but with {' and '.join(problems)} "
                    f"({status} to {ctx.redactor.clip(target, 120)})",
                    measured=status,
                    evidence=evidence,
                )
            return self.passed(
                path,
                f"{path}: answered {status} to the same path on HTTPS",
                measured=status,
                evidence=evidence,
            )
        if body:
            evidence["body_excerpt"] = body
        if status == 426:
            return self.warned(
                path,
                f"{path}: refuses plain HTTP with 426 Upgrade Required but does not redirect",
                measured=status,
                evidence=evidence,
            )
        return self.failed(
            path,
            f"{path}: answered {status} over plain HTTP instead of redirecting to HTTPS",
            measured=status,
            evidence=evidence,
        )

    @staticmethod
    def _same_path(ctx: Context, path: str, got_path: str, got_query: str) -> bool:
        """The redirect keeps the requested path and query (under http_url's or base_url's)."""
        env = ctx.environment
        wanted = urlsplit((env.http_url or "") + path)
        paths = {wanted.path or "/"}
        if env.base_url:
            paths.add(urlsplit(env.base_url + path).path or "/")
        return (got_path or "/") in paths and got_query == wanted.query

    @staticmethod
    def _same_host(ctx: Context, parts: SplitResult) -> bool:
        """The redirect goes to the API's HTTPS host (base_url) or the same host name on 443."""
        env = ctx.environment
        got_host = parts.hostname
        try:
            got_port = parts.port or 443
        except ValueError:
            return False
        if env.base_url:
            base = urlsplit(env.base_url)
            if (got_host, got_port) == (base.hostname, base.port or 443):
                return True
        return got_host == urlsplit(env.http_url or "").hostname and got_port == 443
