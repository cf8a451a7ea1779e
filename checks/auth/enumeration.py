"""auth.enumeration: a failed login looks the same for an unknown account and a wrong password."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from pydantic import Field
from readyctl.checks.auth._login import (
    credentials,
    login_request,
    login_spec,
    missing_credentials,
)
from readyctl.checks.health._http import Answer, TargetError

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
from readyctl.context import AuthError, Context
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

_MISSING = object()


def leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """JSON path -> leaf value (lists by index); the key shape is the set of paths."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        if not data:
            out[prefix or "$"] = {}
        for k, v in data.items():
            out.update(leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list):
        if not data:
            out[prefix or "$"] = []
        for i, v in enumerate(data):
            out.update(leaves(v, f"{prefix}[{i}]"))
    else:
        out[prefix or "$"] = data
    return out


def difference(unknown: Answer, again: Answer, known: Answer) -> str | None:
    """How the known-account answer differs from the unknown-account one, or None."""
    if unknown.status != known.status:
        return (
            f"status {unknown.status} for an unknown account but {known.status} for a wrong "
            "password"
        )
    a, b, k = unknown.json(), again.json(), known.json()
    if a is None or k is None:
        if (a is None) != (k is None):
            return "one answer is JSON and the other is not"
        if unknown.body == again.body and unknown.body != known.body:
            return "the bodies differ"
        return None
    la, lb, lk = leaves(a), leaves(b), leaves(k)
    if set(la) != set(lk):
        only_a = sorted(set(la) - set(lk))[:3]
        only_k = sorted(set(lk) - set(la))[:3]
        return (
            f"different JSON keys (unknown account only: {only_a}, wrong password only: {only_k})"
        )
    volatile = {p for p in la if lb.get(p, _MISSING) != la[p]}  # request ids, timestamps
    for p in sorted(set(la) - volatile):
        if la[p] != lk[p]:
            return f"different {p}: {clip(la[p], 80)!r} vs {clip(lk[p], 80)!r}"
    return None


class Settings(CheckSettings):
    """Settings of auth.enumeration."""

    unknown_username: str | None = Field(
        None,
        min_length=1,
        description="account name for the unknown-account logins (default: a random address "
        "at the test account's domain)",
    )


class LoginEnumeration(Check):
    """Three failed logins: an unknown account twice (to learn per-request fields), then the
    test account with a wrong password; status, JSON keys and messages must match.

    Settings: `unknown_username` (default: a random address at the test account's domain).
    The login request itself comes from the API map (api.login: route, body, field names).
    """

    meta = CheckMeta(
        id="auth.enumeration",
        title="Login failures do not reveal accounts",
        failure_title="Login failures reveal which accounts exist",
        description=(
            "When a failed login says 'no such user' for one address and 'wrong password' for "
            "another, an attacker can list your users and target them. See "
            "https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html#authentication-and-error-messages."
        ),
        remediation=RemediationSpec(
            text="Answer every failed login with the same status and body ('Invalid email or "
            "password.') and spend the same time (hash a dummy password for unknown accounts).",
            snippet='{"error": {"code": "invalid_credentials", '
            '"message": "Invalid email or password."}}',
            link="https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html#authentication-and-error-messages",
        ),
        category=Category.AUTH,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=45,
        tags=("auth", "security"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the login endpoint."""
        spec = login_spec(ctx, "the login route whose failures are compared")
        subject = f"{spec.method.upper()} {spec.path}"
        creds = credentials(ctx)
        if creds is None:
            yield self.skipped(subject, missing_credentials(spec))
            return
        try:
            ctx.auth()  # positive control: the known account exists and can log in
        except AuthError as e:
            yield self.blocked(subject, f"auth.session: {e}")
            return
        known_user, _ = creds
        wrong = f"Readyctl-wrong-{secrets.token_hex(8)}"
        ctx.redactor.add(wrong)
        tag = secrets.token_hex(6)
        default_unknown = (
            f"readyctl-nobody-{tag}@{known_user.rsplit('@', 1)[1]}"
            if "@" in known_user
            else f"readyctl-nobody-{tag}"
        )
        s: Settings = ctx.settings()
        unknown_user = s.unknown_username or default_unknown
        client = ctx.http(timeout=15)
        try:
            unknown = login_request(ctx, client, unknown_user, wrong)
            again = login_request(ctx, client, unknown_user, wrong)
            known = login_request(ctx, client, known_user, wrong)
        except TargetError as e:
            yield self.errored(subject, e.reason, f"{subject}: {e.detail}")
            return
        evidence = {
            "unknown_account": {"status": unknown.status, "body": unknown.snippet(200)},
            "known_account": {"status": known.status, "body": known.snippet(200)},
        }
        for label, answer in (("an unknown account", unknown), ("a wrong password", known)):
            if answer.ok or answer.status == 429 or answer.status >= 500 or answer.truncated:
                why = (
                    f"answered {answer.status}, but its {answer.over}"
                    if answer.truncated
                    else "rate limited"
                    if answer.status == 429
                    else f"answered {answer.status}"
                )
                yield self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"the login with {label} {why}, so the failures cannot be compared",
                    evidence=evidence,
                )
                return
        diff = difference(unknown, again, known)
        if diff:
            yield self.failed(subject, f"{subject} tells accounts apart: {diff}", evidence=evidence)
        else:
            yield self.passed(
                subject,
                f"{subject} answers {known.status} with the same body shape and message for an "
                "unknown account and a wrong password",
                evidence=evidence,
            )
