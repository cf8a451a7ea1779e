"""`readyctl init --alerts`: six alerting rules and their mapping from a target's /metrics.

What the target exposes decides the names (request counter and its status label, latency
histogram and its buckets, a database failure counter or health gauge); what an application
does not expose itself (disk, memory, scrape health) is read from the standard exporters'
names (node_exporter, postgres_exporter, Prometheus's own `up`), and the notes say so.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

from readyctl.alerts.mapping import DEFAULT_BUCKETS, SEEDS
from readyctl.alerts.series import NotMeasurable, histogram_fractions

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_TYPE = re.compile(r"^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)")
STATUS_LABELS = ("status", "code", "status_code", "http_status", "response_code")
_DB_FAIL = re.compile(r"(db|database|pg|postgres|mysql|sql|pool).*(error|fail|timeout)", re.I)
_DB_UP = ("pg_up", "mysql_up", "db_up", "database_up", "redis_up")
DISK = ("node_filesystem_avail_bytes", "node_filesystem_size_bytes")
MEMORY = ("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes")
FS_FILTER = 'fstype!~"tmpfs|overlay|squashfs"'
RULES_PATH = "alerts/readyctl-rules.yml"


@dataclasses.dataclass
class Exposition:
    """Names, types and label sets of a Prometheus text exposition (values ignored)."""

    types: dict[str, str] = dataclasses.field(default_factory=dict)
    samples: dict[str, list[dict[str, str]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Lenient parse: unreadable lines are skipped."""
        out = cls()
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("#"):
                m = _TYPE.match(line)
                if m:
                    out.types[m.group(1)] = m.group(2).lower()
                continue
            m = _SAMPLE.match(line)
            if m:
                labels = dict(_LABEL.findall(m.group(2) or ""))
                out.samples.setdefault(m.group(1), []).append(labels)
        return out

    def has(self, name: str) -> bool:
        """A sample of `name` is exposed."""
        return name in self.samples

    def counters(self) -> list[str]:
        """Sample names that count (typed counter, or named *_total)."""
        return [
            n
            for n in self.samples
            if n.endswith("_total")
            or self.types.get(n) == "counter"
            or self.types.get(n.removesuffix("_total")) == "counter"
        ]

    def histograms(self) -> list[str]:
        """Base names of histograms (with _bucket samples carrying `le`)."""
        return [
            n.removesuffix("_bucket")
            for n, sets in self.samples.items()
            if n.endswith("_bucket") and any("le" in s for s in sets)
        ]

    def label_values(self, name: str, label: str) -> list[str]:
        """Values `label` takes on `name`'s samples, in order of appearance."""
        return list(dict.fromkeys(s[label] for s in self.samples.get(name, []) if label in s))


@dataclasses.dataclass
class Proposal:
    """The mapping entries, the rules and what was found or assumed for each condition."""

    conditions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    rules: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, name: str, mapping: dict[str, Any], expr: str, for_: str, note: str) -> None:
        """One condition: its mapping entry, its rule and the note."""
        self.conditions[name] = mapping
        seed = SEEDS[name]
        self.rules.append(
            {
                "alert": mapping["alert"],
                "expr": expr,
                "for": for_,
                "labels": {"severity": "page", "readyctl_condition": name},
                "annotations": {
                    "summary": f"{seed.words} (readyctl seed condition {name})",
                    "value": "{{ $value }}",
                },
            }
        )
        self.notes[name] = note

    def rules_yaml(self) -> str:
        """The rule file's text."""
        head = (
            "# Written by `readyctl init --alerts`: one rule per seed condition (item 8).\n"
            "# `readyctl check --only alerts.rules` proves each fires just over its threshold\n"
            "# and stays quiet just under it; keep the mapping in readyctl.yaml in step.\n"
        )
        body = {"groups": [{"name": "readyctl-seed", "rules": self.rules}]}
        return head + yaml.safe_dump(body, sort_keys=False, width=200)

    def settings(self, rules_path: str = RULES_PATH) -> dict[str, Any]:
        """The `checks:` entries for alerts.rules."""
        return {
            "alerts.rules": {"rule_files": [rules_path], "conditions": self.conditions},
        }

    def snippet(self, rules_path: str = RULES_PATH) -> str:
        """YAML to paste under readyctl.yaml's `checks:` (indented two spaces)."""
        text = yaml.safe_dump(self.settings(rules_path), sort_keys=False, width=100)
        tail = (
            "  # alerts.routing:\n"
            "  #   alertmanager_config: alertmanager.yml   # routes the alerts to a receiver\n"
        )
        return "".join(f"  {ln}\n" for ln in text.splitlines()) + tail


def _error_rate(expo: Exposition, p: Proposal) -> None:
    for name in sorted(expo.counters(), key=lambda n: ("request" not in n, n)):
        if "request" not in name:
            continue
        for label in STATUS_LABELS:
            values = expo.label_values(name, label)
            if values:
                bad = next((v for v in values if v.startswith("5")), "500")
                good = next((v for v in values if v.startswith("2")), "200")
                expr = f'sum(rate({name}{{{label}=~"5.."}}[5m])) / sum(rate({name}[5m])) > 0.05'
                mapping = {
                    "alert": "HighErrorRate",
                    "kind": "counter_ratio",
                    "metric": name,
                    "error_labels": {label: bad},
                    "ok_labels": {label: good},
                }
                p.add("error_rate", mapping, expr, "2m", f"found {name} by {label}")
                return
    name = "http_requests_total"
    expr = f'sum(rate({name}{{status=~"5.."}}[5m])) / sum(rate({name}[5m])) > 0.05'
    mapping = {
        "alert": "HighErrorRate",
        "kind": "counter_ratio",
        "metric": name,
        "error_labels": {"status": "500"},
        "ok_labels": {"status": "200"},
    }
    p.add(
        "error_rate",
        mapping,
        expr,
        "2m",
        f"assumed {name}{{status}}: no request counter with a status label was exposed",
    )


