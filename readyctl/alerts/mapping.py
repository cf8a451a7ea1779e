"""The seed's six alert conditions and the typed mapping from each to the alert that covers it.

Each condition is mapped to an alert (a Prometheus `alertname`, or a CloudWatch alarm) and to
the *shape* of the series its rule reads (`kind`), so readyctl can generate input series just
over and just under the seed's threshold for any metric names:

- `counter_ratio`: a request counter split by `error_labels` / `ok_labels`, or a separate
  `error_metric` (error_rate);
- `histogram`: `<metric>_bucket{le}`, `_sum`, `_count` on the team's `buckets` (response_time);
- `gauge`: one gauge in `unit` (ratio, percent, seconds, milliseconds, count) (all);
- `counter`: a counter of failures (db_connection_failures, failed_health_checks);
- `up`: a 1/0 health gauge: `up`, `probe_success`, `pg_up` (the same two);
- `bytes`: `metric` (used or free bytes, per `measures`) over `total_metric` (disk, memory);
- `cloudwatch`: no series; the alarm's metric, comparison and threshold are read (all).

Response time is read as the 95th percentile (`statistic: p95`, the usual latency SLO
statistic); a rule on another quantile or on the mean declares it with `statistic`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

CONDITIONS = (
    "error_rate",
    "response_time",
    "db_connection_failures",
    "disk_space",
    "memory_usage",
    "failed_health_checks",
)
ConditionName = Literal[
    "error_rate",
    "response_time",
    "db_connection_failures",
    "disk_space",
    "memory_usage",
    "failed_health_checks",
]
Unit = Literal["ratio", "percent", "seconds", "milliseconds", "count"]
Statistic = Literal["p50", "p90", "p95", "p99", "mean"]
# prometheus_client's default histogram buckets
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (`90s`, `5m`, `1h30m`); ValueError otherwise."""
    m = _DURATION.match(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    h, mi, s = (int(g or 0) for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def format_duration(seconds: float) -> str:
    """`7m`, `90s`, `1h5m` for a number of seconds."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")
    return out or "0s"


def _check_metric(v: str | None) -> str | None:
    if v is not None and not _METRIC.match(v):
        raise ValueError(f"{v!r} is not a Prometheus metric name")
    return v


def _check_labels(v: dict[str, str]) -> dict[str, str]:
    bad = [k for k in v if not _LABEL.match(k) or k.startswith("__")]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a label name")
    return v


def _metric_name(v: str) -> str:
    return _check_metric(v) or v


MetricName = Annotated[str, AfterValidator(_metric_name)]
LabelSet = Annotated[dict[str, str], AfterValidator(_check_labels)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class _Prometheus(_Model):
    """What every Prometheus-backed condition has."""

    alert: str = Field(min_length=1, description="the alertname of the rule covering it")
    labels: LabelSet = Field(
        default_factory=dict,
        description="labels on every generated input series (e.g. job: api, mountpoint: /)",
    )


class CounterRatio(_Prometheus):
    """Errors over requests from counters: one counter split by labels, or two counters."""

    kind: Literal["counter_ratio"] = Field(description="errors / requests from counters")
    metric: MetricName = Field(description="the request counter (e.g. http_requests_total)")
    error_labels: LabelSet = Field(
        default_factory=dict,
        description="labels marking a failed request on `metric` (e.g. status: '500')",
    )
    ok_labels: LabelSet | None = Field(
        None,
        description="labels of a successful request (default: '200' for each error label)",
    )
    error_metric: MetricName | None = Field(
        None, description="a separate counter of failed requests (instead of error_labels)"
    )

    @model_validator(mode="after")
    def _one_error_source(self) -> CounterRatio:
        if bool(self.error_labels) == bool(self.error_metric):
            raise ValueError("set exactly one of error_labels (on metric) and error_metric")
        return self

    def ok(self) -> dict[str, str]:
        """Labels of a successful request."""
        if self.ok_labels is not None:
            return dict(self.ok_labels)
        return {k: "200" for k in self.error_labels}


class Histogram(_Prometheus):
    """A latency histogram (`<metric>_bucket`, `_sum`, `_count`)."""

    kind: Literal["histogram"] = Field(description="a latency histogram in seconds")
    metric: MetricName = Field(
        description="the histogram's base name (e.g. http_request_duration_seconds)"
    )
    buckets: tuple[float, ...] = Field(
        DEFAULT_BUCKETS, description="its finite bucket bounds (le), in seconds"
    )
    statistic: Statistic = Field(
        "p95", description="what the rule compares with 2 s: p50/p90/p95/p99 or mean"
    )

    @field_validator("buckets")
    @classmethod
    def _sorted(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(b <= 0 for b in v) or list(v) != sorted(set(v)):
            raise ValueError("buckets must be positive, increasing and not empty")
        return v


class Gauge(_Prometheus):
    """One gauge carrying the condition's value."""

    kind: Literal["gauge"] = Field(description="one gauge with the value")
    metric: MetricName = Field(description="the gauge's name")
    unit: Unit = Field(description="its unit: ratio, percent, seconds, milliseconds or count")
    measures: Literal["used", "free"] = Field(
        "used", description="disk and memory: whether it shows the used or the free share"
    )


class Counter(_Prometheus):
    """A counter of failures (connection errors, failed probes)."""

    kind: Literal["counter"] = Field(description="a counter of failures")
    metric: MetricName = Field(description="the counter's name")


class Up(_Prometheus):
    """A health gauge: 1 healthy, 0 failing (`up`, `probe_success`, `pg_up`)."""

    kind: Literal["up"] = Field(description="1 healthy, 0 failing")
    metric: MetricName = Field("up", description="the gauge's name (up, probe_success, pg_up)")


class Bytes(_Prometheus):
    """Used or free bytes over a total (node_filesystem_*, node_memory_*)."""

    kind: Literal["bytes"] = Field(description="bytes over a total")
    metric: MetricName = Field(description="used or free bytes (per `measures`)")
    total_metric: MetricName = Field(description="the total (size, limit) in bytes")
    measures: Literal["used", "free"] = Field(description="whether `metric` is used or free")


class CloudWatch(_Model):
    """A CloudWatch alarm: its metric, comparison and threshold are judged."""

    kind: Literal["cloudwatch"] = Field(description="a CloudWatch metric alarm")
    alarm: str = Field(min_length=1, description="the alarm's name")
    metric: str | None = Field(None, description="the MetricName it must watch (optional)")
    namespace: str | None = Field(None, description="the metric's namespace (optional)")
    unit: Unit = Field(description="the unit of its threshold")
    measures: Literal["used", "free"] = Field(
        "used", description="disk and memory: whether the metric is the used or the free share"
    )


Condition = Annotated[
    CounterRatio | Histogram | Gauge | Counter | Up | Bytes | CloudWatch,
    Field(discriminator="kind"),
]
PrometheusCondition = CounterRatio | Histogram | Gauge | Counter | Up | Bytes


@dataclasses.dataclass(frozen=True)
class Seed:
    """One of the seed's conditions: its threshold and the probe values around it.

    Values are in the condition's canonical measure: error ratio, seconds, failures per
    minute, free disk ratio, used memory ratio, failing health checks per minute.
    """

    name: str
    words: str
    threshold: float
    above: bool  # the condition holds when the measure is above (else below) the threshold
    over: float  # just past the threshold: the alert must fire
    under: float  # just short of it: the alert must stay quiet
    extreme: float  # far past it: tells a loose threshold from a rule that never fires
    kinds: tuple[str, ...]
    units: tuple[str, ...]

    def show(self, value: float) -> str:
        """The measure as words: `6% errors`, `p95 2.2 s`, `9% free`."""
        return _SHOW[self.name](value)


def _pct(v: float) -> str:
    return f"{v * 100:.4g}%"


_SHOW = {
    "error_rate": lambda v: f"{_pct(v)} errors",
    "response_time": lambda v: f"{v:.3g} s",
    "db_connection_failures": lambda v: f"{v:g} connection failures/min",
    "disk_space": lambda v: f"{_pct(v)} disk free",
    "memory_usage": lambda v: f"{_pct(v)} memory used",
    "failed_health_checks": lambda v: "health checks failing" if v else "health checks passing",
}

SEEDS: dict[str, Seed] = {
    s.name: s
    for s in (
        Seed(
            "error_rate",
            "error rate > 5%",
            0.05,
            True,
            0.06,
            0.04,
            0.5,
            ("counter_ratio", "gauge", "cloudwatch"),
            ("ratio", "percent"),
        ),
        Seed(
            "response_time",
            "response time (p95) > 2 s",
            2.0,
            True,
            2.2,
            1.8,
            30.0,
            ("histogram", "gauge", "cloudwatch"),
            ("seconds", "milliseconds"),
        ),
        Seed(
            "db_connection_failures",
            "database connection failures",
            0.0,
            True,
            1.0,
            0.0,
            30.0,
            ("counter", "gauge", "up", "cloudwatch"),
            ("count",),
        ),
        Seed(
            "disk_space",
            "disk space < 10% free",
            0.10,
            False,
            0.09,
            0.11,
            0.01,
            ("bytes", "gauge", "cloudwatch"),
            ("ratio", "percent"),
        ),
        Seed(
            "memory_usage",
            "memory usage > 85%",
            0.85,
            True,
            0.86,
            0.84,
            0.99,
            ("bytes", "gauge", "cloudwatch"),
            ("ratio", "percent"),
        ),
        Seed(
            "failed_health_checks",
            "failed health checks",
            0.0,
            True,
            1.0,
            0.0,
            30.0,
            ("up", "counter", "gauge", "cloudwatch"),
            ("count",),
        ),
    )
}


def kind_problem(name: str, cond: BaseModel) -> str | None:
    """Why `cond` cannot describe seed condition `name` (None when it can)."""
    seed = SEEDS[name]
    kind = getattr(cond, "kind", "")
    if kind not in seed.kinds:
        return f"kind {kind!r} does not fit {name} (use one of {', '.join(seed.kinds)})"
    unit = getattr(cond, "unit", None)
    if unit is not None and unit not in seed.units:
        return f"unit {unit!r} does not fit {name} (use one of {', '.join(seed.units)})"
    return None


def snippet(name: str) -> str:
    """A mapping entry to paste under `conditions:` for one condition (reference names)."""
    return {
        "error_rate": (
            "error_rate: {alert: HighErrorRate, kind: counter_ratio, "
            "metric: http_requests_total, error_labels: {status: '500'}}"
        ),
        "response_time": (
            "response_time: {alert: SlowResponses, kind: histogram, "
            "metric: http_request_duration_seconds, statistic: p95}"
        ),
        "db_connection_failures": (
            "db_connection_failures: {alert: DatabaseDown, kind: up, metric: pg_up}"
        ),
        "disk_space": (
            "disk_space: {alert: DiskAlmostFull, kind: bytes, "
            "metric: node_filesystem_avail_bytes, total_metric: node_filesystem_size_bytes, "
            "measures: free, labels: {mountpoint: /, fstype: ext4}}"
        ),
        "memory_usage": (
            "memory_usage: {alert: MemoryHigh, kind: bytes, "
            "metric: node_memory_MemAvailable_bytes, total_metric: node_memory_MemTotal_bytes, "
            "measures: free}"
        ),
        "failed_health_checks": "failed_health_checks: {alert: TargetDown, kind: up, metric: up}",
    }[name]
