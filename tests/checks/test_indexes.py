"""indexes.foreign_keys and indexes.hot_queries: the demo, its missing-index fault, edge cases."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readyctl.config import Config, Environment
from readyctl.postgres import fingerprint as fpm
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses

HOT = "sessions by user and status"


def rows_and_schema(url: str) -> tuple[str, dict[str, str]]:
    with psycopg.connect(url.split("?")[0]) as conn:
        f = fpm.take(conn, sample_rows=None)
    return f.schema_digest(), f.rows


def test_healthy_demo_uses_the_session_index(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    before = rows_and_schema(healthy_demo.database_url)
    out = run_checks(demo_context(healthy_demo), only=["indexes.*"])
    hot = results_of(out, "indexes.hot_queries")[HOT]
    assert hot.status.value == "pass"
    assert "ix_counseling_sessions_user_id_status" in hot.summary
    fks = statuses(out, "indexes.foreign_keys")
    assert fks["counseling_sessions(user_id)"] == "pass"
    assert fks["counseling_messages(session_id)"] == "pass"
    assert rows_and_schema(healthy_demo.database_url) == before


def test_missing_index_fault_is_caught(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("missing-index")
    out = run_checks(demo_context(demo), only=["indexes.*"])
    hot = results_of(out, "indexes.hot_queries")[HOT]
    assert hot.status.value == "fail", hot.summary
    assert "no usable index" in hot.summary and "counseling_sessions" in hot.summary
    fk = results_of(out, "indexes.foreign_keys")["counseling_sessions(user_id)"]
    assert fk.status.value == "fail"
    assert "CREATE INDEX CONCURRENTLY" in fk.evidence["fix"]


@pytest.fixture
def idx_db(shared_pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"idx_{os.getpid()}"
    url = shared_pg.create_database(name)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            """
            CREATE TABLE parent (a int, b int, PRIMARY KEY (a, b));
            CREATE TABLE child (id serial PRIMARY KEY, a int, b int, note text,
                                FOREIGN KEY (a, b) REFERENCES parent (a, b));
            CREATE INDEX child_ba ON child (b, a, note);
            CREATE TABLE other (id serial PRIMARY KEY, parent_a int, parent_b int,
                                CONSTRAINT other_parent FOREIGN KEY (parent_a, parent_b)
                                REFERENCES parent (a, b));
            CREATE INDEX other_partial ON other (parent_a, parent_b) WHERE parent_a > 0;
            CREATE INDEX other_second ON other (id, parent_a);
            CREATE TABLE item (id serial PRIMARY KEY, code text, qty int);
            INSERT INTO item (code, qty) SELECT 'c' || g, g FROM generate_series(1, 2000) g;
            CREATE INDEX item_code ON item (code);
            """
        )
    try:
        yield url
    finally:
        shared_pg.drop_database(name)


def ctx(url: str, tmp_path: Path, **checks: Any) -> Any:
    return make_context(
        config=Config(checks=checks),
        environment=Environment(database_url=url, production=True),
        base_dir=tmp_path,
    )


def test_foreign_keys_composite_reordered_and_partial(idx_db: str, tmp_path: Path) -> None:
    out = run_checks(ctx(idx_db, tmp_path), only=["indexes.foreign_keys"])
    assert statuses(out, "indexes.foreign_keys") == {
        "child(a, b)": "pass",  # (b, a, note) leads with the key's columns in another order
        "other(parent_a, parent_b)": "fail",  # only a partial index and a non-leading one
    }
    ignored = ctx(idx_db, tmp_path, **{"indexes.foreign_keys": {"ignore": ["other_parent"]}})
    out = run_checks(ignored, only=["indexes.foreign_keys"])
    assert statuses(out, "indexes.foreign_keys")["other(parent_a, parent_b)"] == "skip"


def test_hot_queries_configured_and_never_executed(idx_db: str, tmp_path: Path) -> None:
    queries = [
        {"name": "by code", "sql": "SELECT * FROM item WHERE code = 'c7'"},
        {"name": "by qty", "sql": "SELECT * FROM item WHERE qty = 7"},
        {"name": "param", "sql": "SELECT * FROM item WHERE code = $1"},
        # planned, not run: the sleep would take 30 s
        {"name": "slow", "sql": "SELECT * FROM item WHERE code = 'x' AND pg_sleep(30) IS NULL"},
        {"name": "write", "sql": "DELETE FROM item"},
        {"name": "missing", "sql": "SELECT * FROM nope WHERE id = 1"},
    ]
    before = rows_and_schema(idx_db)
    t0 = time.monotonic()
    out = run_checks(
        ctx(idx_db, tmp_path, **{"indexes.hot_queries": {"queries": queries}}),
        only=["indexes.hot_queries"],
    )
    assert time.monotonic() - t0 < 20
    st = statuses(out, "indexes.hot_queries")
    assert st == {
        "by code": "pass",
        "by qty": "fail",
        "param": "pass",
        "slow": "pass",
        "write": "error",
        "missing": "error",
    }
    res = results_of(out, "indexes.hot_queries")
    assert "sequential scan on item" in res["by qty"].summary
    assert "single SELECT" in (res["write"].reason or "")
    assert rows_and_schema(idx_db) == before


def test_default_hot_query_skips_on_another_schema(idx_db: str, tmp_path: Path) -> None:
    out = run_checks(ctx(idx_db, tmp_path), only=["indexes.hot_queries"])
    assert statuses(out, "indexes.hot_queries") == {HOT: "skip"}
