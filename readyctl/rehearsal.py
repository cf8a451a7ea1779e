"""Migration rehearsal on a scratch copy: upgrade, fingerprint, downgrade, compare, upgrade again.

The target is only read: a schema-only pg_dump (read-only session) and a sample of rows copied
inside a READ ONLY transaction. Everything else happens in a scratch database on a scratch
PostgreSQL (readyctl.scratch), which is always dropped and stopped.

Migration tools:
- `AlembicMigrator`: alembic natively, in this process (fast) or in the project's own
  interpreter/command (`python:`), through a small shim that needs only alembic.
- `CommandMigrator`: any other stack (Prisma, TypeORM, Flyway, ...) through `up`, `down` and
  `current` shell commands; the database URL reaches them through environment variables.

Sealed: every migration subprocess (commands, the shim in the project's interpreter) gets an
allow-listed environment (`sealed_environ`): PATH, HOME, locale, TZ, TMPDIR, VIRTUAL_ENV,
NODE_*, the `env:` map of the settings, and the scratch connection as URL variables (`url_env`)
and as parts (`connection_env`); nothing else of readyctl's environment or the target's reaches
it. Before the first step a sentinel (`prove_scratch`) makes the scratch copy's migration state
differ from the target's and expects the tool's own `current` to see it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from readyctl import _proc, scratch
from readyctl import fingerprint as fp
from readyctl.redact import clip

# Tables whose rows record migration state (timestamps differ on every run): their rows are
# not compared, their schema is.
TRACKING_TABLES = (
    "alembic_version",
    "_prisma_migrations",
    "flyway_schema_history",
    "typeorm_migrations",
    "migrations",
    "schema_migrations",
    "knex_migrations",
    "knex_migrations_lock",
    "__EFMigrationsHistory",
    "django_migrations",
)
MAX_DISCOVERED = 200  # bound on revisions discovered through a command adapter
LINT_PLACEHOLDER_URL = "postgresql://readyctl@127.0.0.1:9/readyctl_offline"  # never connected


class RehearsalError(Exception):
    """The rehearsal could not run (not a finding about a migration); the message says why."""

    def __init__(self, message: str, kind: str = "config") -> None:
        """`kind`: config | connectivity | timeout."""
        super().__init__(message)
        self.kind = kind


class StepFailed(Exception):
    """A migration step (upgrade or downgrade) failed; the message is the tool's reason."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        """A failed step, possibly by running past its timeout."""
        super().__init__(message)
        self.timed_out = timed_out


# -- the alembic shim: runs in this process or in the project's interpreter ----------------------
ALEMBIC_SHIM = r'''
"""readyctl's alembic shim: one action per call, JSON in, JSON out (needs only alembic)."""
import io
import json
import os
import sys


def load(req, output_buffer=None):
    """An alembic Config from the request (ini, locations, URL)."""
    from alembic.config import Config

    cfg = Config(req["ini"], output_buffer=output_buffer, stdout=io.StringIO())
    here = os.path.dirname(os.path.abspath(req["ini"]))
    loc = req.get("script_location") or cfg.get_main_option("script_location")
    if loc and not os.path.isabs(loc) and ":" not in loc:
        loc = os.path.join(here, loc)
    if loc:
        cfg.set_main_option("script_location", loc)
    versions = req.get("version_locations")
    if versions:
        cfg.set_main_option("version_locations", os.pathsep.join(versions))
        cfg.set_main_option("path_separator", "os")
    if req.get("url") and req.get("set_url", True):
        cfg.set_main_option("sqlalchemy.url", req["url"].replace("%", "%%"))
    return cfg


def _parents(rev):
    down = rev.down_revision
    deps = rev.dependencies or ()
    if isinstance(deps, str):
        deps = (deps,)
    if down is None:
        return tuple(deps)
    return (down,) + tuple(deps) if isinstance(down, str) else tuple(down) + tuple(deps)


def info(req):
    """Heads, and for the given current revisions: pending (apply order) and applied."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(load(req))
    revs = list(script.walk_revisions())  # heads first, topological
    by_id = {r.revision: r for r in revs}
    current = list(req.get("current") or [])
    unknown = [c for c in current if c not in by_id]
    applied = set()
    stack = [c for c in current if c in by_id]
    while stack:
        rid = stack.pop()
        if rid in applied:
            continue
        applied.add(rid)
        stack.extend(p for p in _parents(by_id[rid]) if p in by_id)
    order = [r.revision for r in revs]
    return {
        "heads": list(script.get_heads()),
        "pending": [r for r in reversed(order) if r not in applied],
        "applied": [r for r in order if r in applied],
        "unknown": unknown,
        "parents": {r.revision: list(_parents(r)) for r in revs},
        "docs": {r.revision: (r.doc or "")[:120] for r in revs},
        "paths": {r.revision: r.path for r in revs},
    }


def upgrade(req):
    from alembic import command

    command.upgrade(load(req), req["revision"])
    return {}


def downgrade(req):
    from alembic import command

    command.downgrade(load(req), req["revision"])
    return {}


def current(req):
    """The revisions env.py's own connection reads (alembic current, never writing)."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    cfg = load(req)
    script = ScriptDirectory.from_config(cfg)
    seen = []

    def read(rev, context):
        seen.append(list(context.get_current_heads()))
        return []

    with EnvironmentContext(cfg, script, fn=read, dont_mutate=True):
        script.run_env()
    if not seen:
        raise RuntimeError("env.py did not call context.run_migrations()")
    return {"heads": [h for heads in seen for h in heads]}


def sql(req):
    """The offline (--sql) SQL of an upgrade range."""
    from alembic import command

    buf = io.StringIO()
    command.upgrade(load(req, output_buffer=buf), req["revision"], sql=True)
    return {"sql": buf.getvalue()}


ACTIONS = {
    "info": info,
    "upgrade": upgrade,
    "downgrade": downgrade,
    "sql": sql,
    "current": current,
}


def main():
    req = json.loads(os.environ["READYCTL_SHIM_REQUEST"])
    if req.get("cwd_path"):
        sys.path.insert(0, req["cwd_path"])
    try:
        out = ACTIONS[req["action"]](req)
    except BaseException as e:  # report every failure as data
        msg = str(e).strip().splitlines()
        out = {"error": type(e).__name__ + ": " + (msg[0] if msg else "")}
    sys.stdout.write("\nREADYCTL-SHIM " + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
'''

