"""Prisma Migrate rehearsed from its files: deploy's bookkeeping, irreversible migrations,
a down.sql that forgets an index, pending, lint and auto-detection."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Config, Environment
from readyctl.rehearsal import RehearsalError, StepFailed, prove_scratch
from readyctl.rehearsal.prisma import PrismaMigrator, from_project
from tests.helpers import make_context, results_of, run_checks, snapshot, statuses

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "migrations" / "prisma"
MIGRATIONS = FIXTURE / "prisma" / "migrations"
INIT = "20240101000000_init"
IRREVERSIBLE = "20240201000000_add_posts_index"
BUGGY = "20240301000000_add_user_name_and_title_index"
ALL = (INIT, IRREVERSIBLE, BUGGY)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Prisma fixture project (tests may edit it)."""
    root = tmp_path / "app"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture
def databases(shared_pg: Any) -> Iterator[Any]:
    """Factory: a fresh database on the shared server (dropped afterwards) -> URL."""
    made: list[str] = []

    def make() -> str:
        name = f"prisma_{uuid.uuid4().hex[:10]}"
        made.append(name)
        return str(shared_pg.create_database(name))

    yield make
    for name in made:
        shared_pg.drop_database(name)


def ctx_for(url: str, base: Path, **settings: Any) -> Any:
    """A context on a database URL, the project at `base`, migrations.rehearsal settings."""
    cfg = Config(checks={"migrations.rehearsal": settings}) if settings else Config()
    return make_context(
        config=cfg,
        environment=Environment(database_url=url, production=True),
        base_dir=base,
    )


def migrate(url: str, upto: int, root: Path = MIGRATIONS) -> PrismaMigrator:
    """Apply the first `upto` fixture migrations to `url` with the migrator."""
    m = PrismaMigrator(migrations_dir=str(root))
    for name in ALL[:upto]:
        m.upgrade(url, name, 30)
    return m


def prisma_rows(url: str) -> list[tuple[Any, ...]]:
    """_prisma_migrations' rows in apply order."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, "
            "started_at, applied_steps_count FROM _prisma_migrations ORDER BY started_at"
        ).fetchall()


# -- the rehearsal ---------------------------------------------------------------------------------
def test_pending_run_sound_irreversible_and_forgotten_index(databases: Any, project: Path) -> None:
    """From an empty database: init round-trips (pass), the migration without down.sql is
    upgraded and warned about, the one whose down.sql forgets an index fails naming it; the
    target is not touched."""
    url = databases()
    before = snapshot(url)
    out = run_checks(ctx_for(url, project), only=["migrations.rehearsal"], deadline_s=120)
    st = statuses(out, "migrations.rehearsal")
    assert st == {INIT: "pass", IRREVERSIBLE: "warn", BUGGY: "fail"}, st
    res = results_of(out, "migrations.rehearsal")
    assert res[INIT].evidence["tool"] == "prisma"
    assert "irreversible" in res[IRREVERSIBLE].summary
    assert "no down migration" in res[IRREVERSIBLE].summary
    assert "restore from backup" in res[IRREVERSIBLE].summary
    assert res[IRREVERSIBLE].evidence.get("up_s") is not None  # its upgrade did run on scratch
    assert "prisma migrate diff" in res[IRREVERSIBLE].evidence["remedy"]
    bad = res[BUGGY]
    assert "downgrade does not restore the schema" in bad.summary
    assert "posts_title_idx" in bad.summary and "index" in bad.summary
    assert any("posts_title_idx" in d for d in bad.evidence["difference"])
    assert bad.evidence["failed_step"] == "down"
    after = snapshot(url)
    assert after[:2] == before[:2] and after[3] == before[3], "the target changed"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone() == (None,)


def test_require_reversible_fails_the_irreversible_one(databases: Any, project: Path) -> None:
    """Target at init (the sentinel proof runs on its _prisma_migrations): with
    require_reversible the migration without down.sql is a fail; an edited applied migration
    is noted; the target's rows stay as they were."""
    url = databases()
    migrate(url, 1)
    with psycopg.connect(url) as conn:  # the file was edited after it was applied
        conn.execute("UPDATE _prisma_migrations SET checksum = %s", ("0" * 64,))
    before = snapshot(url)
    ctx = ctx_for(url, project, require_reversible=True)
    out = run_checks(ctx, only=["migrations.rehearsal"], deadline_s=120)
    st = statuses(out, "migrations.rehearsal")
    assert st == {IRREVERSIBLE: "fail", BUGGY: "fail"}, st
    res = results_of(out, "migrations.rehearsal")
    assert "require_reversible" in res[IRREVERSIBLE].summary
    assert "no down migration" in res[IRREVERSIBLE].summary
    notes = res[IRREVERSIBLE].evidence["notes"]
    assert not any("no sentinel" in n for n in notes), notes  # the proof ran
    assert any(INIT in n and "edited" in n for n in notes), notes
    assert res[IRREVERSIBLE].evidence["source_revision"] == [INIT]
    assert snapshot(url) == before


