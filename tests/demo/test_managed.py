"""The launcher: lifecycle, cleanup, outages, rate limits, the startup guard and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from readyctl.demo.faults import FAULTS
from readyctl.demo.managed import ManagedDemo, start
from readyctl.demo.settings import ENV_VARS, parse_env_file
from readyctl.postgres.embedded import EmbeddedPostgres

from .helpers import api, bearer, login, tls, unique_email

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]
Factory = Callable[..., ManagedDemo]


def _port_closed(port: int) -> bool:
    """Tell whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _processes_mentioning(text: str) -> list[int]:
    """Return pids whose command line mentions `text`."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if text in cmd and proc.pid != os.getpid():
            found.append(proc.pid)
    return found


def test_stop_leaves_no_process_port_or_directory() -> None:
    d = start()
    pg = d._rt.pg
    assert pg is not None and pg.base is not None and pg.pid is not None
    pg_base, pg_pid = str(pg.base), pg.pid
    ports = [int(u.rsplit(":", 1)[1]) for u in (d.base_url, d.http_url, d.mail_url)] + [d.pg_port]
    assert not any(_port_closed(p) for p in ports)
    d.stop()
    d.stop()  # idempotent
    for pid in (d.pid, pg_pid):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert all(_port_closed(p) for p in ports)
    assert not Path(d.workdir).exists() and not Path(pg_base).exists()
    assert _processes_mentioning(d.workdir) == [] and _processes_mentioning(pg_base) == []


def test_shared_server_stop_drops_database_and_role(pg: EmbeddedPostgres) -> None:
    d = start(pg=pg)
    dbname, role = d._rt.dbname, d._rt.role
    d.stop()
    with pg.connect() as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            is None
        )
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None
    assert pg.running


def test_unknown_fault_is_rejected_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-hsts") as info:
        start(["no-such-fault"], workdir=str(tmp_path))
    assert "no-such-fault" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_start_cleans_up_and_raises_one_line(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    with pg.connect() as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    with pytest.raises(RuntimeError) as info:
        start(pg=pg, workdir=str(tmp_path), timeout_s=0.01)
    message = str(info.value)
    assert "\n" not in message and "managed demo failed" in message
    assert list(tmp_path.iterdir()) == []
    assert _processes_mentioning(str(tmp_path)) == []
    with pg.connect() as conn:
        after = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert after == before


def test_database_outage_ready_503_then_recovers() -> None:
    d = start()
    try:
        with api(d) as c:
            assert c.get("/health/ready").status_code == 200
            d.stop_database()
            r = c.get("/health/ready")
            assert r.status_code == 503 and r.json()["checks"]["database"] == "unreachable"
            assert c.get("/health/live").status_code == 200
            r = c.post("/v1/auth/login", json={"email": d.user()["email"], "password": "x"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
            d.start_database()
            deadline = time.monotonic() + 10
            while c.get("/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "not ready after the database came back"
                time.sleep(0.1)
            login(c, d.user())
    finally:
        d.stop()


def test_rate_limits_answer_429_with_headers(make_demo: Factory) -> None:
    d = make_demo(ai_latency_ms=0)
    with api(d) as c:
        for i in range(5):
            r = c.post("/v1/auth/register", json={"email": unique_email(), "password": PASSWORD})
            assert r.status_code == 202, i
            assert r.headers["RateLimit-Remaining"] == str(4 - i)
        r = c.post("/v1/auth/register", json={"email": unique_email(), "password": PASSWORD})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 0 < int(r.headers["Retry-After"]) <= 60
        assert r.headers["RateLimit-Limit"] == "5" and r.headers["RateLimit-Remaining"] == "0"
        assert int(r.headers["RateLimit-Reset"]) > 0

        for _ in range(10):
            r = c.post("/v1/auth/password-reset/request", json={"email": unique_email()})
            assert r.status_code == 202
        r = c.post("/v1/auth/password-reset/request", json={"email": unique_email()})
        assert r.status_code == 429 and 60 < int(r.headers["Retry-After"]) <= 3600

        h = bearer(login(c, d.user()))
        sid = c.post("/v1/counsel/sessions", json={}, headers=h).json()["id"]
        url = f"/v1/counsel/sessions/{sid}/messages"
        for i in range(100):
            r = c.post(url, json={"content": f"message {i}"}, headers=h)
            assert r.status_code == 201, (i, r.text)
        r = c.post(url, json={"content": "one too many"}, headers=h)
        assert r.status_code == 429 and "Retry-After" in r.headers
        # The limit is per user: another user is unaffected.
        other = bearer(login(c, d.user("member", index=1)))
        sid2 = c.post("/v1/counsel/sessions", json={}, headers=other).json()["id"]
        r = c.post(f"/v1/counsel/sessions/{sid2}/messages", json={"content": "hi"}, headers=other)
        assert r.status_code == 201


def test_forwarded_for_does_not_bypass_limits(make_demo: Factory) -> None:
    d = make_demo(ai_latency_ms=0)
    with api(d) as c:
        codes = [
            c.post(
                "/v1/auth/register",
                json={"email": unique_email(), "password": PASSWORD},
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(6)
        ]
    assert codes == [202] * 5 + [429]


def test_env_file_example_and_tls(demo: ManagedDemo) -> None:
    env = parse_env_file(demo.env_file)
    assert stat.S_IMODE(os.stat(demo.env_file).st_mode) == 0o600
    for key in (
        "DATABASE_URL",
        "JWT_SECRET",
        "OPENAI_API_KEY",
        "POSTMARK_API_TOKEN",
        "FROM_EMAIL",
        "WEB_APP_URL",
        "APP_ENV",
        "NODE_ENV",
        "STRIPE_WEBHOOK_SECRET",
        "SENTRY_DSN",
        "CORS_ORIGINS",
    ):
        assert env.get(key), key
    assert len(env["JWT_SECRET"]) >= 48
    assert env["APP_ENV"] == env["NODE_ENV"] == "production"
    assert env["WEB_APP_URL"].startswith("https://")
    assert env["DATABASE_URL"] == demo.database_url
    assert "connection_limit=10" in env["DATABASE_URL"] and "pool_timeout=10" in env["DATABASE_URL"]
    assert env["STRIPE_WEBHOOK_SECRET"] == demo.webhook_secret
    assert env["POSTMARK_API_TOKEN"] == demo.mail_token
    example = parse_env_file(demo.env_example)
    assert set(env) <= set(example) == set(ENV_VARS)
    assert env["JWT_SECRET"] not in Path(demo.env_example).read_text()
    shown = repr(demo)
    for secret in (demo.mail_token, demo.webhook_secret, demo.user()["password"]):
        assert secret not in shown
    assert demo.database_url not in shown
    # TLS: the generated CA verifies the server for 127.0.0.1 and localhost, nothing else does.
    port = demo.base_url.rsplit(":", 1)[1]
    assert httpx.get(f"https://localhost:{port}/health", verify=tls(demo)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(demo.base_url + "/health", verify=ssl.create_default_context())
    assert Path(demo.alembic_ini).exists()
    assert len(demo.users) >= 100
    assert {u["role"] for u in demo.users} == {"admin", "member"}
    assert len({u["org_slug"] for u in demo.users}) == 2


def _serve_with(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the server entry point with an env file; return the finished process."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "readyctl.demo",
            "serve",
            "--env-file",
            str(env_file),
            "--api-port",
            "0",
            "--certfile",
            "/nonexistent.pem",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("READYCTL_DEMO_")},
    )


def test_startup_guard_refuses_missing_or_weak_jwt_secret(tmp_path: Path) -> None:
    base = {
        "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
        "OPENAI_API_KEY": "sk-test-key",
        "POSTMARK_API_TOKEN": "tok-0123456789",
    }
    missing = _serve_with(tmp_path, base)
    assert missing.returncode == 2
    assert "JWT_SECRET is missing" in missing.stderr
    weak = _serve_with(tmp_path, {**base, "JWT_SECRET": "supersecret"})
    assert weak.returncode == 2
    assert "JWT_SECRET is too short" in weak.stderr
    assert "supersecret" not in weak.stderr
    low_entropy = _serve_with(tmp_path, {**base, "JWT_SECRET": "ab" * 40})
    assert low_entropy.returncode == 2 and "entropy" in low_entropy.stderr


def test_demo_up_prints_urls_and_credentials_then_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_DEMO_")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "readyctl.demo", "up", "--fault", "no-metrics"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    out = "".join(lines)
    assert "https://127.0.0.1:" in out and "admin@acme.example" in out and "no-metrics" in out
    env_line = next(x for x in lines if "env file" in x)
    env_file = env_line.split()[-1]
    secrets = parse_env_file(env_file)
    for key in ("JWT_SECRET", "POSTMARK_API_TOKEN", "STRIPE_WEBHOOK_SECRET", "OPENAI_API_KEY"):
        assert secrets[key] not in out, key
    db_password = secrets["DATABASE_URL"].split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert db_password not in out
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Stopped" in rest
    assert not Path(env_file).exists()
    assert list(tmp_path.iterdir()) == []


def test_faults_cli_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "readyctl.demo", "faults", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    data = json.loads(out)
    assert [f["name"] for f in data] == list(FAULTS)
    assert all(set(f) == {"name", "description", "checks"} for f in data)
