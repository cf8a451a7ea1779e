"""load.thresholds: under the load profile, latency percentiles, error rate and throughput hold."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag
from readyctl.checks.load._run import (
    SETTINGS_ID,
    LoadConfigError,
    LoadSettings,
    Measured,
    measure,
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
from readyctl.loadrun import EndpointStats, LoadCancelled, LoadRunError
from readyctl.result import Curve, ErrorReason, Result

LATENCY = ("p50_ms", "p95_ms", "p99_ms")
MAX_TABLE_ROWS = 50
MAX_TIMELINE_ROWS = 240
METRICS = (*LATENCY, "error_rate", "rps")
LABEL = {
    "p50_ms": "p50 latency",
    "p95_ms": "p95 latency",
    "p99_ms": "p99 latency",
    "error_rate": "error rate",
    "rps": "throughput",
}
UNIT = {"p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms", "error_rate": "%", "rps": "req/s"}
_P95 = {"fail": 2000, "warn": 1000, "good": 300, "poor": 2000}
_ERRORS = {"fail": 0.05, "warn": 0.01, "good": 0.001, "poor": 0.05}
DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {
    "overall": {
        "p50_ms": {"fail": 1000, "warn": 500, "good": 150, "poor": 1000},
        "p95_ms": dict(_P95),
        "p99_ms": {"fail": 4000, "warn": 2500, "good": 800, "poor": 4000},
        "error_rate": dict(_ERRORS),
        "rps": {"fail": "40%", "warn": "60%"},
    },
    "*": {"p95_ms": dict(_P95), "error_rate": dict(_ERRORS)},
}
METRIC_DEFAULTS: dict[str, dict[str, Any]] = {
    "p50_ms": {"good": 150, "poor": 1000},
    "p95_ms": {"good": 300, "poor": 2000},
    "p99_ms": {"good": 800, "poor": 4000},
    "error_rate": {"good": 0.001, "poor": 0.05},
    "rps": {},
}


Metric = Literal["p50_ms", "p95_ms", "p99_ms", "error_rate", "rps"]
_PERCENT = re.compile(r"^\s*\d+(\.\d+)?\s*%\s*$")


def _limit_ok(value: float | str) -> float | str:
    """A number, or a percentage such as '5%'."""
    if isinstance(value, str) and not _PERCENT.match(value):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither a number nor a percentage like '5%'") from None
    return value


# a number (ms, a fraction for error_rate, req/s for rps) or a percentage (error_rate, rps)
Limit = Annotated[float | str, AfterValidator(_limit_ok)]


class ThresholdLevels(CheckSettings):
    """Limits of one metric; unset keys keep the defaults."""

    fail: Limit | None = Field(None, description="fail beyond this (null: never)")
    warn: Limit | None = Field(None, description="warn beyond this (null: never)")
    good: Limit | None = Field(None, description="the value scoring 0.9")
    poor: Limit | None = Field(None, description="the value scoring 0.5")


def _limits_kind(value: Any) -> str:
    return "fail/warn/good/poor" if isinstance(value, Mapping | ThresholdLevels) else "fail level"


# one limit (the fail level) or the levels of a metric
MetricLimits = Annotated[
    Annotated[ThresholdLevels, Tag("fail/warn/good/poor")] | Annotated[Limit, Tag("fail level")],
    Discriminator(_limits_kind),
]


class Settings(LoadSettings):
    """Settings of load.thresholds (the load run's settings; load.regression shares them)."""

    thresholds: dict[str, dict[Metric, MetricLimits | None]] = Field(
        default_factory=dict,
        description="{overall|*|<endpoint name>: {metric: limit or {fail, warn, good, poor}}}, "
        "laid over the defaults (null switches a metric off)",
    )
    min_requests: int = Field(20, ge=0, description="requests an endpoint needs to be judged")
    max_endpoints: int = Field(
        30, ge=0, description="the busiest endpoints that get results (the rest: the table only)"
    )


def _level(metric: str, value: Any, expected: float | None) -> float | None:
    """A threshold value in the unit results use (error rate in %, rps absolute)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        pct = float(value.strip()[:-1])
        if metric == "error_rate":
            return pct
        if metric == "rps":
            return None if expected is None else round(expected * pct / 100, 2)
        raise LoadConfigError(f"{metric}: a percentage only fits error_rate and rps")
    number = float(value)
    return number * 100 if metric == "error_rate" else number


def merged_thresholds(raw: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Defaults with the configured thresholds laid over them (null switches a metric off)."""
    out = {k: {m: dict(v) for m, v in d.items()} for k, d in DEFAULT_THRESHOLDS.items()}
    for scope, metrics in (raw or {}).items():
        if not isinstance(metrics, Mapping):
            raise LoadConfigError(f"thresholds.{scope} must map metric names to limits")
        target = out.setdefault(str(scope), {})
        for metric, spec in metrics.items():
            if isinstance(spec, ThresholdLevels):
                spec = spec.model_dump(exclude_unset=True)
            if metric not in METRICS:
                raise LoadConfigError(
                    f"thresholds.{scope}: unknown metric {metric!r} (use {', '.join(METRICS)})"
                )
            if spec is None:
                target[metric] = None
            elif isinstance(spec, Mapping):
                target[metric] = {**(target.get(metric) or METRIC_DEFAULTS[metric]), **spec}
            else:
                target[metric] = {**METRIC_DEFAULTS[metric], "fail": spec, "warn": None}
    return out


class LoadThresholds(Check):
    """Run the load profile (locust subprocess); one result per threshold (endpoint/metric).

    Settings: `profiles` (list of {name, users, think_time_s [min, max] or arrival
    {sessions_per_hour, time_scale}, on_start, tasks [{weight, method, path, json, expect,
    capture} or {weight, steps: [...]}]}; paths take {captured} fields; default: a read-only
    mix derived from the API map, GET the first page of each api.lists route and api.me with
    the session, 10 users; a map with neither skips naming api.lists; the managed demo's
    default shape brings its counsel flow), `users` (scale the profiles to this total),
    `spawn_rate` (50/s), `duration` (8 s), `max_users` (1000), `workers` (0:
    one locust process; N: a local master and N workers), `master_host`/`master_port` (join an
    existing locust master with `workers` local workers instead; the master runs the same
    locustfile and decides users and run time, `duration` bounds how long readyctl waits;
    stats come from readyctl's own workers), `locustfile` (run your own;
    `users` defaults to 10, tokens are in READYCTL_LOAD_SPEC's tokens_file when `login: true`),
    `users_file` (CSV email,password or JSON, for logging users in up front; the managed demo
    provides its seeded users), `logins` (how many, default enough to keep each under
    `requests_per_login_per_minute`, 100), `request_timeout_s` (half the duration, 5..30; a
    request that takes longer counts as failed), `min_requests` (20 per endpoint to judge it),
    `max_endpoints` (30: the busiest endpoints get results, the rest only the table),
    `thresholds` ({overall|*|<endpoint name>: {p50_ms|p95_ms|p99_ms|error_rate|rps: limit or
    {fail, warn, good, poor}}}; error_rate as a fraction or '5%', rps absolute or a percentage
    of the throughput the profiles aim at).
    """

    meta = CheckMeta(
        id="load.thresholds",
        title="Latency and errors hold under load",
        failure_title="Latency or errors break thresholds under load",
        description=(
            "A release that is correct but slow or flaky under 100 concurrent users fails its "
            "users on the first busy evening; the percentile and error-rate limits catch it "
            "before the deploy. See https://docs.locust.io/en/stable/."
        ),
        remediation=RemediationSpec(
            text="Find the slow or failing endpoint in the percentile table and timeline, fix it "
            "(queries, pool size, upstream timeouts), or adjust a threshold that is wrong.",
            snippet="checks:\n  load.thresholds:\n    duration: 30s\n    thresholds:\n"
            "      overall: {p95_ms: 800, error_rate: '1%'}\n"
            "      'POST /v1/orders/{order_id}/items': {p95_ms: 2000}",
            link="https://docs.locust.io/en/stable/configuration.html",
        ),
        category=Category.LOAD,
        severity=Severity.HIGH,
        requires=(Capability.HTTP, Capability.LOAD),
        safety=Safety.LOAD,
        exclusive=True,
        order=5,
        timeout_s=900,
        tags=("load", "seed"),
        refs=("6",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Run the load once, then judge every configured threshold."""
        s: Settings = ctx.settings(SETTINGS_ID)
        try:
            thresholds = merged_thresholds(s.thresholds)
            measured = measure(ctx)
        except LoadConfigError as e:
            yield self.errored("*", ErrorReason.CONFIG, str(e))
            return
        except LoadCancelled as e:
            yield self.errored("*", ErrorReason.TIMEOUT, str(e))
            return
        except LoadRunError as e:
            yield self.errored("*", ErrorReason.INCONCLUSIVE, str(e))
            return
        try:
            results = list(
                self._judge(
                    measured,
                    thresholds,
                    s.min_requests,
                    s.max_endpoints,
                )
            )
        except (LoadConfigError, ValueError) as e:
            yield self.errored("*", ErrorReason.CONFIG, f"thresholds: {e}")
            return
        yield from results

    def _judge(
        self,
        m: Measured,
        thresholds: dict[str, dict[str, Any]],
        min_requests: int,
        max_endpoints: int = 30,
    ) -> Iterator[Result]:
        stats = m.stats
        scopes: list[tuple[str, EndpointStats | None]] = [("overall", stats.overall)]
        busiest = sorted(stats.endpoints.values(), key=lambda e: (-e.requests, e.name))
        named = {k for k in thresholds if k not in ("overall", "*")}
        names = sorted({e.name for e in busiest[:max_endpoints]} | named)
        scopes += [(n, stats.endpoints.get(n)) for n in names]
        out: list[Result] = []
        for scope, es in scopes:
            spec = thresholds.get("overall") if scope == "overall" else thresholds.get("*") or {}
            if scope != "overall":
                spec = {**(spec or {}), **(thresholds.get(scope) or {})}
            for metric in METRICS:
                limits = (spec or {}).get(metric)
                if not limits:
                    continue
                subject = f"{scope}/{metric}"
                if es is None:
                    out.append(
                        self.errored(
                            subject,
                            ErrorReason.INCONCLUSIVE,
                            f"no requests named {scope} were recorded",
                        )
                    )
                elif scope != "overall" and es.requests < min_requests:
                    out.append(
                        self.skipped(
                            subject,
                            f"{scope} had only {es.requests} requests; "
                            f"{min_requests} are needed to judge it",
                        )
                    )
                else:
                    result = self._one(subject, scope, metric, limits, es, m)
                    if result is not None:
                        out.append(result)
        # the run's table and timeline go on one result: the overall p95 when there is one
        measured = [i for i, r in enumerate(out) if r.measured is not None]
        headline = next((i for i in measured if out[i].subject == "overall/p95_ms"), None)
        if headline is None and measured:
            headline = measured[0]
        if headline is not None:
            out[headline] = _with_evidence(out[headline], _run_evidence(m))
        yield from out

    def _one(
        self,
        subject: str,
        scope: str,
        metric: str,
        limits: Mapping[str, Any],
        es: EndpointStats,
        m: Measured,
    ) -> Result | None:
        expected = m.expected_rps
        fail = _level(metric, limits.get("fail"), expected)
        warn = _level(metric, limits.get("warn"), expected)
        if fail is None and warn is None:
            return None
        if metric == "rps":
            value: float = round(es.rps, 2)
            poor = fail if fail is not None else warn
            assert poor is not None
            good = _level(metric, limits.get("good"), expected) or (expected or poor * 2)
            good = max(good, poor * 1.01)
        else:
            raw = es.error_rate * 100 if metric == "error_rate" else getattr(es, metric)
            if raw is None:
                return None
            value = round(float(raw), 2)
            good = _level(metric, limits.get("good"), expected) or 1.0
            poor = _level(metric, limits.get("poor"), expected) or (fail or warn or 1.0) * 2
            good = min(good, poor * 0.99)
        unit = UNIT[metric]
        summary = _summary(scope, metric, value, fail, warn, es, m)
        return self.measure(
            subject,
            value,
            curve=Curve(max(good, 1e-6), max(poor, 1e-6)),
            summary=summary,
            fail_at=fail,
            warn_at=warn,
            unit=unit,
            evidence={"requests": es.requests, "failures": es.failures},
        )


def _fmt(metric: str, v: float) -> str:
    if metric == "error_rate":
        return f"{v:.2f}%"
    if metric == "rps":
        return f"{v:.1f} req/s"
    return f"{v:.0f} ms"


def _summary(
    scope: str,
    metric: str,
    value: float,
    fail: float | None,
    warn: float | None,
    es: EndpointStats,
    m: Measured,
) -> str:
    label = LABEL[metric]
    limit = fail if fail is not None else warn
    if metric == "rps":
        aim = f" of the {m.expected_rps:.1f} req/s the profiles aim at" if m.expected_rps else ""
        return (
            f"{scope} {label} is {_fmt(metric, value)} over {es.requests} requests "
            f"(minimum {_fmt(metric, limit or 0)}{aim})"
        )
    of = f" of {es.requests} requests" if metric == "error_rate" else ""
    return f"{scope} {label} is {_fmt(metric, value)}{of} (limit {_fmt(metric, limit or 0)})"


def _run_evidence(m: Measured) -> dict[str, Any]:
    """The percentile table, the timeline and how the run went."""
    st = m.stats
    table = st.percentiles()
    if len(table) > MAX_TABLE_ROWS:
        keep = sorted((k for k in table if k != "overall"), key=lambda k: -table[k]["requests"])
        table = {k: table[k] for k in sorted(keep[: MAX_TABLE_ROWS - 1])} | {
            "overall": table["overall"]
        }
    timeline = st.timeline
    if len(timeline) > MAX_TIMELINE_ROWS:
        step = len(timeline) / MAX_TIMELINE_ROWS
        timeline = [timeline[int(i * step)] for i in range(MAX_TIMELINE_ROWS)] + [timeline[-1]]
    ev: dict[str, Any] = {
        "percentiles": table,
        "timeline": timeline,
        "run": {**m.info, "wall_s": st.wall_s, "source": st.source},
    }
    if m.expected_rps:
        ev["run"]["expected_rps"] = round(m.expected_rps, 1)
    if st.processes:
        ev["processes"] = st.processes
    if st.failures:
        ev["top_failures"] = st.failures
    return ev


def _with_evidence(r: Result, extra: dict[str, Any]) -> Result:
    import dataclasses

    return dataclasses.replace(r, evidence={**dict(r.evidence), **extra})
