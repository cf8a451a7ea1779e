"""migrations.rehearsal and migrations.pending on a real TypeORM project (typeorm + pg from npm).

The fixture project (tests/data/migrations/typeorm) has three migrations: CreateUsers, then
AddUserTimezone (sound), then InviteOnlyRoles, whose down forgets to put back the default of
users.role that its up dropped. Targets are brought to their state with the real TypeORM CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from readyctl.checks.migrations._project import NOT_FOUND, find_migrator

from readyctl.config import Config, Environment
from readyctl.rehearsal import RehearsalError
from readyctl.rehearsal.typeorm import TypeORMMigrator
from tests.checks.test_migrations import assert_untouched, ctx_for, scratch_servers
from tests.helpers import make_context, results_of, run_checks, snapshot, statuses
from tests.tools.npm_fixture import node_modules_for, npm_project

__all__ = ["scratch_servers"]  # the fixture, re-used from test_migrations

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "migrations" / "typeorm"
MIGRATION_FILES = sorted(p.name for p in (FIXTURE / "migrations").glob("*.js"))
CREATE, TIMEZONE, INVITE = (
    "CreateUsers1700000000001",
    "AddUserTimezone1700000000002",
    "InviteOnlyRoles1700000000003",
)

pytestmark = pytest.mark.slow


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The fixture project in tmp_path/app, node_modules linked to the cached npm install."""
    return npm_project(FIXTURE, tmp_path / "app")


def typeorm_cli(root: Path, url: str, *args: str, data_source: str = "data-source.js") -> None:
    """Run the real TypeORM CLI in `root` with DATABASE_URL=url."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DATABASE_URL": url}
    cli = root / "node_modules" / "typeorm" / "cli.js"
    proc = subprocess.run(
        ["node", str(cli), *args, "-d", data_source],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def migrate_target(root: Path, url: str, upto: int) -> None:
    """Apply the first `upto` migrations to `url` with the TypeORM CLI, and seed a user."""
    files = ", ".join(f'require("./migrations/{f}")' for f in MIGRATION_FILES[:upto])
    (root / "setup-data-source.js").write_text(
        'const { DataSource } = require("typeorm");\n'
        "exports.ds = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, "
        f"migrations: [{files}] }});\n"
    )
    typeorm_cli(root, url, "migration:run", data_source="setup-data-source.js")
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, role) VALUES ('ada@example.org', 'admin')")


@pytest.fixture
def target(shared_pg, project: Path) -> Iterator[Callable[[int], str]]:  # type: ignore[no-untyped-def]
    """Factory: a fresh target database with the first `upto` migrations applied."""
    made: list[str] = []

    def make(upto: int) -> str:
        name = f"typeorm_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        url = shared_pg.create_database(name)
        migrate_target(project, url, upto)
        return str(url)

    yield make
    for name in made:
        shared_pg.drop_database(name)


def applied_on(url: str) -> list[str]:
    """The names in the target's TypeORM migrations table, oldest first."""
    import psycopg

    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT name FROM migrations ORDER BY id")]


def rehearse(url: str, root: Path, **settings: Any) -> Any:
    """Run migrations.rehearsal with the project's settings."""
    return run_checks(ctx_for(url, root, **settings), only=["migrations.rehearsal"], deadline_s=120)


# -- tests -------------------------------------------------------------------------------------
def test_pending_migrations_rehearse_and_the_lost_default_is_named(  # type: ignore[no-untyped-def]
    target, project, scratch_servers
) -> None:
    url = target(1)
    before = snapshot(url)
    out = rehearse(url, project, tool="typeorm", data_source="data-source.js")
    assert statuses(out, "migrations.rehearsal") == {TIMEZONE: "pass", INVITE: "fail"}
    res = results_of(out, "migrations.rehearsal")
    assert res[TIMEZONE].evidence["tool"] == "typeorm"
    assert res[TIMEZONE].evidence["source_revision"] == [CREATE]
    summary = res[INVITE].summary
    assert summary.startswith(f"{INVITE}: the downgrade does not restore the schema"), summary
    difference = " ".join(res[INVITE].evidence["difference"])
    assert "users.role" in difference and "default" in difference, difference
    assert "'member'" in difference, difference
    assert res[INVITE].evidence["failed_step"] == "down"
    assert_untouched(before, url)
    assert applied_on(url) == [CREATE]


