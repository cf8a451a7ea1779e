"""load.thresholds and load.regression: locust in subprocesses against the managed demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from readyctl.checks.load._run import normalize_profiles
from readyctl.checks.load.regression import find_baseline
from readyctl.checks.load.thresholds import merged_thresholds

from readyctl.apimap import ApiConfig
from readyctl.check import settings_problem
from readyctl.config import Config, Environment
from readyctl.loadrun import percentile
from readyctl.registry import load_catalog
from tests.conftest import ROOT, demo_context
from tests.helpers import make_context, report_of, results_of, run_checks, statuses
from tests.servers import serve

pytestmark = pytest.mark.slow
ALLOW = ["load.*"]
MESSAGES = "POST /v1/counsel/sessions/{session_id}/messages"

FIXED_LOCUSTFILE = """\
from locust import FastHttpUser, constant, task
from locust.exception import StopUser


class Fixed(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.n = 0

    @task
    def hit(self):
        if self.n >= 10:
            raise StopUser()
        self.n += 1
        self.client.get("/health", name="GET /health")
"""

ENDLESS_LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Endless(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def hit(self):
        self.client.get("/health", name="GET /health")
"""


def _baseline(path: Path, values: dict[str, float], run: dict[str, Any] | None = None) -> Path:
    """A readiness.json with load.thresholds measurements, as a previous run would leave it."""
    results = []
    for subject, value in values.items():
        r: dict[str, Any] = {
            "id": "load.thresholds",
            "subject": subject,
            "status": "pass",
            "measured": value,
        }
        if run is not None and not results:
            r["evidence"] = {"run": run}
        results.append(r)
    path.write_text(
        json.dumps(
            {
                "started_at": "2026-01-01T00:00:00+00:00",
                "environment": {"name": "demo"},
                "results": results,
            }
        )
    )
    return path


def _context(handle: Any, thresholds: dict[str, Any] | None = None, **regression: Any) -> Any:
    checks: dict[str, Any] = {}
    if thresholds:
        checks["load.thresholds"] = thresholds
    if regression:
        checks["load.regression"] = regression
    return demo_context(handle, config=Config(checks=checks), allow=ALLOW)


def test_healthy_demo_is_green_with_percentiles_timeline_and_no_locust_here(
    healthy_demo: Any, tmp_path: Path
) -> None:
    assert not {"gevent", "locust"} & set(sys.modules)
    generous = _baseline(
        tmp_path / "baseline.json",
        {
            "overall/p50_ms": 1500,
            "overall/p95_ms": 4000,
            "overall/p99_ms": 8000,
            "overall/error_rate": 0.0,
            f"{MESSAGES}/p95_ms": 4000,
        },
    )
    # 110 users on a 2-core machine that runs other tests at the same time: latency limits
    # a busy CI box holds (the default limits turning red is test_slow_counsel_...'s job)
    roomy = {
        "thresholds": {
            "overall": {
                "p50_ms": {"warn": 2000, "fail": 4000},
                "p95_ms": {"warn": 4000, "fail": 8000},
                "p99_ms": {"warn": 8000, "fail": 16000},
            },
            "*": {"p95_ms": {"warn": 4000, "fail": 8000}},
        }
    }
    ctx = _context(healthy_demo, roomy, baseline=str(generous))
    t0 = time.monotonic()
    out = run_checks(ctx, only=["load.*"], deadline_s=120)
    took = time.monotonic() - t0
    # locust ran in subprocesses: neither it nor gevent entered this process
    assert not {"gevent", "locust"} & set(sys.modules)
    got = statuses(out, "load.thresholds")
    assert set(got.values()) == {"pass"}, got
    for subject in (
        "overall/p50_ms",
        "overall/p95_ms",
        "overall/p99_ms",
        "overall/error_rate",
        "overall/rps",
        f"{MESSAGES}/p95_ms",
        f"{MESSAGES}/error_rate",
    ):
        assert subject in got
    reg = statuses(out, "load.regression")
    assert reg and set(reg.values()) == {"pass"}, reg
    results = results_of(out, "load.thresholds")
    ev = results["overall/p95_ms"].evidence
    table = ev["percentiles"]
    assert table["overall"]["requests"] > 200
    assert {"requests", "p50_ms", "p95_ms", "p99_ms"} <= set(table[MESSAGES])
    assert len(ev["timeline"]) >= 3 and {"t_s", "p50_ms", "p95_ms"} <= set(ev["timeline"][0])
    assert ev["run"]["users"] == 110 and ev["run"]["mode"] == "standalone"
    assert ev["run"]["profiles"]["sessions"]["sessions_per_hour"] == 1000
    assert results["overall/p95_ms"].unit == "ms" and results["overall/p95_ms"].threshold == 4000
    assert 0 < (results["overall/p95_ms"].score or 0) <= 1
    assert took < 120, f"the default load run took {took:.1f} s"  # a hang guard
    # the HTML report renders the percentile table and the timeline chart
    from readyctl.reporters.html import render

    html = render(report_of(ctx, out))
    load_section = html[html.index('id="load"') :]
    assert "p95_ms" in load_section and "/v1/counsel/sessions" in load_section
    assert "<svg" in load_section and "response time over the run" in load_section
    # no token of the logged-in load users leaks into evidence
    assert "eyJ" not in json.dumps([r.evidence for r in out.results], default=str)


def test_slow_counsel_and_error_burst_turn_it_red(faulty_demo: Any, tmp_path: Path) -> None:
    # both faults at once: p95 belongs to slow-counsel, the error rate to error-burst
    handle = faulty_demo("slow-counsel", "error-burst")
    healthy = _baseline(
        tmp_path / "baseline.json",
        {"overall/p95_ms": 400, "overall/error_rate": 0.0, f"{MESSAGES}/p95_ms": 300},
    )
    out = run_checks(_context(handle, baseline=str(healthy)), only=["load.*"], deadline_s=120)
    got = statuses(out, "load.thresholds")
    results = results_of(out, "load.thresholds")
    assert got["overall/p95_ms"] == "fail", got  # slow-counsel: p95 over 2 s
    assert results["overall/p95_ms"].measured > 2000
    assert got[f"{MESSAGES}/p95_ms"] == "fail"
    assert got["overall/error_rate"] == "fail"  # error-burst: 1 in 5 counsel requests fails
    assert results["overall/error_rate"].measured > 10
    reg = statuses(out, "load.regression")
    assert reg["overall/p95_ms"] == "fail" and reg["overall/error_rate"] == "fail", reg


def _cli_config(tmp_path: Path, handle: Any, locustfile: str, **settings: Any) -> Path:
    (tmp_path / "scenario.py").write_text(locustfile)
    cfg = {
        "version": 1,
        "default_environment": "target",
        "environments": {"target": {"base_url": handle.base_url, "ca_bundle": handle.ca_bundle}},
        "checks": {"load.thresholds": {"locustfile": "scenario.py", **settings}},
    }
    path = tmp_path / "readyctl.yaml"
    path.write_text(json.dumps(cfg))
    return path


def _cli_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, COLUMNS="160", NO_COLOR="1", TMPDIR=str(tmp))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_master_with_two_workers_reports_the_combined_count(
    healthy_demo: Any, tmp_path: Path
) -> None:
    cfg = _cli_config(tmp_path, healthy_demo, FIXED_LOCUSTFILE)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "readyctl", "load", "--config", str(cfg), "--workers", "2"),
            *("--users", "4", "--spawn-rate", "50", "--duration", "3s", "--out", "out"),
            *("--format", "json,html", "--quiet"),
        ],
        cwd=tmp_path,
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "out" / "readiness.json").read_text())
    (ev,) = [
        r["evidence"]
        for r in data["results"]
        if r["id"] == "load.thresholds" and "percentiles" in (r.get("evidence") or {})
    ]
    assert ev["run"]["mode"] == "local master with 2 worker(s)"
    workers = ev["processes"]
    assert len(workers) == 2 and all(w["role"] == "worker" and w["requests"] > 0 for w in workers)
    # 4 users x 10 requests, spread over two workers; the master's CSV has them all
    assert ev["percentiles"]["overall"]["requests"] == 40
    assert sum(w["requests"] for w in workers) == 40
    assert "<svg" in (tmp_path / "out" / "readiness.html").read_text()


