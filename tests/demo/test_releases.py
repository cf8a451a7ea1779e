"""Demo releases (v1, v2), the graceful release swap, maintenance mode and release faults."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, pool

from readyctl.demo.control import read_state
from readyctl.demo.faults import FAULTS, RELEASE_FAULTS, validate_faults
from readyctl.demo.managed import ManagedDemo, start
from readyctl.demo.migrate import write_alembic_ini
from readyctl.demo.releases import BYPASS_HEADER
from readyctl.postgres.embedded import EmbeddedPostgres

from .helpers import api, bearer, login, tls

REPO = Path(__file__).resolve().parents[2]
PARTIAL_INDEX = "ix_counseling_sessions_org_id_created_at"


@pytest.fixture(scope="module")
def rdemo(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """A healthy demo this module swaps between releases (left on v1 by each test)."""
    d = start(pg=pg)
    try:
        yield d
    finally:
        d.stop()


def _sa_url(d: ManagedDemo) -> str:
    """The demo's database URL for SQLAlchemy (psycopg driver, no pool parameters)."""
    url = d.database_url.split("?", 1)[0]
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _alembic(ini: str, d: ManagedDemo) -> Any:
    """An alembic Config for a demo ini with the demo's database URL."""
    from alembic.config import Config

    cfg = Config(ini)
    cfg.set_main_option("sqlalchemy.url", d.database_url.replace("%", "%%"))
    return cfg


