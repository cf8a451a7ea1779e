"""A realistic Report for the reporter tests: every status, waivers, baseline, history, load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from readyctl.check import CheckMeta
from readyctl.config import Config, Environment
from readyctl.redact import Redactor, global_redactor
from readyctl.report import Report, build_report
from readyctl.result import ErrorReason, Result
from readyctl.runner import RunOutcome

PLANTED = "<script>alert(1)</script>"
PIPE_SUMMARY = f"GET / sends Server: nginx/1.18 {PLANTED} | x-powered-by leaks the stack"
# Known to the process-wide redactor only: no output may contain it.
GLOBAL_SECRET = "s3cr3t-known-only-globally-7f3a"
RUN_SECRET = "run-secret-value-91c2e8d4"
STARTED = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)


def _meta(cid: str, category: str, severity: str, **kw: Any) -> CheckMeta:
    """Check metadata shaped like a built-in check's."""
    name = cid.split(".", 1)[1].replace("_", " ")
    return CheckMeta(
        id=cid,
        title=kw.pop("title", f"{name.capitalize()} holds"),
        failure_title=kw.pop("failure_title", f"{name.capitalize()} does not hold"),
        description=kw.pop(
            "description",
            f"Why {name} matters for production. See https://example.org/docs/{cid}.",
        ),
        remediation=kw.pop(
            "remediation",
            {
                "text": f"Fix {name} on the server, then re-run readyctl.",
                "snippet": "add_header Strict-Transport-Security 'max-age=63072000' always;",
                "link": "https://example.org/fix",
            },
        ),
        category=category,
        severity=severity,
        **kw,
    )


METAS = {
    m.id: m
    for m in (
        _meta("http.server_banner", "http", "critical"),
        _meta("http.compression", "http", "low", retryable=True),
        _meta("transport.tls_versions", "transport", "high"),
        _meta(
            "transport.hsts",
            "transport",
            "medium",
            remediation={"text": "Send HSTS.", "link": "javascript:alert(2)"},
        ),
        _meta("auth.jwt_forgery", "auth", "critical"),
        _meta("smoke.login", "smoke", "high"),
        _meta("backups.age", "backups", "high"),
        _meta("migrations.pending", "migrations", "high"),
        _meta("secrets.rotation", "secrets", "medium"),
        _meta("load.latency", "load", "high"),
    )
}


def _timeline() -> list[dict[str, float]]:
    """Response time over a 30 s load run, one point a second."""
    return [
        {"t_s": float(t), "p50_ms": 11.0 + (t % 5), "p95_ms": 38.0 + 2 * (t % 7)} for t in range(30)
    ]


def _results() -> list[Result]:
    """One or more results of every status."""
    return [
        Result.failed(
            "http.server_banner",
            "GET /",
            PIPE_SUMMARY,
            measured="nginx/1.18",
            evidence={
                "headers": {"Server": f"nginx/1.18 {PLANTED}", "X-Note": "a | b"},
                "raw_server": f"nginx/1.18 {PLANTED} | pipe",
                "authorization": f"Bearer {RUN_SECRET}",
                "status_code": 200,
                "note": f"tail of the body mentions {RUN_SECRET}",
            },
            duration_ms=42.5,
        ),
        Result.passed(
            "http.compression",
            "GET /api/items",
            "GET /api/items is gzip-compressed (3.2 KB to 0.9 KB)",
            attempts=2,
            passed_on_retry=True,
            duration_ms=120.0,
        ),
        Result.passed(
            "transport.tls_versions",
            "api.example.org:443",
            "api.example.org:443 refuses TLS 1.0 and 1.1",
            duration_ms=310.0,
        ),
        Result.warned(
            "transport.hsts",
            "https://api.example.org",
            "HSTS max-age is 86400 s, under 31536000 s",
            measured=86400,
            threshold=31536000,
            unit="s",
            evidence={"header": "max-age=86400"},
        ),
        Result.errored(
            "auth.jwt_forgery",
            "POST /auth/login",
            ErrorReason.TIMEOUT,
            "no answer within 10 s",
            trace="Traceback (most recent call last):\n  ...\nTimeoutError: read timed out",
        ),
        Result.blocked_by("smoke.login", "step 2: list sessions", "step 1 (login) failed"),
        Result.skipped("backups.age", "s3://backups", "aws is not configured for staging"),
        Result.failed(
            "migrations.pending",
            "alembic head",
            "2 migrations are pending (a1b2c3, d4e5f6)",
            measured=2,
            threshold=0,
        ),
        Result.failed(
            "secrets.rotation",
            "JWT_SECRET",
            "JWT_SECRET was last rotated 400 days ago (limit 365)",
            measured=400,
            threshold=365,
            unit=" days",
        ),
        Result.passed(
            "load.latency",
            "GET /health",
            "GET /health p95 is 49 ms at 20 users (threshold 300 ms)",
            measured=49,
            threshold=300,
            unit=" ms",
            evidence={
                "users": 20,
                "rps": 812.4,
                "percentiles": {
                    "GET /health": {"requests": 24372, "p50_ms": 12, "p95_ms": 49, "p99_ms": 88},
                    "Aggregated": {"requests": 24372, "p50_ms": 12, "p95_ms": 49, "p99_ms": 88},
                },
                "timeline": _timeline(),
            },
            duration_ms=30500.0,
        ),
    ]


