"""database.reachable, database.pool and database.tls against the demo, the shared server and
Debian's postgresql-15 (with and without TLS)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Config, Environment
from readyctl.postgres.embedded import free_port
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses

PG15 = Path("/usr/lib/postgresql/15/bin")


def db_ctx(url: str, tmp_path: Path, env_text: str | None = None, **checks: Any) -> Any:
    """A context on a database URL, optionally with an env file and check settings."""
    env = Environment(database_url=url, production=True)
    if env_text is not None:
        path = tmp_path / ".env"
        path.write_text(env_text)
        env = env.model_copy(update={"env_file": str(path), "env_source": "file"})
    return make_context(config=Config(checks=checks), environment=env, base_dir=tmp_path)


# -- database.reachable ------------------------------------------------------------------------
def test_reachable_on_the_demo(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["database.reachable"])
    (res,) = results_of(out, "database.reachable").values()
    assert res.status.value == "pass" and "SELECT 1" in res.summary
    assert "@127.0.0.1:" in res.subject and ":" not in res.subject.split("@")[0]


def test_unreachable_database_fails_and_blocks_dependents(tmp_path: Path) -> None:
    url = f"postgresql://app:Sup3r-Secret-pw@127.0.0.1:{free_port()}/app"
    out = run_checks(db_ctx(url, tmp_path), only=["database.*", "indexes.*"])
    (res,) = results_of(out, "database.reachable").values()
    assert res.status.value == "fail" and "cannot connect" in res.summary
    assert "Sup3r-Secret-pw" not in res.summary
    assert set(statuses(out, "database.pool").values()) == {"blocked"}
    assert set(statuses(out, "indexes.hot_queries").values()) == {"blocked"}


def test_silent_server_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept and never answer
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(sock.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        url = f"postgresql://app:pw@127.0.0.1:{sock.getsockname()[1]}/app"
        ctx = db_ctx(url, tmp_path, **{"database.reachable": {"connect_timeout_s": 2}})
        t0 = time.monotonic()
        out = run_checks(ctx, only=["database.reachable"])
        assert time.monotonic() - t0 < 15
        (res,) = results_of(out, "database.reachable").values()
        assert res.status.value in ("fail", "error")
        assert "timeout" in res.summary.lower()
    finally:
        stop.set()
        sock.close()
        for s in held:
            s.close()


# -- database.pool -----------------------------------------------------------------------------
def test_pool_on_the_healthy_demo(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["database.pool"])
    st = statuses(out, "database.pool")
    assert st["pool size"] == "pass" and st["pool timeout"] == "pass"
    assert st["connection budget"] == "pass"
    assert st["sslmode"] == "skip"  # 127.0.0.1
    budget = results_of(out, "database.pool")["connection budget"]
    assert budget.measured == 10 and budget.evidence["usable"] == 197


def test_pool_defaults_fault_fails(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("pool-defaults")
    out = run_checks(demo_context(demo), only=["database.pool"])
    st = statuses(out, "database.pool")
    assert st["pool size"] == "fail" and st["pool timeout"] == "fail"
    assert st["connection budget"] == "fail"
    assert "connection_limit" in results_of(out, "database.pool")["pool size"].summary


def test_pool_budget_over_the_share_fails(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    cfg = Config(checks={"database.pool": {"instances": 16}})
    out = run_checks(demo_context(healthy_demo, config=cfg), only=["database.pool"])
    res = results_of(out, "database.pool")["connection budget"]
    assert res.status.value == "fail"
    assert res.measured == 160 and res.threshold == pytest.approx(157.6)
    assert "16 instance(s) x pool 10" in res.summary


@pytest.fixture
def app_db(shared_pg) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A database and an app role (URL) on the shared server; yields (superuser url, app url)."""
    name = f"pool_{os.getpid()}"
    role = f"pool_app_{os.getpid()}"
    url = shared_pg.create_database(name)
    shared_pg.create_role(role, "App-pw-12345")
    try:
        yield url, shared_pg.url(name, user=role, password="App-pw-12345")
    finally:
        shared_pg.drop_database(name)
        shared_pg.drop_role(role)


GOOD_POOL = "?connection_limit=5&pool_timeout=10"


