"""backup: pg_dump -Fc to a directory and to S3 (moto), verified, size against the previous."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Environment
from readyctl.postgres.dump import pg_restore_path
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions import backup as backup_mod
from readyctl.runbook.actions.base import ActionFailed
from tests.conftest import aws_client
from tests.runbook._actions_helpers import make_sc


@pytest.fixture
def filled_db(shared_pg: Any) -> Iterator[str]:
    """A database with a table of 5000 rows of text (a dump of some size)."""
    name = f"bk_{os.getpid()}_{abs(hash(os.urandom(4))) % 100_000}"
    url = shared_pg.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute(
            "INSERT INTO notes (body) SELECT md5(g::text) || repeat('x', 40) "
            "FROM generate_series(1, 5000) g"
        )
    yield url
    shared_pg.drop_database(name)


def _empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE notes")


def test_backup_to_directory_verified_and_size_checked(tmp_path: Path, filled_db: str) -> None:
    location = tmp_path / "backups"
    action = REGISTRY["backup"]()
    from readyctl.runbook.state import new_run_id

    sc = make_sc(
        tmp_path,
        {"location": str(location)},
        target=Environment(database_url=filled_db),
        run_id=new_run_id(),
    )
    res = action.run(sc)
    rec = res.record
    stored = Path(rec["uri"])
    assert stored.parent == location and stored.is_file()
    assert {"backup_id", "location", "size", "server_version", "sha256"} <= set(rec)
    assert rec["backup_id"].count("T") == 1, rec["backup_id"]  # one timestamp, not two
    assert rec["size"] == stored.stat().st_size > 50_000 and rec["toc_entries"] > 3
    listed = subprocess.run(
        [pg_restore_path(), "--list", str(stored)], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA public notes" in listed.stdout
    assert "no previous backup" in res.summary
    assert "password" not in json.dumps(rec).lower()
    # the database lost its data: the next backup is far smaller than the previous one
    _empty(filled_db)
    sc2 = make_sc(
        tmp_path,
        {"location": str(location)},
        target=Environment(database_url=filled_db),
        run_id="run2",
    )
    with pytest.raises(ActionFailed, match=r"under 0.5x the previous backup") as err:
        action.run(sc2)
    assert err.value.record["previous"]["size"] == rec["size"]
    assert len(list(location.glob("*.dump"))) == 1  # the bad one was not stored


def test_backup_to_s3_and_fetch_back(tmp_path: Path, filled_db: str, moto: str) -> None:
    s3 = aws_client(moto, "s3")
    s3.create_bucket(Bucket="dumps")
    target = Environment(database_url=filled_db, aws={"endpoint_url": moto})
    action = REGISTRY["backup"]()
    sc = make_sc(tmp_path, {"location": "s3://dumps/prod"}, target=target, environ=os.environ)
    rec = action.run(sc).record
    key = rec["uri"][len("s3://dumps/") :]
    assert key.startswith("prod/") and rec["location"] == "s3://dumps/prod"
    head = s3.head_object(Bucket="dumps", Key=key)
    assert head["ContentLength"] == rec["size"]
    # the local copy is gone (a fresh runner): fetch downloads it and checks its sha256
    Path(rec["local_path"]).unlink()
    got = backup_mod.fetch(sc, rec)
    assert got.stat().st_size == rec["size"]
    _empty(filled_db)
    sc2 = make_sc(
        tmp_path,
        {"location": "s3://dumps/prod"},
        target=target,
        environ=os.environ,
        run_id="run2",
    )
    with pytest.raises(ActionFailed, match=r"under 0\.5x"):
        action.run(sc2)
