"""tls.protocols: the protocol floor is TLS 1.2 (TLS 1.0 and 1.1 refused), probed with sslyze."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import Field
from readyctl.checks.tls._probe import HandshakeError, endpoint, handshake, legacy_control_server

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
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

# (subject, sslyze scan command, attribute of the scan result)
LEGACY = (
    ("TLS 1.0", "TLS_1_0_CIPHER_SUITES", "tls_1_0_cipher_suites"),
    ("TLS 1.1", "TLS_1_1_CIPHER_SUITES", "tls_1_1_cipher_suites"),
)
MODERN = "TLS 1.2+"
TARGET, CONTROL = "target", "control"


def _last_line(trace: Any) -> str:
    """The exception line of a traceback (or any error text), shortened."""
    if hasattr(trace, "format_exception_only"):
        text = "".join(trace.format_exception_only())
    else:
        text = str(trace or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return clip(lines[-1] if lines else "no detail", 200)


class Settings(CheckSettings):
    """Settings of tls.protocols."""

    network_timeout_s: float = Field(5.0, gt=0, description="seconds per connection attempt")


def _scan(ctx: Context, targets: dict[str, tuple[str, int, str | None]]) -> dict[str, Any]:
    """Scan each named (host, port, ip) for TLS 1.0/1.1 suites: name -> ServerScanResult or str."""
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.errors import ServerHostnameCouldNotBeResolved

    s: Settings = ctx.settings()
    timeout = max(1, round(ctx.timeout(s.network_timeout_s)))
    commands = {getattr(ScanCommand, command) for _, command, _ in LEGACY}
    out: dict[str, Any] = {}
    requests = []
    names = {}
    for name, (host, port, ip) in targets.items():
        try:
            location = ServerNetworkLocation(hostname=host, port=port, ip_address=ip)
        except ServerHostnameCouldNotBeResolved as e:
            out[name] = f"cannot resolve {host}: {_last_line(e)}"
            continue
        config = ServerNetworkConfiguration(
            tls_server_name_indication=host, network_timeout=timeout, network_max_retries=1
        )
        req = ServerScanRequest(
            server_location=location, network_configuration=config, scan_commands=commands
        )
        requests.append(req)
        names[req.uuid] = name
    if requests:
        scanner = Scanner(
            per_server_concurrent_connections_limit=8, concurrent_server_scans_limit=2
        )
        scanner.queue_scans(requests)
        for result in scanner.get_results():
            out[names[result.uuid]] = result
    return out


def _unreachable(result: Any) -> str:
    """Why a scan has no TLS connection to its server, or "" when it has one."""
    from sslyze import ServerScanStatusEnum

    if isinstance(result, str):
        return result
    if result is None:
        return "no scan result"
    if result.scan_status is not ServerScanStatusEnum.COMPLETED:
        return f"no TLS connection ({_last_line(result.connectivity_error_trace)})"
    return ""


def _accepted(result: Any, attr: str) -> tuple[bool | None, list[str], str]:
    """(accepted?, accepted suite names, why unknown) for one protocol of one scan."""
    from sslyze import ScanCommandAttemptStatusEnum

    problem = _unreachable(result)
    if problem:
        return None, [], problem
    attempt = getattr(result.scan_result, attr)
    if attempt.status is not ScanCommandAttemptStatusEnum.COMPLETED or attempt.result is None:
        why = attempt.error_reason.value if attempt.error_reason else "not completed"
        return None, [], f"scan {why}: {_last_line(attempt.error_trace)}"
    suites = [s.cipher_suite.name for s in attempt.result.accepted_cipher_suites]
    return bool(suites), suites, ""


class TlsProtocols(Check):
    """TLS 1.0 and 1.1 refused and TLS 1.2 or newer offered, each refusal proven by a control.

    Before a refusal counts, the same sslyze scan runs against a throwaway server on 127.0.0.1
    that accepts TLS 1.0 and 1.1 (`@SECLEVEL=0`); if the scan does not see that server accept
    a protocol, a refusal of that protocol by the target is inconclusive (error), never a pass.
    An acceptance by the target is a fail on its own. Settings: `network_timeout_s` (default
    5, per connection). Needs sslyze (pip install sslyze).
    """

    meta = CheckMeta(
        id="tls.protocols",
        title="TLS 1.0 and 1.1 are refused",
        failure_title="Legacy TLS 1.0 or 1.1 is accepted",
        description=(
            "TLS 1.0 and 1.1 are deprecated (RFC 8996): they rely on SHA-1 and CBC constructions "
            "with known attacks and fail PCI DSS. See https://www.rfc-editor.org/rfc/rfc8996."
        ),
        remediation=RemediationSpec(
            text="Set the server's minimum protocol to TLS 1.2 (and offer TLS 1.3).",
            snippet="ssl_protocols TLSv1.2 TLSv1.3;   # nginx\n"
            "ctx.minimum_version = ssl.TLSVersion.TLSv1_2   # Python",
            link="https://ssl-config.mozilla.org/",
        ),
        category=Category.TRANSPORT,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=45,
        tags=("tls",),
        refs=("5",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Scan the target and the positive control together, then judge each protocol."""
        ep = endpoint(ctx)
        if isinstance(ep, str):
            yield self.skipped("*", ep)
            return
        try:
            import sslyze  # noqa: F401
        except ImportError:
            yield self.errored(
                ep.label, ErrorReason.CONFIG, "sslyze is not installed (pip install 'sslyze>=6')"
            )
            return
        # a quick handshake first: an endpoint that does not speak TLS at all fails fast here
        # instead of through sslyze's many probing attempts
        s: Settings = ctx.settings()
        wait = s.network_timeout_s
        try:
            handshake(ctx, ep, verify=False, timeout=wait, legacy=True)
        except HandshakeError as e:
            reason = ErrorReason.TIMEOUT if e.kind == "timeout" else ErrorReason.CONNECTIVITY
            yield self.errored(ep.label, reason, e.detail)
            return
        target = (ep.host, ep.port, ep.host if ep.is_ip else None)
        targets = {TARGET: target}
        control_problem = "no control scan ran"
        with contextlib.ExitStack() as stack:
            try:
                port = stack.enter_context(legacy_control_server())
                targets[CONTROL] = ("127.0.0.1", port, "127.0.0.1")
            except (OSError, ValueError) as e:
                # the local OpenSSL cannot serve TLS 1.0: refusals stay unproven
                control_problem = f"could not start a local TLS 1.0 server ({_last_line(e)})"
            scans = _scan(ctx, targets)
        result = scans.get(TARGET)
        problem = _unreachable(result)
        if problem:
            yield self.errored(ep.label, ErrorReason.CONNECTIVITY, f"{ep.label}: {problem}")
            return
        control = scans.get(CONTROL) or control_problem
        for subject, _, attr in LEGACY:
            yield self._judge(ep.label, subject, _accepted(result, attr), _accepted(control, attr))
        yield self._modern(ep.label, result)

    def _judge(
        self,
        label: str,
        subject: str,
        target: tuple[bool | None, list[str], str],
        control: tuple[bool | None, list[str], str],
    ) -> Result:
        """Fail on acceptance; pass on refusal only when the control accepted the protocol."""
        accepted, suites, why = target
        if accepted:
            return self.failed(
                subject,
                f"{label} accepts {subject} ({len(suites)} cipher suites, e.g. {suites[0]})",
                evidence={"accepted_cipher_suites": suites[:12]},
            )
        if accepted is None:
            return self.errored(subject, ErrorReason.CONNECTIVITY, f"{subject} on {label}: {why}")
        proven, _, control_why = control
        if not proven:
            reason = control_why or f"the local control server was not seen accepting {subject}"
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"cannot prove the probe offers {subject}: {reason}",
            )
        return self.passed(
            subject,
            f"{label} refuses {subject}",
            evidence={"positive_control": f"the same scan saw a local server accept {subject}"},
        )

    def _modern(self, label: str, result: Any) -> Result:
        """The target negotiates TLS 1.2 or newer."""
        from sslyze import TlsVersionEnum

        probe = getattr(result, "connectivity_result", None)
        best = getattr(probe, "highest_tls_version_supported", None)
        if best is None:
            return self.errored(MODERN, ErrorReason.CONNECTIVITY, f"{label}: no TLS version seen")
        name = best.name.replace("_", " ", 1).replace("_", ".")
        if best.value >= TlsVersionEnum.TLS_1_2.value:
            return self.passed(MODERN, f"{label} negotiates up to {name}", measured=name)
        return self.failed(
            MODERN, f"{label} negotiates at most {name}, below TLS 1.2", measured=name
        )