_SHIM_NS: dict[str, Any] = {}
ALEMBIC_LOCK = threading.Lock()  # alembic's `context`/`op` proxies are process-global


def _shim() -> dict[str, Any]:
    """The shim's functions, compiled once for in-process use."""
    if not _SHIM_NS:
        ns: dict[str, Any] = {"__name__": "readyctl_alembic_shim"}
        exec(compile(ALEMBIC_SHIM, "<readyctl-alembic-shim>", "exec"), ns)
        _SHIM_NS.update(ns)
    return _SHIM_NS


def with_session_options(url: str, options: dict[str, str]) -> str:
    """Add `-c name=value` session settings to a URL's libpq `options` parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    extra = " ".join(f"-c {k}={v}" for k, v in options.items())
    merged = []
    found = False
    for k, v in query:
        if k == "options":
            v = f"{v} {extra}".strip()
            found = True
        merged.append((k, v))
    if not found:
        merged.append(("options", extra))
    return urlunsplit(parts._replace(query=urlencode(merged)))


def run_process(
    cmd: Sequence[str] | str,
    *,
    env: dict[str, str],
    cwd: str | None,
    timeout_s: float,
    shell: bool = False,
) -> tuple[int, str, str]:
    """Run a command in its own process group; kill the group on timeout (StepFailed).

    The group is registered with readyctl._proc: Ctrl-C/SIGTERM to readyctl kills it too.
    """
    try:
        proc = _proc.run(
            cmd,
            env=env,
            cwd=cwd,
            shell=shell,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise StepFailed(f"did not finish within {timeout_s:g} s", timed_out=True) from None
    except _proc.ProcessesStopped as e:
        raise StepFailed(str(e)) from None
    return proc.returncode, proc.stdout, proc.stderr


def _last_error_line(text: str) -> str:
    """The most telling line of a tool's output."""
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    for x in reversed(lines):
        low = x.lower()
        if "error" in low or "exception" in low or "fatal" in low:
            return clip(x, 300)
    return clip(lines[-1] if lines else "no output", 300)


def _in_thread(fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run `fn` in a daemon thread; StepFailed(timed_out) if it is not done in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True, name="readyctl-migration-step")
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise StepFailed(f"did not finish within {timeout_s:g} s", timed_out=True)
    if "error" in box:
        raise box["error"]
    return box.get("value")


_URL_LIKE = re.compile(r"^\s*postgres(?:ql)?(?:\+\w+)?://", re.IGNORECASE)
# libpq's connection variables: a tool must not find the target through them
PG_CONNECTION_VARS = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
)
DEFAULT_URL_VARS = ("DATABASE_URL",)
# what a sealed migration subprocess keeps of readyctl's own environment
SEALED_NAMES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV")
SEALED_PREFIXES = ("LC_", "NODE_")
CONNECTION_PARTS = ("host", "port", "user", "password", "dbname")


def connection_parts(url: str) -> dict[str, str]:
    """host, port, user, password and dbname of a URL (port 5432, password "" by default)."""
    parts = scratch.url_parts(url)
    out = {k: parts[k] for k in CONNECTION_PARTS if k in parts}
    out.setdefault("port", "5432")
    out.setdefault("password", "")
    return out


def _point_at_scratch(
    env: dict[str, str],
    url: str,
    url_env: Sequence[str],
    connection_env: dict[str, str] | None,
    options: dict[str, str] | None,
) -> dict[str, str]:
    """Drop PG* variables, point every PostgreSQL URL and the named variables at `url`."""
    target = scratch.libpq_url(url)
    env = {k: v for k, v in env.items() if k not in PG_CONNECTION_VARS}
    for k, v in list(env.items()):
        if _URL_LIKE.match(v or ""):
            env[k] = target
    for var in (*DEFAULT_URL_VARS, *url_env):
        env[var] = target
    if connection_env:
        parts = connection_parts(url)
        for part, var in connection_env.items():
            if part not in CONNECTION_PARTS:
                raise RehearsalError(
                    f"connection_env: {part!r} is not one of {', '.join(CONNECTION_PARTS)}"
                )
            if part in parts:
                env[var] = parts[part]
    if options:
        env["PGOPTIONS"] = " ".join(f"-c {k}={v}" for k, v in options.items())
    return env


