"""Launcher of the managed demo: embedded PostgreSQL, migrations, seed, TLS, backup, server."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import errno
import functools
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import sql as psycopg_sql

from readyctl import _proc
from readyctl.demo import control
from readyctl.demo.faults import FAULTS_ENV, validate_faults
from readyctl.demo.releases import (
    BYPASS_HEADER,
    BYPASS_SECRET_ENV,
    DEFAULT_RELEASE,
    MAINTENANCE_FILE_ENV,
    MAINTENANCE_SECRET_ENV,
    RELEASE_ENV,
    RELEASES,
    validate_release,
)
from readyctl.demo.settings import render_env_example, render_env_file
from readyctl.demo.shapes import DEFAULT_SHAPE, SHAPE_ENV, get_shape, validate_shape
from readyctl.postgres.embedded import EmbeddedPostgres, free_port

HOST = "127.0.0.1"
STALE_BACKUP_AGE = timedelta(days=3)
WEAK_JWT_SECRET = "supersecret"
PLACEHOLDER = "changeme"
SERVER_STOP_TIMEOUT_S = 35.0
SWAP_SETTLE_S = 0.5
"""Between the old server's stop-accepting signal and its SIGTERM during a release swap."""
UNIX_PATH_MAX = 100
"""Longest control-socket path used in the workdir (sun_path holds 108 bytes)."""


class _Runtime:
    """Mutable state behind a ManagedDemo: what was started and must be stopped."""

    def __init__(self) -> None:
        """Start with nothing running."""
        self.lock = threading.Lock()
        self.pg: EmbeddedPostgres | None = None
        self.pg_owned = False
        self.dbname: str | None = None
        self.role: str | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log: Any = None
        self.sockets: list[socket.socket] = []
        self.workdir: Path | None = None
        self.ports: list[int] = []
        self.respawn: Callable[[], subprocess.Popen[bytes]] | None = None
        self.stopped = False
        # release swaps (deploy_release): one at a time; the children join the start scope
        self.swap_lock = threading.Lock()
        self.release = DEFAULT_RELEASE
        self.scope: _proc.Scope | None = None
        self.spawns = 0
        self.ready_file: Path | None = None
        self.control: control.ControlServer | None = None
        self.control_dir: Path | None = None
        self.state_files: list[Path] = []  # extra copies (demo up --state-file), removed on stop
        self.state: Callable[[], dict[str, Any]] | None = None

    def stop(self) -> None:
        """Stop the server, drop or stop the database and delete the workdir. Idempotent."""
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
            if self.control is not None:
                self.control.close()
            if self.control_dir is not None:
                shutil.rmtree(self.control_dir, ignore_errors=True)
            for path in self.state_files:
                with contextlib.suppress(OSError):
                    path.unlink()
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self.sockets = []
            if self.server is not None:
                _terminate(self.server, SERVER_STOP_TIMEOUT_S)
            if self.server_log is not None:
                with contextlib.suppress(OSError):
                    self.server_log.close()
            if self.pg is not None:
                if self.pg_owned:
                    self.pg.stop()
                else:
                    _drop_quietly(self.pg, self.dbname, self.role)
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            with contextlib.suppress(ValueError):
                atexit.unregister(self.stop)


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it does not exit in time; reap."""
    _proc.stop(proc, grace=timeout_s, sig=signal.SIGTERM)


def _drop_quietly(pg: EmbeddedPostgres, dbname: str | None, role: str | None) -> None:
    """Drop the demo's database and role on a shared server, ignoring a stopped server."""
    if not pg.running:
        with contextlib.suppress(Exception):
            pg.start()
    with contextlib.suppress(Exception):
        if dbname:
            pg.drop_database(dbname)
        if role:
            pg.drop_role(role)


