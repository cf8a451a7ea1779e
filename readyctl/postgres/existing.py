"""An existing PostgreSQL server reached by a superuser URL (a CI service container).

readyctl starts nothing there: it creates its own ``readyctl_*`` databases and drops them
again, and refuses to drop any other database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

OWN_PREFIX = "readyctl_"


class ExistingServer:
    """A server readyctl borrows: the same interface as the servers it starts, minus a process."""

    def __init__(self, url: str) -> None:
        """`url`: a libpq URL (postgresql://user:password@host:port/dbname?...)."""
        self._url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 5432
        self.pid: int | None = None  # no process of ours
        self.base: Path | None = None  # no directory of ours
        self._running = False

    @property
    def running(self) -> bool:
        """Tell whether start() succeeded and stop() has not run."""
        return self._running

    @property
    def address(self) -> str:
        """host:port, without credentials."""
        return f"{self.host}:{self.port}"

    def start(self) -> ExistingServer:
        """Connect once and make sure the user may create databases."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        if not row or not row[0]:
            raise RuntimeError(
                f"the user of scratch.url cannot create databases on {self.address}; "
                "give it CREATEDB (better: use a superuser of a server of its own)"
            )
        self._running = True
        return self

    def stop(self, *, keep_data: bool = False) -> None:
        """Forget the server (the caller drops its databases first)."""
        self._running = False

    def url(self, dbname: str = "postgres") -> str:
        """The URL of a database on this server (the same credentials and parameters)."""
        parts = urlsplit(self._url)
        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit connection (default: the URL's own database)."""
        target = self._url if dbname is None else self.url(dbname)
        return psycopg.connect(target, autocommit=True, connect_timeout=10)

    def drop_database(self, name: str) -> None:
        """Drop one of readyctl's own databases, disconnecting its sessions."""
        if not name.startswith(OWN_PREFIX):
            raise ValueError(f"refusing to drop {name!r}: not a readyctl database")
        with self.connect() as conn:
            ident = sql.Identifier(name)
            if int(conn.info.server_version) >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
                return
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