def isolated_environ(
    base: dict[str, str],
    url: str,
    url_env: Sequence[str] = (),
    options: dict[str, str] | None = None,
    connection_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """`base` made safe for a migration tool: every database URL in it points at `url`.

    libpq's PG* connection variables are dropped and every variable whose value is a
    PostgreSQL URL (the target's DATABASE_URL, say) is replaced, so a tool that ignores the
    URL it is given still cannot reach the target through them. Used for alembic in this
    process, which shares readyctl's environment; subprocesses get `sealed_environ`.
    """
    return _point_at_scratch(dict(base), url, url_env, connection_env, options)


def sealed_environ(
    url: str,
    *,
    url_env: Sequence[str] = (),
    connection_env: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a migration subprocess: allow-listed, pointing at `url`.

    From `base` (default: readyctl's os.environ) only PATH, HOME, the locale (LANG, LANGUAGE,
    LC_*), TZ, TMPDIR, VIRTUAL_ENV and NODE_* are kept; then `extra` (the settings' `env:`
    map; PYTHONPATH only from there), then the scratch connection: `url` in DATABASE_URL and
    `url_env`, its parts in the variables `connection_env` names ({host: POSTGRES_SERVER,
    ...}). PG* variables are dropped and any PostgreSQL URL left is pointed at `url`.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in SEALED_NAMES or k.startswith(SEALED_PREFIXES)}
    env.update(extra or {})
    return _point_at_scratch(env, url, url_env, connection_env, options)


@contextlib.contextmanager
def _os_environ(env: dict[str, str]) -> Iterator[None]:
    """Set os.environ to `env` for the block (changed keys only), then restore it."""
    saved = {k: os.environ.get(k) for k in set(os.environ) | set(env)}
    changed = [k for k, v in saved.items() if env.get(k) != v]
    for k in changed:
        if k in env:
            os.environ[k] = env[k]
        else:
            os.environ.pop(k, None)
    try:
        yield
    finally:
        for k in changed:
            if saved[k] is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = saved[k]  # type: ignore[assignment]


def _error_words(e: BaseException) -> str:
    """`Type: first line` of an exception, without SQLAlchemy's background links."""
    orig = getattr(e, "orig", None)
    if orig is not None:
        e = orig
    lines = [x for x in str(e).strip().splitlines() if x.strip()]
    first = lines[0] if lines else ""
    return clip(f"{type(e).__name__}: {first}", 300)


_NO_MODULE = re.compile(r"No module named '?([\w.]+)'?")
SEALED_HINT = (
    "migration commands run with a sealed environment: pass what they need, PYTHONPATH say, "
    "in checks.migrations.rehearsal.env"
)


@dataclasses.dataclass(frozen=True)
class ToolReading:
    """The migration tool's own `current`: whether it ran, everything it printed, and the
    line that says it (the revisions, or the error)."""

    ok: bool
    text: str
    said: str


# -- migrators ------------------------------------------------------------------------------------
class Migrator:
    """One migration tool, driven one step at a time against a database URL."""

    name = "migrations"
    version_table: str | None = None

    def current(self, url: str) -> tuple[str, ...]:
        """The revisions the database is at."""
        raise NotImplementedError

    def plan(self, current: Sequence[str]) -> dict[str, Any] | None:
        """Heads, pending (apply order) and applied (newest first), or None when unknown."""
        return None

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Apply `revision` (or the next pending one); StepFailed on failure."""
        raise NotImplementedError

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Revert `revision` (or the newest applied one); StepFailed on failure."""
        raise NotImplementedError

    def offline_sql(self, revision: str, url: str | None, timeout_s: float) -> str | None:
        """The SQL `revision`'s upgrade would run (None when the tool cannot tell)."""
        return None

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """What the tool itself reads as the database's revision (through its own connection)."""
        raise NotImplementedError

    def tracking_tables(self) -> tuple[str, ...]:
        """The tool's own bookkeeping tables (left out of fingerprints, copied whole)."""
        return (self.version_table,) if self.version_table else TRACKING_TABLES


def read_version_table(url: str, table: str, *, timeout_s: float = 10) -> tuple[str, ...]:
    """Read a migration version table read-only (empty when the table does not exist)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        scratch.libpq_url(url),
        connect_timeout=max(1, int(timeout_s)),
        options=f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}",
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if not exists or exists[0] is None:
            return ()
        rows = conn.execute(
            sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(*table.split(".")))
        ).fetchall()
    return tuple(sorted(str(r[0]) for r in rows))


@dataclasses.dataclass
class AlembicMigrator(Migrator):
    """Alembic, in this process or through `python` (the project's interpreter or command)."""

    ini: str
    script_location: str | None = None
    version_locations: list[str] | None = None
    python: list[str] | None = None
    url_env: list[str] = dataclasses.field(default_factory=list)
    set_url: bool = True
    cwd: str | None = None
    version_table: str | None = "alembic_version"
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    connection_env: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "alembic"

    def __post_init__(self) -> None:
        """Validate the ini path."""
        if not Path(self.ini).is_file():
            raise RehearsalError(f"alembic config {self.ini} does not exist")
        self._plan_cache: dict[tuple[str, ...], dict[str, Any]] = {}

    @property
    def in_process(self) -> bool:
        """Whether alembic runs inside readyctl (no `python`, url_env or connection_env)."""
        return self.python is None and not self.url_env and not self.connection_env

    def _request(self, action: str, url: str | None, **extra: Any) -> dict[str, Any]:
        req: dict[str, Any] = {
            "action": action,
            "ini": str(Path(self.ini).resolve()),
            "script_location": self.script_location,
            "version_locations": self.version_locations,
            "set_url": self.set_url,
            "url": _sqlalchemy_url(url, self.session_options) if url else None,
        }
        req.update(extra)
        return req

    def _call(self, action: str, url: str | None, timeout_s: float, **extra: Any) -> dict[str, Any]:
        try:
            return self._call_once(action, url, timeout_s, **extra)
        except StepFailed as e:
            hinted = self.import_hint(str(e))
            if hinted == str(e):
                raise
            raise StepFailed(hinted, timed_out=e.timed_out) from None

    def import_hint(self, message: str) -> str:
        """`message`, plus which setting to use when alembic could not import a module."""
        found = _NO_MODULE.search(message)
        if not found:
            return message
        module = found.group(1)
        if self.python is None:
            return (
                f"{message}: alembic ran in readyctl's own interpreter, which cannot import "
                f"{module!r} (env.py or a revision imports the app); run it in the project's "
                "interpreter: set checks.migrations.rehearsal.python: path/to/.venv/bin/python"
            )
        where = " ".join(self.python)
        if module.split(".")[0] == "alembic":
            return (
                f"{message}: {where} has no alembic; set checks.migrations.rehearsal.python: "
                "to the project's interpreter (path/to/.venv/bin/python), where alembic is "
                "installed"
            )
        return (
            f"{message}: {where} cannot import {module!r}; set "
            "checks.migrations.rehearsal.python: to the interpreter of the project's virtualenv "
            "(path/to/.venv/bin/python), or, when the module is the app's own code, its "
            "directory in checks.migrations.rehearsal.cwd or env: {PYTHONPATH: ...} (migrations "
            "run with a sealed environment)"
        )

    def _call_once(
        self, action: str, url: str | None, timeout_s: float, **extra: Any
    ) -> dict[str, Any]:
        req = self._request(action, url, **extra)
        if self.in_process:
            fn = _shim()[action]
            if not ALEMBIC_LOCK.acquire(timeout=timeout_s):
                raise StepFailed("another alembic run in this process is still busy")
            env = isolated_environ(
                dict(os.environ), url or LINT_PLACEHOLDER_URL, self.url_env, None
            )
            try:
                with _os_environ(env):  # env.py reading DATABASE_URL finds the scratch copy
                    return dict(_in_thread(lambda: fn(req), timeout_s) or {})
            except StepFailed:
                raise
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise StepFailed(_error_words(e)) from e
            finally:
                # a timed-out thread may still hold alembic's proxies; it only touches scratch
                ALEMBIC_LOCK.release()
        return self._call_subprocess(req, url, timeout_s)

    def _call_subprocess(
        self, req: dict[str, Any], url: str | None, timeout_s: float
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="readyctl-shim-") as tmp:
            shim = Path(tmp) / "readyctl_alembic_shim.py"
            shim.write_text(ALEMBIC_SHIM, encoding="utf-8")
            env = sealed_environ(
                url or LINT_PLACEHOLDER_URL,
                url_env=self.url_env,
                connection_env=self.connection_env,
                extra=self.extra_env,
                options=self.session_options if url else None,
            )
            cwd = self.cwd or str(Path(self.ini).resolve().parent)
            req["cwd_path"] = cwd
            env["READYCTL_SHIM_REQUEST"] = json.dumps(req)
            cmd = [*(self.python or [sys.executable]), str(shim)]
            try:
                code, out, err = run_process(cmd, env=env, cwd=cwd, timeout_s=timeout_s)
            except FileNotFoundError as e:
                raise RehearsalError(f"cannot run {cmd[0]}: {e.strerror}") from None
        marker = [x for x in out.splitlines() if x.startswith("READYCTL-SHIM ")]
        if not marker:
            raise StepFailed(f"alembic exited with {code}: {_last_error_line(err or out)}")
        data = json.loads(marker[-1][len("READYCTL-SHIM ") :])
        if "error" in data:
            raise StepFailed(str(data["error"]))
        return dict(data)

    # -- the Migrator interface -----------------------------------------------------------------
    def current(self, url: str) -> tuple[str, ...]:
        """Read alembic_version (read-only)."""
        return read_version_table(url, self.version_table or "alembic_version")

    def plan(self, current: Sequence[str]) -> dict[str, Any]:
        """Heads, pending and applied revisions from the script directory."""
        key = tuple(sorted(current))
        if key not in self._plan_cache:
            try:
                self._plan_cache[key] = self._call("info", None, 120, current=list(key))
            except StepFailed as e:
                raise RehearsalError(f"alembic could not read the migrations: {e}") from None
        return self._plan_cache[key]

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """alembic current through env.py's own connection (never writing)."""
        try:
            heads = [str(h) for h in self._call("current", url, timeout_s).get("heads", [])]
        except StepFailed as e:
            return ToolReading(False, str(e), str(e))
        said = " ".join(heads) or "no revision"
        return ToolReading(True, said, said)

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """alembic upgrade <revision>."""
        self._call("upgrade", url, timeout_s, revision=revision or "heads")

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """alembic downgrade <revision>@-1 (one step on that revision's branch)."""
        self._call("downgrade", url, timeout_s, revision=f"{revision}@-1" if revision else "-1")

    def offline_sql(self, revision: str, url: str | None, timeout_s: float) -> str | None:
        """alembic upgrade <parent>:<revision> --sql."""
        parents = self.plan(()).get("parents", {}).get(revision, [])
        if len(parents) > 1:
            return None  # a merge point runs no SQL of its own
        rng = f"{parents[0]}:{revision}" if parents else revision
        # offline mode never connects: the target's URL is not handed to the project's code
        return str(self._call("sql", LINT_PLACEHOLDER_URL, timeout_s, revision=rng).get("sql", ""))


def _sqlalchemy_url(url: str, options: dict[str, str]) -> str:
    """The scratch URL for SQLAlchemy (psycopg v3 driver) with session options."""
    out = scratch.libpq_url(url)
    if options:
        out = with_session_options(out, options)
    return out.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclasses.dataclass
class CommandMigrator(Migrator):
    """Any stack through shell commands: `up` (one step), `down` (one step), `current`."""

    up: str
    down: str
    current_cmd: str
    cwd: str | None = None
    url_env: list[str] = dataclasses.field(default_factory=lambda: ["DATABASE_URL"])
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    connection_env: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "command"
    version_table: str | None = None

    def _env(self, url: str) -> dict[str, str]:
        return sealed_environ(
            url,
            url_env=self.url_env,
            connection_env=self.connection_env,
            extra=self.extra_env,
            options=self.session_options,
        )

    def _exec(self, cmd: str, url: str, timeout_s: float) -> tuple[int, str, str]:
        try:
            return run_process(
                cmd, env=self._env(url), cwd=self.cwd, timeout_s=timeout_s, shell=True
            )
        except FileNotFoundError as e:
            raise RehearsalError(f"cannot run {shlex.split(cmd)[0]}: {e.strerror}") from None

    def _run(self, cmd: str, url: str, timeout_s: float) -> str:
        code, out, err = self._exec(cmd, url, timeout_s)
        if code != 0:
            line = _last_error_line(err or out)
            hint = f" ({SEALED_HINT})" if _NO_MODULE.search(line) else ""
            raise StepFailed(f"`{cmd}` exited with {code}: {line}{hint}")
        return out

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """Run `current`; its whole output, whether or not it succeeded."""
        try:
            code, out, err = self._exec(self.current_cmd, url, timeout_s)
        except StepFailed as e:
            return ToolReading(False, str(e), str(e))
        if code != 0:
            return ToolReading(
                False, f"{out}\n{err}", f"exited with {code}: {_last_error_line(err or out)}"
            )
        lines = [x.strip() for x in out.splitlines() if x.strip()]
        return ToolReading(True, f"{out}\n{err}", clip(lines[-1], 200) if lines else "nothing")

    def current(self, url: str) -> tuple[str, ...]:
        """The last non-empty line printed by `current`."""
        try:
            out = self._run(self.current_cmd, url, 120)
        except StepFailed as e:
            raise RehearsalError(f"the current-version command failed: {e}") from None
        lines = [x.strip() for x in out.splitlines() if x.strip()]
        return (lines[-1],) if lines else ()

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run `up`."""
        self._run(self.up, url, timeout_s)

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run `down`."""
        self._run(self.down, url, timeout_s)


# -- results --------------------------------------------------------------------------------------
@dataclasses.dataclass
class RevisionOutcome:
    """What happened to one revision: pass, fail, error (infrastructure) or not_rehearsed."""

    revision: str
    status: str
    summary: str
    up_s: float | None = None
    down_s: float | None = None
    up_again_s: float | None = None
    difference: list[str] = dataclasses.field(default_factory=list)
    step: str | None = None

    def durations(self) -> dict[str, float]:
        """The measured step durations in seconds."""
        out = {}
        for k in ("up_s", "down_s", "up_again_s"):
            v = getattr(self, k)
            if v is not None:
                out[k] = round(v, 3)
        return out


@dataclasses.dataclass
class RehearsalOutcome:
    """Every revision's outcome and how the rehearsal went."""

    mode: str  # "pending" | "last" | "none"
    revisions: list[RevisionOutcome]
    source_revision: tuple[str, ...]
    tool: str
    notes: list[str] = dataclasses.field(default_factory=list)
    dump_s: float = 0.0
    restore_s: float = 0.0
    total_s: float = 0.0
    scratch_database: str | None = None
    sampled_rows: int = 0

    @property
    def first_failure(self) -> RevisionOutcome | None:
        """The first revision that failed."""
        return next((r for r in self.revisions if r.status == "fail"), None)

    @property
    def rehearsed(self) -> int:
        """How many revisions completed a round trip (pass)."""
        return sum(1 for r in self.revisions if r.status == "pass")


@dataclasses.dataclass
class RehearsalSettings:
    """Timeouts, sampling and how far back to go when nothing is pending."""

    last: int = 3
    sample_rows: int = 100
    lock_timeout_s: float = 5.0
    statement_timeout_s: float = 60.0
    step_timeout_s: float = 120.0
    dump_timeout_s: float = 300.0
    exclude_tables: tuple[str, ...] = ()  # more tables to leave out of the comparison

    def session_options(self) -> dict[str, str]:
        """The session settings every migration step runs with."""
        return {
            "lock_timeout": f"{int(self.lock_timeout_s * 1000)}",
            "statement_timeout": f"{int(self.statement_timeout_s * 1000)}",
        }


# -- copying a sample of rows (read-only on the source) -----------------------------------------
def copy_sample(
    source_url: str,
    dest_url: str,
    *,
    limit: int,
    full_tables: Sequence[str],
    timeout_s: float = 60,
) -> int:
    """Copy up to `limit` rows per table (all rows of `full_tables`) from source to dest.

    The source is read in one REPEATABLE READ, READ ONLY transaction with a statement timeout;
    the destination takes the rows with triggers and foreign keys off (replica role).
    """
    import psycopg
    from psycopg import sql

    ms = int(timeout_s * 1000)
    copied = 0
    with (
        psycopg.connect(
            scratch.libpq_url(source_url),
            connect_timeout=10,
            options=f"-c default_transaction_read_only=on -c statement_timeout={ms}",
        ) as src,
        psycopg.connect(scratch.libpq_url(dest_url), connect_timeout=10) as dst,
    ):
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        tables = src.execute(
            "SELECT n.nspname, c.relname, array_agg(quote_ident(a.attname) ORDER BY a.attnum) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attgenerated = '' "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') "
            "AND n.nspname NOT LIKE 'pg_temp%%' AND NOT c.relispartition "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        dst.execute("SET session_replication_role = replica")
        for schema, table, cols in tables:
            full = table in full_tables or f"{schema}.{table}" in full_tables
            if not full and limit <= 0:
                continue
            rel = sql.Identifier(schema, table)
            collist = sql.SQL(", ").join(sql.SQL(c) for c in cols)
            lim = sql.SQL("") if full else sql.SQL(" LIMIT {}").format(sql.Literal(limit))
            out_q = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT").format(collist, rel, lim)
            in_q = sql.SQL("COPY {} ({}) FROM STDIN").format(rel, collist)
            with src.cursor().copy(out_q) as out, dst.cursor().copy(in_q) as inp:
                for chunk in out:
                    inp.write(chunk)
            copied += int(dst.execute(sql.SQL("SELECT count(*) FROM {}").format(rel)).fetchone()[0])  # type: ignore[index]
        dst.commit()
        src.rollback()
    return copied


# -- the rehearsal --------------------------------------------------------------------------------
class _Rehearsal:
    """One rehearsal's state: the scratch database, the migrator, timings, outcomes."""

    def __init__(
        self,
        migrator: Migrator,
        db: scratch.ScratchDatabase,
        server: scratch.ScratchServer,
        settings: RehearsalSettings,
        check_deadline: Callable[[], None],
    ) -> None:
        self.m = migrator
        self.db = db
        self.server = server
        self.s = settings
        self.check_deadline = check_deadline
        self.outcomes: list[RevisionOutcome] = []
        self.exclude = (*migrator.tracking_tables(), *settings.exclude_tables)
        self._conn: Any = None
        self._state: fp.Fingerprint | None = None  # fingerprint of the current state

    # -- helpers ------------------------------------------------------------------------------
    def fingerprint(self) -> fp.Fingerprint:
        """Fingerprint the scratch database (all of its rows); cached until the next step."""
        import psycopg

        if self._state is not None:
            return self._state
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    # autocommit: an idle fingerprint session holds no lock a migration waits on
                    self._conn = psycopg.connect(self.db.url, connect_timeout=10, autocommit=True)
                self._state = fp.take(self._conn, sample_rows=None, exclude_tables=self.exclude)
                return self._state
            except psycopg.OperationalError as e:
                self.close()
                if attempt == 2:
                    raise RehearsalError(
                        f"the scratch database went away: {_error_words(e)}", "connectivity"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the fingerprinting session."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def scratch_alive(self) -> bool:
        """Whether the scratch database still answers."""
        import psycopg

        try:
            with psycopg.connect(self.db.url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def step(self, kind: str, revision: str | None) -> float:
        """Run one upgrade or downgrade; return seconds (StepFailed / RehearsalError)."""
        self.check_deadline()
        self._state = None
        t0 = time.perf_counter()
        try:
            if kind == "up":
                self.m.upgrade(self.db.url, revision, self.s.step_timeout_s)
            else:
                self.m.downgrade(self.db.url, revision, self.s.step_timeout_s)
        except StepFailed as e:
            if not self.scratch_alive():
                raise RehearsalError(
                    f"the scratch database went away during the {kind}grade of "
                    f"{revision or 'the next revision'} ({e})",
                    "connectivity",
                ) from None
            raise
        took = time.perf_counter() - t0
        if revision and self.m.version_table:
            self._verify_moved(kind, revision)
        return took

    def _verify_moved(self, kind: str, revision: str) -> None:
        """The step must have moved the scratch copy's revision; else it ran somewhere else."""
        from psycopg import sql

        table = self.m.version_table or "alembic_version"
        self.fingerprint()  # opens the session
        try:
            rows = self._conn.execute(
                sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(*table.split(".")))
            ).fetchall()
        except Exception:
            rows = []
        present = revision in {str(r[0]) for r in rows}
        if present != (kind == "up"):
            raise RehearsalError(
                f"the {kind}grade of {revision} did not move the scratch copy's {table}: the "
                "migration ran against another database (env.py must use the URL readyctl "
                "passes: sqlalchemy.url, or the variables named in url_env); rehearsal stopped",
                "config",
            )

    def fail(self, rev: str, summary: str, step: str, **kw: Any) -> RevisionOutcome:
        out = RevisionOutcome(rev, "fail", summary, step=step, **kw)
        self.outcomes.append(out)
        return out

    # -- one revision, from the state below it -----------------------------------------------
    def round_trip(
        self,
        rev: str | None,
        above: fp.Fingerprint | None = None,
        walked_below: fp.Fingerprint | None = None,
        down_s: float | None = None,
    ) -> tuple[bool, str | None]:
        """up (== above, when known), down (== before), up (== first up). (ok, revision id).

        `above`/`walked_below`: the states around this revision when it was walked down
        (nothing-pending mode), used to judge the first upgrade and to explain a failure.
        """
        label = rev or "the next revision"
        below = self.fingerprint()
        try:
            up_s = self.step("up", rev)
        except StepFailed as e:
            if above is not None:
                walked = walked_below or below
                left = [c for c in fp.diff(above, walked, rows=False) if c.change == "changed"]
                extra = (
                    f"; its downgrade changed instead of removing: {fp.in_words(left)}"
                    if left
                    else ""
                )
                self.fail(
                    label,
                    f"{label}: upgrading again after its downgrade failed ({e}){extra}",
                    "up",
                    difference=[c.words for c in left],
                    down_s=down_s,
                )
            else:
                self.fail(label, f"{label}: the upgrade failed ({e})", "up")
            return False, rev
        if rev is None:
            rev = ",".join(self.m.current(self.db.url)) or "unknown"
            label = rev
        first_up = self.fingerprint()
        if above is not None:
            changes = fp.diff(above, first_up, rows=False)
            if changes:
                self.fail(
                    label,
                    f"{label}: upgrading again after its downgrade does not reproduce the "
                    f"schema: {fp.in_words(changes)}",
                    "up",
                    difference=[c.words for c in changes],
                    up_s=up_s,
                    down_s=down_s,
                )
                return False, rev
        try:
            d_s = self.step("down", rev)
        except StepFailed as e:
            self.fail(label, f"{label}: the downgrade failed ({e})", "down", up_s=up_s)
            return False, rev
        after_down = self.fingerprint()
        changes = fp.diff(below, after_down)
        if changes:
            self.fail(
                label,
                f"{label}: the downgrade does not restore the schema: {fp.in_words(changes)}",
                "down",
                difference=[c.words for c in changes],
                up_s=up_s,
                down_s=d_s,
            )
            return False, rev
        try:
            up2_s = self.step("up", rev)
        except StepFailed as e:
            self.fail(
                label,
                f"{label}: the upgrade after a clean downgrade failed ({e})",
                "up again",
                up_s=up_s,
                down_s=d_s,
            )
            return False, rev
        changes = fp.diff(first_up, self.fingerprint(), rows=False)
        if changes:
            self.fail(
                label,
                f"{label}: the second upgrade differs from the first: {fp.in_words(changes)}",
                "up again",
                difference=[c.words for c in changes],
                up_s=up_s,
                down_s=d_s,
                up_again_s=up2_s,
            )
            return False, rev
        self.outcomes.append(
            RevisionOutcome(
                label,
                "pass",
                f"{label} round-trips: up {up_s:.2f} s, down {d_s:.2f} s, up again "
                f"{up2_s:.2f} s; the downgrade restored the schema exactly",
                up_s=up_s,
                down_s=d_s,
                up_again_s=up2_s,
            )
        )
        return True, rev

    # -- modes --------------------------------------------------------------------------------
    def pending(self, revisions: Sequence[str]) -> None:
        """Rehearse each pending revision in order; stop at the first failure."""
        for i, rev in enumerate(revisions):
            ok, _ = self.round_trip(rev)
            if not ok:
                self.block(revisions[i + 1 :], rev)
                return

    def discover_pending(self) -> int:
        """Command adapter: apply `up` while the current version moves (bounded)."""
        n = 0
        while n < MAX_DISCOVERED:
            before_rev = self.m.current(self.db.url)
            below = self.fingerprint()
            try:
                self.step("up", None)
            except StepFailed as e:
                self.fail("next revision", f"the next pending migration failed ({e})", "up")
                return n
            after_rev = self.m.current(self.db.url)
            if after_rev == before_rev:
                return n  # nothing was pending
            rev = ",".join(after_rev)
            # undo, then rehearse properly from the state below
            try:
                self.step("down", rev)
            except StepFailed as e:
                self.fail(rev, f"{rev}: the downgrade failed ({e})", "down")
                return n + 1
            changes = fp.diff(below, self.fingerprint())
            if changes:
                self.fail(
                    rev,
                    f"{rev}: the downgrade does not restore the schema: {fp.in_words(changes)}",
                    "down",
                    difference=[c.words for c in changes],
                )
                return n + 1
            ok, _ = self.round_trip(rev)
            n += 1
            if not ok:
                return n
        return n

    def last(self, revisions: Sequence[str] | None, n: int) -> None:
        """Nothing pending: walk down the newest `n` revisions, then rehearse each going up."""
        walked: list[tuple[str, fp.Fingerprint, fp.Fingerprint, float]] = []
        down_failed: RevisionOutcome | None = None
        below_it: list[str] = []
        for i in range(n):
            if revisions is not None:
                if i >= len(revisions):
                    break
                rev = revisions[i]
            else:
                cur = self.m.current(self.db.url)
                if not cur:
                    break
                rev = ",".join(cur)
            above = self.fingerprint()
            try:
                d_s = self.step("down", rev if revisions is not None else None)
            except StepFailed as e:
                down_failed = self.fail(rev, f"{rev}: the downgrade failed ({e})", "down")
                below_it = list(revisions[i + 1 : n]) if revisions is not None else []
                break
            if revisions is None and self.m.current(self.db.url) == tuple(rev.split(",")):
                break  # the adapter could not go further down
            walked.append((rev, above, self.fingerprint(), d_s))
        for j in range(len(walked) - 1, -1, -1):
            rev, above, below, d_s = walked[j]
            ok, _ = self.round_trip(rev, above, below, down_s=d_s)
            if not ok:
                self.block([w[0] for w in reversed(walked[:j])], rev)
                return
        if down_failed is not None:
            # report the failing revision after the newer ones, then the ones it hides
            self.outcomes.remove(down_failed)
            self.outcomes.append(down_failed)
            self.block(below_it, down_failed.revision)

    def block(self, revisions: Sequence[str], because: str) -> None:
        """Mark later revisions as not rehearsed because `because` failed."""
        for r in revisions:
            self.outcomes.append(
                RevisionOutcome(
                    r, "not_rehearsed", f"{r} was not rehearsed: revision {because} failed first"
                )
            )


# -- the sentinel: the tool must read the scratch copy, not the target ---------------------------
SENTINEL_PREFIX = "readyctl_sentinel_"
NOT_SCRATCH_HINT = (
    "it probably builds its URL from variables readyctl does not set: map them with "
    "connection_env (checks.migrations.rehearsal.connection_env: {host: POSTGRES_SERVER, "
    "port: POSTGRES_PORT, user: POSTGRES_USER, password: POSTGRES_PASSWORD, dbname: "
    "POSTGRES_DB}, any subset) or url_env"
)


def _regclass(conn: Any, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return bool(row and row[0] is not None)


def _qualified(conn: Any, table: str) -> str | None:
    """`schema.table` of a table found through the search path (None when it does not exist)."""
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()
    return f"{row[0]}.{row[1]}" if row else None


def _ident(table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*table.split("."))


def prove_scratch(migrator: Migrator, url: str, timeout_s: float = 120) -> str | None:
    """Prove the tool reads the scratch copy at `url` before any step runs; restore after.

    Alembic (a known version table, or an `alembic_version` a command tool keeps): the
    table's rows are replaced by one sentinel revision (the table is created when missing)
    and the tool's `current` must name it (alembic's CLI names it in its error too). Other
    tools: their tracking tables that hold rows are swapped for empty copies and `current`
    must say something else than before. The scratch copy's state is restored either way.
    Raises RehearsalError (before any step) when the tool read another database or could
    not start; returns a note when no sentinel could be placed (a command tool on a
    database without migration state).
    """
    import psycopg
    from psycopg import sql

    alembic_table = migrator.version_table if isinstance(migrator, AlembicMigrator) else None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise RehearsalError(
            f"could not connect to the scratch copy: {_error_words(e)}", "connectivity"
        ) from None
    with conn:
        if alembic_table is None and _regclass(conn, "alembic_version"):
            alembic_table = "alembic_version"
        if alembic_table is not None:
            reading, holds = _alembic_sentinel(conn, migrator, alembic_table, url, timeout_s)
            if reading is None:
                return None
        else:
            tables = [
                q
                for q in (_qualified(conn, t) for t in migrator.tracking_tables())
                if q is not None
                and conn.execute(
                    sql.SQL("SELECT EXISTS (SELECT FROM {})").format(_ident(q))
                ).fetchone()[0]  # type: ignore[index]
            ]
            if not tables:
                return (
                    "no sentinel: the database has no migration state to hide from the tool, "
                    "so only the target's fingerprint afterwards shows where it ran"
                )
            before = migrator.tool_current(url, timeout_s)
            during = _hidden_tables(conn, migrator, tables, url, timeout_s)
            if (during.ok, during.said) != (before.ok, before.said):
                return None
            reading = during
            names = ", ".join(t.split(".", 1)[1] for t in tables)
            holds = f"no rows in {names} (it said the same with them)"
    if not reading.ok and _NO_MODULE.search(reading.said):
        hint = "" if isinstance(migrator, AlembicMigrator) else f" ({SEALED_HINT})"
        raise RehearsalError(
            f"the migration tool could not start: {reading.said}{hint}; nothing was migrated",
            "config",
        )
    saw = f"said {clip(reading.said, 300)}" if reading.ok else f"failed ({clip(reading.said, 300)})"
    elsewhere = (
        f" (or env.py keeps its revision in another table than {alembic_table}: set "
        "checks.migrations.rehearsal.version_table)"
        if isinstance(migrator, AlembicMigrator)
        else ""
    )
    raise RehearsalError(
        f"the migration tool did not read the scratch database: its `current` {saw} where "
        f"scratch holds {holds}; {NOT_SCRATCH_HINT}"
        f"{elsewhere}; nothing was migrated",
        "config",
    )


def _alembic_sentinel(
    conn: Any, migrator: Migrator, table: str, url: str, timeout_s: float
) -> tuple[ToolReading | None, str]:
    """Put a sentinel revision in `table`, read `current`, restore. (None when it saw it.)"""
    from psycopg import sql

    sentinel = SENTINEL_PREFIX + secrets.token_hex(6)  # 30 characters: fits varchar(32)
    ident = _ident(table)
    existed = _regclass(conn, table)
    saved: list[str] = []
    try:
        with conn.transaction():
            if existed:
                saved = [
                    str(r[0])
                    for r in conn.execute(
                        sql.SQL("SELECT version_num FROM {}").format(ident)
                    ).fetchall()
                ]
                conn.execute(sql.SQL("DELETE FROM {}").format(ident))
            else:
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (version_num varchar(32) NOT NULL PRIMARY KEY)"
                    ).format(ident)
                )
            conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(ident), (sentinel,))
    except Exception as e:
        raise RehearsalError(
            f"could not place the sentinel revision in the scratch copy's {table}: "
            f"{_error_words(e)}"
        ) from None
    try:
        reading = migrator.tool_current(url, timeout_s)
    finally:
        try:
            with conn.transaction():
                if existed:
                    conn.execute(sql.SQL("DELETE FROM {}").format(ident))
                    for v in saved:
                        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(ident), (v,))
                else:
                    conn.execute(sql.SQL("DROP TABLE {}").format(ident))
        except Exception as e:
            raise RehearsalError(
                f"could not restore the scratch copy's {table} after the sentinel: "
                f"{_error_words(e)}"
            ) from None
    if reading.ok and sentinel in reading.text.split():
        return None, ""
    if not reading.ok and sentinel in reading.text:  # alembic's CLI: "Can't locate revision"
        return None, ""
    return reading, f"revision {sentinel} in {table}"


def _hidden_tables(
    conn: Any, migrator: Migrator, tables: Sequence[str], url: str, timeout_s: float
) -> ToolReading:
    """Read `current` while each of `tables` is swapped for an empty copy; swap them back."""
    from psycopg import sql

    hidden: list[tuple[str, str]] = []
    try:
        with conn.transaction():
            for t in tables:
                parts = t.split(".")
                aside = f"readyctl_hidden_{secrets.token_hex(4)}"
                conn.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(_ident(t), sql.Identifier(aside))
                )
                full_aside = ".".join([*parts[:-1], aside])
                conn.execute(
                    sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                        _ident(t), _ident(full_aside)
                    )
                )
                hidden.append((t, aside))
    except Exception as e:
        raise RehearsalError(
            f"could not hide the scratch copy's migration state: {_error_words(e)}"
        ) from None
    try:
        return migrator.tool_current(url, timeout_s)
    finally:
        try:
            with conn.transaction():
                for t, aside in hidden:
                    parts = t.split(".")
                    conn.execute(sql.SQL("DROP TABLE {}").format(_ident(t)))
                    conn.execute(
                        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                            _ident(".".join([*parts[:-1], aside])), sql.Identifier(parts[-1])
                        )
                    )
        except Exception as e:
            raise RehearsalError(
                f"could not restore the scratch copy's migration state: {_error_words(e)}"
            ) from None