@dataclass(frozen=True)
class ManagedDemo:
    """A running demo target; stop() removes every process, port, database and file."""

    base_url: str
    http_url: str
    ca_bundle: str
    env_file: str
    env_example: str
    database_url: str = field(repr=False)
    mail_url: str
    mail_token: str = field(repr=False)
    backup_location: str
    webhook_secret: str = field(repr=False)
    faults: tuple[str, ...]
    pid: int
    users: tuple[dict[str, Any], ...] = field(repr=False)
    workdir: str
    alembic_ini: str = ""
    log_file: str = ""
    pg_port: int = 0
    startup_seconds: float = 0.0
    shape: str = DEFAULT_SHAPE
    state_file: str = ""
    maintenance_file: str = ""
    maintenance_secret: str = field(default="", repr=False)
    control_socket: str = ""
    _rt: _Runtime = field(default_factory=_Runtime, repr=False, compare=False)

    @property
    def release(self) -> str:
        """The release the server process serves now (v1 until deploy_release)."""
        return self._rt.release

    def alembic_ini_for(self, release: str) -> str:
        """Return an alembic ini (written in the workdir) whose versions include `release`'s.

        v1's is `alembic_ini`; the database URL comes from the environment, as there.
        """
        release = validate_release(release)
        if release == DEFAULT_RELEASE and self.alembic_ini:
            return self.alembic_ini
        from readyctl.demo.migrate import write_alembic_ini

        return write_alembic_ini(
            Path(self.workdir) / f"alembic-{release}.ini", self.faults, release
        )

    def state(self) -> dict[str, Any]:
        """The state file's content (secrets included: write it 0600, never print it)."""
        return {
            "version": control.STATE_VERSION,
            "base_url": self.base_url,
            "http_url": self.http_url,
            "ca_bundle": self.ca_bundle,
            "database_url": self.database_url,
            "env_file": self.env_file,
            "workdir": self.workdir,
            "backup_location": self.backup_location,
            "alembic_ini": {r: self.alembic_ini_for(r) for r in RELEASES},
            "release": self.release,
            "releases": list(RELEASES),
            "faults": list(self.faults),
            "shape": self.shape,
            "ready_path": get_shape(self.shape).ready_path,
            "pid": os.getpid(),
            "server_pid": self.pid,
            "control_socket": self.control_socket,
            "maintenance_file": self.maintenance_file,
            "bypass_header": BYPASS_HEADER,
            "bypass_secret_env": BYPASS_SECRET_ENV,
            "bypass_secret": self.maintenance_secret,
        }

    def write_state(self, extra_path: str | os.PathLike[str] | None = None) -> str:
        """(Re)write the state file(s); `extra_path` adds a copy kept up to date, removed on stop.

        Returns the path of the workdir's state file.
        """
        if extra_path is not None:
            path = Path(extra_path).resolve()
            if path not in self._rt.state_files:
                self._rt.state_files.append(path)
        data = self.state()
        for path in [Path(self.state_file), *self._rt.state_files]:
            control.write_state_file(path, data)
        return self.state_file

    def set_maintenance(self, on: bool) -> bool:
        """Switch maintenance mode on or off; return whether it was on."""
        return control.set_maintenance(self.maintenance_file, on)

    def maintenance_on(self) -> bool:
        """Tell whether maintenance mode is on."""
        return os.path.exists(self.maintenance_file)

    def deploy_release(self, release: str, timeout_s: float = 60) -> float:
        """Swap the server to `release` with a graceful restart; return the seconds it took.

        A new server process starts on the same listening sockets (the parent holds them);
        once it has started and the ready endpoint answers 200, the old process stops
        accepting (SIGUSR1), then gets SIGTERM and finishes its in-flight requests: no
        connection is refused or dropped during the swap. If the
        new process does not become ready in time it is stopped and the old one keeps serving
        (RuntimeError). Migrations are not run here (alembic_ini_for(release) is for that).
        """
        release = validate_release(release)
        rt = self._rt
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        with rt.swap_lock:
            if rt.stopped or rt.respawn is None:
                raise RuntimeError("the demo has been stopped")
            if not rt.sockets:
                raise RuntimeError("the server's sockets are closed (restart_server first)")
            old = rt.server
            previous = rt.release
            rt.release = release
            try:
                new = rt.respawn()
            except BaseException:
                rt.release = previous
                raise
            _adopt(new, rt.scope)
            try:
                ready_file = rt.ready_file
                assert ready_file is not None
                if not control.wait_for_file(ready_file, lambda: new.poll() is None, deadline):
                    if new.poll() is not None:
                        raise RuntimeError(f"the server exited with code {new.returncode}")
                    raise RuntimeError(f"the server did not start within {timeout_s:g} s")
                _wait_ready(
                    self.base_url, self.ca_bundle, new, deadline, get_shape(self.shape).ready_path
                )
            except BaseException as exc:
                _terminate(new, 5.0)
                rt.release = previous
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                raise RuntimeError(f"release {release} did not become ready: {exc}") from exc
            with rt.lock:
                rt.server = new
                object.__setattr__(self, "pid", new.pid)
            with contextlib.suppress(OSError):
                self.write_state()
            if old is not None:
                if old.poll() is None:
                    # stop accepting first: a connection it accepted gets its request in
                    # before the SIGTERM, which closes idle connections
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(old.pid, signal.SIGUSR1)
                    time.sleep(SWAP_SETTLE_S)
                _terminate(old, SERVER_STOP_TIMEOUT_S)
        return round(time.monotonic() - t0, 3)

    def _control(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a control request (release swap, status) from another process."""
        op = payload.get("op")
        if op == "status":
            return {"ok": True, "release": self.release, "server_pid": self.pid}
        if op == "release":
            wanted = str(payload.get("release") or "")
            proc = self._rt.server
            if wanted == self.release and proc is not None and proc.poll() is None:
                return {"ok": True, "release": wanted, "server_pid": self.pid, "unchanged": True}
            try:
                timeout_s = float(payload.get("timeout_s") or 60)
                seconds = self.deploy_release(wanted, timeout_s=timeout_s)
            except (RuntimeError, ValueError) as exc:
                return {"ok": False, "error": str(exc).splitlines()[0][:300] if str(exc) else ""}
            return {"ok": True, "release": self.release, "server_pid": self.pid, "seconds": seconds}
        return {"ok": False, "error": f"unknown control operation {op!r}"}

    def stop_database(self) -> None:
        """Stop the PostgreSQL server (keeping its data) to simulate an outage."""
        pg = self._rt.pg
        if pg is not None:
            pg.stop(keep_data=True)

    def start_database(self) -> None:
        """Start the PostgreSQL server again on the same port."""
        pg = self._rt.pg
        if pg is not None:
            pg.start()
            # the postmaster lives as long as the demo, not as long as the check (or the
            # runbook step) that restarted it: a deploy's gate goes on using the database
            postmaster = getattr(pg, "_postmaster", None)
            if postmaster is not None:
                _adopt(postmaster, self._rt.scope)

    def send_sigterm(self) -> None:
        """Send SIGTERM to the demo server process (new connections are refused from then on).

        The launcher's own copies of the listening sockets are closed first, so that only the
        server holds them; restart_server binds them again.
        """
        rt = self._rt
        with rt.swap_lock:
            for sock in rt.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            rt.sockets = []
        proc = rt.server
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    def restart_server(self, timeout_s: float = 30) -> None:
        """Start the server process again on the same ports (after send_sigterm or a crash)."""
        rt = self._rt
        if rt.stopped or rt.respawn is None:
            raise RuntimeError("the demo has been stopped")
        with rt.swap_lock:
            if rt.server is not None:
                _terminate(rt.server, SERVER_STOP_TIMEOUT_S)
            if not rt.sockets:
                rt.sockets = _bind_again(rt.ports, time.monotonic() + min(10.0, timeout_s))
            rt.server = rt.respawn()
            _adopt(rt.server, rt.scope)
            object.__setattr__(self, "pid", rt.server.pid)
        _wait_ready(
            self.base_url,
            self.ca_bundle,
            rt.server,
            time.monotonic() + timeout_s,
            get_shape(self.shape).ready_path,
        )

    def server_exit_code(self, timeout_s: float | None = None) -> int | None:
        """Wait up to timeout_s for the server to exit; return its exit code or None."""
        proc = self._rt.server
        if proc is None:
            return None
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def server_log(self) -> str:
        """Return the server's JSON log so far (stderr)."""
        try:
            return Path(self.log_file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def user(self, role: str = "member", org_slug: str = "acme", index: int = 0) -> dict[str, Any]:
        """Return the index-th seeded user with that role in that organization."""
        found = [u for u in self.users if u["role"] == role and u["org_slug"] == org_slug]
        return found[index]

    def stop(self) -> None:
        """Stop everything this demo started and delete its workdir. Idempotent."""
        self._rt.stop()


def _adopt(proc: subprocess.Popen[bytes], scope: _proc.Scope | None) -> None:
    """Register a server process in the scope the demo was started in.

    A swap may run in another thread (the control server) while an inner scope is open (a
    runbook step); the server must live as long as the demo, not as long as that step.
    """
    with _proc._lock:
        child = _proc._children.get(proc.pid)
        if child is None or child.proc is not proc or child.scope is scope:
            return
        if child.scope is not None:
            child.scope.children.pop(proc.pid, None)
        child.scope = scope
        if scope is not None:
            scope.children[proc.pid] = child


def _control_socket_path(wd: Path) -> tuple[str, Path | None]:
    """The control socket's path: in the workdir, or in a short temp dir if that is too long."""
    path = wd / "control.sock"
    if len(str(path)) <= UNIX_PATH_MAX:
        return str(path), None
    short = Path(tempfile.mkdtemp(prefix="rdc-", dir="/tmp" if os.path.isdir("/tmp") else None))
    return str(short / "control.sock"), short


def _bind_again(ports: list[int], deadline: float) -> list[socket.socket]:
    """Bind the demo's ports again, waiting while a process that is going away still holds
    one (EADDRINUSE) until `deadline`."""
    while True:
        made: list[socket.socket] = []
        try:
            for port in ports:
                made.append(_bind(port))
            return made
        except OSError as e:
            for sock in made:
                sock.close()
            if e.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _bind(port: int = 0, host: str = HOST) -> socket.socket:
    """Bind and listen (on a free port by default); the socket is passed to the server process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # also for the first bind (port 0): connections accepted on a socket without it leave
    # TIME_WAIT entries that refuse a later bind of the same port (a restart, a swap)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _make_tls(workdir: Path) -> tuple[str, str, str]:
    """Create a CA and a server certificate for 127.0.0.1 and localhost; return paths."""
    import trustme

    ca = trustme.CA(organization_name="readyctl demo CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="127.0.0.1")
    ca_path = workdir / "ca.pem"
    cert_path = workdir / "server-cert.pem"
    key_path = workdir / "server-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    with open(cert_path, "wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf.private_key_pem.bytes())
    return str(ca_path), str(cert_path), str(key_path)


def _hash_seed_passwords() -> Any:
    """Generate the tenant's passwords and their bcrypt hashes (in parallel threads)."""
    from readyctl.demo._tokens import hash_password
    from readyctl.demo.seed import SeedPasswords

    member = "Member-" + secrets.token_urlsafe(12)
    admin = "Admin-" + secrets.token_urlsafe(12)
    other = "Other-" + secrets.token_urlsafe(12)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        hashes = list(pool.map(hash_password, (member, admin, other)))
    return SeedPasswords(member, hashes[0], admin, hashes[1], other, hashes[2])


def _preload_migration_modules() -> None:
    """Import alembic and SQLAlchemy in the background while PostgreSQL starts."""
    import alembic.command  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401


def _env_values(
    *,
    faults: tuple[str, ...],
    database_url: str,
    mail_url: str,
    mail_token: str,
    webhook_secret: str,
) -> dict[str, str]:
    """Return the env file's variables, with the env faults applied."""
    jwt_secret = WEAK_JWT_SECRET if "weak-jwt-secret" in faults else secrets.token_urlsafe(48)
    values = {
        "APP_ENV": "production",
        "NODE_ENV": "production",
        "DATABASE_URL": database_url,
        "JWT_SECRET": jwt_secret,
        "OPENAI_API_KEY": "sk-proj-" + secrets.token_urlsafe(36),
        "POSTMARK_API_TOKEN": mail_token,
        "POSTMARK_API_URL": mail_url,
        "FROM_EMAIL": "no-reply@counsel.example",
        "WEB_APP_URL": "https://app.counsel.example",
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "SENTRY_DSN": f"https://{secrets.token_hex(16)}@sentry.counsel.example/1",
        "CORS_ORIGINS": "https://app.counsel.example",
        "LOG_LEVEL": "info",
    }
    if "missing-env" in faults:
        del values["OPENAI_API_KEY"]
    return values


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _backup(
    pg: EmbeddedPostgres, dbname: str, role: str, password: str, target_dir: Path, stale: bool
) -> Path:
    """Write a pg_dump -Fc of the database; a stale backup is dated 3 days back."""
    when = datetime.now(UTC) - (STALE_BACKUP_AGE if stale else timedelta())
    path = target_dir / f"{dbname}-{when:%Y%m%dT%H%M%SZ}.dump"
    env = dict(os.environ, PGPASSWORD=password)
    cmd = [
        pg.bin("pg_dump"),
        "-Fc",
        "-h",
        pg.host,
        "-p",
        str(pg.port),
        "-U",
        role,
        "-d",
        dbname,
        "-f",
        str(path),
    ]
    proc = _proc.run(cmd, env=env, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {proc.stderr.decode(errors='replace').strip()[-200:]}")
    if stale:
        ts = when.timestamp()
        os.utime(path, (ts, ts))
    return path


def _wait_ready(
    url: str,
    ca_path: str,
    proc: subprocess.Popen[bytes],
    deadline: float,
    ready_path: str = "/health/ready",
) -> None:
    """Poll the https readiness probe until it answers 200, the process dies or time runs out."""
    ctx = ssl.create_default_context(cafile=ca_path)
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"demo server exited with code {proc.returncode} during startup")
        try:
            with urllib.request.urlopen(url + ready_path, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ssl.SSLError) as exc:
            last = type(exc).__name__
        time.sleep(0.05)
    raise RuntimeError(f"demo server not ready in time (last: {last})")


def _server_env(
    faults: tuple[str, ...],
    ai_latency_ms: int,
    shape: str = DEFAULT_SHAPE,
    release: str = DEFAULT_RELEASE,
    maintenance: tuple[str, str] = ("", ""),
) -> dict[str, str]:
    """Return the environment of the server process (maintenance: flag file, bypass secret)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("READYCTL_DEMO_") and k != BYPASS_SECRET_ENV
    }
    env[FAULTS_ENV] = ",".join(faults)
    if release != DEFAULT_RELEASE:
        env[RELEASE_ENV] = release
    if maintenance[0]:
        env[MAINTENANCE_FILE_ENV], env[MAINTENANCE_SECRET_ENV] = maintenance
    env[SHAPE_ENV] = shape
    env["READYCTL_DEMO_AI_LATENCY_MS"] = str(int(ai_latency_ms))
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start(
    faults: Iterable[str] = (),
    *,
    workdir: str | None = None,
    pg: EmbeddedPostgres | None = None,
    ai_latency_ms: int = 50,
    timeout_s: float = 30,
    shape: str = DEFAULT_SHAPE,
) -> ManagedDemo:
    """Start the demo (database, migrations, seed, TLS, backup, server) and wait until ready.

    `shape` picks the API shape served (readyctl.demo.shapes: default, alt, ...); an unknown
    fault or shape raises ValueError before anything starts. The server process is spawned
    first, so its imports overlap with PostgreSQL's start, the migrations and the seed;
    readiness is awaited only after all of them.
    """
    chosen = validate_faults(faults)
    shape = validate_shape(shape)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    rt = _Runtime()
    rt.scope = _proc.current_scope()
    atexit.register(rt.stop)
    step = "preparing"
    try:
        wd = Path(tempfile.mkdtemp(prefix="readyctl-demo-", dir=workdir))
        rt.workdir = wd
        (wd / "logs").mkdir()
        backups = wd / "backups"
        backups.mkdir()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            hashing = pool.submit(_hash_seed_passwords)
            pool.submit(_preload_migration_modules)
            if pg is None:
                rt.pg = EmbeddedPostgres(port=free_port())
                rt.pg_owned = True
            else:
                rt.pg = pg
                if not pg.running:
                    step = "starting PostgreSQL"
                    pg.start()
            db = rt.pg
            suffix = secrets.token_hex(4)
            dbname = f"counsel_{suffix}"
            role = f"counsel_app_{suffix}"
            role_pw = secrets.token_urlsafe(24)
            plain_url = db.url(dbname, user=role, password=role_pw)
            if "pool-defaults" in chosen:
                database_url = plain_url
            else:
                database_url = plain_url + "?connection_limit=10&pool_timeout=10"

            step = "generating TLS certificates"
            ca_path, cert_path, key_path = _make_tls(wd)
            api_sock, http_sock, mail_sock = _bind(), _bind(), _bind()
            rt.sockets = [api_sock, http_sock, mail_sock]
            base_url = f"https://{HOST}:{api_sock.getsockname()[1]}"
            http_url = f"http://{HOST}:{http_sock.getsockname()[1]}"
            mail_url = f"http://{HOST}:{mail_sock.getsockname()[1]}"
            mail_token = PLACEHOLDER if "env-placeholder" in chosen else secrets.token_hex(16)
            webhook_secret = "whsec_" + secrets.token_urlsafe(32)

            step = "writing the env file"
            env_values = _env_values(
                faults=chosen,
                database_url=database_url,
                mail_url=mail_url,
                mail_token=mail_token,
                webhook_secret=webhook_secret,
            )
            env_file = wd / ".env"
            _write_private(
                env_file,
                render_env_file(env_values, header="Counsel API (readyctl managed demo)"),
            )
            env_example = wd / ".env.example"
            env_example.write_text(render_env_example(), encoding="utf-8")
            from readyctl.demo.migrate import write_alembic_ini

            alembic_ini = write_alembic_ini(wd / "alembic.ini", chosen)

            step = "starting the demo server"
            rt.ports = [sock.getsockname()[1] for sock in rt.sockets]
            tls_files = (cert_path, key_path)
            maintenance_file = str(wd / "maintenance.json")
            maintenance_secret = secrets.token_urlsafe(32)
            rt.respawn = functools.partial(
                _spawn_server,
                rt,
                wd,
                env_file,
                *tls_files,
                base_url,
                chosen,
                ai_latency_ms,
                shape,
                (maintenance_file, maintenance_secret),
            )
            rt.server = rt.respawn()

            if rt.pg_owned:
                step = "starting PostgreSQL"
                db.start()
            step = "creating the database"
            db.create_role(role, role_pw)
            rt.role = role
            # server-side session timeouts for the app's role, visible to any client and check
            with db.connect() as conn:
                for setting, value in (
                    ("statement_timeout", "10s"),
                    ("idle_in_transaction_session_timeout", "60s"),
                ):
                    conn.execute(
                        psycopg_sql.SQL("ALTER ROLE {} SET {} = {}").format(
                            psycopg_sql.Identifier(role),
                            psycopg_sql.Identifier(setting),
                            psycopg_sql.Literal(value),
                        )
                    )
            db.create_database(dbname, owner=role)
            rt.dbname = dbname
            step = "running migrations"
            from readyctl.demo.migrate import upgrade_for_start

            upgrade_for_start(plain_url, chosen)
            step = "seeding the test tenant"
            from readyctl.demo.seed import seed_tenant

            users = seed_tenant(plain_url, hashing.result())
            backup_job = None
            if "no-backup" not in chosen:
                backup_job = pool.submit(
                    _backup, db, dbname, role, role_pw, backups, "stale-backup" in chosen
                )
            ready_path = get_shape(shape).ready_path
            step = f"waiting for {ready_path}"
            _wait_ready(base_url, ca_path, rt.server, deadline, ready_path)
            if backup_job is not None:
                step = "writing the backup"
                backup_job.result(timeout=max(1.0, deadline - time.monotonic()))
            step = "starting the control socket"
            control_socket, rt.control_dir = _control_socket_path(wd)
            demo = ManagedDemo(
                base_url=base_url,
                http_url=http_url,
                ca_bundle=ca_path,
                env_file=str(env_file),
                env_example=str(env_example),
                database_url=database_url,
                mail_url=mail_url,
                mail_token=mail_token,
                backup_location=backups.as_uri(),
                webhook_secret=webhook_secret,
                faults=chosen,
                pid=rt.server.pid,
                users=users,
                workdir=str(wd),
                alembic_ini=alembic_ini,
                log_file=str(wd / "logs" / "server.log"),
                pg_port=db.port,
                startup_seconds=0.0,
                shape=shape,
                state_file=str(wd / "state.json"),
                maintenance_file=maintenance_file,
                maintenance_secret=maintenance_secret,
                control_socket=control_socket,
                _rt=rt,
            )
            rt.control = control.ControlServer(control_socket, demo._control)
            demo.write_state()
    except BaseException as exc:
        rt.stop()
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RuntimeError(f"managed demo failed while {step}: {reason}"[:300]) from exc
    object.__setattr__(demo, "startup_seconds", round(time.monotonic() - t0, 3))
    return demo


def _spawn_server(
    rt: _Runtime,
    wd: Path,
    env_file: Path,
    cert_path: str,
    key_path: str,
    base_url: str,
    faults: tuple[str, ...],
    ai_latency_ms: int,
    shape: str = DEFAULT_SHAPE,
    maintenance: tuple[str, str] = ("", ""),
) -> subprocess.Popen[bytes]:
    """Start `python -m readyctl.demo serve` (release rt.release) on the listening sockets.

    The launcher keeps its copies of the sockets, so that a later process can take over
    while this one drains (deploy_release); the server writes its ready file once it serves.
    """
    if rt.server_log is not None:
        rt.server_log.close()
    rt.server_log = open(wd / "logs" / "server.log", "ab")  # noqa: SIM115
    rt.spawns += 1
    rt.ready_file = wd / "run" / f"server-{rt.spawns}.ready"
    rt.ready_file.parent.mkdir(exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        rt.ready_file.unlink()
    fds = [s.fileno() for s in rt.sockets]
    cmd = [
        sys.executable,
        "-m",
        "readyctl.demo",
        "serve",
        "--env-file",
        str(env_file),
        "--api-fd",
        str(fds[0]),
        "--http-fd",
        str(fds[1]),
        "--mail-fd",
        str(fds[2]),
        "--certfile",
        cert_path,
        "--keyfile",
        key_path,
        "--public-url",
        base_url,
        "--parent-pid",
        str(os.getpid()),
        "--ready-file",
        str(rt.ready_file),
    ]
    return _proc.popen(
        cmd,
        name="readyctl-demo-server",
        env=_server_env(faults, ai_latency_ms, shape, rt.release, maintenance),
        stdin=subprocess.DEVNULL,
        stdout=rt.server_log,
        stderr=rt.server_log,
        pass_fds=fds,
        cwd=str(wd),
    )


def redact_url(url: str) -> str:
    """Return a database URL with its password replaced by ***."""
    from readyctl.demo.db import redact_url as _redact

    return _redact(url)
