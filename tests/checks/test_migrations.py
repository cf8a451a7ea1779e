"""migrations.rehearsal, migrations.lint and migrations.pending: faults, data safety, robustness."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Config, Environment
from readyctl.demo.migrate import upgrade_for_start, write_alembic_ini
from readyctl.postgres import scratch
from readyctl.postgres.embedded import _pid_alive
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, snapshot, statuses

DEMO_ENV_PY = Path(__file__).resolve().parents[2] / "readyctl" / "demo" / "migrations" / "env.py"


# -- proof helpers ---------------------------------------------------------------------------------
@pytest.fixture
def scratch_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record every scratch server started during the test; assert each is gone afterwards."""
    made: list[Any] = []
    original = scratch.ScratchServer.start

    def start(self: scratch.ScratchServer) -> scratch.ScratchServer:
        out = original(self)
        made.append((self, self.pid, self.data_dir))
        return out

    monkeypatch.setattr(scratch.ScratchServer, "start", start)
    yield made
    for srv, pid, data_dir in made:
        assert not srv.running
        assert pid is not None and not _pid_alive(pid), "a scratch postmaster is left running"
        assert data_dir is not None and not Path(data_dir).exists(), "a scratch data dir is left"


def assert_untouched(before: tuple[Any, ...], url: str) -> None:
    """The target's schema, rows and revision are unchanged and no scratch database is on it."""
    after = snapshot(url)
    assert after[0] == before[0], "the target's schema changed"
    assert after[1] == before[1], "the target's rows changed"
    assert after[2] == before[2], "the target's alembic revision changed"
    assert after[3] == before[3], "databases were created or dropped on the target's server"
    assert not [d for d in after[3] if d.startswith(scratch.SCRATCH_PREFIX)]


def ctx_for(url: str, tmp_path: Path, **settings: Any) -> Any:
    """A context on a plain database URL with migration settings."""
    cfg = Config(checks={"migrations.rehearsal": settings}) if settings else Config()
    return make_context(
        config=cfg,
        environment=Environment(database_url=url, production=True),
        base_dir=tmp_path,
    )


