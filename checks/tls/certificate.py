"""tls.certificate: the served chain is trusted and the leaf covers the base URL's host."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.tls._probe import (
    NO_BASE_URL,
    Endpoint,
    HandshakeError,
    covers,
    describe,
    endpoint,
    handshake,
    load_leaf,
    san_names,
    validity_problem,
)

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

_CONNECT_ERRORS = {
    "dns": ErrorReason.CONNECTIVITY,
    "refused": ErrorReason.CONNECTIVITY,
    "connect": ErrorReason.CONNECTIVITY,
    "timeout": ErrorReason.TIMEOUT,
    "config": ErrorReason.CONFIG,
}


class Settings(CheckSettings):
    """Settings of tls.certificate."""

    timeout_s: float = Field(5.0, gt=0, description="seconds per TLS connection attempt")


class TlsCertificate(Check):
    """Chain trust (system store plus the environment's ca_bundle) and hostname coverage.

    Subjects: `chain` (the served chain verifies, at the real time, as clients verify it) and
    `hostname` (the leaf's subjectAltNames cover the base_url host: SANs only, a wildcard is the
    whole left-most label). Setting: `timeout_s` (default 5, per connection). Unlike the
    other TLS checks it does not wait for http.reachable: an untrusted or mismatched
    certificate is the usual reason that probe fails, and this check is where that failure
    gets its diagnosis and remediation.
    """

    meta = CheckMeta(
        id="tls.certificate",
        title="TLS certificate is trusted and matches",
        failure_title="TLS certificate is untrusted or mismatched",
        description=(
            "Clients refuse a certificate whose chain they cannot verify or that does not name "
            "the host they dialled, so a bad chain is an outage for every client. See "
            "https://www.rfc-editor.org/rfc/rfc6125."
        ),
        remediation=RemediationSpec(
            text="Serve the full chain (leaf first, then intermediates) from a CA your clients "
            "trust, with a subjectAltName for every host name clients use; for a private CA, "
            "set the environment's ca_bundle.",
            snippet="ssl_certificate     /etc/ssl/api/fullchain.pem;  # leaf + intermediates\n"
            "ssl_certificate_key /etc/ssl/api/privkey.pem;",
            link="https://ssl-config.mozilla.org/",
        ),
        category=Category.TRANSPORT,
        severity=Severity.CRITICAL,
        # runs even when http.reachable fails: it explains certificate failures
        requires=(Capability.HTTP,),
        diagnoses_probe=True,
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("tls",),
        refs=("5",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Verify the chain, then match the host against the leaf's names."""
        ep = endpoint(ctx)
        if isinstance(ep, str):
            if ep == NO_BASE_URL:
                yield self.skipped("*", ep)
            else:
                yield self.failed(
                    "chain",
                    f"{ctx.environment.base_url}: the API is not served over TLS ({ep})",
                )
            return
        trust = "the system trust store" + (
            f" and ca_bundle {ctx.environment.ca_bundle}" if ctx.environment.ca_bundle else ""
        )
        s: Settings = ctx.settings()
        wait = s.timeout_s
        leaf_der: bytes | None = None
        try:
            session = handshake(ctx, ep, verify=True, timeout=wait)
        except HandshakeError as e:
            if e.kind in _CONNECT_ERRORS:
                yield self.errored("chain", _CONNECT_ERRORS[e.kind], e.detail)
                yield self.blocked("hostname", f"tls.certificate chain: {e.detail}")
                return
            if e.kind == "handshake":
                yield self.failed("chain", e.detail)
                yield self.blocked("hostname", f"tls.certificate chain: {e.detail}")
                return
            leaf_der, evidence = self._unverified_leaf(ctx, ep, wait)
            issuer = evidence.get("issuer")
            # OpenSSL names the first problem only: an untrusted issuer hides an expired leaf
            dated = validity_problem(load_leaf(leaf_der), ctx.now()) if leaf_der else None
            if dated:
                evidence["validity"] = dated
            yield self.failed(
                "chain",
                f"chain of {ep.label} does not verify against {trust}: {e.detail}"
                + (f" (issuer {issuer})" if issuer else "")
                + (f"; {dated}" if dated else ""),
                evidence={**evidence, "trust": trust},
            )
        else:
            leaf_der = session.leaf_der
            cert = load_leaf(leaf_der)
            issuer = ctx.redactor.clip(cert.issuer.rfc4514_string(), 120)
            yield self.passed(
                "chain",
                f"chain of {ep.label} verifies against {trust} (issuer {issuer})",
                evidence={**describe(cert), "trust": trust, "protocol": session.version},
            )
        if leaf_der is None:
            yield self.blocked(
                "hostname", "tls.certificate chain: could not read the leaf certificate"
            )
            return
        yield self._hostname(ep.host, leaf_der)

    def _unverified_leaf(
        self, ctx: Context, ep: Endpoint, wait: float
    ) -> tuple[bytes | None, dict[str, object]]:
        """The leaf from a handshake without verification, for the diagnosis."""
        try:
            session = handshake(ctx, ep, verify=False, timeout=wait)
        except HandshakeError:
            return None, {}
        return session.leaf_der, describe(load_leaf(session.leaf_der))

    def _hostname(self, host: str, leaf_der: bytes) -> Result:
        """Whether the leaf's subjectAltNames cover host."""
        cert = load_leaf(leaf_der)
        dns, ips = san_names(cert)
        names = dns + ips
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        evidence = {"host": host, "subject_alt_names": names[:20]}
        if covers(cert, host):
            return self.passed(
                "hostname", f"certificate covers {host} ({shown})", evidence=evidence
            )
        if not names:
            return self.failed(
                "hostname",
                f"certificate has no subjectAltName, so clients reject it for {host}",
                evidence=evidence,
            )
        return self.failed("hostname", f"certificate names {shown}, not {host}", evidence=evidence)