def test_all_applied_walks_down_in_last_mode(target, project, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    url = target(3)
    before = snapshot(url)
    out = rehearse(url, project, data_source="data-source.js", last=3)
    got = statuses(out, "migrations.rehearsal")
    res = results_of(out, "migrations.rehearsal")
    assert set(got) == {CREATE, TIMEZONE, INVITE}, got
    assert res[CREATE].evidence["mode"] == "last 3 revisions"
    # the walk down (TypeORM's undo, newest first, three steps) left users.role without its
    # default; each revision is judged by its own round trip on the way back up, so the red
    # lands on the migration whose down lost it, never on an older one
    assert got == {CREATE: "pass", TIMEZONE: "pass", INVITE: "fail"}, got
    words = " ".join(res[INVITE].evidence.get("difference", []))
    assert "users.role" in words and "'member'" in words, res[INVITE].summary
    assert res[INVITE].evidence["failed_step"] == "down"
    assert_untouched(before, url)
    assert applied_on(url) == [CREATE, TIMEZONE, INVITE]


def test_pending_names_the_pending_migration_and_passes_at_the_head(  # type: ignore[no-untyped-def]
    target, project
) -> None:
    behind = target(2)
    out = run_checks(ctx_for(behind, project), only=["migrations.pending"])
    res = results_of(out, "migrations.pending")
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "fail"}
    assert res["revision"].evidence["pending"] == [INVITE]
    assert f"1 revision(s) pending: {INVITE}" in res["revision"].summary
    assert TIMEZONE in res["revision"].summary  # where the database is
    head = target(3)
    out = run_checks(ctx_for(head, project), only=["migrations.pending"])
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "pass"}
    assert INVITE in results_of(out, "migrations.pending")["revision"].summary


def _hard_coded(root: Path, url: str, *, pinned_driver: bool) -> str:
    """A data source that ignores DATABASE_URL: the target's URL in its options, or also in a
    pg driver wrapper whose pools always connect to the target (out of readyctl's reach)."""
    driver = (
        'const pg = require("pg");\n'
        "class PinnedPool extends pg.Pool {\n"
        "  constructor(o) { super({ ...o, connectionString: TARGET, host: undefined, port: "
        "undefined, user: undefined, password: undefined, database: undefined }); }\n"
        "}\n"
        "const driver = Object.assign(Object.create(pg), { Pool: PinnedPool });\n"
        if pinned_driver
        else "const driver = undefined;\n"
    )
    name = "pinned-data-source.js" if pinned_driver else "fixed-data-source.js"
    (root / name).write_text(
        'const path = require("path");\n'
        'const { DataSource } = require("typeorm");\n'
        f"const TARGET = {json.dumps(url)};\n"
        f"{driver}"
        "exports.AppDataSource = new DataSource({ type: 'postgres', url: TARGET, driver, "
        "migrations: [path.join(__dirname, 'migrations', '*.js')] });\n"
    )
    return name