def test_nothing_pending_walk_stops_at_the_irreversible_one(databases: Any) -> None:
    """At head with last=3: the newest is walked down and fails to come back up (its down.sql
    left the index), the walk stops at the migration without down.sql (warn), and init below
    it is reported as not rehearsed, saying why."""
    url = databases()
    migrate(url, 3)
    out = run_checks(ctx_for(url, FIXTURE, last=3), only=["migrations.rehearsal"], deadline_s=120)
    st = statuses(out, "migrations.rehearsal")
    assert st == {BUGGY: "fail", IRREVERSIBLE: "warn", INIT: "skip"}, st
    res = results_of(out, "migrations.rehearsal")
    assert "posts_title_idx" in res[BUGGY].summary
    assert "cannot walk below it" in res[IRREVERSIBLE].summary
    assert IRREVERSIBLE in res[INIT].summary and "no down migration" in res[INIT].summary
    assert res[IRREVERSIBLE].evidence["mode"] == "last 3 revisions"


# -- the migrator: what deploy records -------------------------------------------------------------
def test_upgrade_records_what_migrate_deploy_records(databases: Any, project: Path) -> None:
    """_prisma_migrations is created as Prisma creates it; each upgrade leaves a finished row
    with the file's SHA-256, applied_steps_count 1; downgrade runs down.sql and deletes the
    row; a migration without down.sql refuses to go down; the sentinel proof holds."""
    url = databases()
    m = migrate(url, 2, project / "prisma" / "migrations")
    rows = prisma_rows(url)
    assert [r[3] for r in rows] == [INIT, IRREVERSIBLE]
    for (rid, digest, finished, name, logs, rolled_back, started, steps), mig in zip(
        rows, ALL[:2], strict=True
    ):
        assert name == mig
        raw = (MIGRATIONS / mig / "migration.sql").read_bytes()
        assert digest == hashlib.sha256(raw).hexdigest()
        assert str(uuid.UUID(rid)) == rid and uuid.UUID(rid).version == 4
        assert finished is not None and started is not None and finished >= started
        assert steps == 1 and logs is None and rolled_back is None
    with psycopg.connect(url) as conn:
        cols = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns "
            "WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position"
        ).fetchall()
    assert [(c[0], c[1], c[2], c[3]) for c in cols] == [
        ("id", "character varying", 36, "NO"),
        ("checksum", "character varying", 64, "NO"),
        ("finished_at", "timestamp with time zone", None, "YES"),
        ("migration_name", "character varying", 255, "NO"),
        ("logs", "text", None, "YES"),
        ("rolled_back_at", "timestamp with time zone", None, "YES"),
        ("started_at", "timestamp with time zone", None, "NO"),
        ("applied_steps_count", "integer", None, "NO"),
    ]
    assert m.current(url) == (INIT, IRREVERSIBLE)
    assert prove_scratch(m, url, 30) is None  # tool_current sees the emptied table
    assert m.current(url) == (INIT, IRREVERSIBLE)  # and the sentinel put it back
    assert not m.reversible(IRREVERSIBLE) and m.reversible(INIT)
    with pytest.raises(StepFailed, match=r"no down\.sql"):
        m.downgrade(url, IRREVERSIBLE, 30)
    with pytest.raises(StepFailed, match="already applied"):
        m.upgrade(url, INIT, 30)
    m.upgrade(url, None, 30)  # the next pending one
    m.downgrade(url, BUGGY, 30)
    assert m.current(url) == (INIT, IRREVERSIBLE)
    assert [r[3] for r in prisma_rows(url)] == [INIT, IRREVERSIBLE]
    assert m.offline_sql(BUGGY, None, 5) == (MIGRATIONS / BUGGY / "migration.sql").read_text(
        encoding="utf-8"
    )


