"""health.endpoints: the health, liveness and readiness endpoints answer 200, and answer fast."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import Field
from readyctl.checks.health._http import Answer, TargetError, fetch

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
from readyctl.context import Context
from readyctl.redact import clip
from readyctl.result import Curve, Result


def p95(values: list[float]) -> float:
    """The 95th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Settings(CheckSettings):
    """Settings of health.endpoints."""

    paths: Annotated[tuple[str, ...], Field(min_length=1)] | None = Field(
        None,
        description="health paths to probe, each on its own (default: from the API map, "
        "api.health.live and api.health.ready)",
    )
    requests: int = Field(20, ge=1, description="GETs per path")
    p95_ms: float = Field(300.0, gt=0, description="fail limit of the p95 latency")
    good_ms: float | None = Field(
        None,
        gt=0,
        description="latency that scores 0.9 on the curve (default: p95_ms / 3, at most 100)",
    )
    warn_ms: float | None = Field(None, gt=0, description="warn limit of the p95 latency")
    request_timeout_s: float = Field(5.0, gt=0, description="budget of each request")
    max_body_bytes: int = Field(
        64_000, ge=1, description="largest acceptable answer (a probe answer must be small)"
    )


class HealthEndpoints(Check):
    """GET each health path `requests` times; every answer is 200 and the p95 is under the limit.

    Settings (checks: {health.endpoints: {...}}): `paths` (default: from the API map,
    api.health.live and api.health.ready; neither known: the check skips naming
    api.health.ready), `requests` per path (20), `p95_ms` fail limit (300), `good_ms` (100: the
    latency that scores 0.9 on the curve), `warn_ms` (optional warn limit),
    `request_timeout_s` (5), `max_body_bytes` (64000: a probe answer must be small).
    """

    meta = CheckMeta(
        id="health.endpoints",
        title="Health endpoints answer 200 quickly",
        failure_title="Health endpoints are missing or slow",
        description=(
            "Load balancers and orchestrators route traffic and restart instances from the "
            "health, liveness and readiness probes; a missing or slow probe means traffic to a "
            "dead instance or restarts of a healthy one. See "
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/."
        ),
        remediation=RemediationSpec(
            text="Serve cheap liveness (process up) and readiness (dependencies reachable) "
            "probes, such as GET /health/live and /health/ready, that answer 200 in well under "
            "the probe timeout; keep them free of auth and heavy queries, and name them in the "
            "API map (api.health.live, api.health.ready).",
            snippet="@app.get('/health/ready')\nasync def ready():\n"
            "    await db.execute('SELECT 1')\n    return {'status': 'ready'}",
            link="https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/",
        ),
        category=Category.OPERATIONS,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        # a latency measurement: alone, after the parallel phase, so readyctl's own traffic
        # (logins, TLS scans) does not inflate the target's p95
        exclusive=True,
        order=1,
        timeout_s=60,
        tags=("health",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per path: status of every answer, then the p95 latency on a curve."""
        s: Settings = ctx.settings()
        paths = list(s.paths) if s.paths is not None else ctx.api().public_paths()
        if not paths:
            raise RouteUnknown("health.ready", ctx.env_name, "nor health.live")
        n = s.requests
        limit = s.p95_ms
        good = s.good_ms if s.good_ms is not None else min(100.0, limit / 3)
        warn = s.warn_ms
        self._timeout = s.request_timeout_s
        self._cap = s.max_body_bytes
        client = ctx.http(timeout=10)
        for path in paths:
            ctx.check_deadline()
            yield self._probe(ctx, client, path, n, limit, good, warn)

    def _probe(
        self,
        ctx: Context,
        client: httpx.Client,
        path: str,
        n: int,
        limit: float,
        good: float,
        warn: float | None,
    ) -> Result:
        """Probe one path."""
        latencies: list[float] = []
        bad: dict[int, int] = {}
        first_bad = None
        for _ in range(n):
            ctx.check_deadline()
            try:
                answer = fetch(ctx, client, "GET", path, cap=self._cap, budget_s=self._timeout)
            except TargetError as e:
                return self.errored(path, e.reason, f"GET {path}: {e.detail}")
            if answer.truncated:
                return self.failed(
                    path,
                    f"GET {path} answered {answer.status}: "
                    f"{answer.over or 'body over the cap'} (a probe answer must be small)",
                    measured=self._cap,
                    evidence={
                        "status": answer.status,
                        "body_limit_bytes": self._cap,
                        "content_encoding": answer.headers.get("content-encoding"),
                        "body": answer.snippet(100),
                    },
                )
            if answer.status != 200:
                bad[answer.status] = bad.get(answer.status, 0) + 1
                first_bad = first_bad or answer
                if not latencies and len(bad) == 1 and bad[answer.status] >= 3:
                    break  # consistently failing: no need to spend the whole budget
                continue
            latencies.append(answer.elapsed_ms)
        if bad:
            tried = len(latencies) + sum(bad.values())
            codes = ", ".join(f"{code} x{count}" for code, count in sorted(bad.items()))
            evidence = {
                "statuses": {str(k): v for k, v in bad.items()},
                "body": first_bad.snippet() if first_bad else "",
            }
            where = _redirect(path, first_bad)
            if where is not None:
                evidence["location"] = where
                loop = urlsplit(where).path == urlsplit(path).path
                codes += (
                    "; it redirects to itself, a loop" if loop else f"; it redirects to {where}"
                )
            return self.failed(
                path,
                f"GET {path} did not answer 200 on {sum(bad.values())} of {tried} requests "
                f"({codes})",
                measured=sum(bad.values()),
                threshold=0,
                evidence=evidence,
            )
        value = round(p95(latencies), 1)
        return self.measure(
            path,
            value,
            curve=Curve(good, limit),
            fail_at=limit,
            warn_at=warn,
            unit="ms",
            summary=f"GET {path} answered 200 {n} times with a p95 of {value:g} ms "
            f"(limit {limit:g} ms)",
            evidence={
                "requests": n,
                "p50_ms": round(sorted(latencies)[len(latencies) // 2], 1),
                "max_ms": round(max(latencies), 1),
            },
        )


def _redirect(path: str, answer: Answer | None) -> str | None:
    """Where a redirect answer points (resolved against `path`, shortened), else None."""
    if answer is None or not 300 <= answer.status < 400 or "location" not in answer.headers:
        return None
    return clip(urljoin(path, answer.headers["location"].strip()), 100)
