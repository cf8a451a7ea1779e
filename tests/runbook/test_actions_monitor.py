"""monitor: a healthy target passes; slow answers or 10% of 500s breach the thresholds."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from readyctl.config import Environment
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions.base import ActionFailed
from tests.runbook._actions_helpers import LocalServer, make_sc, ok_json, with_uses

FAST = {"window": 1.5, "interval": 0.1}


def _target(url: str, **api: object) -> Environment:
    return Environment(
        base_url=url, api={"health": {"ready": "/health/ready", "live": "/health/live"}, **api}
    )


def test_healthy_target_passes_with_bypass_and_metrics(tmp_path: Path) -> None:
    lock = threading.Lock()
    counters = {"200": 0}

    def handler(req, n):  # type: ignore[no-untyped-def]
        if req.path == "/metrics":
            body = (
                "# TYPE http_requests_total counter\n"
                f'http_requests_total{{route="/x",method="GET",status="200"}} {counters["200"]}\n'
                'http_requests_total{route="/x",method="GET",status="503"} 40\n'
            )
            return 200, body.encode(), 0
        with lock:
            counters["200"] += 1
        ok = req.headers.get("x-maintenance-bypass") == "s3cr3t-bypass"
        return (200 if ok else 503), ok_json(), 0

    with LocalServer(handler) as srv:
        sc = make_sc(
            tmp_path,
            FAST,
            target=_target(srv.url, metrics="/metrics"),
            records={
                "m": with_uses(
                    "maintenance",
                    {
                        "mode": "on",
                        "bypass_header": "X-Maintenance-Bypass",
                        "bypass_secret_env": "BYP",
                    },
                )
            },
            environ={"BYP": "s3cr3t-bypass"},
        )
        res = REGISTRY["monitor"]().run(sc)
    rec = res.record
    assert rec["requests"] >= 20 and rec["errors"] == 0 and rec["breaches"] == []
    assert rec["health_checks"] >= 10 and rec["health_failures"] == 0
    assert rec["metrics"]["read"] and rec["metrics"]["errors"] == 0
    assert "s3cr3t" not in str(rec)


def test_ten_percent_of_500s_breaches(tmp_path: Path) -> None:
    live = {"n": 0}

    def handler(req, n):  # type: ignore[no-untyped-def]
        if req.path == "/health/live":
            # the first read and every third after it fail: 1 in 6 of all requests, and at
            # least one however few requests a busy machine manages in the window
            live["n"] += 1
            return (500 if live["n"] % 3 == 1 else 200), ok_json(), 0
        return 200, ok_json(), 0

    with LocalServer(handler) as srv:
        sc = make_sc(tmp_path, FAST, target=_target(srv.url))
        with pytest.raises(ActionFailed, match=r"error rate \d+\.\d% > 5%") as err:
            REGISTRY["monitor"]().run(sc)
    assert 0.05 < err.value.record["error_rate"] <= 0.5


def test_slow_answers_and_failed_health_breach(tmp_path: Path) -> None:
    def handler(req, n):  # type: ignore[no-untyped-def]
        if req.path == "/health/ready":
            return 503, ok_json(), 0
        return 200, ok_json(), 2.2

    with LocalServer(handler) as srv:
        sc = make_sc(tmp_path, {"window": 1, "interval": 0.5}, target=_target(srv.url))
        with pytest.raises(ActionFailed) as err:
            REGISTRY["monitor"]().run(sc)
    msg = str(err.value)
    assert "p95" in msg and "> 2000 ms" in msg
    assert "health checks failed in a row" in msg
    assert err.value.record["p95_ms"] > 2000