def _measurable(buckets: tuple[float, ...]) -> bool:
    seed = SEEDS["response_time"]
    try:
        histogram_fractions(buckets, seed.over, 0.95)
        histogram_fractions(buckets, seed.under, 0.95)
    except NotMeasurable:
        return False
    return True


def _response_time(expo: Exposition, p: Proposal) -> None:
    timed = [h for h in expo.histograms() if re.search(r"duration|latency|seconds", h)]
    timed = [h for h in timed if not re.search(r"millis|_ms$", h)]
    timed.sort(key=lambda h: ("request" not in h, h))
    name = timed[0] if timed else "http_request_duration_seconds"
    buckets = DEFAULT_BUCKETS
    if timed:
        les = []
        for v in expo.label_values(f"{name}_bucket", "le"):
            try:
                les.append(float(v))
            except ValueError:
                continue
        finite = tuple(sorted({b for b in les if b not in (float("inf"),) and b > 0}))
        buckets = finite or DEFAULT_BUCKETS
    note = f"found histogram {name}" if timed else f"assumed histogram {name}: none exposed"
    mapping: dict[str, Any] = {"alert": "SlowResponses", "kind": "histogram", "metric": name}
    if tuple(buckets) != DEFAULT_BUCKETS:
        mapping["buckets"] = list(buckets)
    if _measurable(tuple(buckets)):
        mapping["statistic"] = "p95"
        expr = f"histogram_quantile(0.95, sum by (le) (rate({name}_bucket[5m]))) > 2"
    else:
        mapping["statistic"] = "mean"
        expr = f"sum(rate({name}_sum[5m])) / sum(rate({name}_count[5m])) > 2"
        note += " (its buckets cannot place 2 s: the rule uses the mean)"
    p.add("response_time", mapping, expr, "5m", note)


def _db(expo: Exposition, p: Proposal) -> None:
    failures = sorted(n for n in expo.counters() if _DB_FAIL.search(n))
    if failures:
        name = failures[0]
        mapping = {"alert": "DatabaseConnectionFailures", "kind": "counter", "metric": name}
        p.add("db_connection_failures", mapping, f"increase({name}[5m]) > 0", "1m", f"found {name}")
        return
    up = next((n for n in _DB_UP if expo.has(n)), None)
    name = up or "pg_up"
    note = (
        f"found {name}"
        if up
        else "assumed postgres_exporter's pg_up: no database failure metric exposed"
    )
    mapping = {"alert": "DatabaseConnectionFailures", "kind": "up", "metric": name}
    p.add("db_connection_failures", mapping, f"{name} == 0", "1m", note)


def _disk(expo: Exposition, p: Proposal) -> None:
    avail, size = DISK
    expr = f"{avail}{{{FS_FILTER}}} / {size}{{{FS_FILTER}}} < 0.10"
    mapping = {
        "alert": "DiskSpaceLow",
        "kind": "bytes",
        "metric": avail,
        "total_metric": size,
        "measures": "free",
        "labels": {"mountpoint": "/", "fstype": "ext4"},
    }
    found = expo.has(avail) and expo.has(size)
    p.add(
        "disk_space",
        mapping,
        expr,
        "5m",
        "found node_exporter's filesystem metrics"
        if found
        else "assumed node_exporter's node_filesystem_*: scrape it beside the API",
    )


def _memory(expo: Exposition, p: Proposal) -> None:
    avail, total = MEMORY
    expr = f"1 - {avail} / {total} > 0.85"
    mapping = {
        "alert": "MemoryUsageHigh",
        "kind": "bytes",
        "metric": avail,
        "total_metric": total,
        "measures": "free",
    }
    found = expo.has(avail) and expo.has(total)
    p.add(
        "memory_usage",
        mapping,
        expr,
        "5m",
        "found node_exporter's memory metrics"
        if found
        else "assumed node_exporter's node_memory_*: scrape it beside the API",
    )


def _health(expo: Exposition, p: Proposal) -> None:
    name = "probe_success" if expo.has("probe_success") else "up"
    mapping = {"alert": "HealthCheckFailing", "kind": "up", "metric": name}
    note = (
        "found blackbox probe_success"
        if name == "probe_success"
        else "Prometheus's up (every scrape target; narrow it with {job=...} and labels)"
    )
    p.add("failed_health_checks", mapping, f"{name} == 0", "2m", note)


def propose(metrics_text: str | None) -> Proposal:
    """The six rules and their mapping, from a /metrics text (None: reference names)."""
    expo = Exposition.parse(metrics_text or "")
    p = Proposal()
    for step in (_error_rate, _response_time, _db, _disk, _memory, _health):
        step(expo, p)
    return p