def test_failed_script_is_atomic_and_blocks_deploy(databases: Any, tmp_path: Path) -> None:
    """Like deploy: a failing migration.sql leaves no partial schema and a failed row (logs
    set), later upgrades refuse (P3009); CREATE INDEX CONCURRENTLY runs alone in its file."""
    root = tmp_path / "migrations"
    for name, sql in (
        ("1_table", 'CREATE TABLE "t" ("x" INTEGER);'),
        ("2_concurrent", 'CREATE INDEX CONCURRENTLY "t_x_idx" ON "t"("x");'),
        ("3_broken", 'CREATE TABLE "half" ("x" INTEGER);\nSELECT 1/0;'),
        ("4_next", 'CREATE TABLE "next" ("x" INTEGER);'),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "migration.sql").write_text(sql, encoding="utf-8")
    url = databases()
    m = PrismaMigrator(migrations_dir=str(root), session_options={"lock_timeout": "2000"})
    m.upgrade(url, "1_table", 30)
    m.upgrade(url, "2_concurrent", 30)
    with pytest.raises(StepFailed, match=r"3_broken/migration\.sql failed: DivisionByZero"):
        m.upgrade(url, "3_broken", 30)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('t_x_idx')").fetchone() != (None,)
        failed = conn.execute(
            "SELECT logs FROM _prisma_migrations WHERE migration_name = '3_broken' "
            "AND finished_at IS NULL"
        ).fetchone()
    assert failed is not None and "division by zero" in failed[0]
    assert m.current(url) == ("1_table", "2_concurrent")
    with pytest.raises(StepFailed, match="P3009"):
        m.upgrade(url, "4_next", 30)
    assert any("3_broken" in n and "P3009" in n for n in m.state_notes(url))


# -- migrations.pending and migrations.lint -----------------------------------------------------
def test_pending_behind_at_head_and_unknown(databases: Any, project: Path) -> None:
    """One behind: fail naming the pending migration; at head: pass; a row for a migration
    the files do not have: fail as unknown."""
    url = databases()
    m = migrate(url, 2)
    ctx = ctx_for(url, project)
    out = run_checks(ctx, only=["migrations.pending"])
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "fail"}
    rev = results_of(out, "migrations.pending")["revision"]
    assert BUGGY in rev.summary and "1 revision(s) pending" in rev.summary
    m.upgrade(url, BUGGY, 30)
    out = run_checks(ctx, only=["migrations.pending"])
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "pass"}
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, "
            "applied_steps_count) VALUES (%s, %s, %s, now(), 1)",
            (str(uuid.uuid4()), "0" * 64, "20240401000000_from_another_branch"),
        )
    out = run_checks(ctx, only=["migrations.pending"])
    rev = results_of(out, "migrations.pending")["revision"]
    assert rev.status.value == "fail"
    assert "20240401000000_from_another_branch" in rev.summary
    assert "do not contain" in rev.summary


def test_lint_reads_prisma_migration_sql(databases: Any, project: Path) -> None:
    """migrations.lint lints the pending migration.sql files natively: a plain CREATE INDEX
    on the existing posts table is a finding, the init migration (applied) is not linted."""
    url = databases()
    migrate(url, 1)
    out = run_checks(ctx_for(url, project), only=["migrations.lint"])
    st = statuses(out, "migrations.lint")
    assert st == {IRREVERSIBLE: "fail", BUGGY: "fail"}, st
    res = results_of(out, "migrations.lint")[IRREVERSIBLE]
    rules = {f["rule"] for f in res.evidence["findings"]}
    assert "index-not-concurrent" in rules
    assert any(f["table"] and "posts" in f["table"] for f in res.evidence["findings"])


# -- finding the project ---------------------------------------------------------------------------
def test_auto_detects_prisma_and_refuses_other_providers(tmp_path: Path, project: Path) -> None:
    """schema.prisma alone makes `tool: auto` pick Prisma (its migrations beside it); a
    non-PostgreSQL provider is a one-line config error; no migrations directory is a skip."""
    from readyctl.checks.migrations._project import find_migrator

    url = "postgresql://u@127.0.0.1:9/db?schema=app"
    m = find_migrator(ctx_for(url, project), {"lock_timeout": "5000"})
    assert isinstance(m, PrismaMigrator)
    assert Path(m.migrations_dir) == project / "prisma" / "migrations"
    assert m.session_options == {"lock_timeout": "5000"}
    assert m.schema == "app" and m.tracking_tables() == ("app._prisma_migrations",)
    assert m.plan((INIT,))["pending"] == [IRREVERSIBLE, BUGGY]
    assert m.plan(ALL)["heads"] == [BUGGY]

    lock = project / "prisma" / "migrations" / "migration_lock.toml"
    lock.write_text('provider = "mysql"\n', encoding="utf-8")
    with pytest.raises(RehearsalError) as e:
        find_migrator(ctx_for(url, project))
    assert "mysql" in str(e.value) and "PostgreSQL only" in str(e.value)
    assert "\n" not in str(e.value)

    bare = tmp_path / "db-push-only" / "prisma"
    bare.mkdir(parents=True)
    shutil.copy(project / "prisma" / "schema.prisma", bare / "schema.prisma")
    reason = find_migrator(ctx_for(url, bare.parent))
    assert isinstance(reason, str) and "no migrations directory" in reason
    with pytest.raises(RehearsalError, match=r"migrations_dir .* does not exist"):
        from_project(
            ctx_for(url, bare.parent),
            type("S", (), {"migrations_dir": "db/migrations"})(),
        )