def test_pool_timeouts_from_the_server_and_the_url(app_db, shared_pg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    su_url, app_url = app_db
    out = run_checks(
        db_ctx(app_url, tmp_path, f"DATABASE_URL={app_url}{GOOD_POOL}\n"), only=["database.pool"]
    )
    st = statuses(out, "database.pool")
    assert st["statement_timeout"] == "fail" and st["idle_in_transaction_session_timeout"] == "fail"
    role = scratch_user(app_url)
    with psycopg.connect(su_url, autocommit=True) as c:
        c.execute(f"ALTER ROLE {role} SET statement_timeout = '15s'")
        c.execute(f"ALTER ROLE {role} SET idle_in_transaction_session_timeout = '1min'")
    out = run_checks(
        db_ctx(app_url, tmp_path, f"DATABASE_URL={app_url}{GOOD_POOL}\n"), only=["database.pool"]
    )
    res = results_of(out, "database.pool")
    assert res["statement_timeout"].status.value == "pass"
    assert res["statement_timeout"].measured == 15000
    assert res["idle_in_transaction_session_timeout"].measured == 60000
    # a URL that sets them through libpq options counts too (no server settings needed)
    with psycopg.connect(su_url, autocommit=True) as c:
        c.execute(f"ALTER ROLE {role} RESET ALL")
    opts = "&options=-c%20statement_timeout%3D5000%20-c%20idle_in_transaction_session_timeout%3D30s"
    out = run_checks(
        db_ctx(app_url, tmp_path, f"DATABASE_URL={app_url}{GOOD_POOL}{opts}\n"),
        only=["database.pool"],
    )
    st = statuses(out, "database.pool")
    assert st["statement_timeout"] == "pass" and st["idle_in_transaction_session_timeout"] == "pass"


def scratch_user(url: str) -> str:
    from readyctl.postgres.scratch import url_parts

    return url_parts(url)["user"]


def test_pool_sslmode_for_a_remote_host(app_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, app_url = app_db
    remote = "postgresql://app:Remote-pw-987@db.internal:5432/app"
    out = run_checks(
        db_ctx(app_url, tmp_path, f"DATABASE_URL={remote}{GOOD_POOL}&sslmode=disable\n"),
        only=["database.pool"],
    )
    res = results_of(out, "database.pool")["sslmode"]
    assert res.status.value == "fail" and "db.internal" in res.summary
    assert "Remote-pw-987" not in res.summary
    out = run_checks(
        db_ctx(app_url, tmp_path, f"DATABASE_URL={remote}{GOOD_POOL}&sslmode=verify-full\n"),
        only=["database.pool"],
    )
    assert statuses(out, "database.pool")["sslmode"] == "pass"


# -- database.tls with Debian's postgresql-15 ------------------------------------------------------
class Pg15:
    """Debian's postgresql-15 run as the postgres user, with a trustme certificate."""

    def __init__(self) -> None:
        import pwd

        import trustme

        self.user = pwd.getpwnam("postgres")
        self.base = Path(tempfile.mkdtemp(prefix="readyctl-pg15-"))
        os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.data = self.base / "data"
        self.port = free_port()
        self._as_pg(
            [
                str(PG15 / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(self.data / "server.crt"))
        leaf.private_key_pem.write_to_path(str(self.data / "server.key"))
        for f in ("server.crt", "server.key"):
            os.chown(self.data / f, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.data / "server.key", 0o600)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_pg(self, cmd: list[str]) -> None:
        subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            user=self.user.pw_uid,
            group=self.user.pw_gid,
            extra_groups=[],
            timeout=60,
        )

    def start(self, *, ssl: bool, hostssl_only: bool = False) -> None:
        hba = "hostssl" if hostssl_only else "host"
        (self.data / "pg_hba.conf").write_text(f"{hba} all all 127.0.0.1/32 trust\n")
        opts = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.base} -c ssl={'on' if ssl else 'off'}"
        )
        self._as_pg(
            [
                str(PG15 / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-w",
                "-t",
                "30",
                "-l",
                str(self.base / "log"),
                "start",
            ]
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._as_pg(
                [str(PG15 / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def pg15() -> Iterator[Pg15]:
    if not (PG15 / "postgres").exists():
        pytest.skip("Debian's postgresql-15 binaries are not installed")
    server = Pg15()
    try:
        yield server
    finally:
        server.remove()


def test_database_tls_with_and_without_ssl(pg15: Pg15, tmp_path: Path) -> None:
    remote = {"database.tls": {"remote": True}}
    pg15.start(ssl=True)
    try:
        out = run_checks(db_ctx(pg15.url, tmp_path, **remote), only=["database.tls"])
        (res,) = results_of(out, "database.tls").values()
        assert res.status.value == "pass", res.summary
        assert res.evidence["protocol"].startswith("TLSv1.")
        assert res.evidence["plaintext_accepted"] is True
        strict = {"database.tls": {"remote": True, "require_tls_only": True}}
        out = run_checks(db_ctx(pg15.url, tmp_path, **strict), only=["database.tls"])
        assert set(statuses(out, "database.tls").values()) == {"fail"}
        # local by default: not applicable
        out = run_checks(db_ctx(pg15.url, tmp_path), only=["database.tls"])
        assert set(statuses(out, "database.tls").values()) == {"skip"}
    finally:
        pg15.stop()
    pg15.start(ssl=True, hostssl_only=True)
    try:
        strict = {"database.tls": {"remote": True, "require_tls_only": True}}
        out = run_checks(db_ctx(pg15.url, tmp_path, **strict), only=["database.tls"])
        (res,) = results_of(out, "database.tls").values()
        assert res.status.value == "pass" and "plaintext is refused" in res.summary
    finally:
        pg15.stop()
    pg15.start(ssl=False)
    try:
        out = run_checks(db_ctx(pg15.url, tmp_path, **remote), only=["database.tls"])
        (res,) = results_of(out, "database.tls").values()
        assert res.status.value == "fail", res.summary
        assert "refuses TLS" in res.summary and res.evidence["plaintext_accepted"] is True
    finally:
        pg15.stop()
