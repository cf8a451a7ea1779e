"""auth.jwt_tampering: tokens with alg none, a foreign signature or a past expiry are rejected."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from pydantic import Field
from readyctl.checks.auth._jwt import Jwt, encode, foreign_key, hmac_verifies, sign
from readyctl.checks.auth._login import bearer
from readyctl.checks.health._http import Answer, HttpMethod, TargetError, fetch

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
from readyctl.context import AuthError, Context
from readyctl.result import ErrorReason, Result

Call = Callable[[str], Answer]
SUBJECTS = ("alg-none", "foreign-key", "expired")
NONE_SPELLINGS = ("none", "None", "NONE")


class Settings(CheckSettings):
    """Settings of auth.jwt_tampering."""

    method: HttpMethod = Field("GET", description="method of the protected route")
    path: str | None = Field(
        None,
        description="a protected route that answers 2xx to the test session; default: from the "
        "API map (api.me, else the first of api.lists that refuses anonymous requests)",
    )
    expired_token_var: str = Field(
        "READYCTL_AUTH_EXPIRED_TOKEN",
        min_length=1,
        description="variable (readyctl's environment) holding an expired token the target issued",
    )
    secret_var: str = Field(
        "JWT_SECRET",
        min_length=1,
        description="the target's HMAC signing secret in its env file, to sign an expired "
        "token when none is given",
    )
    expired_by_s: int = Field(
        3600, gt=0, description="how many seconds ago the self-signed token expired"
    )


class JwtTampering(Check):
    """Change one property of the real access token at a time; each must get a 401.

    Settings: `method`/`path` of a protected route (GET; default: from the API map (api.me,
    else the first of api.lists that refuses an anonymous request)), `expired_token_var`
    (READYCTL_AUTH_EXPIRED_TOKEN: an env variable holding an expired token the target issued),
    `secret_var` (JWT_SECRET: the target's HMAC signing secret in its env file, used to sign an
    expired token when no expired token is given), `expired_by_s` (3600).
    """

    meta = CheckMeta(
        id="auth.jwt_tampering",
        title="Tampered access tokens are rejected",
        failure_title="Tampered access tokens are accepted",
        description=(
            "An API that accepts unsigned (alg none), foreign-signed or expired JWTs lets "
            "anyone act as any user. See "
            "https://cheatsheetseries.owasp.org/cheatsheets/JSON_Web_Token_for_Java_Cheat_Sheet.html."
        ),
        remediation=RemediationSpec(
            text="Verify every token with an explicit algorithm allow-list and your own key, "
            "and keep expiry verification on (a small leeway at most).",
            snippet='jwt.decode(token, key, algorithms=["HS256"], '
            'options={"require": ["exp", "iat", "sub"]})',
            link="https://pyjwt.readthedocs.io/en/stable/usage.html",
        ),
        category=Category.AUTH,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP, Capability.AUTH),
        safety=Safety.READ_ONLY,
        timeout_s=45,
        tags=("auth", "security", "jwt"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Positive control, then one result per tampered property."""
        s: Settings = ctx.settings()
        method = s.method
        client = ctx.http(timeout=10)
        path = s.path or protected_route(ctx, client)
        route = f"{method} {path}"
        try:
            session = ctx.auth()
        except AuthError as e:
            for subject in SUBJECTS:
                yield self.blocked(subject, f"auth.session: {e}")
            return
        token = Jwt.parse(session.token)
        if token is None:
            for subject in SUBJECTS:
                yield self.skipped(subject, "the access token is not a JWT (opaque token)")
            return

        def call(tok: str) -> Answer:
            ctx.redactor.add(tok)
            return fetch(ctx, client, method, path, headers=bearer(ctx, tok), budget_s=10)

        try:
            control = call(session.token)
        except TargetError as e:
            for subject in SUBJECTS:
                yield self.errored(subject, e.reason, f"{route}: {e.detail}")
            return
        if not control.ok:
            detail = f"{route} rejected the unmodified token ({control.status})"
            for subject in SUBJECTS:
                yield self.errored(subject, ErrorReason.INCONCLUSIVE, detail)
            return

        results: list[Result] = []
        try:
            results.append(self._alg_none(token, call, route))
            results.append(self._foreign(token, call, route))
            results.append(self._expired(ctx, s, token, call, route))
            after = call(session.token)
        except TargetError as e:
            done = {r.subject for r in results}
            yield from results
            for subject in SUBJECTS:
                if subject not in done:
                    yield self.errored(subject, e.reason, f"{route}: {e.detail}")
            return
        if not after.ok:
            detail = (
                f"{route} rejected the unmodified token ({after.status}) after the probes, so "
                "their rejections prove nothing"
            )
            for r in results:
                if r.status.value == "pass":
                    yield self.errored(r.subject, ErrorReason.INCONCLUSIVE, detail)
                else:
                    yield r
            return
        yield from results

    def _verdict(self, subject: str, what: str, answer: Answer, route: str) -> Result:
        """Accepted (2xx) fails; a 5xx warns; any other 4xx passes."""
        evidence: dict[str, Any] = {"status": answer.status, "body": answer.snippet(200)}
        if answer.ok:
            return self.failed(
                subject, f"{route} accepted {what} ({answer.status})", evidence=evidence
            )
        if answer.status >= 500:
            return self.warned(
                subject,
                f"{route} answered {answer.status} to {what} instead of rejecting it with 401",
                evidence=evidence,
            )
        return self.passed(
            subject, f"{route} rejected {what} with {answer.status}", evidence=evidence
        )

    def _alg_none(self, token: Jwt, call: Call, route: str) -> Result:
        """Unsigned variants (alg none in three spellings); the worst answer counts."""
        worst: Answer | None = None
        for spelling in NONE_SPELLINGS:
            answer = call(token.with_alg_none(spelling))
            if worst is None or _rank(answer) > _rank(worst):
                worst = answer
            if answer.ok:
                break
        assert worst is not None
        return self._verdict("alg-none", "an unsigned token (alg none)", worst, route)

    def _foreign(self, token: Jwt, call: Call, route: str) -> Result:
        """The same header and claims signed with a random key of the same algorithm."""
        alg = token.alg
        sig = sign(alg, foreign_key(alg), token.signing_input)
        if sig is None:
            return self.skipped("foreign-key", f"cannot sign with the token's algorithm {alg!r}")
        return self._verdict(
            "foreign-key",
            f"a token signed with a foreign {alg} key",
            call(token.with_signature(sig)),
            route,
        )

    def _expired(self, ctx: Context, s: Settings, token: Jwt, call: Call, route: str) -> Result:
        """A correctly signed token whose exp is in the past, from config or the env's secret."""
        var = s.expired_token_var
        given = ctx.environ.get(var)
        if given:
            ctx.redactor.add(given)
            parsed = Jwt.parse(given)
            exp = parsed.payload.get("exp") if parsed else None
            if not isinstance(exp, int | float) or exp >= time.time():
                return self.errored(
                    "expired",
                    ErrorReason.CONFIG,
                    f"the token in {var} is not a JWT with an exp in the past",
                )
            return self._verdict("expired", f"an expired token (from {var})", call(given), route)
        secret_var = s.secret_var
        secret = ctx.env_source().values.get(secret_var) or ""
        if not secret:
            return self.skipped(
                "expired",
                f"no correctly signed expired token: set {var} to an expired token the target "
                f"issued, or provide {secret_var} in the env file",
            )
        ctx.redactor.add(secret)
        if not token.alg.startswith("HS"):
            return self.skipped(
                "expired", f"the token uses {token.alg}; {secret_var} cannot sign it"
            )
        if not hmac_verifies(token, secret):
            return self.skipped(
                "expired", f"{secret_var} from the env file does not verify the target's token"
            )
        now = int(time.time())
        back = s.expired_by_s
        issued = now - 2 * back
        claims = {**token.payload, "iat": issued}
        if "nbf" in claims:
            claims["nbf"] = issued
        fresh = encode(token.header, claims, token.alg, secret.encode())
        stale = encode(token.header, {**claims, "exp": now - back}, token.alg, secret.encode())
        assert fresh is not None and stale is not None
        control = call(fresh)
        if not control.ok:
            return self.errored(
                "expired",
                ErrorReason.INCONCLUSIVE,
                f"{route} rejected a token re-signed with {secret_var} and a valid expiry "
                f"({control.status}), so the expiry probe cannot tell",
            )
        return self._verdict(
            "expired",
            f"a token signed with {secret_var} that expired {back} s ago",
            call(stale),
            route,
        )


def protected_route(ctx: Context, client: httpx.Client) -> str:
    """api.me, else the first of api.lists refusing an anonymous GET (401/403).

    A list that answers anonymously would accept a tampered token too, proving nothing; when
    no route of the map is known to need a session, RouteUnknown("me").
    """
    api = ctx.api()
    if api.me:
        return api.me
    answered: list[str] = []
    for spec in api.lists:
        try:
            r = fetch(ctx, client, "GET", spec.path, budget_s=10)
        except TargetError as e:
            answered.append(f"{spec.path}: {e.detail}")
            continue
        if r.status in (401, 403):
            return spec.path
        answered.append(f"{spec.path} answered {r.status} anonymously")
    why = "a protected GET route"
    if answered:
        why += "; no list of api.lists needs a session (" + "; ".join(answered[:2]) + ")"
    raise RouteUnknown("me", ctx.env_name, why)


def _rank(answer: Answer) -> int:
    """Accepted is worst, then a 5xx, then a rejection."""
    if answer.ok:
        return 2
    return 1 if answer.status >= 500 else 0
