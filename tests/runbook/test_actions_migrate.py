"""migrate: lint, the rehearsal from history, apply on the target, rollback by downgrade or by
restoring the backup step's dump (a migration that failed half way)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl import history
from readyctl.config import Environment
from readyctl.postgres import fingerprint as fp
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions.base import ActionFailed, NeedsConfirmation
from tests.checks.test_migrations import BASE_REV, make_project
from tests.runbook._actions_helpers import make_sc, with_uses

UNSAFE = (
    "r2_notes",
    "op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True))\n"
    "op.add_column('items', sa.Column('tag', sa.Text, nullable=True))",
    "op.drop_column('items', 'tag')\nop.drop_table('notes')",
)
GOOD = (UNSAFE[0], "op.execute(\"SET lock_timeout = '5s'\")\n" + UNSAFE[1], UNSAFE[2])
# non-transactional: the column and the table stay when the step fails afterwards
HALF_WAY = (
    "r2_half",
    "op.execute(\"SET lock_timeout = '5s'\")\n"
    "op.add_column('items', sa.Column('half', sa.Text, nullable=True))\n"
    "with op.get_context().autocommit_block():\n"
    "    op.execute('CREATE TABLE junk (id int)')\n"
    "op.execute('SELECT 1/0')",
    "op.drop_table('junk')\nop.drop_column('items', 'half')",
)


@pytest.fixture
def project(shared_pg: Any, tmp_path: Path) -> Iterator[Any]:
    """Factory: (StepContext maker, url) for an alembic project at r1_items with `pending`."""
    made: list[str] = []

    def make(pending: tuple[str, str, str]) -> tuple[Any, str]:
        name = f"act_{os.getpid()}_{len(made)}_{abs(hash(os.urandom(4))) % 10_000}"
        url = shared_pg.create_database(name)
        made.append(name)
        root = tmp_path / name
        ini = make_project(root / "migrations", [BASE_REV, pending], env_reads_url=False)
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig(ini)
        cfg.set_main_option("sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://"))
        command.upgrade(cfg, "r1_items")
        config = root / "readyctl.yaml"
        config.write_text(
            "version: 2\n"
            "environments:\n"
            "  prod:\n"
            f"    database_url: {url}\n"
            "checks:\n"
            "  migrations.rehearsal:\n"
            f"    alembic_config: {ini}\n"
        )
        target = Environment(database_url=url)

        def sc(params: dict[str, Any] | None = None, **kw: Any) -> Any:
            kw.setdefault("target", target)
            return make_sc(root, params, config_path=config, env_name="prod", **kw)

        sc.root = root  # type: ignore[attr-defined]
        return sc, url

    yield make
    for name in made:
        shared_pg.drop_database(name)


def rehearsed(root: Path, statuses: dict[str, str]) -> None:
    """A kept `readyctl db rehearse` run with these migrations.rehearsal results."""
    results = [
        {
            "id": "migrations.rehearsal",
            "subject": rev,
            "status": st,
            "evidence": {"irreversible": True} if st == "warn" else {},
        }
        for rev, st in statuses.items()
    ]
    data = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "environment": {"name": "prod"},
        "results": results,
    }
    history.save(data, root / ".readyctl" / "history", 20)


def digest(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return fp.take(conn, sample_rows=0).schema_digest()


def rows(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])  # type: ignore[index]


def revision(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])  # type: ignore[index]


def backup_record(sc_maker: Any) -> dict[str, Any]:
    """Run the backup action; its record as the engine keeps it."""
    res = REGISTRY["backup"]().run(sc_maker(step_id="backup"))
    return with_uses("backup", res.record)


def test_apply_then_roll_back_by_downgrade(project: Any) -> None:
    sc_maker, url = project(GOOD)
    before = digest(url)
    records = {"backup": backup_record(sc_maker)}
    rehearsed(sc_maker.root, {"r2_notes": "pass"})
    action = REGISTRY["migrate"]()
    log: list[str] = []
    sc = sc_maker({}, step_id="migrate", records=records, log=log)
    res = action.run(sc)
    assert "migrations.lint passed for r2_notes" in log
    rec = res.record
    assert rec["revisions_before"] == ["r1_items"] and rec["applied"] == ["r2_notes"]
    assert rec["revisions_after"] == ["r2_notes"] and rec["reversible"] == ["r2_notes"]
    assert rec["fingerprint"] == before and rec["rehearsal"]["ok"]
    assert revision(url) == "r2_notes" and digest(url) != before
    back = action.rollback(sc_maker({}, step_id="migrate", records=records), rec)
    assert back is not None and back.record["method"] == "downgrade"
    assert "target is back" in back.summary
    assert revision(url) == "r1_items" and digest(url) == before and rows(url) == 50


def test_lint_and_rehearsal_required_or_confirmed(project: Any) -> None:
    sc_maker, url = project(UNSAFE)
    action = REGISTRY["migrate"]()
    rehearsed(sc_maker.root, {"r2_notes": "pass"})
    with pytest.raises(ActionFailed, match=r"migrations\.lint failed: .*no lock_timeout"):
        action.run(sc_maker())
    for p in (sc_maker.root / ".readyctl" / "history").glob("*.json"):
        p.unlink()
    with pytest.raises(ActionFailed, match=r"no migrations\.rehearsal result in history"):
        action.run(sc_maker({"lint": False}))
    rehearsed(sc_maker.root, {"r2_notes": "fail"})
    with pytest.raises(ActionFailed, match="did not pass: r2_notes fail"):
        action.run(sc_maker({"lint": False}))
    with pytest.raises(NeedsConfirmation):
        action.run(sc_maker({"lint": False, "require_rehearsal": "confirm"}, confirm=None))
    with pytest.raises(ActionFailed, match="not confirmed"):
        action.run(sc_maker({"lint": False, "require_rehearsal": "confirm"}, confirm=False))
    assert revision(url) == "r1_items"


def test_half_way_failure_restores_the_backup(project: Any) -> None:
    sc_maker, url = project(HALF_WAY)
    before = digest(url)
    records = {"backup": backup_record(sc_maker)}
    rehearsed(sc_maker.root, {"r2_half": "warn"})  # irreversible: a restore is the rollback
    action = REGISTRY["migrate"]()
    params = {"restore": "auto"}
    with pytest.raises(ActionFailed, match="migration r2_half failed") as err:
        action.run(sc_maker(params, step_id="migrate", records=records))
    rec = err.value.record
    assert rec["failed"] == "r2_half" and rec["applied"] == []
    assert digest(url) != before  # the column and the table stayed
    # declined restore: the target is said to be not back
    with pytest.raises(ActionFailed, match="restore declined: target NOT back"):
        action.rollback(sc_maker({}, records=records, confirm=False), rec)
    back = action.rollback(sc_maker(params, step_id="migrate", records=records), rec)
    assert back is not None and back.record["method"] == "restore"
    assert "target is back: restored backup" in back.summary
    assert digest(url) == before and rows(url) == 50 and revision(url) == "r1_items"
