"""auth.refresh_reuse: a refresh token works once; using it again is rejected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field
from readyctl.checks.auth._login import (
    credentials,
    dig,
    fresh_login,
    login_spec,
    missing_credentials,
    set_cookie,
)
from readyctl.checks.health._http import Answer, HttpMethod, TargetError, fetch

from readyctl.apimap import RefreshSpec, RouteUnknown, find_token_paths
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


class Settings(CheckSettings):
    """Settings of auth.refresh_reuse."""

    method: HttpMethod | None = Field(
        None, description="method of the refresh endpoint; default: from the API map (api.refresh)"
    )
    path: str | None = Field(
        None, description="the refresh endpoint; default: from the API map (api.refresh)"
    )
    field: str | None = Field(
        None,
        min_length=1,
        description="the JSON/form field or cookie carrying the refresh token; default: from the "
        "API map (api.refresh.field)",
    )
    token_path: str | None = Field(
        None,
        description="dotted path of the new refresh token in the answer; default: from the API "
        "map (api.refresh.refresh_token), else found by key name",
    )


class RefreshReuse(Check):
    """Fresh login, refresh once (positive control), then replay the first refresh token.

    The refresh endpoint and how the refresh token is sent (a JSON or form field, the
    `Authorization: <scheme> <refresh token>` header, or a cookie) come from the API map
    (api.refresh); `api.refresh: none` (no refresh flow) skips the check as not applicable.
    Settings override the map: `method`/`path` of the refresh endpoint, `field` (the JSON/form
    field or cookie name), `token_path` of the new refresh token in the answer (default: from
    the API map (api.refresh.refresh_token), else found by key name). The run's shared session
    is never touched: the check logs in on its own (api.login).
    """

    meta = CheckMeta(
        id="auth.refresh_reuse",
        title="Used refresh tokens are rejected",
        failure_title="Refresh tokens can be reused",
        description=(
            "Rotating refresh tokens only helps if a replayed token is refused: otherwise a "
            "stolen refresh token keeps minting access tokens for as long as it lives. See "
            "https://datatracker.ietf.org/doc/html/rfc9700#name-refresh-token-protection."
        ),
        remediation=RemediationSpec(
            text="Rotate refresh tokens on every use, mark the old one used, and on reuse "
            "reject it and revoke the whole token family (every token of that login).",
            link="https://datatracker.ietf.org/doc/html/rfc9700#name-refresh-token-protection",
        ),
        category=Category.AUTH,
        severity=Severity.HIGH,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=45,
        tags=("auth", "security", "jwt"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the refresh endpoint."""
        s: Settings = ctx.settings()
        api = ctx.api()
        if api.has_refresh is False and s.path is None:
            yield self.skipped(
                "refresh", "not applicable: the API has no refresh flow (api.refresh: none)"
            )
            return
        spec = api.refresh if isinstance(api.refresh, RefreshSpec) else None
        if spec is None and s.path is None:
            raise RouteUnknown("refresh", ctx.env_name, "the refresh endpoint")
        method = s.method or (spec.method if spec else "POST")
        path = s.path or (spec.path if spec else "")
        send = spec.send if spec else "json"
        field = s.field or (spec.field if spec else "refresh_token")
        login = login_spec(ctx, "a fresh login gives the refresh token")
        subject = f"{method} {path}"
        if credentials(ctx) is None:
            yield self.skipped(subject, missing_credentials(login))
            return
        client = ctx.http(timeout=15)

        def refresh(token: str) -> Answer:
            client.cookies.clear()  # the token goes only where the map says
            if send == "form":
                return fetch(
                    ctx,
                    client,
                    method,
                    path,
                    content=str(httpx.QueryParams({field: token})).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    budget_s=15,
                )
            if send == "header":
                return fetch(
                    ctx,
                    client,
                    method,
                    path,
                    headers={api.header: f"{api.scheme} {token}".strip()},
                    budget_s=15,
                )
            if send == "cookie":
                return fetch(
                    ctx, client, method, path, headers={"Cookie": f"{field}={token}"}, budget_s=15
                )
            return fetch(ctx, client, method, path, json_body={field: token}, budget_s=15)

        def rotated_of(answer: Answer) -> Any:
            data = answer.json()
            if s.token_path or (spec and spec.refresh_token):
                found = dig(data, s.token_path or (spec.refresh_token if spec else None))
            else:
                found = dig(data, find_token_paths(data)[1])
            if not isinstance(found, str) and send == "cookie":
                found = set_cookie(answer, field)
            return found

        try:
            session = fresh_login(ctx, client, refresh_cookie=field if send == "cookie" else None)
            if not session.refresh_token:
                where = login.refresh_token or "any refresh_token key"
                if send == "cookie":
                    where += f" or cookie {field}"
                yield self.skipped(
                    subject, f"the login answer carries no refresh token (looked at {where})"
                )
                return
            first = refresh(session.refresh_token)
            if not first.ok:
                yield self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"the first use of a fresh refresh token answered {first.status}",
                    evidence={"body": first.snippet(200)},
                )
                return
            rotated = rotated_of(first)
            if isinstance(rotated, str):
                ctx.redactor.add(rotated)
            reuse = refresh(session.refresh_token)
            family: Answer | None = None
            if not reuse.ok and isinstance(rotated, str) and rotated != session.refresh_token:
                family = refresh(rotated)
        except TargetError as e:
            yield self.errored(subject, e.reason, f"{subject}: {e.detail}")
            return
        evidence: dict[str, Any] = {
            "first_use_status": first.status,
            "reuse_status": reuse.status,
            "reuse_body": reuse.snippet(200),
        }
        if rotated == session.refresh_token:
            evidence["rotated"] = False
        if family is not None:
            evidence["rotated_after_reuse_status"] = family.status
        if reuse.ok:
            yield self.failed(
                subject,
                f"{subject} accepted a refresh token that was already used ({reuse.status})",
                evidence=evidence,
            )
        elif reuse.status >= 500:
            yield self.warned(
                subject,
                f"{subject} answered {reuse.status} to a reused refresh token instead of 401",
                evidence=evidence,
            )
        elif family is not None and family.ok:
            yield self.warned(
                subject,
                f"{subject} rejected the reused token ({reuse.status}) but the token family was "
                "not revoked: its newest token still works",
                evidence=evidence,
            )
        else:
            revoked = " and revoked its family" if family is not None else ""
            yield self.passed(
                subject,
                f"{subject} rejected a reused refresh token with {reuse.status}{revoked}",
                evidence=evidence,
            )
