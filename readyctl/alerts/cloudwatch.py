"""CloudWatch metric alarms judged against the seed: metric, comparison, threshold, window."""

from __future__ import annotations

import dataclasses
from typing import Any

from readyctl.alerts.mapping import SEEDS, CloudWatch, format_duration
from readyctl.alerts.series import threshold_in

_ABOVE = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
_BELOW = ("LessThanThreshold", "LessThanOrEqualToThreshold")
_COUNTED = ("db_connection_failures", "failed_health_checks")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether an alarm covers its condition, and one sentence saying why."""

    ok: bool
    summary: str
    evidence: dict[str, Any]


def _metric_names(alarm: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(namespace, metric name) of the alarm's metric, or of each metric in its math."""
    if alarm.get("MetricName"):
        return [(alarm.get("Namespace"), alarm["MetricName"])]
    out = []
    for q in alarm.get("Metrics") or []:
        metric = ((q.get("MetricStat") or {}).get("Metric")) or {}
        if metric.get("MetricName"):
            out.append((metric.get("Namespace"), metric["MetricName"]))
    return out


def _period(alarm: dict[str, Any]) -> float:
    if alarm.get("Period"):
        return float(alarm["Period"])
    periods = [
        float((q.get("MetricStat") or {}).get("Period") or q.get("Period") or 0)
        for q in alarm.get("Metrics") or []
    ]
    return max(periods or [60.0])


def judge(name: str, cond: CloudWatch, alarm: dict[str, Any], max_window_s: float) -> Verdict:
    """Does `alarm` fire on seed condition `name` within `max_window_s`?"""
    seed = SEEDS[name]
    op = str(alarm.get("ComparisonOperator") or "")
    thr = alarm.get("Threshold")
    datapoints = int(alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods") or 1)
    window = _period(alarm) * datapoints
    metrics = _metric_names(alarm)
    ev: dict[str, Any] = {
        "alarm": cond.alarm,
        "comparison": op,
        "threshold": thr,
        "metrics": [f"{ns}/{m}" for ns, m in metrics],
        "window": format_duration(window),
        "statistic": alarm.get("ExtendedStatistic") or alarm.get("Statistic"),
    }
    where = f"CloudWatch alarm {cond.alarm}"
    if cond.metric and not any(m == cond.metric for _, m in metrics):
        got = ", ".join(m or "?" for _, m in metrics) or "no metric"
        return Verdict(False, f"{name}: {where} watches {got}, not {cond.metric}", ev)
    if cond.namespace and not any(ns == cond.namespace for ns, _ in metrics):
        return Verdict(False, f"{name}: {where} is not on namespace {cond.namespace}", ev)
    if thr is None:
        return Verdict(False, f"{name}: {where} has no static threshold ({op or 'none'})", ev)
    thr = float(thr)
    if name in _COUNTED:
        # a count of failures (fires from the first one) or a count of healthy things
        fires_on_one = (op == "GreaterThanThreshold" and thr < 1) or (
            op == "GreaterThanOrEqualToThreshold" and thr <= 1
        )
        fires_on_down = (op == "LessThanThreshold" and thr >= 1) or (
            op == "LessThanOrEqualToThreshold" and thr >= 0
        )
        ok = fires_on_one or fires_on_down
        detail = f"{op} {thr:g}"
        if not ok:
            return Verdict(
                False,
                f"{name}: {where} ({detail}) does not fire on the first {seed.words} event",
                ev,
            )
    else:
        seed_thr, above = threshold_in(name, cond.unit, cond.measures)
        want = _ABOVE if above else _BELOW
        unit = {"ratio": "", "percent": "%", "seconds": " s", "milliseconds": " ms"}.get(
            cond.unit, ""
        )
        if op not in want:
            sense = "above" if above else "below"
            return Verdict(
                False,
                f"{name}: {where} compares {op or 'nothing'}; {seed.words} needs a "
                f"threshold {sense} {seed_thr:g}{unit}",
                ev,
            )
        loose = thr > seed_thr if above else thr < seed_thr
        if loose:
            return Verdict(
                False,
                f"{name}: {where} fires only {'above' if above else 'below'} {thr:g}{unit}, "
                f"looser than the seed's {seed_thr:g}{unit} ({seed.words})",
                ev,
            )
        detail = f"{op} {thr:g}{unit}"
    if window > max_window_s:
        return Verdict(
            False,
            f"{name}: {where} needs {format_duration(window)} of breaching data, more than "
            f"max_window {format_duration(max_window_s)}",
            ev,
        )
    return Verdict(
        True, f"{name}: {where} fires on {seed.words} ({detail}, within {ev['window']})", ev
    )


def describe(client: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """Alarm name -> its description (metric alarms only)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(names), 100):
        page = client.describe_alarms(AlarmNames=names[i : i + 100], AlarmTypes=["MetricAlarm"])
        for alarm in page.get("MetricAlarms") or []:
            out[alarm["AlarmName"]] = alarm
    return out
