"""load.regression: latency, error rate and throughput did not regress against the baseline run."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field
from readyctl.checks.load._run import (
    LoadConfigError,
    Measured,
    history_dir,
    measure,
)

from readyctl import history as _history
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
from readyctl.result import ErrorReason, Result

SOURCE_CHECK = "load.thresholds"
NO_BASELINE = (
    "no passing run of this environment with load results of this shape was found yet (only "
    "a run whose gate passed is a baseline); the next passing run becomes the baseline, or pin "
    "one with `readyctl baseline pin RUN`"
)
METRICS = ("p50_ms", "p95_ms", "p99_ms", "error_rate", "rps")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("results"), list) else None


def shape(run: Mapping[str, Any] | None) -> str | None:
    """What makes two load runs comparable: total users and the profiles' shape."""
    if not isinstance(run, Mapping) or "users" not in run:
        return None
    return json.dumps({"users": run.get("users"), "profiles": run.get("profiles")}, sort_keys=True)


def baseline_shape(data: Mapping[str, Any]) -> str | None:
    """The load shape a baseline report ran (from load.thresholds' run evidence)."""
    for r in data.get("results") or []:
        if isinstance(r, Mapping) and r.get("id") == SOURCE_CHECK:
            ev = r.get("evidence")
            if isinstance(ev, Mapping) and isinstance(ev.get("run"), Mapping):
                return shape(ev["run"])
    return None


def baseline_values(data: Mapping[str, Any]) -> dict[str, float]:
    """subject -> measured value of the baseline's load.thresholds results."""
    out: dict[str, float] = {}
    for r in data.get("results") or []:
        if not isinstance(r, Mapping) or r.get("id") != SOURCE_CHECK:
            continue
        subject, value = r.get("subject"), r.get("measured")
        metric = str(subject).rsplit("/", 1)[-1]
        if isinstance(subject, str) and metric in METRICS and isinstance(value, int | float):
            out[subject] = float(value)
    return out


Found = tuple[Path, dict[str, float], str | None, bool]  # path, values, shape, pinned


def find_baseline(ctx: Context, spec: str, want: str | None = None) -> Found | None:
    """`last` (the run pinned for this environment, else the newest kept run of this
    environment whose gate passed, with load results of the same shape) or a report path."""
    if spec != "last":
        path = ctx.resolve(spec)
        data = _load(path)
        if data is None:
            raise LoadConfigError(f"baseline {path} is not a readyctl report")
        values = baseline_values(data)
        return (path, values, baseline_shape(data), False) if values else None
    folder = history_dir(ctx)
    if not folder.is_dir():
        return None

    def usable(data: Mapping[str, Any]) -> bool:
        env = (data.get("environment") or {}).get("name")
        return env in (None, ctx.env_name) and bool(baseline_values(data))

    def same_shape(data: Mapping[str, Any]) -> bool:
        got = baseline_shape(data)
        return usable(data) and (want is None or got is None or got == want)

    try:  # a pin wins (even of another shape: run() then says so); else the newest passing run
        pins = [b for b in _history.pinned_for_environment(folder, ctx.env_name) if usable(b.data)]
    except (OSError, ValueError) as e:
        raise LoadConfigError(str(e)) from None
    found = pins[0] if pins else _history.newest_passing(folder, same_shape)
    if found is None:
        return None
    return found.path, baseline_values(found.data), baseline_shape(found.data), found.pinned


def current_value(es: EndpointStats, metric: str) -> float | None:
    """The measurement in the unit load.thresholds reports."""
    if metric == "error_rate":
        return round(es.error_rate * 100, 2)
    if metric == "rps":
        return round(es.rps, 2)
    value = getattr(es, metric)
    return None if value is None else round(float(value), 2)


class Settings(CheckSettings):
    """Settings of load.regression (the load run itself is load.thresholds')."""

    baseline: str = Field(
        "last",
        description="'last' (the pinned run, else the newest passing run of this "
        "environment with load results) or a path to a readiness.json",
    )
    tolerance: float = Field(
        1.0, ge=0, description="latency may grow by this fraction (1.0: double)"
    )
    min_delta_ms: float = Field(
        250.0, ge=0, description="...and by at least this many ms before it counts"
    )
    error_rate_delta: float = Field(
        2.0, ge=0, description="error rate may rise by this many percentage points"
    )
    rps_tolerance: float = Field(
        0.3, ge=0, le=1, description="throughput may drop by this fraction"
    )
    min_requests: int = Field(20, ge=0, description="requests an endpoint needs to be compared")


