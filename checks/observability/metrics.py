"""observability.metrics: a Prometheus endpoint with request counts, latency and errors by route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import Field
from readyctl.checks.health._http import Answer, TargetError, fetch

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
from readyctl.context import AuthError, Context
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

SUBJECTS = ("request counts", "latency histogram", "errors by route")
MAX_METRICS_BYTES = 5_000_000
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_TYPE = re.compile(r"^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)")
_LATENCY = re.compile(r"duration|latency|seconds|_time|_ms$|millis", re.I)
_ERRORS = re.compile(r"error|fail|exception", re.I)
ROUTE_LABELS = ("route", "path", "handler", "endpoint", "uri", "url", "operation", "template")
STATUS_LABELS = ("status", "code", "status_code", "http_status", "response_code", "outcome")


@dataclass
class Exposition:
    """What a Prometheus text exposition contains (names and label names, never values)."""

    types: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Exposition:
        """Parse the text format leniently; unparseable lines are ignored."""
        out = cls()
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                m = _TYPE.match(line)
                if m:
                    out.types[m.group(1)] = m.group(2).lower()
                continue
            m = _SAMPLE.match(line)
            if not m:
                continue
            try:
                float(m.group(3))
            except ValueError:
                continue
            labels = frozenset(k for k, _ in _LABEL.findall(m.group(2) or ""))
            out.samples.append((m.group(1), labels))
        return out

    def family(self, name: str) -> str:
        """The metric family of a sample name (strips _bucket/_count/_sum/_total)."""
        for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
            if name.endswith(suffix) and name[: -len(suffix)] in self.types:
                return name[: -len(suffix)]
        return name

    def request_counters(self) -> list[str]:
        """Sample names counting requests."""
        found = []
        for name, _ in self.samples:
            fam = self.family(name)
            kind = self.types.get(fam, "")
            counting = kind == "counter" or name.endswith("_total")
            counting = counting or (kind in ("histogram", "summary") and name.endswith("_count"))
            if counting and "request" in name.lower():
                found.append(name)
        return sorted(set(found))

    def histograms(self) -> tuple[list[str], list[str]]:
        """(latency histogram families, other histogram families) from `_bucket` samples."""
        fams = {
            self.family(name)
            for name, labels in self.samples
            if name.endswith("_bucket") and "le" in labels
        }
        latency = sorted(f for f in fams if _LATENCY.search(f))
        return latency, sorted(fams - set(latency))

    def by_route(self) -> tuple[list[str], list[str]]:
        """(names with route + status/error, names with a route label only)."""
        full, partial = set(), set()
        for name, labels in self.samples:
            if not labels & set(ROUTE_LABELS):
                continue
            if labels & set(STATUS_LABELS) or _ERRORS.search(name):
                full.add(name)
            else:
                partial.add(name)
        return sorted(full), sorted(partial - full)


class Settings(CheckSettings):
    """Settings of observability.metrics."""

    path: str | None = Field(
        None, description="path of the metrics endpoint (default: from the API map, api.metrics)"
    )
    auth: bool = Field(False, description="send the run's test session with the scrape")
    token_var: str | None = Field(
        None, description="environment variable holding a bearer token for the endpoint"
    )
    warmup_path: str | None = Field(
        None,
        description="path requested once before the scrape (default: a public path of the API "
        'map, api.health, none when it has none; "" : none)',
    )
    request_timeout_s: float = Field(20.0, gt=0, description="seconds the scrape may take")


class MetricsEndpoint(Check):
    """Scrape the metrics endpoint once (after one warm-up request) and read what it exposes.

    Settings: `path` (default: from the API map, api.metrics; unknown: the check skips naming
    it), `auth` (false: send the run's session), `token_var` (an env variable with a bearer
    token for the endpoint), `warmup_path` (default: a public path of the API map, none when
    it has none; "" for none), `request_timeout_s` (20).
    """

    meta = CheckMeta(
        id="observability.metrics",
        title="Metrics expose traffic, latency and errors",
        failure_title="Metrics are missing or incomplete",
        description=(
            "Without request counts, a latency histogram and errors by route you learn about "
            "an outage from your users, and cannot alert on the golden signals. See "
            "https://sre.google/sre-book/monitoring-distributed-systems/#xref_monitoring_golden-signals."
        ),
        remediation=RemediationSpec(
            text="Expose Prometheus metrics: a request counter and a duration histogram "
            "labelled by route, method and status (prometheus-client, "
            "prometheus-fastapi-instrumentator, express-prom-bundle).",
            snippet='http_requests_total{route="/v1/items",method="GET",status="200"} 42\n'
            'http_request_duration_seconds_bucket{route="/v1/items",le="0.1"} 40',
            link="https://prometheus.io/docs/practices/instrumentation/",
        ),
        category=Category.OBSERVABILITY,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("observability", "seed"),
        refs=("8",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Three results: request counts, latency histogram, errors by route."""
        s: Settings = ctx.settings()
        path = s.path or ctx.api().need("metrics")
        warmup = s.warmup_path
        if warmup is None:
            warmup = next(iter(ctx.api().public_paths()), None)
        budget = s.request_timeout_s
        headers: dict[str, str] = {}
        token_var = s.token_var
        if token_var and ctx.environ.get(token_var):
            token = ctx.environ[token_var]
            ctx.redactor.add(token)
            headers["Authorization"] = f"Bearer {token}"
        try:
            client = ctx.authed_http(timeout=15) if s.auth else ctx.http(timeout=15)
        except AuthError as e:
            for subject in SUBJECTS:
                yield self.blocked(subject, f"auth.session: {e}")
            return
        try:
            if warmup:
                fetch(ctx, client, "GET", warmup, cap=64_000, budget_s=min(10, budget))
            answer = fetch(
                ctx, client, "GET", path, headers=headers, cap=MAX_METRICS_BYTES, budget_s=budget
            )
        except TargetError as e:
            for subject in SUBJECTS:
                yield self.errored(subject, e.reason, f"GET {path}: {e.detail}")
            return
        yield from self._judge(path, answer, bool(s.auth or headers))

    def _judge(self, path: str, answer: Answer, authed: bool) -> Iterator[Result]:
        """Results from one scrape."""
        if answer.status in (401, 403) and not authed:
            for subject in SUBJECTS:
                yield self.errored(
                    subject,
                    ErrorReason.CONFIG,
                    f"GET {path} needs credentials ({answer.status}); set auth: true or "
                    "token_var for this check",
                )
            return
        if answer.status != 200:
            for subject in SUBJECTS:
                yield self.failed(
                    subject,
                    f"GET {path} answered {answer.status}: no metrics endpoint",
                    measured=answer.status,
                    evidence={"body": answer.snippet(200)},
                )
            return
        if answer.truncated:
            # a scrape over the cap is evidence (cardinality gone wild, a hostile body), never
            # a pass: the samples read so far are not the exposition
            for subject in SUBJECTS:
                yield self.failed(
                    subject,
                    f"GET {path} answered 200, but its {answer.over}",
                    measured=MAX_METRICS_BYTES,
                    evidence={"body_limit_bytes": MAX_METRICS_BYTES, "body": answer.snippet(200)},
                )
            return
        ctype = answer.headers.get("content-type", "")
        expo = Exposition.parse(answer.body.decode("utf-8", "replace"))
        if not expo.samples or not ctype.startswith(("text/plain", "application/openmetrics")):
            for subject in SUBJECTS:
                yield self.failed(
                    subject,
                    f"GET {path} does not answer Prometheus text (content type "
                    f"{clip(ctype, 60) or 'none'}, {len(expo.samples)} samples)",
                    evidence={"body": answer.snippet(200)},
                )
            return
        base = {"samples": len(expo.samples), "truncated": answer.truncated}
        counters = expo.request_counters()
        if counters:
            yield self.passed(
                "request counts",
                f"{path} counts requests in {', '.join(counters[:3])}",
                evidence={**base, "metrics": counters[:10]},
            )
        else:
            yield self.failed(
                "request counts",
                f"{path} has no request counter (no *request*_total or histogram _count)",
                evidence=base,
            )
        latency, other = expo.histograms()
        if latency:
            yield self.passed(
                "latency histogram",
                f"{path} has a latency histogram: {', '.join(latency[:3])}",
                evidence={**base, "histograms": latency[:10]},
            )
        elif other:
            yield self.warned(
                "latency histogram",
                f"{path} has histograms ({', '.join(other[:3])}) but none named for latency",
                evidence={**base, "histograms": other[:10]},
            )
        else:
            yield self.failed(
                "latency histogram", f"{path} has no histogram (_bucket lines)", evidence=base
            )
        full, partial = expo.by_route()
        if full:
            yield self.passed(
                "errors by route",
                f"{path} breaks status or errors down by route in {', '.join(full[:3])}",
                evidence={**base, "metrics": full[:10]},
            )
        elif partial:
            yield self.warned(
                "errors by route",
                f"{path} labels {', '.join(partial[:3])} by route but carries no status or "
                "error series",
                evidence={**base, "metrics": partial[:10]},
            )
        else:
            yield self.failed(
                "errors by route",
                f"{path} has no series labelled by route ({', '.join(ROUTE_LABELS[:4])}, ...)",
                evidence=base,
            )
