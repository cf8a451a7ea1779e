"""readyctl.postgres.scratch: scratch servers, collision-free databases, dumps, cleaning up."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest

from readyctl.postgres import scratch
from readyctl.postgres.embedded import _pid_alive


def _gone(srv: scratch.ScratchServer, pid: int | None, data_dir: Path | None) -> None:
    assert pid is not None
    assert not _pid_alive(pid), "the scratch postmaster is still running"
    assert data_dir is not None and not data_dir.exists(), "the scratch data dir is left"
    assert not srv.running


def test_url_helpers_strip_prisma_params_and_driver_prefixes() -> None:
    url = "postgresql+psycopg://app:p%40ss@db:5432/app?connection_limit=5&sslmode=require&pool_timeout=3"
    assert scratch.strip_prisma_params(url) == (
        "postgresql+psycopg://app:p%40ss@db:5432/app?sslmode=require"
    )
    assert scratch.libpq_url(url) == "postgresql://app:p%40ss@db:5432/app?sslmode=require"
    assert scratch.libpq_url("postgres://u@h/d") == "postgresql://u@h/d"
    parts = scratch.url_parts(url)
    assert parts == {
        "host": "db",
        "port": "5432",
        "user": "app",
        "password": "p@ss",
        "dbname": "app",
        "sslmode": "require",
    }
    assert scratch.strip_prisma_params("postgresql://h/d") == "postgresql://h/d"


def test_client_binaries_are_at_least_the_server_major() -> None:
    dump = scratch.pg_dump_path(18)
    assert scratch.binary_major_version(dump) >= 18
    assert scratch.binary_major_version(scratch.pg_restore_path(18)) >= 18
    with pytest.raises(scratch.ScratchError, match="older than the server's major version 99"):
        scratch.pg_dump_path(99)


def test_names_are_unique_and_valid() -> None:
    names = {scratch.scratch_name("Rehearsal-X!") for _ in range(200)}
    assert len(names) == 200
    assert all(len(n) <= 63 and n.startswith("readyctl_scratch_rehearsal_x") for n in names)


def test_dump_restore_roundtrip_and_cleanup(shared_pg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = shared_pg.create_database("scratch_src_rt")
    try:
        with psycopg.connect(src, autocommit=True) as c:
            c.execute("CREATE TABLE t (id serial PRIMARY KEY, s text DEFAULT 'x')")
            c.execute("INSERT INTO t (s) SELECT 'a' FROM generate_series(1, 500)")
        info = scratch.dump_database(src + "?connection_limit=3&pool_timeout=2", tmp_path / "d")
        assert info.size_bytes > 0 and info.pg_dump_major >= info.server_major == 18
        with scratch.ScratchServer() as srv:
            db = srv.restore(info.path, label="drill")
            with psycopg.connect(db.url) as c:
                assert c.execute("SELECT count(*) FROM t").fetchone() == (500,)
            assert srv.databases() == [db.name] == srv.created()
            assert srv.last_restore_seconds > 0
            pid, data_dir = srv.pid, srv.data_dir
        _gone(srv, pid, data_dir)
        srv.close()  # idempotent
        with pytest.raises(scratch.ScratchError):
            srv.create_database()
    finally:
        shared_pg.drop_database("scratch_src_rt")


def test_name_collision_retries_with_a_fresh_name(monkeypatch: pytest.MonkeyPatch) -> None:
    names = iter(["readyctl_scratch_fixed", "readyctl_scratch_fixed", "readyctl_scratch_other"])
    monkeypatch.setattr(scratch, "scratch_name", lambda label="db": next(names))
    with scratch.ScratchServer() as srv:
        first = srv.create_database()
        second = srv.create_database()
        assert (first.name, second.name) == ("readyctl_scratch_fixed", "readyctl_scratch_other")
        srv.drop_database(first.name)
        assert srv.databases() == ["readyctl_scratch_other"]
        with pytest.raises(scratch.ScratchError, match="not a scratch database"):
            srv.drop_database("postgres")


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_cleanup_on_error_and_ctrl_c(exc: BaseException) -> None:
    srv = scratch.ScratchServer()
    with pytest.raises(type(exc)), srv:
        srv.create_database("x")
        pid, data_dir = srv.pid, srv.data_dir
        raise exc
    _gone(srv, pid, data_dir)


def test_restore_of_a_broken_dump_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"not a dump")
    with scratch.ScratchServer() as srv:
        with pytest.raises(scratch.ScratchError, match="pg_restore failed"):
            srv.restore(bad)
        # the database made for the failed restore is still tracked and dropped on close
        assert len(srv.created()) == 1


def test_close_from_another_thread_while_in_use() -> None:
    srv = scratch.ScratchServer().start()
    db = srv.create_database()
    conn = psycopg.connect(db.url, autocommit=True)
    t = threading.Thread(target=srv.close)
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert not srv.running
    conn.close()


def test_dump_of_an_unreachable_database_fails_with_a_reason(tmp_path: Path) -> None:
    from readyctl.postgres.embedded import free_port

    url = f"postgresql://u:secretpw@127.0.0.1:{free_port()}/x"
    with pytest.raises(scratch.ScratchError, match="could not connect") as info:
        scratch.dump_database(url, tmp_path / "x.dump")
    assert "secretpw" not in str(info.value)
    assert not (tmp_path / "x.dump").exists()
    assert os.listdir(tmp_path) == []
