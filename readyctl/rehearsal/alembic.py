"""Alembic, in this process or in the project's interpreter through a small shim."""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path
from typing import Any

from readyctl import _proc
from readyctl.postgres import scratch
from readyctl.rehearsal.environ import (
    NO_MODULE,
    error_words,
    in_thread,
    isolated_environ,
    os_environ,
    run_shim,
    sealed_environ,
    with_session_options,
)
from readyctl.rehearsal.errors import LINT_PLACEHOLDER_URL, RehearsalError, StepFailed
from readyctl.rehearsal.migrator import ShimMigrator, read_version_table

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


@dataclasses.dataclass
class AlembicMigrator(ShimMigrator):
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
    tool_label = "alembic"
    current_key = "heads"
    current_none = "no revision"

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
        found = NO_MODULE.search(message)
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
                _proc.environ_copy(), url or LINT_PLACEHOLDER_URL, self.url_env, None
            )
            try:
                with os_environ(env):  # env.py reading DATABASE_URL finds the scratch copy
                    return dict(in_thread(lambda: fn(req), timeout_s) or {})
            except StepFailed:
                raise
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise StepFailed(error_words(e)) from e
            finally:
                # a timed-out thread may still hold alembic's proxies; it only touches scratch
                ALEMBIC_LOCK.release()
        return self._call_subprocess(req, url, timeout_s)

    def _call_subprocess(
        self, req: dict[str, Any], url: str | None, timeout_s: float
    ) -> dict[str, Any]:
        env = sealed_environ(
            url or LINT_PLACEHOLDER_URL,
            url_env=self.url_env,
            connection_env=self.connection_env,
            extra=self.extra_env,
            options=self.session_options if url else None,
        )
        cwd = self.cwd or str(Path(self.ini).resolve().parent)
        req["cwd_path"] = cwd
        return run_shim(
            ALEMBIC_SHIM,
            "readyctl_alembic_shim.py",
            self.python or [sys.executable],
            request=req,
            env=env,
            cwd=cwd,
            timeout_s=timeout_s,
            tool="alembic",
        )

    # -- the Migrator interface -----------------------------------------------------------------
    def current(self, url: str) -> tuple[str, ...]:
        """Read alembic_version (read-only)."""
        return read_version_table(url, self.version_table or "alembic_version")

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """alembic upgrade <revision>."""
        self._call("upgrade", url, timeout_s, revision=revision or "heads")

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """alembic downgrade <revision>@-1 (one step on that revision's branch)."""
        self._call("downgrade", url, timeout_s, revision=f"{revision}@-1" if revision else "-1")

    def source_file(self, revision: str) -> str | None:
        """The revision's script, from the migrations read by plan()."""
        for plan in self._plan_cache.values():
            path = (plan.get("paths") or {}).get(revision)
            if path:
                return str(path)
        return None

    def no_sql_reason(self, revision: str) -> str:
        """An alembic revision without SQL of its own is a merge point."""
        return f"{revision} is a merge point and runs no SQL of its own"

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
