"""EmbeddedPostgres: lifecycle, auth, databases, template cache and cleanup."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from readyctl.postgres.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


def test_lifecycle_restart_and_cleanup(tmp_path: Path) -> None:
    with EmbeddedPostgres(cache_dir=str(tmp_path / "cache")) as pg:
        assert not pg.used_template  # a fresh cache runs initdb once ...
        assert list((tmp_path / "cache").glob("pgdata-template-*"))
        base, port = pg.base, pg.port
        assert base is not None and pg.running
        with psycopg.connect(pg.url()) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.url(password="wrong"), connect_timeout=5)
        url = pg.create_database("lifecycle")
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (x int)")
        pg.stop(keep_data=True)
        assert not pg.running and base.exists()
        pg.start()
        assert pg.port == port
        with psycopg.connect(url) as conn:  # data survived the restart
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        pg.drop_database("lifecycle")
        assert Path(pg.bin("pg_dump")).exists()
    assert not base.exists()
    with EmbeddedPostgres(cache_dir=str(tmp_path / "cache")) as warm:
        assert warm.used_template  # ... and later starts copy the template


def test_failed_start_leaves_nothing_behind() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        pg = EmbeddedPostgres(port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="could not create listen socket"):
            pg.start()
    assert pg.base is None and not pg.running
