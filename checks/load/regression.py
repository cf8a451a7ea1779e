"""load.regression: latency, error rate and throughput did not regress against the baseline run."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from readyctl.checks.load._run import (
    LoadConfigError,
    Measured,
    history_dir,
    measure,
)

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
from readyctl.loadrun import EndpointStats, LoadCancelled, LoadRunError
from readyctl.result import ErrorReason, Result

SOURCE_CHECK = "load.thresholds"
NO_BASELINE = (
    "no baseline run with load results of this shape yet; the next run compares with this one"
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


Found = tuple[Path, dict[str, float], str | None]


def find_baseline(ctx: Context, spec: str, want: str | None = None) -> Found | None:
    """`last` (the newest kept run of this environment with load results of the same shape)
    or a report path."""
    if spec != "last":
        path = ctx.resolve(spec)
        data = _load(path)
        if data is None:
            raise LoadConfigError(f"baseline {path} is not a readyctl report")
        values = baseline_values(data)
        return (path, values, baseline_shape(data)) if values else None
    folder = history_dir(ctx)
    if not folder.is_dir():
        return None
    runs = []
    for p in folder.glob("*.json"):
        data = _load(p)
        if data is None:
            continue
        env = (data.get("environment") or {}).get("name")
        if env not in (None, ctx.env_name):
            continue
        values = baseline_values(data)
        got = baseline_shape(data)
        if values and (want is None or got is None or got == want):
            runs.append((str(data.get("started_at") or ""), p.name, p, values, got))
    if not runs:
        return None
    runs.sort(key=lambda r: (r[0], r[1]))
    _, _, path, values, got = runs[-1]
    return path, values, got


def current_value(es: EndpointStats, metric: str) -> float | None:
    """The measurement in the unit load.thresholds reports."""
    if metric == "error_rate":
        return round(es.error_rate * 100, 2)
    if metric == "rps":
        return round(es.rps, 2)
    value = getattr(es, metric)
    return None if value is None else round(float(value), 2)


class LoadRegression(Check):
    """Compare this run's load measurements with the baseline run's, beyond a tolerance.

    Settings: `baseline` ('last': the newest run of this environment under the history
    directory that has load.thresholds results; or a path to a readiness.json),
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

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per metric present in both runs."""
        s = ctx.settings()
        spec = str(s.get("baseline", "last"))
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
        path, base, got = found
        if got is not None and want is not None and got != want:
            users = json.loads(got).get("users")
            yield self.skipped(
                "*",
                f"the baseline {path.name} ran a different load ({users} users, other profiles "
                f"or counts); compare like with like",
            )
            return
        yield from self._compare(measured, base, path, s)

    def _compare(
        self, m: Measured, base: Mapping[str, float], path: Path, s: Mapping[str, Any]
    ) -> Iterator[Result]:
        tol = float(s.get("tolerance", 1.0))
        min_ms = float(s.get("min_delta_ms", 250))
        err_delta = float(s.get("error_rate_delta", 2))
        rps_tol = float(s.get("rps_tolerance", 0.3))
        min_requests = int(s.get("min_requests", 20))
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
            ev = {"baseline": before, "baseline_report": path.name, "requests": es.requests}
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
