"""tls.expiry: days until the served leaf certificate expires, on the run's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from readyctl.checks.tls._probe import HandshakeError, describe, endpoint, handshake, load_leaf

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
from readyctl.result import Curve, ErrorReason, Result

_REASONS = {"timeout": ErrorReason.TIMEOUT, "config": ErrorReason.CONFIG}


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
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=15,
        tags=("tls",),
        refs=("5",),
    )

    def run(self, ctx: Context) -> Iterator[Result]:
        """Read the leaf and measure the days until notAfter."""
        s = ctx.settings()
        warn_days = float(s.get("warn_days", 30))
        fail_days = float(s.get("fail_days", 7))
        curve = Curve(float(s.get("good_days", 60)), float(s.get("poor_days", 14)))
        ep = endpoint(ctx)
        if isinstance(ep, str):
            yield self.skipped("leaf certificate", ep)
            return
        try:
            session = handshake(ctx, ep, verify=False, timeout=float(s.get("timeout_s", 5)))
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
