"""http.banner: responses do not disclose the server stack or its version."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.http._fetch import Fetched, HttpSettings, Paths, ProbeError, clip, fetch

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

# a version number: "uvicorn/0.30", "Apache/2.4.41 (Ubuntu)", "Microsoft-IIS/10.0", "PHP 8.1"
VERSION = re.compile(r"/\s*v?\d|\bv?\d+\.\d+")
DISCLOSING = ("X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Generator")


class Settings(HttpSettings):
    """Settings of http.banner."""

    paths: Paths | None = Field(
        None,
        description="paths fetched as they are (default: the public paths of the API map, "
        'api.health, else "/")',
    )
    not_found: bool = Field(
        True,
        description="also fetch a random path: error pages often carry the banner the app hides",
    )


class Banner(Check):
    """No X-Powered-By (or similar) header and no version number in Server.

    Settings (`checks: {http.banner: {...}}`):
    - `paths` (default: the public paths of the API map, api.health, else "/"): fetched as
      they are.
    - `not_found` (default true): also fetch a random path, since error pages often carry
      the banner the application hides.
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.banner",
        title="Server does not disclose its stack",
        failure_title="Server discloses its stack or version",
        description=(
            "Version banners tell an attacker which known vulnerabilities to try first and "
            "cost nothing to remove. See "
            "https://owasp.org/www-project-web-security-testing-guide/latest/4-Web_Application_"
            "Security_Testing/01-Information_Gathering/02-Fingerprint_Web_Server."
        ),
        remediation=RemediationSpec(
            text="Drop X-Powered-By and reduce Server to a product name without a version "
            "(or remove it) in the app server and the proxy.",
            snippet="uvicorn app:app --no-server-header   # and set your own Server header\n"
            "nginx: server_tokens off;\nexpress: app.disable('x-powered-by')",
            link="https://cheatsheetseries.owasp.org/cheatsheets/HTTP_Headers_Cheat_Sheet.html",
        ),
        category=Category.HTTP,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("headers", "security"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for Server, one for X-Powered-By, one per other disclosing header."""
        s: Settings = ctx.settings()
        paths = list(s.paths) if s.paths is not None else ctx.api().public_paths() or ["/"]
        if s.not_found:
            paths.append(f"/readyctl-banner-{secrets.token_hex(6)}")
        client = ctx.http(timeout=10)
        responses: list[Fetched] = []
        try:
            for path in paths:
                responses.append(fetch(ctx, client, "GET", path, cap=64_000))
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)
            return
        if not responses:
            yield self.errored("*", ErrorReason.CONFIG, "no paths configured")
            return
        labels = ", ".join(r.label for r in responses[:1]) + (
            f" and {len(responses) - 1} more" if len(responses) > 1 else ""
        )

        servers = {r.label: r.values("server") for r in responses if r.values("server")}
        versioned = {label: v for label, vals in servers.items() for v in vals if VERSION.search(v)}
        evidence = {"server": {k: [clip(v, 120) for v in vals] for k, vals in servers.items()}}
        if versioned:
            where, value = next(iter(versioned.items()))
            yield self.failed(
                "Server",
                f"Server header {clip(value, 60)!r} on {where} discloses a version",
                evidence=evidence,
            )
        elif servers:
            value = next(iter(servers.values()))[0]
            yield self.passed(
                "Server", f"Server header {clip(value, 60)!r} names no version", evidence=evidence
            )
        else:
            yield self.passed("Server", f"no Server header on {labels}")

        for name in DISCLOSING:
            found = {r.label: r.values(name) for r in responses if r.values(name)}
            if found:
                where, values = next(iter(found.items()))
                yield self.failed(
                    name,
                    f"{name} {clip(values[0], 60)!r} on {where} discloses the stack",
                    evidence={k: [clip(v, 120) for v in vals] for k, vals in found.items()},
                )
            elif name == "X-Powered-By":
                yield self.passed(name, f"no X-Powered-By header on {labels}")
