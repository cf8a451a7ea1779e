"""auth.refresh_reuse: a refresh token works once; using it again is rejected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field
from readyctl.checks.auth._login import dig, fresh_login
from readyctl.checks.health._http import Answer, HttpMethod, TargetError, fetch

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

    method: HttpMethod = Field("POST", description="method of the refresh endpoint")
    path: str = Field("/v1/auth/refresh", description="the refresh endpoint")
    field: str = Field(
        "refresh_token", min_length=1, description="JSON body field carrying the refresh token"
    )
    token_path: str | None = Field(
        None,
        description="dotted path of the new refresh token in the answer (default: the auth "
        "config's refresh_token_path)",
    )


class RefreshReuse(Check):
    """Fresh login, refresh once (positive control), then replay the first refresh token.

    Settings: `method`/`path` of the refresh endpoint (POST /v1/auth/refresh), `field` of the
    refresh token in the request body (refresh_token), `token_path` of the new refresh token in
    the answer (default: the auth config's refresh_token_path). The run's shared session is
    never touched: the check logs in on its own.
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
        cfg = ctx.environment.auth
        method = s.method
        path = s.path
        field = s.field
        token_path = s.token_path or (cfg.refresh_token_path if cfg else None)
        subject = f"{method} {path}"
        if cfg is None or cfg.kind != "login":
            yield self.skipped(subject, "needs login credentials (auth: kind login)")
            return
        client = ctx.http(timeout=15)

        def refresh(token: str) -> Answer:
            return fetch(ctx, client, method, path, json_body={field: token}, budget_s=15)

        try:
            login = fresh_login(ctx, client)
            if not login.refresh_token:
                yield self.skipped(
                    subject,
                    f"the login answer carries no refresh token at {cfg.refresh_token_path!r}",
                )
                return
            first = refresh(login.refresh_token)
            rotated = dig(first.json(), token_path) if first.ok else None
            if not first.ok:
                yield self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"the first use of a fresh refresh token answered {first.status}",
                    evidence={"body": first.snippet(200)},
                )
                return
            if isinstance(rotated, str):
                ctx.redactor.add(rotated)
            reuse = refresh(login.refresh_token)
            family: Answer | None = None
            if not reuse.ok and isinstance(rotated, str) and rotated != login.refresh_token:
                family = refresh(rotated)
        except TargetError as e:
            yield self.errored(subject, e.reason, f"{subject}: {e.detail}")
            return
        evidence: dict[str, Any] = {
            "first_use_status": first.status,
            "reuse_status": reuse.status,
            "reuse_body": reuse.snippet(200),
        }
        if rotated == login.refresh_token:
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
