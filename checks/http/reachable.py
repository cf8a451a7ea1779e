"""http.reachable: the target answers HTTP at its base URL (the probe every HTTP check needs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
from pydantic import Field

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
    """Settings of http.reachable."""

    path: str = Field("/health", description="path the probe GETs (relative to base_url)")


class HttpReachable(Check):
    """A GET on the health path gets an HTTP answer under 500."""

    meta = CheckMeta(
        id="http.reachable",
        title="Target answers HTTP",
        failure_title="Target does not answer HTTP",
        description=(
            "Every check against a running API needs it to answer; when it does not, the "
            "dependent checks are blocked with this one root cause instead of failing one by one."
        ),
        remediation=RemediationSpec(
            text="Check base_url, DNS, the TLS certificate (ca_bundle for a private CA) and that "
            "the service is up.",
        ),
        category=Category.HTTP,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        retryable=True,
        timeout_s=20,
        tags=("probe",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One GET on `path` (default /health)."""
        s: Settings = ctx.settings()
        path = s.path
        base = ctx.environment.base_url or ""
        client = ctx.http(timeout=10)
        t0 = time.perf_counter()
        try:
            resp = client.get(path)
        except httpx.ConnectError as e:
            detail = str(e) or type(e).__name__
            kind = (
                "TLS handshake failed"
                if "SSL" in detail or "certificate" in detail
                else ("connection failed")
            )
            yield self.failed(base, f"{base}{path}: {kind} ({detail[:160]})")
            return
        except httpx.TimeoutException:
            yield self.errored(base, ErrorReason.TIMEOUT, f"{base}{path} did not answer in time")
            return
        except httpx.HTTPError as e:
            yield self.failed(base, f"{base}{path}: {type(e).__name__}: {str(e)[:160]}")
            return
        ms = round((time.perf_counter() - t0) * 1000, 1)
        if resp.status_code >= 500:
            yield self.failed(
                base, f"{base}{path} answered {resp.status_code}", measured=resp.status_code
            )
        else:
            yield self.passed(
                base,
                f"{base}{path} answered {resp.status_code} in {ms:g} ms",
                measured=ms,
                unit=" ms",
            )
