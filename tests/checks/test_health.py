"""health.endpoints and health.db_outage against the demo and against broken servers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
OK += b'Connection: close\r\n\r\n{"status":"ok"}'


class Hostile:
    """A raw TCP server on 127.0.0.1 whose paths misbehave in the ways a real target can."""

    def __init__(self, extra: dict[str, bytes] | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.extra = extra or {}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(3)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode().split("?")[0]
            if path in self.extra:
                conn.sendall(self.extra[path])
            elif path == "/health":
                conn.sendall(OK)
            elif path == "/never":  # a body that never ends
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                while not self.stop.is_set():
                    conn.sendall(b"x")
                    time.sleep(0.05)
            elif path == "/big":  # 10 MB
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                block = b"y" * 65536
                for _ in range(10_000_000 // 65536):
                    conn.sendall(block)
            elif path == "/malformed":
                conn.sendall(b"HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n{}")
            elif path == "/loop":
                conn.sendall(
                    b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            elif path == "/script":
                body = b"<script>alert(1)</script>"
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nX-Evil: <script>alert(2)</script>\r\n"
                    b"Content-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % len(body)
                    + body
                )
            elif path == "/hang":
                self.stop.wait(30)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


# the hostile server's one sane path is the liveness probe (what http.reachable GETs)
HOSTILE_MAP = ApiConfig(openapi="off", health={"live": "/health"})


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    """Factory of hostile servers, closed after the test."""
    made: list[Hostile] = []

    def make(extra: dict[str, bytes] | None = None) -> Hostile:
        h = Hostile(extra)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def health_app(ready_status: int = 200, slow_s: float = 0.0) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        if slow_s:
            import asyncio

            await asyncio.sleep(slow_s)
        return JSONResponse({"status": "ready"}, status_code=ready_status)

    return app


# the probes named in the API map (discovery off: the servers' own OpenAPI documents stay out)
DEFAULT_HEALTH = ApiConfig(openapi="off", health={"live": "/health", "ready": "/health/ready"})
NO_MAP = ApiConfig(openapi="off")


def probes_env(url: str, live: str = "/healthz", ready: str = "/readyz") -> Environment:
    """An environment whose API map names its own probes (not the demo's)."""
    return Environment(
        base_url=url, api=ApiConfig(openapi="off", health={"live": live, "ready": ready})
    )


def test_endpoints_pass_on_the_healthy_demo(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["health.endpoints"])
    # the demo's probes come from its API map (readyctl/demo/profile.py), not from the check
    assert statuses(out, "health.endpoints") == {
        "/health/live": "pass",
        "/health/ready": "pass",
    }
    r = results_of(out, "health.endpoints")["/health/ready"]
    assert r.unit == "ms" and r.threshold == 300 and 0 < r.score <= 1
    assert "p95" in r.summary and "/health/ready" in r.summary


def test_endpoints_fail_on_missing_erroring_and_slow_probes() -> None:
    cfg = Config(checks={"health.endpoints": {"requests": 4, "p95_ms": 150}})
    with serve(health_app(slow_s=0.25)) as s:
        env = probes_env(s.url, live="/health/live", ready="/health/ready")
        out = run_checks(make_context(config=cfg, environment=env), only=["health.endpoints"])
    got = results_of(out, "health.endpoints")
    assert set(got) == {"/health/live", "/health/ready"}  # the map's probes, nothing guessed
    assert got["/health/live"].status.value == "fail" and "404" in got["/health/live"].summary
    slow = got["/health/ready"]
    assert slow.status.value == "fail" and slow.measured > 150 and slow.score < 0.5
    with serve(health_app(ready_status=503)) as s:
        env = Environment(base_url=s.url, api=DEFAULT_HEALTH)
        out = run_checks(make_context(config=cfg, environment=env), only=["health.endpoints"])
    assert results_of(out, "health.endpoints")["/health"].status.value == "pass"
    ready = results_of(out, "health.endpoints")["/health/ready"]
    assert ready.status.value == "fail" and "503" in ready.summary


def probes_app(ready_status: int = 200, live_status: int = 200) -> FastAPI:
    """An API of another shape: /healthz and /readyz, nothing at the demo's /health/*."""
    app = FastAPI(openapi_url=None)

    @app.get("/healthz")
    async def live() -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=live_status)

    @app.get("/readyz")
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": ready_status == 200}, status_code=ready_status)

    return app


def test_endpoints_follow_the_map_on_another_api_shape() -> None:
    cfg = Config(checks={"health.endpoints": {"requests": 3}})
    with serve(probes_app()) as s:
        out = run_checks(
            make_context(config=cfg, environment=probes_env(s.url)), only=["health.endpoints"]
        )
    assert statuses(out, "health.endpoints") == {"/healthz": "pass", "/readyz": "pass"}
    assert statuses(out, "http.reachable") == {s.url: "pass"}  # GET /healthz, the map's live
    with serve(probes_app(ready_status=503)) as s:
        out = run_checks(
            make_context(config=cfg, environment=probes_env(s.url)), only=["health.endpoints"]
        )
    got = results_of(out, "health.endpoints")
    assert got["/healthz"].status.value == "pass"
    assert got["/readyz"].status.value == "fail" and "503" in got["/readyz"].summary


def test_endpoints_skip_naming_the_key_when_the_map_has_no_probes() -> None:
    with serve(probes_app()) as s:
        env = Environment(base_url=s.url, api=NO_MAP)
        out = run_checks(make_context(environment=env, env_name="prod"), only=["health.*"])
    (r,) = results_of(out, "health.endpoints").values()
    assert r.status.value == "skip", r.summary
    assert "environments.prod.api.health.ready" in r.reason
    # the probe needs no route: any HTTP answer at the base URL proves the target is up
    assert statuses(out, "http.reachable") == {s.url: "pass"}


