"""One run at a time per target: a PostgreSQL session-level advisory lock on the target.

`pg_try_advisory_lock(key)` on a dedicated connection held for the whole run; the key is
derived from a constant and the database name. The server releases it when the connection
ends, so a readyctl that dies (SIGKILL, a lost runner) never leaves the target locked; the
unfinished-run record (readyctl.runbook.state) says what it left behind.

The connection's `application_name` says which run holds the lock and who started it, so a
second deploy can name them. A target without a database URL is locked on this machine only
(an `flock` under `.readyctl/locks/`, released by the kernel when the process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from readyctl.errors import ReadyctlError

LOCK_NAMESPACE = b"readyctl.runbook.deploy:"
APP_PREFIX = "readyctl deploy "


class LockHeld(ReadyctlError):
    """Another run holds the target (exit 1: nothing ran; try again once it is done)."""

    exit_code = 1


class LockUnavailable(ReadyctlError):
    """The lock could not be taken at all (the target database is unreachable): exit 1."""

    exit_code = 1


def advisory_key(dbname: str) -> int:
    """The signed 64-bit advisory lock key of a database name."""
    digest = hashlib.blake2b(LOCK_NAMESPACE + dbname.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgLock:
    """The advisory lock on the target database, on a connection of its own."""

    kind = "postgres"

    def __init__(self, database_url: str, *, run_id: str, who: str) -> None:
        """Not taken yet: call `acquire`."""
        from readyctl.postgres.urls import libpq_url, url_parts

        self.url = libpq_url(database_url)
        self.dbname = url_parts(database_url).get("dbname") or "postgres"
        self.key = advisory_key(self.dbname)
        self.app_name = f"{APP_PREFIX}{run_id} by {who}"[:63]
        self.conn: Any = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld (naming the holder) / LockUnavailable."""
        import psycopg

        from readyctl.redact import global_redactor

        try:
            self.conn = psycopg.connect(
                self.url, autocommit=True, application_name=self.app_name, connect_timeout=10
            )
        except psycopg.Error as e:
            why = global_redactor().text(str(e).strip().splitlines()[0] if str(e) else repr(e))
            raise LockUnavailable(
                f"cannot take the deploy lock: the target database is unreachable ({why}); "
                "check database_url and that the server is up"
            ) from None
        got = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if got and got[0]:
            return
        holder = self._holder()
        self.release()
        raise LockHeld(f"another deploy of this target is running ({holder}); wait for it to end")

    def _holder(self) -> str:
        """`run <id>, started <when> by <who>` of the session holding the key."""
        key = self.key & 0xFFFFFFFFFFFFFFFF
        row = self.conn.execute(
            "SELECT a.application_name, a.backend_start, a.client_addr::text"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
        if not row:
            return "held by another session"
        app, started, addr = row
        started_s = started.strftime("%Y-%m-%dT%H:%M:%SZ") if started else "?"
        if app and app.startswith(APP_PREFIX):
            rest = app[len(APP_PREFIX) :]
            run_id, _, by = rest.partition(" by ")
            return f"run {run_id}, started {started_s} by {by or '?'}"
        return f"session {app or '?'} from {addr or 'local'}, started {started_s}"

    def release(self) -> None:
        """Drop the lock (closing the connection releases it too). Idempotent."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        with contextlib.suppress(Exception):
            conn.close()


class FileLock:
    """A lock on this machine only, for a target without a database URL."""

    kind = "file"

    def __init__(self, lock_dir: Path, target_key: str, *, run_id: str, who: str) -> None:
        """Not taken yet: call `acquire`."""
        name = hashlib.sha256(target_key.encode()).hexdigest()[:16]
        self.path = lock_dir / f"{name}.lock"
        self.info = {"run_id": run_id, "who": who, "pid": os.getpid()}
        self.fd: int | None = None
        self.conn: Any = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder."""
        from readyctl.runbook.state import now_iso

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            os.close(fd)
            raise LockHeld(
                "another deploy of this target is running (run "
                f"{holder.get('run_id', '?')}, started {holder.get('started', '?')} by "
                f"{holder.get('who', '?')}); wait for it to end"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**self.info, "started": now_iso()}).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Drop the lock. Idempotent."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