class LoadRegression(Check):
    """Compare this run's load measurements with the baseline run's, beyond a tolerance.

    Settings: `baseline` ('last': the run pinned with `readyctl baseline pin`, else the newest
    run of this environment under the history directory whose gate passed and that has
    load.thresholds results; or a path to a readiness.json),
    `tolerance` (1.0: latency may double...), `min_delta_ms` (250: ...and by at least this
    much before it counts), `error_rate_delta` (2: percentage points), `rps_tolerance` (0.3:
    throughput may drop 30%), `min_requests` (20 per endpoint). The run's profile comes from
    load.thresholds' settings; both checks share one load run.
    """

    meta = CheckMeta(
        id="load.regression",
        title="No load regression against the baseline",
        failure_title="Load performance regressed since the baseline",
        description=(
            "Thresholds catch the absurd; a baseline catches the slow creep, a p95 that doubled "
            "since the last release. See https://docs.locust.io/en/stable/retrieving-stats.html."
        ),
        remediation=RemediationSpec(
            text="Compare the endpoint's percentiles with the baseline run's report, find the "
            "change that slowed it, or record a new baseline once the change is intended.",
            snippet="checks:\n  load.regression:\n    baseline: last\n    tolerance: 0.3",
            link="https://docs.locust.io/en/stable/retrieving-stats.html",
        ),
        category=Category.LOAD,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP, Capability.LOAD),
        safety=Safety.LOAD,
        exclusive=True,
        order=6,
        timeout_s=900,
        tags=("load", "baseline"),
        refs=("6",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per metric present in both runs."""
        s: Settings = ctx.settings()
        spec = s.baseline
        try:
            if find_baseline(ctx, spec) is None:
                yield self.skipped("*", NO_BASELINE)
                return
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
        want = shape(measured.info)
        try:
            found = find_baseline(ctx, spec, want)
        except LoadConfigError as e:
            yield self.errored("*", ErrorReason.CONFIG, str(e))
            return
        if found is None:
            yield self.skipped("*", NO_BASELINE)
            return
        path, base, got, pinned = found
        if got is not None and want is not None and got != want:
            users = json.loads(got).get("users")
            yield self.skipped(
                "*",
                f"the baseline {path.name} ran a different load ({users} users, other profiles "
                f"or counts); compare like with like",
            )
            return
        yield from self._compare(measured, base, path, s, pinned)

    def _compare(
        self,
        m: Measured,
        base: Mapping[str, float],
        path: Path,
        s: Settings,
        pinned: bool = False,
    ) -> Iterator[Result]:
        tol = s.tolerance
        min_ms = s.min_delta_ms
        err_delta = s.error_rate_delta
        rps_tol = s.rps_tolerance
        min_requests = s.min_requests
        produced = 0
        for subject in sorted(base, key=lambda k: (not k.startswith("overall/"), k)):
            scope, metric = subject.rsplit("/", 1)
            es = m.stats.overall if scope == "overall" else m.stats.endpoints.get(scope)
            if es is None or (scope != "overall" and es.requests < min_requests):
                continue
            now = current_value(es, metric)
            if now is None:
                continue
            before = base[subject]
            ev = {
                "baseline": before,
                "baseline_report": path.name,
                "baseline_pinned": pinned,
                "requests": es.requests,
            }
            produced += 1
            if metric == "rps":
                floor = round(before * (1 - rps_tol), 2)
                summary = (
                    f"{scope} throughput is {now:.1f} req/s against {before:.1f} in the "
                    f"baseline (may drop to {floor:.1f})"
                )
                bad = now < floor
                limit: float = floor
                unit = "req/s"
            elif metric == "error_rate":
                limit = round(before + err_delta, 2)
                summary = (
                    f"{scope} error rate is {now:.2f}% against {before:.2f}% in the baseline "
                    f"(may rise to {limit:.2f}%)"
                )
                bad = now > limit
                unit = "%"
            else:
                limit = round(max(before * (1 + tol), before + min_ms), 1)
                change = f"{(now - before) / before * 100:+.0f}%" if before > 0 else "new"
                summary = (
                    f"{scope} {metric.split('_')[0]} is {now:.0f} ms against {before:.0f} ms in "
                    f"the baseline ({change}; may rise to {limit:.0f} ms)"
                )
                bad = now > limit
                unit = "ms"
            kw: dict[str, Any] = {"measured": now, "threshold": limit, "unit": unit, "evidence": ev}
            yield (
                self.failed(f"{subject}", summary, **kw)
                if bad
                else self.passed(subject, summary, **kw)
            )
        if not produced:
            yield self.skipped(
                "*", f"the baseline {path.name} measured none of this run's endpoints"
            )
