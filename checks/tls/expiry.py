"""tls.expiry: days until the served leaf certificate expires, on the run's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from pydantic import Field, model_validator
from readyctl.checks.tls._probe import HandshakeError, describe, endpoint, handshake, load_leaf

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
from readyctl.result import Curve, ErrorReason, Result

_REASONS = {"timeout": ErrorReason.TIMEOUT, "config": ErrorReason.CONFIG}


class Settings(CheckSettings):
    """Settings of tls.expiry."""

    warn_days: float = Field(30.0, description="warn when fewer days than this remain")
    fail_days: float = Field(7.0, description="fail when fewer days than this remain")
    good_days: float = Field(60.0, gt=0, description="days left that score 0.9 on the curve")
    poor_days: float = Field(14.0, gt=0, description="days left that score 0.5 on the curve")
    timeout_s: float = Field(5.0, gt=0, description="seconds for the TLS handshake")

    @model_validator(mode="after")
    def _curve(self) -> Settings:
        if self.good_days == self.poor_days:
            raise ValueError("good_days and poor_days must differ")
        return self


class TlsExpiry(Check):
    """Days left on the leaf certificate: warn under `warn_days`, fail under `fail_days`.

    Settings (`checks: {tls.expiry: {...}}`): `warn_days` (default 30), `fail_days` (7),
    `good_days` (60) and `poor_days` (14), the log-normal curve's 0.9 and 0.5 points, and
    `timeout_s` (5, the handshake). The leaf is read without verification (trust is
    tls.certificate's job) and compared with the run's clock, so tests move the clock
    instead of waiting.
    """

    meta = CheckMeta(
        id="tls.expiry",
        title="TLS certificate is far from expiry",
        failure_title="TLS certificate expires soon",
        description=(
            "An expired certificate takes the API down for every client at once, and renewal "
            "jobs fail silently. See https://letsencrypt.org/docs/integration-guide/."
        ),
        remediation=RemediationSpec(
            text="Renew the certificate now and automate renewal (ACME, cert-manager or your "
            "CA's API) with an alert when fewer than 30 days remain.",
            snippet="certbot renew --deploy-hook 'systemctl reload nginx'",
            link="https://letsencrypt.org/docs/integration-guide/",
        ),
        category=Category.TRANSPORT,
        severity=Severity.HIGH,
        # runs even when http.reachable fails: an expired leaf is one reason it fails, and
        # the leaf is read without verification, so an untrusted chain does not hide its date
        requires=(Capability.HTTP,),
        diagnoses_probe=True,
        safety=Safety.READ_ONLY,
        timeout_s=15,
        tags=("tls",),
        refs=("5",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Read the leaf and measure the days until notAfter."""
        s: Settings = ctx.settings()
        warn_days = s.warn_days
        fail_days = s.fail_days
        curve = Curve(s.good_days, s.poor_days)
        ep = endpoint(ctx)
        if isinstance(ep, str):
            yield self.skipped("leaf certificate", ep)
            return
        try:
            session = handshake(ctx, ep, verify=False, timeout=s.timeout_s)
        except HandshakeError as e:
            reason = _REASONS.get(e.kind, ErrorReason.CONNECTIVITY)
            yield self.errored("leaf certificate", reason, e.detail)
            return
        cert = load_leaf(session.leaf_der)
        not_after = cert.not_valid_after_utc
        now = ctx.now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        days = round((not_after - now).total_seconds() / 86400, 1)
        when = not_after.strftime("%Y-%m-%d %H:%M UTC")
        if days <= 0:
            summary = f"leaf certificate of {ep.label} expired {-days:g} days ago ({when})"
        else:
            summary = f"leaf certificate of {ep.label} expires in {days:g} days ({when})"
        yield self.measure(
            "leaf certificate",
            days,
            curve=curve,
            fail_at=fail_days,
            warn_at=warn_days,
            unit=" days",
            summary=summary,
            evidence=describe(cert),
        )
