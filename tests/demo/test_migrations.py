"""Alembic migrations shipped with the demo: every downgrade restores the schema exactly."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from readyctl.demo.faults import MIGRATION_FAULTS
from readyctl.demo.migrate import (
    INI_PATH,
    NORMAL_HEAD,
    alembic_config,
    migrations_config,
    start_targets,
)

from .helpers import current_revisions, schema_snapshot

pytestmark = pytest.mark.slow
NORMAL_REVISIONS = ["0001_orgs_users", "0002_auth_tokens", "0003_counseling", "0004_billing"]


def test_at_least_four_revisions_in_one_line() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revs = [r.revision for r in script.walk_revisions()]
    assert list(reversed(revs)) == NORMAL_REVISIONS
    assert script.get_heads() == [NORMAL_HEAD]


def test_every_downgrade_restores_the_schema_exactly(scratch_db: str) -> None:
    cfg = alembic_config(scratch_db)
    before = {"base": schema_snapshot(scratch_db)}
    for rev in NORMAL_REVISIONS:
        command.upgrade(cfg, rev)
        before[rev] = schema_snapshot(scratch_db)
    assert any(
        "ix_counseling_sessions_user_id_status" in str(i) for i in before[NORMAL_HEAD]["indexes"]
    )
    created_at = [
        i for i in before[NORMAL_HEAD]["indexes"] if i[0] == "ix_counseling_sessions_created_at"
    ]
    assert "created_at DESC" in created_at[0][1]
    previous = ["base", *NORMAL_REVISIONS[:-1]]
    for rev, prev in zip(reversed(NORMAL_REVISIONS), reversed(previous), strict=True):
        command.downgrade(cfg, "-1")
        assert schema_snapshot(scratch_db) == before[prev], f"downgrade of {rev}"
    command.upgrade(cfg, "head")
    assert schema_snapshot(scratch_db) == before[NORMAL_HEAD]


def test_migrations_config_adds_fault_locations_only_when_on() -> None:
    ini, locations = migrations_config(())
    assert ini == str(INI_PATH) and Path(ini).exists()
    assert len(locations) == 1
    for fault in MIGRATION_FAULTS:
        _, locs = migrations_config([fault])
        assert len(locs) == 2 and Path(locs[1]).is_dir()
        heads = ScriptDirectory.from_config(alembic_config(None, [fault])).get_heads()
        assert len(heads) == 1 and heads[0] != NORMAL_HEAD
    _, locs = migrations_config(["no-hsts"])
    assert len(locs) == 1
    with pytest.raises(ValueError, match="valid faults"):
        migrations_config(["bogus"])
    assert start_targets(["unsafe-migration"]) == [NORMAL_HEAD]


def test_env_strips_pool_params_and_reads_database_url(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", scratch_db + "?connection_limit=3&pool_timeout=2")
    command.upgrade(alembic_config(None), "head")
    assert current_revisions(scratch_db) == {NORMAL_HEAD}


def test_offline_sql_mode(scratch_db: str) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        command.upgrade(alembic_config(scratch_db), "head", sql=True)
    assert "CREATE TABLE organizations" in out.getvalue()