@pytest.fixture
def demo_db(shared_pg, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Factory: a database on the shared server migrated like the demo (faults), with its ini."""
    made: list[str] = []

    def make(*faults: str, upto: str | None = None) -> tuple[str, str]:
        name = f"mig_{os.getpid()}_{len(made)}_{abs(hash(faults)) % 10_000}"
        url = shared_pg.create_database(name)
        made.append(name)
        if upto:
            from alembic import command

            from readyctl.demo.migrate import alembic_config

            command.upgrade(alembic_config(url, faults), upto)
        else:
            upgrade_for_start(url, faults)
        ini = write_alembic_ini(tmp_path / f"alembic-{len(made)}.ini", faults)
        return url, ini

    yield make
    for name in made:
        shared_pg.drop_database(name)


def make_project(
    root: Path,
    revisions: list[tuple[str, str, str]],
    env_reads_url: bool,
    fixed_url: str | None = None,
) -> str:
    """A small alembic project: [(revision, upgrade body, downgrade body)] in order."""
    (root / "versions").mkdir(parents=True)
    env = DEMO_ENV_PY.read_text()
    if env_reads_url:  # env.py that only knows DATABASE_URL
        env = env.replace('context.config.get_main_option("sqlalchemy.url") or ', "")
    if fixed_url:  # a careless env.py with the production URL written into it
        env = env.replace(
            'url = context.config.get_main_option("sqlalchemy.url") or '
            'os.environ.get("DATABASE_URL", "")',
            f"url = {fixed_url!r}",
        )
        assert fixed_url in env
    (root / "env.py").write_text(env)
    down = None
    for rev, up, dn in revisions:
        body = [
            f'"""{rev}."""',
            "import sqlalchemy as sa",
            "from alembic import op",
            "",
            f"revision = {rev!r}",
            f"down_revision = {down!r}",
            "branch_labels = None",
            "depends_on = None",
            "",
            "",
            "def upgrade():",
            textwrap.indent(up, "    "),
            "",
            "",
            "def downgrade():",
            textwrap.indent(dn, "    "),
            "",
        ]
        (root / "versions" / f"{rev}.py").write_text("\n".join(body))
        down = rev
    ini = root / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = %(here)s\nversion_locations = %(here)s/versions\n"
        "path_separator = os\n"
    )
    return str(ini)


BASE_REV = (
    "r1_items",
    "op.create_table('items', sa.Column('id', sa.Integer, primary_key=True), "
    "sa.Column('name', sa.Text, nullable=False, server_default='x'))\n"
    "op.execute(\"INSERT INTO items (name) SELECT 'n' || g FROM generate_series(1, 50) g\")",
    "op.drop_table('items')",
)


@pytest.fixture
def project_db(shared_pg, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Factory: an alembic project whose first revision is applied to a fresh database."""
    made: list[str] = []

    def make(
        pending: tuple[str, str, str], env_reads_url: bool = False, fixed_url: bool = False
    ) -> tuple[str, str]:
        name = f"proj_{os.getpid()}_{len(made)}"
        url = shared_pg.create_database(name)
        made.append(name)
        ini = make_project(
            tmp_path / name, [BASE_REV, pending], env_reads_url, url if fixed_url else None
        )
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig(ini)
        cfg.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://"))
        if env_reads_url:
            os.environ["DATABASE_URL"] = url
        try:
            command.upgrade(cfg, "r1_items")
        finally:
            os.environ.pop("DATABASE_URL", None)
        return url, ini

    yield make
    for name in made:
        shared_pg.drop_database(name)


# -- the demo and its faults -----------------------------------------------------------------------
def test_healthy_demo_round_trips_and_is_untouched(healthy_demo, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(healthy_demo.database_url)
    out = run_checks(demo_context(healthy_demo), only=["migrations.*"])
    st = statuses(out, "migrations.rehearsal")
    assert st == {"0002_auth_tokens": "pass", "0003_counseling": "pass", "0004_billing": "pass"}
    res = results_of(out, "migrations.rehearsal")["0004_billing"]
    assert {"up_s", "down_s", "up_again_s"} <= set(res.evidence)
    assert res.evidence["mode"] == "last 3 revisions"
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "pass"}
    assert statuses(out, "migrations.lint") == {"migrations": "skip"}
    assert len(scratch_servers) == 1
    assert_untouched(before, healthy_demo.database_url)


def test_irreversible_migration_fails_rehearsal(faulty_demo, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("irreversible-migration")
    before = snapshot(demo.database_url)
    out = run_checks(demo_context(demo), only=["migrations.rehearsal", "migrations.pending"])
    st = statuses(out, "migrations.rehearsal")
    assert st == {
        "f0005_irreversible": "fail",
        "0004_billing": "blocked",
        "0003_counseling": "blocked",
    }
    res = results_of(out, "migrations.rehearsal")["f0005_irreversible"]
    assert "downgrade failed" in res.summary and "NotImplementedError" in res.summary
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "pass"}
    assert_untouched(before, demo.database_url)


def test_lossy_migration_fails_with_the_difference_in_words(faulty_demo, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("lossy-migration")
    before = snapshot(demo.database_url)
    out = run_checks(demo_context(demo), only=["migrations.rehearsal"])
    st = statuses(out, "migrations.rehearsal")
    assert st == {"0003_counseling": "pass", "0004_billing": "pass", "f0005_lossy": "fail"}
    res = results_of(out, "migrations.rehearsal")["f0005_lossy"]
    assert "users.timezone became nullable" in res.summary
    assert "users.timezone lost its default 'UTC'" in res.summary
    assert res.evidence["difference"] == [
        "users.timezone became nullable",
        "users.timezone lost its default 'UTC'",
    ]
    assert_untouched(before, demo.database_url)


def test_unsafe_migration_fails_lint_and_pending_but_round_trips(
    faulty_demo, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("unsafe-migration")
    before = snapshot(demo.database_url)
    assert before[2] == ["0004_billing"]
    out = run_checks(demo_context(demo), only=["migrations.*"])
    assert statuses(out, "migrations.lint") == {"f0005_unsafe": "fail"}
    lint = results_of(out, "migrations.lint")["f0005_unsafe"]
    rules = {f["rule"]: f for f in lint.evidence["findings"]}
    assert set(rules) == {"index-not-concurrent", "missing-lock-timeout"}
    assert "counseling_messages" in lint.summary
    assert (
        "CREATE INDEX ix_counseling_messages_created_at"
        in rules["index-not-concurrent"]["statement"]
    )
    assert "CONCURRENTLY" in rules["index-not-concurrent"]["recipe"]
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "fail"}
    assert "f0005_unsafe" in results_of(out, "migrations.pending")["revision"].summary
    # the pending revision is rehearsed on scratch only; the target stays at 0004_billing
    assert statuses(out, "migrations.rehearsal") == {"f0005_unsafe": "pass"}
    assert results_of(out, "migrations.rehearsal")["f0005_unsafe"].evidence["mode"] == (
        "pending revisions"
    )
    assert_untouched(before, demo.database_url)


# -- databases on the shared server ----------------------------------------------------------------
def test_two_heads_fail_pending(demo_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, ini = demo_db("lossy-migration", "irreversible-migration")
    out = run_checks(ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.pending"])
    assert statuses(out, "migrations.pending") == {"heads": "fail", "revision": "pass"}
    assert "2 heads" in results_of(out, "migrations.pending")["heads"].summary


def test_lint_passes_a_safe_pending_revision(demo_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, ini = demo_db(upto="0003_counseling")
    out = run_checks(
        ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.lint", "migrations.pending"]
    )
    assert statuses(out, "migrations.lint") == {"0004_billing": "pass"}
    assert statuses(out, "migrations.pending")["revision"] == "fail"


def test_lint_rules_on_sql() -> None:
    from readyctl.checks.migrations._lint_rules import Linter

    sql = """
    BEGIN;
    CREATE TABLE fresh (id int PRIMARY KEY);
    CREATE INDEX ix_fresh ON fresh (id);
    ALTER TABLE users ADD COLUMN tz text NOT NULL;
    ALTER TABLE users ADD COLUMN ok text NOT NULL DEFAULT 'x';
    ALTER TABLE users ALTER COLUMN email TYPE varchar(300);
    ALTER TABLE users DROP COLUMN display_name;
    ALTER TABLE users ADD CONSTRAINT ck CHECK (role <> '');
    ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org_id) REFERENCES o (id) NOT VALID;
    ALTER TABLE users ALTER COLUMN role SET NOT NULL;
    CREATE INDEX CONCURRENTLY ix_in_txn ON users (email);
    DROP TABLE old_stuff;
    COMMIT;
    """
    found = Linter().lint("r9", sql)
    rules = sorted(f.rule for f in found)
    assert rules == sorted(
        [
            "add-column-not-null-no-default",
            "column-type-change",
            "drop-column",
            "constraint-without-not-valid",
            "set-not-null",
            "concurrently-in-transaction",
            "drop-table",
            "missing-lock-timeout",
        ]
    )
    assert all(f.revision == "r9" and f.recipe for f in found)
    safe = "SET lock_timeout = '5s'; CREATE INDEX CONCURRENTLY ix ON users (email);"
    assert Linter().lint("r10", safe) == []
    assert [f.rule for f in Linter(ignore=["drop-table"]).lint("r", "DROP TABLE t;")] == [
        "missing-lock-timeout"
    ]


def test_no_migrations_found_is_a_clear_skip(demo_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, _ = demo_db()
    out = run_checks(ctx_for(url, tmp_path), only=["migrations.*"])
    for cid in ("migrations.rehearsal", "migrations.lint", "migrations.pending"):
        res = results_of(out, cid)["migrations"]
        assert res.status.value == "skip" and "no migrations found" in (res.reason or "")
    missing = ctx_for(url, tmp_path, alembic_config=str(tmp_path / "nope.ini"))
    out = run_checks(missing, only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["migrations"]
    assert res.status.value == "error" and "does not exist" in (res.reason or "")


# -- robustness ------------------------------------------------------------------------------------
def test_migration_past_its_statement_timeout_fails(project_db, tmp_path, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    url, ini = project_db(("r2_slow", "op.execute('SELECT pg_sleep(20)')", "pass"))
    before = snapshot(url)
    ctx = ctx_for(url, tmp_path, alembic_config=ini, statement_timeout_s=1)
    out = run_checks(ctx, only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["r2_slow"]
    assert res.status.value == "fail"
    assert "statement timeout" in res.summary
    assert out.duration_s < 120  # a hang guard, not a speed target
    assert_untouched(before, url)


def test_hanging_migration_in_the_project_interpreter_is_killed(
    project_db, tmp_path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url, ini = project_db(("r2_hang", "import time\ntime.sleep(60)", "pass"), env_reads_url=True)
    before = snapshot(url)
    ctx = ctx_for(
        url,
        tmp_path,
        alembic_config=ini,
        python=sys.executable,
        url_env=["DATABASE_URL"],
        set_sqlalchemy_url=False,
        step_timeout_s=4,
    )
    out = run_checks(ctx, only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["r2_hang"]
    assert res.status.value == "fail"
    assert "did not finish within 4 s" in res.summary
    assert_untouched(before, url)


def test_project_interpreter_gets_the_url_from_the_environment(project_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, ini = project_db(
        (
            "r2_col",
            "op.add_column('items', sa.Column('qty', sa.Integer))",
            "op.drop_column('items', 'qty')",
        ),
        env_reads_url=True,
    )
    ctx = ctx_for(
        url,
        tmp_path,
        alembic_config=ini,
        python=[sys.executable],
        url_env=["DATABASE_URL"],
        set_sqlalchemy_url=False,
    )
    out = run_checks(ctx, only=["migrations.rehearsal"])
    assert statuses(out, "migrations.rehearsal") == {"r2_col": "pass"}


KILL_POSTMASTER = (
    "pid = op.get_bind().exec_driver_sql(\n"
    "    \"SELECT split_part(pg_read_file('postmaster.pid'), E'\\\\n', 1)\").scalar()\n"
    "op.execute(f\"COPY (SELECT 1) TO PROGRAM 'kill -9 {pid}'\")\n"
    "op.execute('SELECT pg_sleep(2)')"
)


def test_scratch_server_dying_mid_rehearsal_is_an_error(
    project_db, tmp_path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url, ini = project_db(("r2_kill", KILL_POSTMASTER, "pass"))
    before = snapshot(url)
    out = run_checks(ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["migrations"]
    assert res.status.value == "error"
    assert "scratch database went away" in (res.reason or "")
    assert_untouched(before, url)


def test_user_without_rights_is_an_error_with_the_reason(
    demo_db, shared_pg, tmp_path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url, ini = demo_db()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE private_notes (id int)")
    shared_pg.create_role("mig_limited", "Limited-pw-123")
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO mig_limited")
            c.execute("REVOKE SELECT ON private_notes FROM mig_limited")
        limited = url.replace(
            f"{shared_pg.user}:{scratch.url_parts(url)['password']}", "mig_limited:Limited-pw-123"
        )
        before = snapshot(url)
        out = run_checks(
            ctx_for(limited, tmp_path, alembic_config=ini), only=["migrations.rehearsal"]
        )
        res = results_of(out, "migrations.rehearsal")["migrations"]
        assert res.status.value == "error"
        assert "permission denied" in (res.reason or "")
        assert "Limited-pw-123" not in res.summary
        assert_untouched(before, url)
    finally:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("DROP OWNED BY mig_limited")
        shared_pg.drop_role("mig_limited")


def test_command_adapter_finds_the_lossy_revision(demo_db, tmp_path, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    url, ini = demo_db("lossy-migration")
    alembic = f"{sys.executable} -m alembic -c {ini}"
    current = (
        f"{scratch.psql_path()} \"$DATABASE_URL\" -Atc 'SELECT version_num FROM alembic_version'"
    )
    ctx = ctx_for(
        url,
        tmp_path,
        commands={
            # one step; a no-op at the head (as Prisma's and Flyway's deploys are)
            "up": f'[ "$({current})" = f0005_lossy ] || {alembic} upgrade +1',
            "down": f"{alembic} downgrade -1",
            "current": current,
        },
        last=1,
    )
    out = run_checks(ctx, only=["migrations.rehearsal"])
    ((subject, res),) = results_of(out, "migrations.rehearsal").items()
    assert subject.startswith("f0005_lossy")
    assert res.status.value == "fail"
    assert "users.timezone became nullable" in res.summary


# -- commands --------------------------------------------------------------------------------------
def test_db_commands_exit_codes(readyctl, demo_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lossy_url, lossy_ini = demo_db("lossy-migration")
    run = readyctl("db", "rehearse", "--database-url", lossy_url, "--alembic-config", lossy_ini)
    assert run.code == 1, run.both
    assert "f0005_lossy" in run.out and "became nullable" in run.out
    assert scratch.url_parts(lossy_url)["password"] not in run.both

    good_url, good_ini = demo_db()
    run = readyctl("db", "rehearse", "--database-url", good_url, "--alembic-config", good_ini)
    assert run.code == 0, run.both

    run = readyctl("db", "rehearse", "--database-url", good_url, "--alembic-config", "nope.ini")
    assert run.code == 2 and "no such file" in run.err
    run = readyctl("db", "rehearse", "--database-url", good_url)  # no alembic.ini here
    # nothing to rehearse is not a pass: inconclusive (3), even though the database answered
    assert run.code == 3 and "nothing was verified" in run.err, run.both
    assert "no migrations found" in run.err
    run = readyctl("db", "lint", "--database-url", good_url, "--alembic-config", good_ini)
    assert run.code == 0 and "nothing to do: nothing pending to lint" in run.err, run.both

    unsafe_url, unsafe_ini = demo_db("unsafe-migration")
    run = readyctl("db", "lint", "--database-url", unsafe_url, "--alembic-config", unsafe_ini)
    assert run.code == 1, run.both
    assert "f0005_unsafe" in run.out
    with contextlib.suppress(Exception):
        assert not [d for d in snapshot(good_url)[3] if d.startswith(scratch.SCRATCH_PREFIX)]


def _processes_under(path: Path) -> list[int]:
    """Live processes whose command line mentions `path`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd and _pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def test_ctrl_c_mid_rehearsal_leaves_nothing_behind(project_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import signal
    import subprocess
    import time

    url, ini = project_db(("r2_sleep", "op.execute('SELECT pg_sleep(30)')", "pass"))
    before = snapshot(url)
    work = tmp_path / "tmp"
    work.mkdir()
    env = dict(os.environ, READYCTL_PG_NO_SHM="1", TMPDIR=str(work), NO_COLOR="1")
    cmd = [sys.executable, "-m", "readyctl", "db", "rehearse", "--database-url", url]
    proc = subprocess.Popen(
        [*cmd, "--alembic-config", ini],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(work.glob("readyctl-pg-*/data/postmaster.pid")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(2)  # inside r2_sleep's upgrade by now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert list(work.iterdir()) == [], "scratch files are left behind"
    assert _processes_under(work) == [], "scratch processes are left behind"
    assert_untouched(before, url)


ADD_QTY = (
    "r2_col",
    "op.add_column('items', sa.Column('qty', sa.Integer))",
    "op.drop_column('items', 'qty')",
)


def test_env_py_reading_database_url_in_process_gets_the_scratch_copy(  # type: ignore[no-untyped-def]
    project_db, tmp_path, monkeypatch, scratch_servers
) -> None:
    url, ini = project_db(ADD_QTY, env_reads_url=True)
    # the shell readyctl runs in points at the target, as a CI job's often does
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("APP_DB", url)
    before = snapshot(url)
    out = run_checks(ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.rehearsal"])
    assert statuses(out, "migrations.rehearsal") == {"r2_col": "pass"}
    assert os.environ["DATABASE_URL"] == url and os.environ["APP_DB"] == url
    assert_untouched(before, url)


def test_env_py_with_a_fixed_url_is_stopped_before_the_first_step(project_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, ini = project_db(ADD_QTY, fixed_url=True)
    before = snapshot(url)
    out = run_checks(ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["migrations"]
    assert res.status.value == "error"
    reason = res.reason or ""
    # alembic in this process read the target through env.py: the sentinel saw it
    assert "did not read the scratch database: its `current` said r1_items" in reason, reason
    assert "where scratch holds revision readyctl_sentinel_" in reason
    assert "connection_env" in reason
    assert_untouched(before, url)  # nothing ran: not even the first upgrade


# -- sealed migration tools: the POSTGRES_* pattern, the sentinel, import errors ------------------
PG_ENV_PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "fastapi_postgres_env"
POSTGRES_VARS = {
    "host": "POSTGRES_SERVER",
    "port": "POSTGRES_PORT",
    "user": "POSTGRES_USER",
    "password": "POSTGRES_PASSWORD",
    "dbname": "POSTGRES_DB",
}
CANARY, CANARY_VALUE = "READYCTL_CANARY_SECRET", "canary-7f3a9c1e5b2d"
ALEMBIC_CLI = f"{sys.executable} -m alembic"
PG_ENV_COMMANDS = {
    # one pending revision: `upgrade heads` is one step, and a no-op at the head
    "up": f"{ALEMBIC_CLI} upgrade heads",
    "down": f"{ALEMBIC_CLI} downgrade -1",
    "current": f"{ALEMBIC_CLI} current",
}


@pytest.fixture
def pg_env_project(shared_pg, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """The FastAPI-template-shaped project, its target at 0001_items, the target's POSTGRES_*."""
    import subprocess

    name = f"pgenv_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = shared_pg.create_database(name)
    root = tmp_path / "backend"
    shutil.copytree(PG_ENV_PROJECT, root)
    parts = scratch.url_parts(url)
    target_vars = {var: parts[part] for part, var in POSTGRES_VARS.items() if part in parts}
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **target_vars}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "0001_items"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield url, root, target_vars
    finally:
        shared_pg.drop_database(name)


def export_target(
    monkeypatch: pytest.MonkeyPatch, url: str, target_vars: dict[str, str]
) -> dict[str, str]:
    """The shell readyctl runs in: the target's POSTGRES_* and DATABASE_URL, and a canary."""
    for k, v in {**target_vars, "DATABASE_URL": url, CANARY: CANARY_VALUE}.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)


def pg_env_context(
    url: str, root: Path, environ: dict[str, str], witness: Path, **settings: Any
) -> Any:
    """A context whose process environment (and os.environ) points at the target."""
    env = {"READYCTL_TEST_WITNESS": str(witness), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(settings.pop("env", {}))
    cfg = Config(checks={"migrations.rehearsal": {"env": env, **settings}})
    return make_context(
        config=cfg,
        environment=Environment(database_url=url, production=True),
        base_dir=root,
        environ=environ,
    )


def witnessed(path: Path) -> list[tuple[str, dict[str, str]]]:
    """(action, environment) of every run of the project's env.py."""
    runs = []
    for line in path.read_text().splitlines() if path.exists() else []:
        seen = json.loads(line)
        request = seen["env"].get("READYCTL_SHIM_REQUEST")
        action = json.loads(request)["action"] if request else " ".join(seen["argv"])
        runs.append((action, seen["env"]))
    return runs


def assert_sealed(runs: list[tuple[str, dict[str, str]]]) -> None:
    """Nothing of the process environment but the allow-list reached the tool."""
    assert runs, "the project's env.py never ran"
    for _, env in runs:
        assert CANARY not in env and CANARY_VALUE not in json.dumps(env)
        assert not [k for k in env if k.startswith("PG") and k != "PGOPTIONS"]
        assert env.get("PATH") == os.environ["PATH"]


@pytest.mark.slow
def test_commands_reading_postgres_vars_stop_before_the_first_step(  # type: ignore[no-untyped-def]
    pg_env_project, tmp_path, monkeypatch, scratch_servers
) -> None:
    url, root, target_vars = pg_env_project
    environ = export_target(monkeypatch, url, target_vars)
    before = snapshot(url)
    witness = tmp_path / "witness.jsonl"
    ctx = pg_env_context(url, root, environ, witness, commands=PG_ENV_COMMANDS)
    out = run_checks(ctx, only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["migrations"]
    assert res.status.value == "error"
    reason = res.reason or ""
    assert "the migration tool did not read the scratch database: its `current` failed" in reason
    assert "KeyError: 'POSTGRES_SERVER'" in reason  # the exported variables never reached it
    assert "where scratch holds revision readyctl_sentinel_" in reason
    assert "map them with connection_env" in reason
    runs = witnessed(witness)
    assert [a for a, _ in runs] == ["current"], runs  # no upgrade, no downgrade
    assert_sealed(runs)
    assert not [k for _, env in runs for k in env if k.startswith("POSTGRES_")]
    assert all(env["DATABASE_URL"] != url for _, env in runs)
    assert_untouched(before, url)


@pytest.mark.slow
def test_sentinel_catches_a_tool_that_reads_the_target(  # type: ignore[no-untyped-def]
    pg_env_project, tmp_path, monkeypatch, scratch_servers
) -> None:
    url, root, target_vars = pg_env_project
    environ = export_target(monkeypatch, url, target_vars)
    before = snapshot(url)
    witness = tmp_path / "witness.jsonl"
    # the user passes the target's variables on explicitly: the tool really reads the target
    ctx = pg_env_context(url, root, environ, witness, commands=PG_ENV_COMMANDS, env=target_vars)
    out = run_checks(ctx, only=["migrations.rehearsal"])
    res = results_of(out, "migrations.rehearsal")["migrations"]
    assert res.status.value == "error"
    reason = res.reason or ""
    assert (
        "the migration tool did not read the scratch database: its `current` said 0001_items "
        "where scratch holds revision readyctl_sentinel_"
    ) in reason, reason
    assert "connection_env" in reason
    runs = witnessed(witness)
    assert [a for a, _ in runs] == ["current"], runs
    assert_sealed(runs)
    assert_untouched(before, url)


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["commands", "alembic"])
def test_connection_env_rehearses_on_scratch(  # type: ignore[no-untyped-def]
    pg_env_project, tmp_path, monkeypatch, scratch_servers, tool: str
) -> None:
    url, root, target_vars = pg_env_project
    environ = export_target(monkeypatch, url, target_vars)
    before = snapshot(url)
    witness = tmp_path / "witness.jsonl"
    how: dict[str, Any] = (
        {"commands": PG_ENV_COMMANDS}
        if tool == "commands"
        else {"alembic_config": str(root / "alembic.ini")}  # the shim, in a subprocess
    )
    ctx = pg_env_context(url, root, environ, witness, connection_env=POSTGRES_VARS, **how)
    out = run_checks(ctx, only=["migrations.rehearsal"])
    st = statuses(out, "migrations.rehearsal")
    ((subject, status),) = st.items()
    assert subject.startswith("0002_item_owner") and status == "pass", st
    runs = witnessed(witness)
    actions = [a for a, _ in runs]
    assert actions[0] == "current"  # the sentinel was read before the first step
    assert any(a.startswith("upgrade") for a in actions)
    assert any(a.startswith("downgrade") for a in actions)
    assert_sealed(runs)
    (port,) = {env["POSTGRES_PORT"] for _, env in runs}  # one scratch server, not the target
    assert port != target_vars["POSTGRES_PORT"]
    for _, env in runs:
        assert env["POSTGRES_DB"].startswith(scratch.SCRATCH_PREFIX)
        assert env["POSTGRES_SERVER"] == "127.0.0.1"
        assert env["DATABASE_URL"] != url
    assert_untouched(before, url)


def _missing_module_project(root: Path) -> str:
    ini = make_project(root, [BASE_REV, ADD_QTY], env_reads_url=False)
    env_py = Path(ini).parent / "env.py"
    text = env_py.read_text()
    env_py.write_text(
        text.replace(
            "from alembic import context",
            "import readyctl_no_such_module\nfrom alembic import context",
            1,
        )
    )
    return ini


def test_import_error_names_the_python_setting_in_and_out_of_process(tmp_path: Path) -> None:
    from readyctl.rehearsal import LINT_PLACEHOLDER_URL, AlembicMigrator

    ini = _missing_module_project(tmp_path / "p")
    here = AlembicMigrator(ini=ini).tool_current(LINT_PLACEHOLDER_URL, 60)
    assert not here.ok
    assert "No module named 'readyctl_no_such_module'" in here.said
    assert "readyctl's own interpreter" in here.said
    assert "set checks.migrations.rehearsal.python: path/to/.venv/bin/python" in here.said
    shim = AlembicMigrator(ini=ini, python=[sys.executable]).tool_current(LINT_PLACEHOLDER_URL, 60)
    assert not shim.ok
    assert "No module named 'readyctl_no_such_module'" in shim.said
    assert f"{sys.executable} cannot import 'readyctl_no_such_module'" in shim.said
    assert "checks.migrations.rehearsal.python" in shim.said


@pytest.mark.slow
def test_env_py_importing_a_missing_module_is_an_error_naming_the_python_setting(  # type: ignore[no-untyped-def]
    shared_pg, tmp_path, scratch_servers
) -> None:
    url = shared_pg.create_database(f"nomod_{os.getpid()}")
    try:
        ini = _missing_module_project(tmp_path / "p")
        before = snapshot(url)
        out = run_checks(ctx_for(url, tmp_path, alembic_config=ini), only=["migrations.rehearsal"])
        res = results_of(out, "migrations.rehearsal")["migrations"]
        assert res.status.value == "error"
        assert "No module named 'readyctl_no_such_module'" in res.summary
        assert "checks.migrations.rehearsal.python: path/to/.venv/bin/python" in res.summary
        assert_untouched(before, url)
    finally:
        shared_pg.drop_database(f"nomod_{os.getpid()}")


def test_sealed_environ_keeps_only_the_allow_list() -> None:
    from readyctl.rehearsal import sealed_environ

    scratch_url = "postgresql://readyctl:s3cret@127.0.0.1:6543/readyctl_scratch_x"
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp/x",
        "VIRTUAL_ENV": "/srv/app/.venv",
        "NODE_ENV": "production",
        "PYTHONPATH": "/somewhere",
        "PGHOST": "prod-db",
        "POSTGRES_SERVER": "prod-db",
        "DATABASE_URL": "postgresql://app:pw@prod-db/app",
        CANARY: CANARY_VALUE,
    }
    env = sealed_environ(
        scratch_url,
        url_env=["DIRECT_URL"],
        connection_env={"host": "DB_HOST", "port": "DB_PORT", "password": "DB_PASS"},
        extra={"PYTHONPATH": "src", "APP_DB": "postgres://app:pw@prod-db/app", "PGPORT": "1"},
        options={"lock_timeout": "5000"},
        base=base,
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp/x",
        "VIRTUAL_ENV": "/srv/app/.venv",
        "NODE_ENV": "production",
        "PYTHONPATH": "src",  # from the settings' env:, not from the process
        "APP_DB": scratch_url,  # a URL in env: is pointed at scratch too
        "DATABASE_URL": scratch_url,
        "DIRECT_URL": scratch_url,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "6543",
        "DB_PASS": "s3cret",
        "PGOPTIONS": "-c lock_timeout=5000",
    }


def _state(url: str) -> tuple[str, dict[str, str]]:
    from readyctl.postgres import fingerprint as fpm

    with psycopg.connect(url) as conn:
        f = fpm.take(conn, sample_rows=None)
    return f.schema_digest(), f.rows


def test_sentinel_for_command_tools_is_placed_and_restored(shared_pg) -> None:  # type: ignore[no-untyped-def]
    """prove_scratch on a plain database: alembic_version and other tools' tables."""
    from readyctl.rehearsal import CommandMigrator, RehearsalError, prove_scratch

    name = f"sentinel_{os.getpid()}"
    url = shared_pg.create_database(name)
    psql = scratch.psql_path()

    def reading(sql: str) -> CommandMigrator:
        return CommandMigrator(
            up="true", down="true", current_cmd=f'{psql} "$DATABASE_URL" -Atc "{sql}"'
        )

    try:
        # no migration state at all: nothing to hide, said in a note
        assert "no sentinel" in (prove_scratch(reading("SELECT 1"), url) or "")
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(
                "CREATE TABLE django_migrations (id bigint GENERATED ALWAYS AS IDENTITY "
                "PRIMARY KEY, app text NOT NULL, name text NOT NULL)"
            )
            c.execute(
                "INSERT INTO django_migrations (app, name) VALUES ('a', '0001'), ('a', '0002')"
            )
        before = _state(url)
        good = reading("SELECT count(*) FROM django_migrations")
        assert prove_scratch(good, url) is None  # 2 rows, then 0 while hidden
        assert _state(url) == before
        with pytest.raises(RehearsalError) as err:
            prove_scratch(CommandMigrator(up="true", down="true", current_cmd="echo 0002"), url)
        assert "its `current` said 0002 where scratch holds no rows in django_migrations" in str(
            err.value
        )
        assert _state(url) == before
        # a command tool keeping alembic_version: the sentinel revision must show
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            c.execute("INSERT INTO alembic_version VALUES ('r7')")
        before = _state(url)
        assert prove_scratch(reading("SELECT version_num FROM alembic_version"), url) is None
        assert _state(url) == before
        with pytest.raises(RehearsalError, match="said r7 where scratch holds revision readyctl_"):
            prove_scratch(CommandMigrator(up="true", down="true", current_cmd="echo r7"), url)
        assert _state(url) == before
        with psycopg.connect(url) as c:
            assert c.execute("SELECT version_num FROM alembic_version").fetchall() == [("r7",)]
    finally:
        shared_pg.drop_database(name)
