"""auth.session: readyctl can get a session on the target as configured (the auth probe)."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.apimap import RouteUnknown
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
from readyctl.context import AuthError, Context, LoginUnknown
from readyctl.result import Result


class Settings(CheckSettings):
    """auth.session takes no settings (the login comes from the environment's API map)."""


class AuthSessionCheck(Check):
    """Log in with the configured credentials (or token) and get a token back."""

    meta = CheckMeta(
        id="auth.session",
        title="Test account can log in",
        failure_title="Test account cannot log in",
        description=(
            "Smoke, hardening and load checks act as a real user; if the configured test "
            "account cannot log in, those checks are blocked with this root cause."
        ),
        remediation=RemediationSpec(
            text="Check the environment's api.login (path, body, fields, token paths) and that "
            "the credential variables hold a working test account.",
            snippet="api:\n  login:\n    path: /api/auth/login\n    body: json\n"
            "    username_var: READYCTL_AUTH_USERNAME\n    password_var: READYCTL_AUTH_PASSWORD",
        ),
        category=Category.AUTH,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("probe",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Pass when a token comes back."""
        api = ctx.api()
        subject = api.login.path if api.login and api.login.path else "token"
        try:
            session = ctx.auth()
        except LoginUnknown as e:
            raise RouteUnknown("login", ctx.env_name, "nothing to log in with") from e
        except AuthError as e:
            yield self.failed(subject, f"could not get a session: {e}")
            return
        who = f" as {session.user}" if session.user else ""
        yield self.passed(subject, f"got a {api.scheme} token{who}".strip())
