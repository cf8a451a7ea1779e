"""`uses: monitor`: a window of light synthetic probes (and the target's Prometheus counters
when it has them), judged against the seed's alert thresholds."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

KEYS = (
    "window",
    "interval",
    "ready_url",
    "read_route",
    "metrics",
    "max_error_rate",
    "max_p95_ms",
    "max_failed_health",
    "request_timeout",
    "min_metric_requests",
)


@register
class Monitor(Action):
    """Watch the target for a window; any breach of the alert thresholds fails the step.

    `with:` keys:
    - `window` (5m; seconds in tests) and `interval` (1s): every interval, GET the ready
      endpoint and, when known, a cheap read route, with the maintenance bypass.
    - `ready_url` (the API map's health ready route, else /health).
    - `read_route`: a GET route whose latency counts (default: an API route: the map's first
      list, else `me`, asked without a session, so a 4xx answer is expected and not an error;
      else the health live route when it is not the ready one, else the first docs path).
    - `metrics` (true): when the API map knows a Prometheus `metrics` endpoint, compare its
      http request counters and latency histogram at the start and the end of the window.
    - `max_error_rate` (0.05: 5%; a 5xx, a timeout or a refused connection is an error),
      `max_p95_ms` (2000), `max_failed_health` (2: that many ready probes failing in a row).
    - `request_timeout` (10s): one probe's time limit (counted as an error when exceeded).
    - `min_metric_requests` (20): fewer requests in the metrics' window are reported, not
      judged.

    Record: `requests`, `errors`, `error_rate`, `p95_ms`, `health_checks`,
    `health_failures`, `max_consecutive_health_failures`, `metrics` (when read), `breaches`.
    """

    name = "monitor"
    touches = "target-read"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        window = params.get("window", "5m")
        return (
            f"watch the target for {window}: probes and metrics against error rate > "
            f"{float(params.get('max_error_rate', 0.05)) * 100:g}%, p95 > "
            f"{params.get('max_p95_ms', 2000)} ms, {params.get('max_failed_health', 2)} failed "
            "health checks in a row (reads only)"
        )

    def run(self, sc: StepContext) -> ActionResult:
        """Probe for the window, read the metrics, judge."""
        _common.unknown_keys(sc, KEYS)
        p = sc.params
        window = _common.seconds(p.get("window"), 300, "window")
        interval = max(0.05, _common.seconds(p.get("interval"), 1, "interval"))
        request_timeout = _common.seconds(p.get("request_timeout"), 10, "request_timeout")
        max_rate = _common.number(p, "max_error_rate", 0.05)
        max_p95 = _common.number(p, "max_p95_ms", 2000)
        max_failed = int(_common.number(p, "max_failed_health", 2))
        min_metric = int(_common.number(p, "min_metric_requests", 20))
        t = _common.target(sc)
        amap = _common.api_map(sc, t)
        ready = _common.ready_url(sc, t, p.get("ready_url"))
        read = _read_route(t, amap, p.get("read_route"), ready)
        use_metrics = p.get("metrics", True) not in (False, "false", "off", "no")
        metrics_url = _common.absolute(t, amap.metrics) if use_metrics and amap.metrics else None
        maintenance_on = (sc.record_of("maintenance") or {}).get("mode") == "on"
        sc.log(
            f"monitoring for {window:g} s: {_common.redact(ready)}"
            + (f" and {_common.redact(read)}" if read else "")
            + (" plus metrics" if metrics_url else "")
        )
        stats = _Stats()
        with _common.http_client(sc, t, timeout=request_timeout) as client:
            start_metrics = _scrape(client, metrics_url) if metrics_url else None
            self._probe(sc, client, ready, read, window, interval, stats)
            end_metrics = _scrape(client, metrics_url) if metrics_url else None
        record = stats.record()
        breaches: list[str] = []
        if record["requests"] and record["error_rate"] > max_rate:
            breaches.append(
                f"error rate {record['error_rate'] * 100:.1f}% > {max_rate * 100:g}% "
                f"({record['errors']}/{record['requests']} requests)"
            )
        if record["p95_ms"] is not None and record["p95_ms"] > max_p95:
            breaches.append(f"p95 {record['p95_ms']:.0f} ms > {max_p95:g} ms")
        if record["max_consecutive_health_failures"] >= max_failed:
            breaches.append(
                f"{record['max_consecutive_health_failures']} health checks failed in a row "
                f"(limit {max_failed})"
            )
        if metrics_url:
            m = _metrics_delta(start_metrics, end_metrics, ignore_503=maintenance_on)
            record["metrics"] = m
            if m.get("requests", 0) >= min_metric:
                if m["error_rate"] > max_rate:
                    breaches.append(
                        f"metrics error rate {m['error_rate'] * 100:.1f}% > {max_rate * 100:g}% "
                        f"({m['errors']}/{m['requests']} requests)"
                    )
                if m.get("p95_ms") is not None and m["p95_ms"] > max_p95:
                    breaches.append(f"metrics p95 {m['p95_ms']:.0f} ms > {max_p95:g} ms")
        record["breaches"] = breaches
        p95 = f"{record['p95_ms']:.0f} ms" if record["p95_ms"] is not None else "n/a"
        numbers = (
            f"{record['requests']} requests, error rate {record['error_rate'] * 100:.1f}%, "
            f"p95 {p95}, {record['health_failures']}/{record['health_checks']} health checks "
            "failed"
        )
        if breaches:
            raise ActionFailed(f"monitor: {'; '.join(breaches)} ({numbers})", record=record)
        return ActionResult(f"healthy for {window:g} s: {numbers}", record=record)

    def _probe(
        self,
        sc: StepContext,
        client: Any,
        ready: str,
        read: str | None,
        window: float,
        interval: float,
        stats: _Stats,
    ) -> None:
        """Every interval, send the probes (in a small pool: a slow answer does not delay the
        next tick); wait for the last ones at the end of the window."""
        t0 = time.monotonic()
        futures: list[concurrent.futures.Future[None]] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            tick = 0
            while True:
                sc.check_deadline()
                futures.append(pool.submit(_probe_one, client, ready, stats, True))
                if read:
                    futures.append(pool.submit(_probe_one, client, read, stats, False))
                tick += 1
                next_at = t0 + tick * interval
                if next_at >= t0 + window:
                    break
                while True:
                    left = next_at - time.monotonic()
                    if left <= 0:
                        break
                    time.sleep(min(left, 0.2))
                    sc.check_deadline()
            for f in futures:
                f.result()


@dataclasses.dataclass
class _Stats:
    """Probe outcomes, thread-safe."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    requests: int = 0
    errors: int = 0
    health: list[tuple[float, bool]] = dataclasses.field(default_factory=list)

    def add(self, started: float, ms: float, ok: bool, is_health: bool) -> None:
        with self.lock:
            self.requests += 1
            self.latencies_ms.append(ms)
            if not ok:
                self.errors += 1
            if is_health:
                self.health.append((started, ok))

    def record(self) -> dict[str, Any]:
        with self.lock:
            health = [ok for _, ok in sorted(self.health)]
            run = worst = 0
            for ok in health:
                run = 0 if ok else run + 1
                worst = max(worst, run)
            return {
                "requests": self.requests,
                "errors": self.errors,
                "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
                "p95_ms": _p95(self.latencies_ms),
                "health_checks": len(health),
                "health_failures": health.count(False),
                "max_consecutive_health_failures": worst,
            }


def _p95(values: list[float]) -> float | None:
    """The 95th percentile (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return round(ordered[rank - 1], 1)


def _probe_one(client: Any, url: str, stats: _Stats, is_health: bool) -> None:
    """One GET; a 5xx, a timeout or a connection error is an error (a health probe fails on
    anything but 2xx)."""
    import httpx

    started = time.monotonic()
    try:
        resp = client.get(url)
        status: int | None = resp.status_code
    except httpx.HTTPError:
        status = None
    ms = (time.monotonic() - started) * 1000
    if is_health:
        ok = status is not None and 200 <= status < 300
    else:
        ok = status is not None and status < 500
    stats.add(started, ms, ok, is_health)


def _read_route(t: _common.Target, amap: Any, given: Any, ready: str) -> str | None:
    """The read route: given, else an API route (the map's first list, else `me`: a health
    probe says nothing of the release's latency; answered without a session, its 4xx is not
    an error and its time counts), else health.live (when not the ready one), else docs."""
    if given:
        return _common.absolute(t, str(given))
    lists = getattr(amap, "lists", ()) or ()
    api_route = (lists[0].path if lists else None) or getattr(amap, "me", None)
    if api_route:
        return _common.absolute(t, str(api_route))
    live = amap.health.live
    if live and _common.absolute(t, live) != ready:
        return _common.absolute(t, live)
    if amap.docs:
        return _common.absolute(t, amap.docs[0])
    return None


# -- Prometheus counters ---------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
STATUS_LABELS = ("status", "code", "status_code", "http_status", "response_code")
MAX_METRICS_BYTES = 5_000_000


def _scrape(client: Any, url: str | None) -> dict[str, Any] | None:
    """Request totals by status and the latency histogram, from a text exposition."""
    import httpx

    if url is None:
        return None
    try:
        resp = client.get(url)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200 or len(resp.content) > MAX_METRICS_BYTES:
        return None
    by_status: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for line in resp.text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or line.startswith("#"):
            continue
        name, raw_labels, raw = m.group(1), m.group(2) or "", m.group(3)
        try:
            value = float(raw)
        except ValueError:
            continue
        labels = dict(_LABEL.findall(raw_labels))
        if name == "http_requests_total" or (name.endswith("_requests_total") and "http" in name):
            status = next((labels[k] for k in STATUS_LABELS if k in labels), None)
            if status is not None:
                by_status[status] = by_status.get(status, 0.0) + value
        elif name.startswith("http_request_duration") and name.endswith("_bucket"):
            le = labels.get("le")
            if le is None:
                continue
            bound = math.inf if le in ("+Inf", "Inf") else float(le)
            unit = 1000.0 if "seconds" in name else 1.0
            key = bound * unit if bound != math.inf else math.inf
            buckets[key] = buckets.get(key, 0.0) + value
    return {"by_status": by_status, "buckets": buckets}


def _metrics_delta(
    start: dict[str, Any] | None, end: dict[str, Any] | None, *, ignore_503: bool
) -> dict[str, Any]:
    """Requests, errors, error rate and p95 between two scrapes (503s left out while
    maintenance is on: users are meant to get them)."""
    if not start or not end:
        return {"read": False, "requests": 0}
    total = errors = 0.0
    for status, value in end["by_status"].items():
        delta = max(0.0, value - start["by_status"].get(status, 0.0))
        if ignore_503 and status == "503":
            continue
        total += delta
        if status.startswith("5"):
            errors += delta
    out: dict[str, Any] = {
        "read": True,
        "requests": int(total),
        "errors": int(errors),
        "error_rate": round(errors / total, 4) if total else 0.0,
        "p95_ms": None,
        "ignored_503": ignore_503,
    }
    bounds = sorted(end["buckets"])
    delta = [(b, end["buckets"][b] - start["buckets"].get(b, 0.0)) for b in bounds]
    count = delta[-1][1] if delta else 0.0
    if count > 0:
        want = 0.95 * count
        prev_b, prev_c = 0.0, 0.0
        for b, c in delta:
            if c >= want:
                if b == math.inf:
                    out["p95_ms"] = round(prev_b, 1)
                else:  # linear within the bucket, as histogram_quantile does
                    share = (want - prev_c) / (c - prev_c) if c > prev_c else 1.0
                    out["p95_ms"] = round(prev_b + (b - prev_b) * share, 1)
                break
            prev_b, prev_c = b, c
    return out