def test_hard_coded_url_is_pointed_at_the_scratch_copy(target, project, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    url = target(1)
    before = snapshot(url)
    ds = _hard_coded(project, url, pinned_driver=False)
    out = rehearse(url, project, data_source=ds)
    assert statuses(out, "migrations.rehearsal") == {TIMEZONE: "pass", INVITE: "fail"}
    assert_untouched(before, url)
    assert applied_on(url) == [CREATE]


def test_connection_out_of_reach_is_stopped_by_the_sentinel(
    target, project, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url = target(1)
    before = snapshot(url)
    ds = _hard_coded(project, url, pinned_driver=True)
    out = rehearse(url, project, data_source=ds)
    res = results_of(out, "migrations.rehearsal")
    assert list(res) == ["migrations"], statuses(out, "migrations.rehearsal")
    assert res["migrations"].status.value == "error"
    reason = res["migrations"].reason or ""
    assert (
        f"the migration tool did not read the scratch database: its `current` said {CREATE} "
        "where scratch holds no rows in migrations"
    ) in reason, reason
    assert "nothing was migrated" in reason
    assert_untouched(before, url)
    assert applied_on(url) == [CREATE]


def _ctx(root: Path, **settings: Any) -> Any:
    """A context on an unreachable URL (nothing connects) with migration settings."""
    cfg = Config(checks={"migrations.rehearsal": settings}) if settings else Config()
    return make_context(
        config=cfg,
        environment=Environment(database_url="postgresql://u@127.0.0.1:9/x", production=True),
        base_dir=root,
    )


def test_typeorm_is_detected_from_package_json(project: Path, tmp_path: Path) -> None:
    found = find_migrator(_ctx(project))
    assert isinstance(found, TypeORMMigrator)
    assert found.data_source == str(project / "data-source.js")
    assert found.plan(())["pending"] == [CREATE, TIMEZONE, INVITE]  # read without a database
    assert str(found.version_table) == "migrations"
    # a current revision not read by current(): the migrations up to it count as applied
    assert found.plan((TIMEZONE,)) == {
        "heads": [INVITE],
        "pending": [INVITE],
        "applied": [TIMEZONE, CREATE],
        "unknown": [],
    }
    assert found.plan(("Gone1600000000000",))["unknown"] == ["Gone1600000000000"]
    # no typeorm in package.json, no other tool: nothing found
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "package.json").write_text('{"dependencies": {"express": "4.21.2"}}')
    assert find_migrator(_ctx(plain)) == NOT_FOUND
    # typeorm listed but no data source file: a skip that names the setting
    (plain / "package.json").write_text('{"dependencies": {"typeorm": "0.3.31"}}')
    reason = find_migrator(_ctx(plain))
    assert isinstance(reason, str) and "checks.migrations.rehearsal.data_source" in reason
    with pytest.raises(RehearsalError, match=r"data_source .*missing\.js does not exist"):
        find_migrator(_ctx(plain, data_source="missing.js"))


def test_typescript_data_source_without_ts_node_names_the_install(project: Path) -> None:
    (project / "data-source.ts").write_text((project / "data-source.js").read_text())
    found = find_migrator(_ctx(project, tool="typeorm", data_source="data-source.ts"))
    assert isinstance(found, TypeORMMigrator)
    if (project / "node_modules" / "ts-node").exists():
        pytest.skip("ts-node is installed in the fixture's node_modules")
    with pytest.raises(RehearsalError) as err:
        found.plan(())
    assert "npm i -D ts-node typescript" in str(err.value)


TS_PACKAGE = {
    "name": "readyctl-typeorm-ts-fixture",
    "private": True,
    "dependencies": {"pg": "8.23.1", "typeorm": "0.3.31"},
    "devDependencies": {"ts-node": "10.9.2", "typescript": "5.9.3"},
}
TS_DATA_SOURCE = """\
import * as path from "path";
import { DataSource } from "typeorm";

export const AppDataSource = new DataSource({
  type: "postgres",
  url: process.env.DATABASE_URL as string,
  migrations: [path.join(__dirname, "migrations", "*.js")],
});
"""


@pytest.mark.skipif(
    os.environ.get("READYCTL_TS_TESTS") != "1", reason="set READYCTL_TS_TESTS=1 (installs ts-node)"
)
def test_typescript_data_source_through_ts_node(target, tmp_path: Path, scratch_servers) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "ts-manifest"
    manifest.mkdir()
    (manifest / "package.json").write_text(json.dumps(TS_PACKAGE, indent=2))
    root = tmp_path / "ts-app"
    npm_project(FIXTURE, root)
    (root / "node_modules").unlink()
    (root / "node_modules").symlink_to(node_modules_for(manifest), target_is_directory=True)
    (root / "package.json").write_text(json.dumps(TS_PACKAGE, indent=2))
    (root / "tsconfig.json").write_text(
        '{"compilerOptions": {"module": "commonjs", "strict": true}}'
    )
    (root / "data-source.ts").write_text(TS_DATA_SOURCE)
    (root / "data-source.js").unlink()
    url = target(1)
    before = snapshot(url)
    out = rehearse(url, root)  # auto: package.json lists typeorm, data-source.ts is found
    assert statuses(out, "migrations.rehearsal") == {TIMEZONE: "pass", INVITE: "fail"}
    assert_untouched(before, url)