def _pending(ini: str, d: ManagedDemo) -> list[str]:
    """Revisions of `ini`'s versions not applied to the demo's database."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic(ini, d))
    engine = create_engine(_sa_url(d), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    revs = script.iterate_revisions(script.get_heads(), current or "base")
    return [r.revision for r in revs]


def _schema(d: ManagedDemo) -> tuple[set[str], set[str], str | None]:
    """(columns of counseling_sessions, its index names, alembic revision)."""
    engine = create_engine(_sa_url(d), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            cols = {c["name"] for c in insp.get_columns("counseling_sessions")}
            idx = {i["name"] for i in insp.get_indexes("counseling_sessions")}
            rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()
    return cols, idx, rev


def _create_session(d: ManagedDemo, **body: Any) -> httpx.Response:
    with api(d) as c:
        tokens = login(c, d.user())
        return c.post("/v1/counsel/sessions", json=body, headers=bearer(tokens))


def test_release_faults_are_apart_from_the_check_faults() -> None:
    assert not set(RELEASE_FAULTS) & set(FAULTS)
    assert validate_faults(["slow-release", "no-hsts"]) == ("no-hsts", "slow-release")


def test_v1_has_nothing_pending_and_v2_one_revision(rdemo: ManagedDemo) -> None:
    assert rdemo.release == "v1"
    assert rdemo.alembic_ini_for("v1") == rdemo.alembic_ini
    assert _pending(rdemo.alembic_ini_for("v1"), rdemo) == []
    assert _pending(rdemo.alembic_ini_for("v2"), rdemo) == ["0005_session_mood"]
    state = read_state(rdemo.state_file)
    assert stat.S_IMODE(os.stat(rdemo.state_file).st_mode) == 0o600
    assert state["release"] == "v1" and state["alembic_ini"]["v2"] == rdemo.alembic_ini_for("v2")
    assert state["bypass_secret"] == rdemo.maintenance_secret
    assert rdemo.maintenance_secret not in repr(rdemo)


def test_deploy_release_swaps_without_refusing_a_connection(rdemo: ManagedDemo) -> None:
    from alembic import command

    command.upgrade(_alembic(rdemo.alembic_ini_for("v2"), rdemo), "head")
    ctx = tls(rdemo)
    errors: list[str] = []
    seen: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:  # a new connection per request: every one goes through accept()
                r = httpx.get(rdemo.base_url + "/health/ready", verify=ctx, timeout=10)
                if r.status_code != 200:
                    errors.append(f"HTTP {r.status_code}")
                seen.append(r.headers.get("x-release", "v1"))
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        old_pid = rdemo.pid
        rdemo.deploy_release("v2")
        assert rdemo.release == "v2" and rdemo.pid != old_pid
        assert not os.path.exists(f"/proc/{old_pid}")  # drained and reaped
        with api(rdemo) as c:
            version = c.get("/v1/version")
            assert version.status_code == 200, version.text
            assert version.json() == {"release": "v2", "schema": "0005_session_mood"}
            assert version.headers["x-release"] == "v2"
        created = _create_session(rdemo, title="calm", mood="hopeful")
        assert created.status_code == 201, created.text
        assert created.json()["mood"] == "hopeful"
        assert read_state(rdemo.state_file)["release"] == "v2"
        rdemo.deploy_release("v1")
    finally:
        time.sleep(0.3)
        stop.set()
        worker.join(15)
    assert errors == [], errors[:5]
    assert "v2" in seen and seen[-1] == "v1"
    assert rdemo.release == "v1"
    with api(rdemo) as c:
        assert c.get("/v1/version").status_code == 404
    created = _create_session(rdemo, title="v1 again", mood="ignored")
    assert created.status_code == 201 and "mood" not in created.json()


def test_maintenance_mode_and_bypass(rdemo: ManagedDemo) -> None:
    rdemo.set_maintenance(True)
    try:
        with api(rdemo) as c:
            r = c.post("/v1/auth/login", json={"email": "a@b.example", "password": "x"})
            assert r.status_code == 503 and r.headers["retry-after"] == "30"
            assert r.json()["error"]["code"] == "maintenance"
            for probe in ("/health", "/health/live", "/health/ready"):
                assert c.get(probe).status_code == 200, probe
            wrong = {BYPASS_HEADER: "not-the-secret"}
            assert c.get("/v1/counsel/sessions", headers=wrong).status_code == 503
            bypass = {BYPASS_HEADER: rdemo.maintenance_secret}
            r = c.post(
                "/v1/auth/login",
                json={"email": rdemo.user()["email"], "password": rdemo.user()["password"]},
                headers=bypass,
            )
            assert r.status_code == 200, r.text
            tokens = r.json()
            r = c.get("/v1/counsel/sessions", headers={**bypass, **bearer(tokens)})
            assert r.status_code == 200
    finally:
        rdemo.set_maintenance(False)
    with api(rdemo) as c:
        assert c.get("/v1/counsel/sessions").status_code == 401  # back to normal


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "readyctl", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_demo_up_state_file_release_and_maintenance_across_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_DEMO_")}
    env["TMPDIR"] = str(tmp_path)
    state_file = tmp_path / "demo.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "readyctl", "demo", "up", "--state-file", str(state_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "Press Ctrl-C" in out, out
        assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
        state = json.loads(state_file.read_text())
        assert state["pid"] == proc.pid and state["release"] == "v1"
        first_server = state["server_pid"]

        swapped = _cli("demo", "release", "v2", "--state-file", str(state_file), env=env)
        assert swapped.returncode == 0, swapped.stdout + swapped.stderr
        assert swapped.stdout.startswith("release v2 serves ready"), swapped.stdout
        state = json.loads(state_file.read_text())
        assert state["release"] == "v2" and state["server_pid"] != first_server
        assert not os.path.exists(f"/proc/{first_server}")
        ctx = ssl.create_default_context(cafile=state["ca_bundle"])
        r = httpx.get(state["base_url"] + "/health/ready", verify=ctx)
        assert r.headers["x-release"] == "v2"

        on = _cli("demo", "maintenance", "on", env={**env, "READYCTL_DEMO_STATE": str(state_file)})
        assert on.returncode == 0 and on.stdout.strip() == "maintenance is on (was off)", on
        r = httpx.get(state["base_url"] + "/v1/version", verify=ctx)
        assert r.status_code == 503 and r.headers["retry-after"] == "30"
        r = httpx.get(
            state["base_url"] + "/v1/version",
            verify=ctx,
            headers={state["bypass_header"]: state["bypass_secret"]},
        )
        assert r.status_code == 200
        off = _cli("demo", "maintenance", "off", "--state-file", str(state_file), env=env)
        assert off.returncode == 0, off
        assert httpx.get(state["base_url"] + "/v1/version", verify=ctx).status_code == 200

        bad = _cli("demo", "release", "v9", "--state-file", str(state_file), env=env)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
        printed = out + swapped.stdout + swapped.stderr + on.stdout + off.stdout
        password = state["database_url"].split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert state["bypass_secret"] not in printed and password not in printed
        server_pid = state["server_pid"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, rest
    assert "Stopped" in rest
    assert not os.path.exists(f"/proc/{server_pid}")
    assert list(tmp_path.iterdir()) == []  # state file, workdir and database all gone
    gone = _cli("demo", "release", "v1", "--state-file", str(state_file), env=env)
    assert gone.returncode == 1 and "no demo state file" in gone.stderr


@pytest.fixture(scope="module")
def faulty(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """A demo with every release fault on (each one only changes v2)."""
    d = start(["bad-release", "slow-release", "failing-migration"], pg=pg)
    try:
        yield d
    finally:
        d.stop()


def test_release_faults_change_v2_only(faulty: ManagedDemo) -> None:
    from alembic import command

    # v1 serves as usual: nothing pending, sessions are created, no delay
    assert _pending(faulty.alembic_ini, faulty) == []
    t0 = time.monotonic()
    assert _create_session(faulty, title="before").status_code == 201
    assert time.monotonic() - t0 < 2.0

    # failing-migration: v2's upgrade fails half way and leaves the concurrent index behind
    before = _schema(faulty)
    assert PARTIAL_INDEX not in before[1]
    with pytest.raises(Exception, match="mood"):
        command.upgrade(_alembic(faulty.alembic_ini_for("v2"), faulty), "head")
    cols, idx, rev = _schema(faulty)
    assert rev == "0004_billing" and "mood" not in cols and PARTIAL_INDEX in idx
    assert _pending(faulty.alembic_ini_for("v2"), faulty) == ["0005_session_mood"]

    # apply the good v2 migration, so that what breaks below is the release, not the schema
    good_ini = write_alembic_ini(Path(faulty.workdir) / "alembic-v2-good.ini", (), "v2")
    command.upgrade(_alembic(good_ini, faulty), "head")
    faulty.deploy_release("v2")
    try:
        with api(faulty) as c:
            t0 = time.monotonic()
            assert c.get("/health/ready").status_code == 200
            assert time.monotonic() - t0 < 2.0  # probes are not slowed
            t0 = time.monotonic()
            assert c.get("/v1/version").status_code == 200
            assert time.monotonic() - t0 > 2.0  # slow-release
        created = _create_session(faulty, title="during", mood="tense")
        assert created.status_code == 500  # bad-release
    finally:
        faulty.deploy_release("v1")
    t0 = time.monotonic()
    assert _create_session(faulty, title="after").status_code == 201
    assert time.monotonic() - t0 < 2.0