def test_workers_join_an_existing_master(healthy_demo: Any, tmp_path: Path) -> None:
    from readyctl.loadrun import free_port

    lf = tmp_path / "fixed.py"
    lf.write_text(FIXED_LOCUSTFILE)
    port = free_port()
    master = subprocess.Popen(
        [
            *(sys.executable, "-m", "locust", "-f", str(lf), "--master", "--headless"),
            *("--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)),
            *("--expect-workers", "2", "--expect-workers-max-wait", "30", "-u", "4", "-r", "20"),
            *("-t", "3s", "--host", healthy_demo.base_url, "--csv", str(tmp_path / "m")),
            *("--only-summary", "--loglevel", "WARNING"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        settings = {"locustfile": str(lf), "master_host": "127.0.0.1", "master_port": port}
        ctx = _context(healthy_demo, {**settings, "workers": 2, "duration": 4})
        out = run_checks(ctx, only=["load.thresholds"], deadline_s=90)
        master.wait(30)
    finally:
        if master.poll() is None:
            master.kill()
            master.wait(5)
    results = results_of(out, "load.thresholds")
    assert statuses(out, "load.thresholds")["overall/p95_ms"] == "pass"
    ev = results["overall/p95_ms"].evidence
    assert ev["run"]["mode"] == f"2 worker(s) joining 127.0.0.1:{port}"
    # our two workers' own stats, combined by readyctl, equal what the master counted
    assert ev["percentiles"]["overall"]["requests"] == 40
    assert [p["requests"] for p in ev["processes"]] == [20, 20]
    assert "Aggregated,40," in (tmp_path / "m_stats.csv").read_text()


def _locust_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd and "locust" in cmd:
            pids.append(int(entry.name))
    return pids


def test_ctrl_c_stops_locust_and_leaves_nothing_behind(healthy_demo: Any, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cfg = _cli_config(tmp_path, healthy_demo, ENDLESS_LOCUSTFILE, users=2, duration="60s")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "readyctl", "load", "--config", str(cfg), "--quiet"),
            *("--out", "out", "--format", "json"),
        ],
        cwd=tmp_path,
        env=_cli_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _locust_processes(str(tmp)) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert _locust_processes(str(tmp)), "locust never started"
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert _locust_processes(str(tmp)) == []
    assert not list(tmp.glob("readyctl-load-*")), "the load work directory was left behind"


def test_a_broken_locustfile_is_an_error_in_seconds(healthy_demo: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import FastHttpUser\nthis is not python\n")
    ctx = _context(healthy_demo, {"locustfile": str(broken), "duration": 30, "users": 2})
    t0 = time.monotonic()
    out = run_checks(ctx, only=["load.thresholds"], deadline_s=60)
    assert time.monotonic() - t0 < 20
    (r,) = results_of(out, "load.thresholds").values()
    assert r.status.value == "error" and r.error_reason.value == "inconclusive"
    assert "no requests" in r.summary


def test_bad_settings_are_refused_up_front_or_are_config_errors(healthy_demo: Any) -> None:
    # the typed settings refuse these before anything runs (readyctl exits 2)
    cls = load_catalog().get("load.thresholds")
    loc, why = settings_problem(cls, {"duration": "soon"}) or ((), "")
    assert loc == ("duration",) and "soon" in why
    loc, why = settings_problem(cls, {"thresholds": {"overall": {"p42_ms": 3}}}) or ((), "")
    assert loc == ("thresholds", "overall", "p42_ms") and "p95_ms" in why
    # what only the run can tell (users against max_users) is a config error of the check
    ctx = _context(healthy_demo, {"users": 2000})
    out = run_checks(ctx, only=["load.thresholds"], deadline_s=30)
    (r,) = results_of(out, "load.thresholds").values()
    assert r.status.value == "error" and r.error_reason.value == "config"
    assert "users must be between 1 and 1000" in r.summary


# -- units -----------------------------------------------------------------------------------
def test_profiles_scale_and_arrival_pacing() -> None:
    from readyctl.checks.load._run import expected_rps

    from readyctl.demo.profile import V1, load_profiles

    DEFAULT_PROFILES = load_profiles(V1, "limit=20")  # the managed demo's (default shape)
    default = normalize_profiles(DEFAULT_PROFILES, None)
    assert [(p["name"], p["users"]) for p in default] == [("counsel", 100), ("sessions", 10)]
    # 1000 sessions an hour, 36x compressed = 10 per second over 10 users: one each per second
    assert default[1]["pacing_s"] == 1.0
    small = normalize_profiles(DEFAULT_PROFILES, 20)
    assert [(p["name"], p["users"]) for p in small] == [("counsel", 18), ("sessions", 2)]
    assert small[1]["pacing_s"] == 0.2
    assert [p["name"] for p in normalize_profiles(DEFAULT_PROFILES, 1)] == ["counsel"]
    assert 60 < expected_rps(default) < 120


def test_thresholds_merge() -> None:
    t = merged_thresholds({"overall": {"p95_ms": 800, "p50_ms": None}, "GET /x": {"p99_ms": 900}})
    assert t["overall"]["p95_ms"]["fail"] == 800 and t["overall"]["p95_ms"]["warn"] is None
    assert t["overall"]["p50_ms"] is None
    assert t["GET /x"]["p99_ms"]["fail"] == 900
    assert t["*"]["error_rate"]["fail"] == 0.05


def test_percentile_matches_locust() -> None:
    hist = {10: 60, 20: 35, 500: 5}
    assert percentile(hist, 100, 0.5) == 10
    assert percentile(hist, 100, 0.9) == 20
    assert percentile(hist, 100, 0.99) == 500


def test_baseline_last_is_the_newest_run_of_this_environment_with_load(tmp_path: Path) -> None:
    hist = tmp_path / ".readyctl" / "history"
    hist.mkdir(parents=True)

    def write(name: str, started: str, env: str, with_load: bool, users: int = 110) -> None:
        results = [{"id": "http.reachable", "subject": "x", "status": "pass", "measured": 3}]
        if with_load:
            results.append(
                {
                    "id": "load.thresholds",
                    "subject": "overall/p95_ms",
                    "status": "pass",
                    "measured": 123.0,
                    "evidence": {"run": {"users": users, "profiles": {"a": {"users": users}}}},
                }
            )
        data = {
            "started_at": started,
            "environment": {"name": env},
            "gate": {"passed": True},  # only a passing run is a baseline
            "results": results,
        }
        (hist / name).write_text(json.dumps(data))

    write("1.json", "2026-01-01T00:00:00", "demo", True)
    write("2.json", "2026-01-02T00:00:00", "demo", True, users=20)
    write("3.json", "2026-01-03T00:00:00", "demo", False)
    write("4.json", "2026-01-04T00:00:00", "staging", True)
    ctx = make_context(env_name="demo", base_dir=tmp_path)
    found = find_baseline(ctx, "last")
    assert found is not None and found[0].name == "2.json"
    shape_110 = json.dumps({"users": 110, "profiles": {"a": {"users": 110}}}, sort_keys=True)
    found = find_baseline(ctx, "last", shape_110)
    assert found is not None and found[0].name == "1.json" and found[1] == {"overall/p95_ms": 123}
    assert find_baseline(make_context(env_name="prod", base_dir=tmp_path), "last") is None


# -- another API shape: no profiles configured, a read-only mix derived from the API map -------
SHAPE = ApiConfig(
    openapi="off",
    login={"path": "/oauth/token", "body": "form", "username_field": "username"},
    me="/api/v2/me",
    lists=[{"path": "/api/v2/items", "page_param": "page", "size_param": "size"}],
    health={"live": "/healthz"},
)
LOAD_CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}


def items_app(broken: bool = False) -> FastAPI:
    """Routes of another shape: a form login, GET /api/v2/items (page/size) and /api/v2/me."""
    app = FastAPI(openapi_url=None)
    app.state.seen = []

    def authed(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer tok-load"

    @app.get("/healthz")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if (form.get("username"), form.get("password")) != ("t@x.org", "Right-Pass-123"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": "tok-load", "token_type": "bearer"})

    @app.get("/api/v2/items")
    def items(request: Request) -> JSONResponse:
        app.state.seen.append(str(request.url.query))
        if not authed(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if broken:
            return JSONResponse({"error": "boom"}, status_code=500)
        return JSONResponse({"items": [{"id": 1}], "total": 1})

    @app.get("/api/v2/me")
    def me(request: Request) -> JSONResponse:
        if not authed(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"email": "t@x.org"})

    return app


def _derived_run(api: ApiConfig, broken: bool = False) -> tuple[Any, Any]:

    cfg = Config(checks={"load.thresholds": {"users": 6, "duration": 4}})
    app = items_app(broken)
    with serve(app) as s:
        env = Environment(base_url=s.url, api=api)
        ctx = make_context(config=cfg, environment=env, environ=dict(LOAD_CREDS))
        out = run_checks(ctx, only=["load.thresholds"], deadline_s=90)
    return app, out


def test_without_profiles_the_map_gives_a_read_only_mix_on_another_api_shape() -> None:
    app, out = _derived_run(SHAPE)
    got = statuses(out, "load.thresholds")
    assert got["overall/error_rate"] == "pass" and got["overall/p95_ms"] == "pass", got
    ev = results_of(out, "load.thresholds")["overall/p95_ms"].evidence
    assert {"GET /api/v2/items", "GET /api/v2/me"} <= set(ev["percentiles"]), ev["percentiles"]
    assert ev["run"]["users"] == 6 and ev["run"]["logins"] == 1
    assert "size=20" in app.state.seen  # the first page, at the map's size parameter
    # red: the list route fails under load
    _, out = _derived_run(SHAPE, broken=True)
    got = statuses(out, "load.thresholds")
    assert got["overall/error_rate"] == "fail", got


def test_without_profiles_or_map_routes_load_skips_naming_the_key() -> None:
    app, out = _derived_run(ApiConfig(openapi="off", health={"live": "/healthz"}))
    (r,) = results_of(out, "load.thresholds").values()
    assert r.status.value == "skip" and "environments.default.api.lists" in r.reason, r.summary
    assert app.state.seen == []  # nothing loaded on a guess