def test_endpoints_end_as_fail_or_error_against_hostile_paths(hostile) -> None:  # type: ignore[no-untyped-def]
    h = hostile()
    paths = ["/never", "/big", "/malformed", "/loop", "/script", "/hang"]
    cfg = Config(
        checks={"health.endpoints": {"paths": paths, "requests": 2, "request_timeout_s": 1}}
    )
    t0 = time.monotonic()
    env = Environment(base_url=h.url, api=HOSTILE_MAP)
    out = run_checks(make_context(config=cfg, environment=env), only=["health.endpoints"])
    took = time.monotonic() - t0
    got = results_of(out, "health.endpoints")
    assert set(got) == set(paths)
    for path, r in got.items():
        assert r.status.value in ("fail", "error"), (path, r.summary)
        assert r.summary.count(".") <= 3 and len(r.summary) < 300
    assert got["/never"].status.value == "error" and got["/never"].error_reason.value == "timeout"
    assert got["/hang"].error_reason.value == "timeout"
    assert got["/big"].status.value == "fail" and "body exceeded 64 KB" in got["/big"].summary
    assert got["/malformed"].error_reason.value == "connectivity"
    assert "302" in got["/loop"].summary
    assert took < 60  # a hang guard, not a speed target


def test_endpoints_blocked_when_the_target_refuses_connections() -> None:
    from tests.servers import free_port

    env = Environment(base_url=f"http://127.0.0.1:{free_port()}")
    out = run_checks(make_context(environment=env), only=["health.endpoints"])
    (r,) = results_of(out, "health.endpoints").values()
    assert r.status.value == "blocked" and "http.reachable" in r.reason


ALLOW = ["health.db_outage"]


def test_db_outage_passes_and_the_database_comes_back(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(own_pg=True)
    out = run_checks(demo_context(d, allow=ALLOW), only=["health.db_outage"])
    assert statuses(out, "health.db_outage") == {
        "/health/ready during database outage": "pass",
        "/health/live during database outage": "pass",
        "/health/ready after database restart": "pass",
    }
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=d.ca_bundle)
    with urllib.request.urlopen(d.base_url + "/health/ready", context=ctx, timeout=5) as resp:
        assert resp.status == 200


def test_db_outage_fails_when_readiness_ignores_the_database(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("ready-ignores-db", own_pg=True)
    cfg = Config(checks={"health.db_outage": {"fail_within_s": 2}})
    out = run_checks(demo_context(d, config=cfg, allow=ALLOW), only=["health.db_outage"])
    got = results_of(out, "health.db_outage")
    down = got["/health/ready during database outage"]
    assert down.status.value == "fail" and "kept answering 2xx for 2 s" in down.summary
    assert got["/health/live during database outage"].status.value == "pass"
    assert got["/health/ready after database restart"].status.value == "pass"
    assert d._rt.pg.running  # restarted in the check's finally


def test_db_outage_skips_without_a_managed_target() -> None:
    out = run_checks(
        make_context(environment=Environment(base_url="https://api.example.org")),
        only=["health.db_outage"],
    )
    (r,) = results_of(out, "health.db_outage").values()
    assert r.status.value == "skip" and "managed" in r.reason


class FakeTarget:
    """A managed target whose database is a flag the app's readiness reads (or ignores).

    Its shape is not the demo's default, so no demo defaults apply: the routes come from the
    environment's API map only."""

    shape = "custom"

    def __init__(self) -> None:
        self.up = True
        self.stops = 0

    def stop_database(self) -> None:
        self.up, self.stops = False, self.stops + 1

    def start_database(self) -> None:
        self.up = True


def outage_app(target: FakeTarget, *, ready_follows: bool = True) -> FastAPI:
    app = FastAPI(openapi_url=None)

    @app.get("/healthz")
    async def live() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/readyz")
    async def ready() -> JSONResponse:
        ok = target.up or not ready_follows
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    return app


def _outage(ready_follows: bool, api: ApiConfig | None = None) -> tuple[FakeTarget, dict[str, Any]]:
    target = FakeTarget()
    cfg = Config(checks={"health.db_outage": {"fail_within_s": 2, "recover_within_s": 2}})
    with serve(outage_app(target, ready_follows=ready_follows)) as s:
        env = probes_env(s.url) if api is None else Environment(base_url=s.url, api=api)
        ctx = make_context(config=cfg, environment=env, managed=target)
        out = run_checks(ctx, only=ALLOW)
    return target, results_of(out, "health.db_outage")


def test_db_outage_follows_the_map_on_another_api_shape() -> None:
    target, got = _outage(ready_follows=True)
    assert {s: r.status.value for s, r in got.items()} == {
        "/readyz during database outage": "pass",
        "/healthz during database outage": "pass",
        "/readyz after database restart": "pass",
    }
    assert target.up and target.stops == 1
    target, got = _outage(ready_follows=False)
    down = got["/readyz during database outage"]
    assert down.status.value == "fail" and "GET /readyz kept answering 2xx" in down.summary
    assert got["/healthz during database outage"].status.value == "pass"
    assert target.up  # started again in the check's finally


def test_db_outage_skips_naming_the_key_when_the_map_has_no_probes() -> None:
    target, got = _outage(ready_follows=True, api=NO_MAP)
    (r,) = got.values()
    assert r.status.value == "skip" and "environments.default.api.health.ready" in r.reason
    assert target.stops == 0  # nothing was stopped on a guess
