"""http.docs_exposure: API docs are hidden or protected in production, reachable elsewhere."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    Paths,
    ProbeError,
    auth_headers,
    clip,
    fetch_answer,
    optional_session,
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

LOGIN_HINT = re.compile(r"log-?in|sign-?in|auth|sso|oauth", re.IGNORECASE)


def doc_paths(ctx: Context) -> list[str]:
    """The map's docs paths, then the usual documentation UIs and OpenAPI documents."""
    from readyctl import openapi
    from readyctl.discovery import DOC_UI_PATHS

    return list(dict.fromkeys([*ctx.api().docs, *DOC_UI_PATHS, *openapi.CANDIDATE_PATHS]))


def _digest(r: Fetched) -> str:
    """A fingerprint of a body (to recognise a catch-all page)."""
    return hashlib.sha256(r.body).hexdigest()


class Settings(HttpSettings):
    """Settings of http.docs_exposure."""

    paths: Paths | None = Field(
        None,
        description="docs and OpenAPI paths probed anonymously (default: the API map's api.docs "
        "plus the usual documentation and OpenAPI places)",
    )
    control_path: str | None = Field(
        None,
        description="must answer, proving requests reach the app (default: a public path of "
        'the API map, api.health, else "/")',
    )


class DocsExposure(Check):
    """Anonymous GETs on the docs paths: absent or 401/403 in production; reachable elsewhere.

    Settings (`checks: {http.docs_exposure: {...}}`):
    - `paths` (default: the API map's api.docs, then the usual UI places, readyctl.discovery's
      DOC_UI_PATHS, and OpenAPI document places, readyctl.openapi's CANDIDATE_PATHS).
    - `control_path` (default: a public path of the API map, api.health, else "/"): must
      answer under 400, proving requests reach the app ("/" may answer 404).
    - `request_timeout_s` (default 10): the budget of each request, body included.

    Outside production the docs count as reachable when a path answers 2xx anonymously or
    with the session (when auth is configured). A 2xx identical to an unknown path's answer
    (a single-page app's catch-all) counts as absent.
    """

    meta = CheckMeta(
        id="http.docs_exposure",
        title="API docs are not public in production",
        failure_title="API docs are public in production",
        description=(
            "A public OpenAPI document and docs page hand out a full map of the API, including "
            "internal and admin routes; in production they must be absent or need a login. See "
            "https://owasp.org/API-Security/editions/2023/en/0xa9-improper-inventory-management/."
        ),
        remediation=RemediationSpec(
            text="Disable the docs routes in production, or put them behind authentication.",
            snippet="app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # production\n"
            "# NestJS: only call SwaggerModule.setup() when NODE_ENV !== 'production'",
            link="https://owasp.org/API-Security/editions/2023/en/0xa9-improper-inventory-management/",
        ),
        category=Category.HTTP,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("security", "docs"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Production: one result per docs path. Elsewhere: one result, reachable or not."""
        s: Settings = ctx.settings()
        paths = list(s.paths) if s.paths is not None else doc_paths(ctx)
        control_path = s.control_path or next(iter(ctx.api().public_paths()), "/")
        client = ctx.http(timeout=10)
        try:
            control = fetch_answer(ctx, client, "GET", control_path, cap=64_000)
            # the base URL itself (no public path known) may rightly have nothing to serve: a
            # 404 there still proves the app answers; an auth wall (401/403) or a 5xx does not
            root_404 = control_path == "/" and control.status == 404
            if control.status >= 400 and not root_404:
                yield self.errored(
                    "*",
                    ErrorReason.INCONCLUSIVE,
                    f"the control path {control_path} answered {control.status}; set "
                    f"environments.{ctx.env_name}.api.health.live (or "
                    "checks.http.docs_exposure.control_path) to a path that answers",
                )
                return
            random = fetch_answer(
                ctx, client, "GET", f"/readyctl-{secrets.token_hex(6)}", cap=256_000
            )
            # a catch-all page is only recognised from a whole body: two bodies cut at the cap
            # (a decompression bomb, an endless stream) look the same without being the same
            catch_all = (
                _digest(random) if 200 <= random.status < 300 and not random.truncated else None
            )
            anon = {p: fetch_answer(ctx, client, "GET", p, cap=256_000) for p in paths}
            if ctx.environment.production:
                for path, r in anon.items():
                    yield self._production(path, r, catch_all)
                return
            session, _ = optional_session(ctx)
            reachable = [
                p
                for p, r in anon.items()
                if 200 <= r.status < 300 and not r.truncated and _digest(r) != catch_all
            ]
            if not reachable and session is not None:
                for p in paths:
                    r = fetch_answer(
                        ctx, client, "GET", p, headers=auth_headers(session), cap=256_000
                    )
                    if 200 <= r.status < 300 and not r.truncated and _digest(r) != catch_all:
                        reachable.append(p + " (with the session)")
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)
            return
        statuses = {p: r.status for p, r in anon.items()}
        env = ctx.env_name
        if reachable:
            yield self.passed(
                "docs",
                f"{env} is not production and the API docs are reachable at "
                f"{', '.join(reachable[:3])}",
                evidence={"anonymous_status": statuses},
            )
        else:
            yield self.warned(
                "docs",
                f"{env} is not production but none of {len(paths)} docs paths is reachable",
                evidence={"anonymous_status": statuses},
            )

    def _production(self, path: str, r: Fetched, catch_all: str | None) -> Result:
        """Absent or protected passes; served anonymously fails."""
        evidence = {"status": r.status, "content_type": clip(r.content_type, 80)}
        if r.truncated and not 200 <= r.status < 300:
            return self.errored(
                path,
                ErrorReason.INCONCLUSIVE,
                f"GET {path} answered {r.status}, but its {r.over}; cannot tell what it serves",
                evidence={**evidence, "body_limit_bytes": len(r.body)},
            )
        if r.status in (404, 405, 410):
            return self.passed(path, f"GET {path} answers {r.status}: not served")
        if r.status in (401, 403):
            return self.passed(
                path, f"GET {path} answers {r.status}: needs authentication", evidence=evidence
            )
        if 200 <= r.status < 300:
            if catch_all is not None and _digest(r) == catch_all:
                return self.passed(
                    path,
                    f"GET {path} answers the same page as any unknown path (catch-all)",
                    evidence=evidence,
                )
            return self.failed(
                path,
                f"GET {path} answers {r.status} without authentication in production"
                + (f" ({r.over})" if r.truncated else ""),
                evidence={**evidence, "body": r.excerpt(200)},
            )
        if 300 <= r.status < 400:
            where = r.headers.get("location", "")
            evidence["location"] = clip(where, 120)
            if LOGIN_HINT.search(where):
                return self.passed(
                    path,
                    f"GET {path} redirects to a login ({clip(where, 60)})",
                    evidence=evidence,
                )
            return self.warned(
                path,
                f"GET {path} redirects to {clip(where, 60) or 'nowhere'}; cannot tell whether "
                "it needs authentication",
                evidence=evidence,
            )
        if r.status >= 500:
            return self.warned(
                path,
                f"GET {path} answers {r.status} (neither absent nor protected)",
                evidence=evidence,
            )
        return self.passed(path, f"GET {path} is refused with {r.status}", evidence=evidence)
