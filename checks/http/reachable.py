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
from readyctl.httpread import DEADLINE, MAX_BODY_BYTES, BodyDeadline, read_body
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

MAX_HOPS = 5


class Settings(CheckSettings):
    """Settings of http.reachable."""

    path: str | None = Field(
        None,
        description="path the probe GETs, relative to base_url (default: the API map's "
        'liveness probe, api.health.live, else "/")',
    )
    request_timeout_s: float = Field(
        10.0, gt=0, description="budget of the request, headers and body included"
    )


class HttpReachable(Check):
    """A GET on the liveness path (else the base URL) gets an HTTP answer under 500.

    Settings: `path` (default: the API map's api.health.live, else "/": any HTTP answer
    under 500, a 404 included, proves the target is reachable), `request_timeout_s` (10).
    """

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
        """GET `path` (default: the map's liveness probe, else "/"), following same-origin
        redirects; the body is capped."""
        s: Settings = ctx.settings()
        path = s.path or ctx.api().health.live or "/"
        base = ctx.environment.base_url or ""
        label = f"{base}{path}"
        budget = ctx.timeout(s.request_timeout_s)
        client = ctx.http(timeout=budget)
        t0 = time.perf_counter()
        stop_at = time.monotonic() + budget
        target: str | httpx.URL = path
        chain: list[str] = []  # every URL asked, in order
        status: int | None = None  # set once an answer's headers arrived
        try:
            for _ in range(MAX_HOPS + 1):
                with client.stream("GET", target, extensions={DEADLINE: stop_at}) as resp:
                    status = resp.status_code
                    chain.append(str(resp.request.url))
                    nxt = resp.next_request.url if resp.next_request is not None else None
                    if nxt is None:
                        body = read_body(resp, cap=MAX_BODY_BYTES, stop_at=stop_at)
                        break
                evidence = {"status": status, "redirects": [_short(u) for u in chain]}
                if str(nxt) in chain:
                    trail = " -> ".join(_short(u) for u in [*chain, str(nxt)])
                    yield self.failed(
                        base,
                        f"{label} redirects in a loop ({trail})",
                        measured=len(chain),
                        evidence=evidence,
                    )
                    return
                first = httpx.URL(chain[0])
                if (nxt.scheme, nxt.host, nxt.port) != (first.scheme, first.host, first.port):
                    yield self.warned(
                        base,
                        f"{label} answered {status} to another origin ({_short(str(nxt))}); "
                        "not followed",
                        measured=status,
                        evidence={**evidence, "location": _short(str(nxt))},
                    )
                    return
                target = nxt
            else:
                yield self.failed(
                    base,
                    f"{label} redirects more than {MAX_HOPS} times "
                    f"({' -> '.join(_short(u) for u in chain[:4])} -> ...)",
                    measured=len(chain),
                    evidence={"redirects": [_short(u) for u in chain]},
                )
                return
        except httpx.ConnectError as e:
            detail = str(e) or type(e).__name__
            kind = (
                "TLS handshake failed"
                if "SSL" in detail or "certificate" in detail
                else ("connection failed")
            )
            yield self.failed(base, f"{label}: {kind} ({ctx.redactor.clip(detail, 160)})")
            return
        except httpx.TimeoutException as e:
            took = time.perf_counter() - t0
            what = (
                f"answered {status}, but the body was still arriving"
                if status is not None or isinstance(e, BodyDeadline)
                else "no answer"
            )
            yield self.errored(
                base,
                ErrorReason.TIMEOUT,
                f"{label} did not answer in time ({what} after {took:.3g} s)",
                evidence={"budget_s": round(budget, 3)},
            )
            return
        except httpx.RemoteProtocolError as e:
            yield self.failed(
                base, f"{label}: not a valid HTTP answer ({ctx.redactor.clip(e, 160)})"
            )
            return
        except httpx.HTTPError as e:
            yield self.failed(base, f"{label}: {type(e).__name__}: {ctx.redactor.clip(e, 160)}")
            return
        ms = round((time.perf_counter() - t0) * 1000, 1)
        evidence = {"status": status, "wire_bytes": body.wire_bytes}
        if len(chain) > 1:
            evidence["redirects"] = [_short(u) for u in chain]
        if body.truncated:
            yield self.failed(
                base,
                f"{label} answered {status} with a hostile body: {body.over}",
                measured=status,
                evidence={**evidence, "body_limit_bytes": MAX_BODY_BYTES},
            )
        elif status >= 500:
            yield self.failed(
                base, f"{label} answered {status}", measured=status, evidence=evidence
            )
        else:
            yield self.passed(
                base,
                f"{label} answered {status} in {ms:g} ms",
                measured=ms,
                unit=" ms",
                evidence=evidence,
            )


def _short(url: str) -> str:
    """A URL for a summary: redacted, then at most 100 characters."""
    return clip(url, 100, marker="…")
