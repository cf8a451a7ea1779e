"""promtool input series for a mapped condition at a given value of its measure.

Counters start at 0 and grow linearly, so every rate(), irate() and increase() over them sees
the same per-second rates from the second sample on, whatever the rule's range; ratios of
rates are exact. Gauges are constant. A histogram's bucket counters are laid out so that the
declared statistic (p95 by default, through histogram_quantile's linear interpolation on the
team's own bucket bounds) equals the wanted latency, and `_sum / _count` is that latency too.
"""

from __future__ import annotations

from typing import Any

from readyctl.alerts.mapping import (
    SEEDS,
    Bytes,
    Counter,
    CounterRatio,
    Gauge,
    Histogram,
    PrometheusCondition,
    Up,
)

REQUESTS_PER_S = 10.0  # traffic behind ratio and histogram series
DISK_BYTES = 100e9
MEMORY_BYTES = 16e9
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class NotMeasurable(ValueError):
    """The mapped series cannot express this value (a histogram's buckets are too coarse)."""


def selector(metric: str, labels: dict[str, str]) -> str:
    """`metric{a="1",b="2"}` with label values escaped."""
    if not labels:
        return metric
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    """A number as promtool's series notation reads it (no exponent surprises)."""
    x = round(x, 6)
    if x == int(x):
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _counter(per_step: float, steps: int) -> str:
    return f"0+{_num(per_step)}x{steps}"


def _gauge(value: float, steps: int) -> str:
    return f"{_num(value)}+0x{steps}"


def _le(bound: float) -> str:
    return _num(bound)


def reachable(cond: PrometheusCondition, value: float) -> float:
    """`value`, or the farthest a histogram's buckets can show (just under its last bound)."""
    if isinstance(cond, Histogram) and value > cond.buckets[-1]:
        return cond.buckets[-1] * 0.99
    return value


def histogram_fractions(
    buckets: tuple[float, ...], target: float, quantile: float | None
) -> list[float]:
    """Cumulative share of observations at or below each finite bound, such that
    histogram_quantile(`quantile`) over the buckets is `target` (for `quantile` None, the
    mean: every observation in the bucket holding `target`)."""
    bounds = list(buckets)
    j = next((i for i, b in enumerate(bounds) if b >= target), None)
    if j is None:
        raise NotMeasurable(
            f"its buckets end at le={_num(bounds[-1])} s: {target:g} s cannot be told apart"
        )
    a = bounds[j - 1] if j > 0 else 0.0
    b = bounds[j]
    if quantile is None:
        return [0.0 if i < j else 1.0 for i in range(len(bounds))]
    r = (target - a) / (b - a)
    if r <= quantile:
        if j == 0:
            raise NotMeasurable(
                f"its first bucket (le={_num(b)} s) is too coarse to place {target:g} s"
            )
        below = (quantile - r) / (1 - r)  # share at or below a, the rest in (a, b]
        return [0.0 if i < j - 1 else below if i == j - 1 else 1.0 for i in range(len(bounds))]
    inside = quantile / r  # share in (a, b], the rest above b
    return [0.0 if i < j else inside for i in range(len(bounds))]


def generate(
    name: str, cond: PrometheusCondition, value: float, steps: int, interval_s: float
) -> list[dict[str, Any]]:
    """promtool `input_series` putting condition `name`'s measure at `value` for `steps`
    intervals of `interval_s` seconds. Raises NotMeasurable when the mapping cannot say it."""
    labels = dict(cond.labels)
    per_step = REQUESTS_PER_S * interval_s
    out: list[dict[str, Any]] = []

    def add(metric: str, extra: dict[str, str], values: str) -> None:
        out.append({"series": selector(metric, {**labels, **extra}), "values": values})

    if isinstance(cond, CounterRatio):
        if cond.error_metric:
            add(cond.metric, {}, _counter(per_step, steps))
            add(cond.error_metric, {}, _counter(per_step * value, steps))
        else:
            add(cond.metric, cond.ok(), _counter(per_step * (1 - value), steps))
            add(cond.metric, dict(cond.error_labels), _counter(per_step * value, steps))
    elif isinstance(cond, Histogram):
        q = QUANTILES.get(cond.statistic)
        shares = histogram_fractions(cond.buckets, value, q)
        for bound, share in zip(cond.buckets, shares, strict=True):
            add(f"{cond.metric}_bucket", {"le": _le(bound)}, _counter(per_step * share, steps))
        add(f"{cond.metric}_bucket", {"le": "+Inf"}, _counter(per_step, steps))
        add(f"{cond.metric}_sum", {}, _counter(per_step * value, steps))
        add(f"{cond.metric}_count", {}, _counter(per_step, steps))
    elif isinstance(cond, Gauge):
        add(cond.metric, {}, _gauge(gauge_value(name, cond.unit, cond.measures, value), steps))
    elif isinstance(cond, Counter):
        add(cond.metric, {}, _counter(value * interval_s / 60.0, steps))
    elif isinstance(cond, Up):
        add(cond.metric, {}, _gauge(0.0 if value > 0 else 1.0, steps))
    elif isinstance(cond, Bytes):
        total = DISK_BYTES if name == "disk_space" else MEMORY_BYTES
        used = _used_share(name, value)
        shown = used if cond.measures == "used" else 1 - used
        add(cond.metric, {}, _gauge(total * shown, steps))
        add(cond.total_metric, {}, _gauge(total, steps))
    else:  # pragma: no cover - the union is closed
        raise TypeError(type(cond).__name__)
    return out


def _used_share(name: str, value: float) -> float:
    """The used share for disk (whose measure is the free share) and memory (the used one)."""
    return 1 - value if name == "disk_space" else value


def gauge_value(name: str, unit: str, measures: str, value: float) -> float:
    """The canonical measure in a gauge's unit (and used/free sense for disk and memory)."""
    if name in ("disk_space", "memory_usage"):
        used = _used_share(name, value)
        value = used if measures == "used" else 1 - used
    if unit == "percent":
        return value * 100
    if unit == "milliseconds":
        return value * 1000
    return value


def threshold_in(name: str, unit: str, measures: str) -> tuple[float, bool]:
    """The seed's threshold in `unit` and whether the condition holds above it."""
    seed = SEEDS[name]
    above = seed.above
    if name in ("disk_space", "memory_usage"):
        natural = "free" if name == "disk_space" else "used"
        if measures != natural:
            above = not above
    return gauge_value(name, unit, measures, seed.threshold), above
