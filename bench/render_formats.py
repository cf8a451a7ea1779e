"""Rendering cost: every file format for a report of 2,000 results, and the HTML file's size.

Run: python bench/render_formats.py [--results N] [--repeat K]
Prints the median time per format over K runs and their sum (goal: under 1 s together), and
the size of readiness.html (goal: under 2 MB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from readyctl.check import CheckMeta
from readyctl.config import Config, Environment
from readyctl.redact import Redactor
from readyctl.report import Report, build_report
from readyctl.reporters import file_writer
from readyctl.result import ErrorReason, Result
from readyctl.runner import RunOutcome

FORMATS = ("json", "junit", "markdown", "html")
CATEGORIES = ("config", "secrets", "transport", "http", "auth", "database", "backups", "load")
SEVERITIES = ("critical", "high", "medium", "low", "info")
N_CHECKS = 60


def metas() -> dict[str, CheckMeta]:
    """Sixty checks with built-in-sized metadata."""
    out = {}
    for i in range(N_CHECKS):
        cat = CATEGORIES[i % len(CATEGORIES)]
        cid = f"{cat}.check_{i:02d}"
        out[cid] = CheckMeta(
            id=cid,
            title=f"Check {i} property holds on every subject",
            failure_title=f"Check {i} property does not hold on a subject",
            description=(
                "A property like this one is accepted silently by most frameworks and breaks "
                "only when first used in production. Checking it at deploy time turns a late "
                f"outage into an early, named error. See https://example.org/docs/{cid}."
            ),
            remediation={
                "text": "Fix the value so it matches the declared rule and re-run the check; "
                "declare project rules under env.rules in readyctl.yaml.",
                "snippet": "env:\n  rules:\n    WEB_APP_URL: {type: https_url}\n"
                "    PORT: {type: int, min: 1, max: 65535}",
                "link": "https://example.org/fix",
            },
            category=cat,
            severity=SEVERITIES[i % 3],
        )
    return out


def results(n: int, checks: dict[str, CheckMeta]) -> list[Result]:
    """n results over the checks: mostly passes, some of every other status."""
    ids = list(checks)
    out: list[Result] = []
    for i in range(n):
        cid = ids[i % len(ids)]
        subject = f"GET /api/v1/resource_{i:04d}/items"
        kind = i % 20
        ev = {"status_code": 200, "header": f"x-request-id: {i:08x}", "elapsed_ms": 12.5 + i % 40}
        if kind == 0:
            out.append(
                Result.failed(
                    cid,
                    subject,
                    f"{subject} answers 500 with a stack trace ({i})",
                    measured=500,
                    threshold=200,
                    evidence=ev,
                    duration_ms=35.0,
                )
            )
        elif kind == 1:
            out.append(
                Result.warned(
                    cid,
                    subject,
                    f"{subject} p95 is 420 ms, over the 300 ms warning",
                    measured=420,
                    threshold=300,
                    unit=" ms",
                    evidence=ev,
                )
            )
        elif kind == 2:
            out.append(Result.skipped(cid, subject, "aws is not configured for this environment"))
        elif kind == 3:
            out.append(Result.blocked_by(cid, subject, "auth.login failed"))
        elif kind == 4 and i % 100 == 4:
            out.append(
                Result.errored(
                    cid,
                    subject,
                    ErrorReason.TIMEOUT,
                    "no answer within 10 s",
                    trace="Traceback (most recent call last):\n  ...\nTimeoutError: timed out",
                )
            )
        elif cid.startswith("load.") and i < 200:
            ev = {
                "users": 20,
                "percentiles": {
                    "GET /health": {"requests": 24000, "p50_ms": 12, "p95_ms": 49, "p99_ms": 88}
                },
                "timeline": [
                    {"t_s": t, "p50_ms": 11 + t % 5, "p95_ms": 40 + t % 9} for t in range(60)
                ],
            }
            out.append(Result.passed(cid, subject, f"{subject} p95 49 ms", evidence=ev))
        else:
            out.append(
                Result.passed(
                    cid,
                    subject,
                    f"{subject} has the property ({i})",
                    evidence=ev,
                    duration_ms=8.0,
                    attempts=2 if i % 97 == 0 else 1,
                    passed_on_retry=i % 97 == 0,
                )
            )
    return out


def build(n: int) -> Report:
    """A report of n results with waivers, a baseline and history attached."""
    checks = metas()
    started = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)
    outcome = RunOutcome(
        results=results(n, checks),
        started_at=started,
        duration_s=95.0,
        interrupted=False,
        cleanup_problems=[],
        metas=checks,
    )
    report = build_report(
        outcome,
        config=Config(),
        env_name="bench",
        environment=Environment(base_url="https://api.example.org"),
        redactor=Redactor(),
    )
    data: dict[str, Any] = report.data
    for i, r in enumerate(data["results"]):
        if r["status"] == "fail" and i % 7 == 0:
            r["waiver"] = {
                "reason": "accepted until the migration window",
                "owner": "ops@example.org",
                "expires": "2026-06-01",
                "days_left": 28,
                "ticket": f"OPS-{i}",
                "approver": "lee",
                "expired": False,
            }
    data["baseline"] = {
        "path": ".readyctl/history/bench.json",
        "score": 80.0,
        "score_delta": round((data["score"] or 0) - 80.0, 1),
        "changes": [
            {"id": r["id"], "subject": r["subject"], "from": "pass", "to": r["status"]}
            for r in data["results"]
            if r["status"] == "fail"
        ][:40],
    }
    data["history"] = [
        {"started_at": f"2026-04-{d:02d}T09:30:00+00:00", "score": 60 + d, "verdict": "not_ready"}
        for d in range(1, 21)
    ]
    return report


def main() -> None:
    """Time each format and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report = build(args.results)
    times: dict[str, list[float]] = {f: [] for f in FORMATS}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name in FORMATS:  # warm-up: imports, template compilation
            file_writer(name)(report, out)
        for _ in range(args.repeat):
            for name in FORMATS:
                t0 = time.perf_counter()
                file_writer(name)(report, out)
                times[name].append(time.perf_counter() - t0)
        sizes = {name: (out / p.name).stat().st_size for name, p in _paths(out).items()}
    medians = {name: statistics.median(v) for name, v in times.items()}
    total = sum(medians.values())
    print(f"report: {len(report.results)} results, median of {args.repeat} runs")
    for name in FORMATS:
        print(f"  {name:9s} {medians[name] * 1000:7.1f} ms  {sizes[name] / 1024:8.1f} KiB")
    print(f"all formats: {total:.3f} s (goal < 1 s) {'OK' if total < 1 else 'OVER'}")
    html_mb = sizes["html"] / 1_000_000
    print(f"readiness.html: {html_mb:.2f} MB (goal < 2 MB) {'OK' if html_mb < 2 else 'OVER'}")


def _paths(out: Path) -> dict[str, Path]:
    """Where each format was written."""
    names = {"json": "readiness.json", "junit": "readiness.xml", "markdown": "readiness.md"}
    names["html"] = "readiness.html"
    return {k: out / v for k, v in names.items()}


if __name__ == "__main__":
    main()