def _waiver(owner: str, reason: str, days_left: int, **kw: Any) -> dict[str, Any]:
    """A waiver as the governance layer attaches it to a result."""
    expires = (STARTED.date() + dt.timedelta(days=days_left)).isoformat()
    return {
        "reason": reason,
        "owner": owner,
        "expires": expires,
        "days_left": days_left,
        "ticket": kw.get("ticket"),
        "approver": kw.get("approver"),
        "expired": days_left < 0,
    }


def make_report(*, interrupted: bool = False) -> Report:
    """Build a report through the real build_report, then attach the governance fields."""
    global_redactor().add(GLOBAL_SECRET)
    outcome = RunOutcome(
        results=_results(),
        started_at=STARTED,
        duration_s=41.2,
        interrupted=interrupted,
        cleanup_problems=[],
        metas=dict(METAS),
    )
    report = build_report(
        outcome,
        config=Config(),
        env_name="staging",
        environment=Environment(base_url="https://api.example.org", production=False),
        redactor=Redactor([RUN_SECRET]),
    )
    data = report.data
    for r in data["results"]:
        if r["id"] == "migrations.pending":
            r["waiver"] = _waiver(
                "dana@example.org",
                f"Migration window on Friday | ops {PLANTED}",
                12,
                ticket="OPS-142",
                approver="lee",
            )
        if r["id"] == "secrets.rotation":
            r["waiver"] = _waiver("sam", "rotation scheduled", -3, ticket="SEC-9")
        if r["id"] == "transport.hsts":
            r["evidence"]["leak"] = f"value {GLOBAL_SECRET} seen in a header"
    data["gate"]["reasons"].append(
        {
            "code": "expired_waiver",
            "message": "waiver for secrets.rotation [JWT_SECRET] expired 3 days ago",
            "check_id": "secrets.rotation",
            "subject": "JWT_SECRET",
        }
    )
    data["baseline"] = {
        "path": ".readyctl/history/staging-20260503T0930Z.json",
        "score": 81.0,
        "score_delta": round((data["score"] or 0) - 81.0, 1),
        "changes": [
            {"id": "http.server_banner", "subject": "GET /", "from": "pass", "to": "fail"},
            {
                "id": "transport.tls_versions",
                "subject": "api.example.org:443",
                "from": "fail",
                "to": "pass",
            },
        ],
    }
    data["history"] = [
        {
            "started_at": (STARTED - dt.timedelta(days=5 - i)).isoformat(),
            "score": score,
            "verdict": verdict,
        }
        for i, (score, verdict) in enumerate(
            [(62.0, "not_ready"), (74.5, "not_ready"), (88.0, "ready"), (81.0, "ready")]
        )
    ]
    return report


@pytest.fixture
def report() -> Report:
    """The realistic report."""
    return make_report()


@pytest.fixture
def report_factory() -> Callable[..., Report]:
    """Build variants (interrupted=True)."""
    return make_report