def _target_state(url: str, migrator: Migrator) -> tuple[str, tuple[str, ...]]:
    """The target's schema digest and revision, read in a read-only session."""
    import psycopg

    try:
        with psycopg.connect(
            scratch.libpq_url(url),
            connect_timeout=10,
            autocommit=True,
            options="-c default_transaction_read_only=on -c statement_timeout=60000",
        ) as conn:
            digest = fp.take(conn, sample_rows=0).schema_digest()
        rev = read_version_table(url, migrator.version_table) if migrator.version_table else ()
    except psycopg.Error as e:
        raise RehearsalError(
            f"could not read the target database: {_error_words(e)}", "connectivity"
        ) from None
    return digest, rev


def rehearse(
    migrator: Migrator,
    source_url: str,
    server: scratch.ScratchServer,
    settings: RehearsalSettings | None = None,
    *,
    check_deadline: Callable[[], None] = lambda: None,
    workdir: str | None = None,
) -> RehearsalOutcome:
    """Rehearse the pending revisions (or the last N) of `migrator` on a scratch copy.

    A server that is not running yet is started while the schema is dumped. Raises
    RehearsalError when the rehearsal cannot run (dump refused, scratch server gone,
    migrations unreadable). The scratch database is dropped before returning or raising.
    """
    s = settings or RehearsalSettings()
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="readyctl-rehearsal-", dir=workdir)
    db: scratch.ScratchDatabase | None = None
    run: _Rehearsal | None = None
    starter: threading.Thread | None = None
    start_errors: list[BaseException] = []
    if not server.running:  # start the scratch server while the schema is dumped

        def start() -> None:
            try:
                server.start()
            except BaseException as e:  # handed to the caller below
                start_errors.append(e)

        starter = threading.Thread(target=start, daemon=True, name="readyctl-scratch-start")
        starter.start()
    try:
        check_deadline()
        try:
            dump = scratch.dump_database(
                source_url,
                Path(tmp) / "schema.dump",
                schema_only=True,
                timeout_s=s.dump_timeout_s,
            )
        except scratch.ScratchError as e:
            kind = "connectivity" if "connect" in str(e).lower() else "config"
            raise RehearsalError(f"could not dump the target's schema: {e}", kind) from None
        except Exception as e:  # psycopg errors while reading the server version
            raise RehearsalError(
                f"could not reach the target database: {_error_words(e)}", "connectivity"
            ) from None
        check_deadline()
        target_before = _target_state(source_url, migrator)  # the tripwire, read-only
        if isinstance(migrator, AlembicMigrator):  # read-only, while the server starts
            with contextlib.suppress(Exception):  # decided again on the scratch copy below
                migrator.plan(migrator.current(source_url))
        if starter is not None:
            starter.join()
            starter = None
            if start_errors:
                raise start_errors[0]
        try:
            db = server.restore(dump.path, label="rehearsal", schema_only=True)
        except scratch.ScratchError as e:
            raise RehearsalError(f"could not restore the schema into scratch: {e}") from None
        restore_s = server.last_restore_seconds
        tracking = list(migrator.tracking_tables())
        try:
            sampled = copy_sample(
                source_url, db.url, limit=s.sample_rows, full_tables=tracking, timeout_s=60
            )
        except Exception as e:
            raise RehearsalError(
                f"could not copy a sample of rows read-only: {_error_words(e)}", "config"
            ) from None
        check_deadline()
        no_sentinel = prove_scratch(migrator, db.url, s.step_timeout_s)  # before any step
        source_rev = migrator.current(db.url)
        run = _Rehearsal(migrator, db, server, s, check_deadline)
        plan = migrator.plan(source_rev)  # cached when the source said the same
        notes: list[str] = [no_sentinel] if no_sentinel else []
        mode = "none"
        if plan is not None:
            if plan.get("unknown"):
                raise RehearsalError(
                    f"the database is at revision {', '.join(plan['unknown'])}, which the "
                    "migration scripts do not contain; point alembic_config at this "
                    "project's migrations"
                )
            if plan["pending"]:
                mode = "pending"
                run.pending(plan["pending"])
            elif s.last > 0:
                mode = "last"
                run.last(plan["applied"][: s.last], s.last)
        else:
            n = run.discover_pending()
            if n or run.outcomes:
                mode = "pending"
            elif s.last > 0:
                mode = "last"
                run.last(None, s.last)
        if _target_state(source_url, migrator) != target_before:
            raise RehearsalError(
                "the target database's schema or revision changed while it was rehearsed: "
                "a migration may have run against it (does env.py or the migration command "
                "read a URL other than the one readyctl passes?), or someone deployed meanwhile",
                "config",
            )
        if dump.pg_dump_major != dump.server_major:
            notes.append(
                f"schema dumped with pg_dump {dump.pg_dump_major} from a PostgreSQL "
                f"{dump.server_major} server; rehearsed on PostgreSQL {server.major_version}"
            )
        return RehearsalOutcome(
            mode=mode,
            revisions=run.outcomes,
            source_revision=source_rev,
            tool=migrator.name,
            notes=notes,
            dump_s=dump.seconds,
            restore_s=restore_s,
            total_s=time.perf_counter() - t0,
            scratch_database=db.name,
            sampled_rows=sampled,
        )
    finally:
        if starter is not None:
            starter.join()
        if run is not None:
            run.close()
        if db is not None:
            with contextlib.suppress(Exception):
                server.drop_database(db.name)
        scratch.cleanup_dir(tmp)


@contextlib.contextmanager
def scratch_for_rehearsal(
    register_cleanup: Callable[[Callable[[], None]], None] | None = None,
) -> Iterator[scratch.ScratchServer]:
    """A scratch server closed on exit (and by the run's cleanups); rehearse() starts it."""
    server = scratch.ScratchServer()
    if register_cleanup is not None:
        register_cleanup(server.close)
    try:
        yield server
    finally:
        server.close()
