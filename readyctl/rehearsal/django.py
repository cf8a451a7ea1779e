"""Django, driven one migration at a time through a small shim in the project's interpreter.

The shim is written to a temporary directory and run with the project's interpreter (the
`python` setting; default readyctl's own) in a sealed environment, with
DJANGO_SETTINGS_MODULE set. It calls `django.setup()` and uses Django's own
`MigrationLoader` / `MigrationExecutor`, and prints one `READYCTL-SHIM {json}` line.

Choices, documented here once:
- Revisions are `app_label.migration_name` (e.g. `notes.0002_add_index`), ordered by Django's
  dependency graph across apps (django.* apps first, so the project's own migrations are the
  newest when nothing is pending).
- The shim points the settings' databases at the URL readyctl passes, before Django connects:
  `DATABASES["default"]` (and every other PostgreSQL alias) gets NAME, HOST, PORT, USER and
  PASSWORD from it, whatever the settings module hard-codes, and the session options
  (lock_timeout, statement_timeout) in OPTIONS["options"]. A settings module that ignores
  DATABASE_URL therefore still migrates the scratch copy; the sentinel proof and a check of
  the scratch copy's django_migrations after every step still guard the rest (a database
  router, a custom backend).
- A step runs `MigrationExecutor.migrate` with the plan `manage.py migrate APP NAME` would
  follow: up `app.X` = migrate to X (its dependencies are applied: steps go in graph order),
  down `app.X` = migrate to X's parent within the app, or `zero` for the app's first
  migration. The pre/post_migrate signals of the `migrate` command are not sent: the rows
  they write (content types, permissions) are not the migration's doing.
- `current(url)` is every applied migration (`app.name`, sorted) read from django_migrations
  in a read-only session: lossless (Django's history need not be linear) and it changes with
  every step. `plan()` reads the files only (no database); a recorded migration of an
  installed app that the files do not have is `unknown` (rows of apps not installed are
  ignored; stale rows of deleted squashed migrations count: `manage.py migrate --prune`).
- A migration with an operation Django cannot reverse (RunPython without reverse_code,
  RunSQL without reverse_sql) is irreversible (`reversible()` is False): the rehearsal proves
  its upgrade and reports it; `down_hint` says how to give it a reverse.
- `offline_sql` renders a migration like `sqlmigrate` but without a database connection
  (Django's sqlmigrate opens one): the shim connects to nothing, the settings see a
  placeholder URL; when an operation needs a live connection the revision is skipped.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from readyctl.postgres import scratch
from readyctl.rehearsal.environ import (
    NO_MODULE,
    SEALED_HINT,
    connection_parts,
    run_shim,
    sealed_environ,
)
from readyctl.rehearsal.errors import LINT_PLACEHOLDER_URL, RehearsalError, StepFailed
from readyctl.rehearsal.migrator import Migrator, ShimMigrator

TABLE = "django_migrations"
_SETTINGS_IN_MANAGE = re.compile(
    r"""DJANGO_SETTINGS_MODULE['"]\s*(?:,|\]\s*=)\s*['"]([\w.]+)['"]"""
)

# -- the django shim: runs in the project's interpreter -------------------------------------------
DJANGO_SHIM = r'''
"""readyctl's django shim: one action per call, JSON in, JSON out (needs only Django)."""
import json
import os
import sys

POSTGRES_ENGINES = ("postgresql", "postgis", "psycopg")
CONNECTION_KEYS = ("host", "port", "user", "password", "dbname")


def point_at(req):
    """Point the settings' PostgreSQL databases at the request's database (before any use)."""
    from django.conf import settings

    parts = dict(req.get("db") or {})
    if not parts:
        return
    databases = settings.DATABASES
    databases.setdefault("default", {})
    extra = {k: v for k, v in parts.items() if k not in CONNECTION_KEYS}
    session = req.get("session_options") or {}
    for alias, db in databases.items():
        engine = str(db.get("ENGINE") or "")
        if alias != "default" and not any(e in engine for e in POSTGRES_ENGINES):
            continue  # e.g. a SQLite cache database: not the target's server
        if not any(e in engine for e in POSTGRES_ENGINES):
            db["ENGINE"] = "django.db.backends.postgresql"
        db["NAME"] = parts.get("dbname", "")
        db["HOST"] = parts.get("host", "")
        db["PORT"] = parts.get("port", "")
        db["USER"] = parts.get("user", "")
        db["PASSWORD"] = parts.get("password", "")
        options = dict(db.get("OPTIONS") or {})
        options.pop("service", None)  # a pg_service.conf entry could name another server
        options.pop("passfile", None)
        for k, v in extra.items():
            if k == "options":
                options["options"] = (str(options.get("options", "")) + " " + v).strip()
            else:
                options[k] = v
        if session:
            words = " ".join("-c %s=%s" % (k, v) for k, v in session.items())
            options["options"] = (str(options.get("options", "")) + " " + words).strip()
        db["OPTIONS"] = options


def key_of(revision):
    app, _, name = revision.partition(".")
    return (app, name)


def name_of(key):
    return "%s.%s" % key


def loader_for(applied):
    """Django's loader from the migration files, as if `applied` were recorded (no database)."""
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    if not applied:
        return MigrationLoader(None, ignore_no_migrations=True)

    class Recorded:
        """Stands in for a connection: the loader only hands it to MigrationRecorder."""

        alias = "default"

    keys = {key_of(a): True for a in applied}
    original = MigrationRecorder.applied_migrations
    MigrationRecorder.applied_migrations = lambda self: dict(keys)
    try:
        return MigrationLoader(Recorded(), ignore_no_migrations=True)
    finally:
        MigrationRecorder.applied_migrations = original


def graph_order(graph):
    """Every node in dependency order, django.* apps first."""
    from django.apps import apps

    def builtin(label):
        try:
            return apps.get_app_config(label).name.startswith("django.")
        except LookupError:
            return False

    order, seen = [], set()
    for leaf in sorted(graph.leaf_nodes(), key=lambda k: (not builtin(k[0]), k)):
        for node in graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                order.append(node)
    return order


def info(req):
    """Heads, and for the given applied migrations: pending (apply order) and applied."""
    current = list(req.get("current") or [])
    loader = loader_for(current)
    graph = loader.graph
    order = graph_order(graph)
    applied = {k for k in loader.applied_migrations if k in graph.nodes}
    replaced = {tuple(r) for m in loader.replacements.values() for r in m.replaces}
    unknown = [
        c
        for c in current
        if key_of(c)[0] in loader.migrated_apps
        and key_of(c) not in graph.nodes
        and key_of(c) not in replaced
    ]
    conflicts = loader.detect_conflicts()
    if conflicts:
        heads = sorted("%s.%s" % (app, n) for app, names in conflicts.items() for n in names)
    else:
        leaves = set(graph.leaf_nodes())
        heads = [", ".join(name_of(k) for k in order if k in leaves)] if leaves else []
    parents = {}
    for key in order:
        node = graph.node_map[key]
        parents[name_of(key)] = sorted(name_of(p.key) for p in node.parents)
    irreversible = {}
    for key in order:
        ops = [op.describe() for op in graph.nodes[key].operations if not op.reversible]
        if ops:
            irreversible[name_of(key)] = ops
    return {
        "heads": heads,
        "pending": [name_of(k) for k in order if k not in applied],
        "applied": [name_of(k) for k in reversed(order) if k in applied],
        "unknown": unknown,
        "parents": parents,
        "irreversible": irreversible,
        "paths": {
            name_of(k): getattr(sys.modules.get(type(graph.nodes[k]).__module__), "__file__", "")
            for k in order
        },
    }


def executor_for(req):
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from django.core.management.color import no_style
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections["default"]
    connection.prepare_database()
    recorder = MigrationRecorder(connection)
    if recorder.has_table():
        # rows copied into a scratch copy keep their ids but not the sequence's position:
        # move it past them, or recording this step collides with a copied row
        with connection.cursor() as cursor:
            for stmt in connection.ops.sequence_reset_sql(no_style(), [recorder.Migration]):
                cursor.execute(stmt)
    executor = MigrationExecutor(connection)
    executor.loader.check_consistent_history(connection)
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join("%s: %s" % (a, ", ".join(n)) for a, n in sorted(conflicts.items()))
        raise RuntimeError("conflicting migrations (run makemigrations --merge): " + names)
    return executor


def run_plan(executor, target):
    plan = executor.migration_plan([target])
    executor.migrate([target], plan=plan)
    return [name_of((m.app_label, m.name)) for m, _ in plan]


def upgrade(req):
    """migrate APP NAME: apply the named migration (its dependencies are applied)."""
    executor = executor_for(req)
    key = key_of(req["revision"])
    if key not in executor.loader.graph.nodes:
        raise LookupError("no migration %s in the project's migration files" % req["revision"])
    return {"ran": run_plan(executor, key)}


def downgrade(req):
    """migrate APP PARENT (or zero): unapply the named migration."""
    executor = executor_for(req)
    key = key_of(req["revision"])
    graph = executor.loader.graph
    if key not in graph.nodes:
        raise LookupError("no migration %s in the project's migration files" % req["revision"])
    within = sorted(p.key for p in graph.node_map[key].parents if p.key[0] == key[0])
    target = within[0] if within else (key[0], None)
    to = name_of(target) if target[1] else key[0] + ".zero"
    return {"ran": run_plan(executor, target), "to": to}


def current(req):
    """The migrations Django's own connection reads as applied (never writing)."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections["default"])
    return {"applied": sorted(name_of(k) for k in recorder.applied_migrations())}


def sql(req):
    """The SQL of one migration, rendered like sqlmigrate but without a database connection."""
    from django.db import OperationalError, connections

    connection = connections["default"]
    if req.get("server_version"):
        connection.__dict__["pg_version"] = int(req["server_version"])
    loader = loader_for([])
    key = key_of(req["revision"])
    if key not in loader.graph.nodes:
        raise LookupError("no migration %s in the project's migration files" % req["revision"])
    migration = loader.graph.nodes[key]
    try:
        state = loader.project_state(key, at_end=False)
        with connection.schema_editor(collect_sql=True, atomic=False) as editor:
            migration.apply(state, editor, collect_sql=True)
    except OperationalError as e:
        first = (str(e).strip().splitlines() or [""])[0]
        return {"sql": None, "why": "rendering needs a database connection (%s)" % first}
    statements = list(editor.collected_sql)
    if migration.atomic and connection.features.can_rollback_ddl:
        statements = ["BEGIN;"] + statements + ["COMMIT;"]
    return {"sql": "\n".join(statements) + "\n"}


ACTIONS = {
    "info": info,
    "upgrade": upgrade,
    "downgrade": downgrade,
    "current": current,
    "sql": sql,
}


def main():
    req = json.loads(os.environ["READYCTL_SHIM_REQUEST"])
    for path in reversed(req.get("import_paths") or []):
        sys.path.insert(0, path)
    try:
        import django

        point_at(req)
        django.setup()
        out = ACTIONS[req["action"]](req)
    except BaseException as e:  # report every failure as data
        msg = str(e).strip().splitlines()
        out = {"error": type(e).__name__ + ": " + (msg[0] if msg else "")}
    sys.stdout.write("\n" + "READYCTL-SHIM " + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
'''


# -- finding the project ---------------------------------------------------------------------------
def _manage_py(ctx: Any, settings: Any) -> Path:
    """manage.py: the configured one, else ./manage.py next to the config."""
    return Path(ctx.resolve(getattr(settings, "manage_py", None) or "manage.py"))


def detect(ctx: Any, settings: Any) -> bool:
    """Whether the project uses Django: `manage_py` is set, or a Django manage.py is at the
    config's directory."""
    if getattr(settings, "manage_py", None):
        return True
    manage = Path(ctx.base_dir) / "manage.py"
    try:
        return manage.is_file() and "django" in manage.read_text(errors="replace").lower()
    except OSError:
        return False


def settings_module_of(manage: Path) -> str | None:
    """The DJANGO_SETTINGS_MODULE manage.py sets (`os.environ.setdefault(...)`), if any."""
    try:
        found = _SETTINGS_IN_MANAGE.search(manage.read_text(errors="replace"))
    except OSError:
        return None
    return found.group(1) if found else None


def _command(value: str | Sequence[str] | None, ctx: Any) -> list[str] | None:
    """The interpreter command as a list; a relative executable path is config-relative."""
    if not value:
        return None
    parts = shlex.split(value) if isinstance(value, str) else list(value)
    if parts and "/" in parts[0] and not Path(parts[0]).is_absolute():
        parts[0] = str(ctx.resolve(parts[0]))
    return parts


def from_project(
    ctx: Any,
    settings: Any,
    *,
    session_options: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    connection_env: dict[str, str] | None = None,
) -> Migrator | str:
    """The project's Django migrator (RehearsalError when manage.py or the settings module
    cannot be found)."""
    manage = _manage_py(ctx, settings)
    if not manage.is_file():
        raise RehearsalError(
            f"Django's manage.py {manage} does not exist: set checks.migrations.rehearsal.manage_py"
        )
    env = dict(extra_env or {})
    module = (
        getattr(settings, "settings_module", None)
        or env.get("DJANGO_SETTINGS_MODULE")
        or settings_module_of(manage)
    )
    if not module:
        raise RehearsalError(
            f"cannot tell the Django settings module from {manage}: set "
            "checks.migrations.rehearsal.settings_module (DJANGO_SETTINGS_MODULE)"
        )
    cwd = getattr(settings, "cwd", None)
    return DjangoMigrator(
        manage_py=str(manage.resolve()),
        settings_module=module,
        python=_command(getattr(settings, "python", None), ctx),
        cwd=str(ctx.resolve(cwd)) if cwd else None,
        url_env=list(getattr(settings, "url_env", None) or []),
        session_options=dict(session_options or {}),
        extra_env=env,
        connection_env=dict(connection_env or {}),
    )


# -- the migrator ----------------------------------------------------------------------------------
@dataclasses.dataclass
class DjangoMigrator(ShimMigrator):
    """Django migrations through a shim in the project's interpreter (`python`)."""

    manage_py: str
    settings_module: str
    python: list[str] | None = None
    cwd: str | None = None
    url_env: list[str] = dataclasses.field(default_factory=list)
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    connection_env: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "django"
    tool_label = "Django"
    # read by current()/applied() (app, name), not through a version_num column
    version_table: str | None = TABLE

    def __post_init__(self) -> None:
        """Caches: plans per applied set, the SQL renderings' skip reasons, the server version."""
        self._plan_cache: dict[tuple[str, ...], dict[str, Any]] = {}
        self._no_sql: dict[str, str] = {}
        self._server_version: int | None = None

    @property
    def project_dir(self) -> str:
        """The directory the shim runs in (`cwd`, default manage.py's); the project is
        imported from manage.py's directory and this one."""
        return str(Path(self.cwd or Path(self.manage_py).parent).resolve())

    # -- running the shim ---------------------------------------------------------------------
    def _call(self, action: str, url: str | None, timeout_s: float, **extra: Any) -> dict[str, Any]:
        """Run one shim action against `url` (None: a placeholder nothing connects to)."""
        db_url = url or LINT_PLACEHOLDER_URL
        parts = scratch.url_parts(db_url)
        parts.update(connection_parts(db_url))
        req: dict[str, Any] = {
            "action": action,
            "import_paths": list(
                dict.fromkeys([str(Path(self.manage_py).resolve().parent), self.project_dir])
            ),
            "db": parts,
            "session_options": self.session_options if url else {},
            **extra,
        }
        env = sealed_environ(
            db_url,
            url_env=self.url_env,
            connection_env=self.connection_env,
            extra=self.extra_env,
            options=self.session_options if url else None,
        )
        env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # leave no __pycache__ in the project
        return run_shim(
            DJANGO_SHIM,
            "readyctl_django_shim.py",
            self.python or [sys.executable],
            request=req,
            env=env,
            cwd=self.project_dir,
            timeout_s=timeout_s,
            tool="django",
            hint=self.import_hint,
        )

    def import_hint(self, message: str) -> str:
        """`message`, plus which setting to use when the shim could not import a module."""
        found = NO_MODULE.search(message)
        if not found:
            if message.startswith(("KeyError: ", "ImproperlyConfigured: ")):
                return (
                    f"{message} (settings module {self.settings_module} needs a variable "
                    f"it did not get: {SEALED_HINT})"
                )
            return message
        module = found.group(1)
        where = " ".join(self.python or [sys.executable])
        if module.split(".")[0] == "django":
            return (
                f"{message}: {where} has no Django; set checks.migrations.rehearsal.python: "
                "to the project's interpreter (path/to/.venv/bin/python)"
            )
        return (
            f"{message}: {where} cannot import {module!r} (settings module "
            f"{self.settings_module}); set checks.migrations.rehearsal.python: to the "
            "project's interpreter, settings_module:, or cwd:/env: {PYTHONPATH: ...} "
            "(migrations run with a sealed environment)"
        )

    # -- reading state (read-only, never the tool) ---------------------------------------------
    def applied(self, url: str) -> set[str] | None:
        """Every migration django_migrations records (`app.name`), read-only."""
        return set(read_django_migrations(url))

    def current(self, url: str) -> tuple[str, ...]:
        """Every applied migration (`app.name`, sorted), read-only from django_migrations."""
        return read_django_migrations(url)

    def tracking_tables(self) -> tuple[str, ...]:
        """Django keeps its state in django_migrations."""
        return (TABLE,)

    def _irreversible(self, revision: str) -> list[str]:
        """The operations of `revision` Django cannot reverse (from any plan read already)."""
        plans = list(self._plan_cache.values()) or [self.plan(())]
        for plan in plans:
            if revision in plan.get("parents", {}):
                return [str(x) for x in plan.get("irreversible", {}).get(revision, [])]
        return []

    def reversible(self, revision: str | None) -> bool:
        """Whether every operation of `revision` can be reversed (RunPython with reverse_code,
        RunSQL with reverse_sql, ...)."""
        return revision is None or not self._irreversible(revision)

    def down_hint(self, revision: str) -> str:
        """How to make `revision` reversible (shown with an irreversible outcome)."""
        ops = "; ".join(self._irreversible(revision)) or "an operation"
        return (
            f"{revision} cannot be reversed ({ops}): give RunPython a reverse_code and RunSQL "
            "a reverse_sql (migrations.RunPython.noop / migrations.RunSQL.noop when nothing "
            "needs undoing)"
        )

    # -- steps ----------------------------------------------------------------------------------
    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """migrate APP NAME for `revision` (or the next pending migration)."""
        rev = revision or self._next_pending(url)
        if rev is None:
            return
        self._call("upgrade", url, timeout_s, revision=rev)
        self._verify(url, rev, present=True, kind="up")

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """migrate APP <parent of NAME within the app> (or zero) for `revision`."""
        rev = revision or self._newest_applied(url)
        if rev is None:
            raise StepFailed("no applied migration to revert")
        self._call("downgrade", url, timeout_s, revision=rev)
        self._verify(url, rev, present=False, kind="down")

    def _next_pending(self, url: str) -> str | None:
        pending = self.plan(self.current(url))["pending"]
        return str(pending[0]) if pending else None

    def _newest_applied(self, url: str) -> str | None:
        applied = self.plan(self.current(url))["applied"]
        return str(applied[0]) if applied else None

    def _verify(self, url: str, revision: str, *, present: bool, kind: str) -> None:
        """The step must have moved the scratch copy's django_migrations, else it ran elsewhere."""
        if (revision in (self.applied(url) or set())) == present:
            return
        raise RehearsalError(
            f"the {kind}grade of {revision} did not move the scratch copy's {TABLE}: the "
            "migration ran against another database (a database router or backend that "
            "ignores DATABASES['default']?); rehearsal stopped",
            "config",
        )

    # -- SQL for migrations.lint ----------------------------------------------------------------
    def offline_sql(self, revision: str, url: str | None, timeout_s: float) -> str | None:
        """The SQL `revision` runs, rendered without a database (like sqlmigrate).

        The project's code never gets the target's URL; readyctl itself reads the target's
        server version (read-only) so version-dependent SQL is rendered for it.
        """
        extra: dict[str, Any] = {"revision": revision}
        version = self._version_of(url) if url else None
        if version:
            extra["server_version"] = version
        out = self._call("sql", None, timeout_s, **extra)
        if out.get("sql") is None:
            self._no_sql[revision] = str(out.get("why") or "Django could not render it")
            return None
        return str(out["sql"])

    def no_sql_reason(self, revision: str) -> str:
        """Why a revision has no offline SQL."""
        why = self._no_sql.get(revision, "Django could not render it without a database")
        return f"{revision}: {why}"

    def _version_of(self, url: str) -> int | None:
        """The target server's version number (read-only; None when it cannot be read)."""
        if self._server_version is None:
            import psycopg

            try:
                with psycopg.connect(
                    scratch.libpq_url(url),
                    connect_timeout=5,
                    autocommit=True,
                    options="-c default_transaction_read_only=on",
                ) as conn:
                    self._server_version = int(conn.info.server_version)
            except psycopg.Error:
                self._server_version = 0
        return self._server_version or None


def read_django_migrations(url: str, *, timeout_s: float = 10) -> tuple[str, ...]:
    """`app.name` of every row in django_migrations, sorted (empty when there is no table)."""
    import psycopg

    with psycopg.connect(
        scratch.libpq_url(url),
        connect_timeout=max(1, int(timeout_s)),
        options=f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}",
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
        if not exists or exists[0] is None:
            return ()
        rows = conn.execute(f"SELECT app, name FROM {TABLE}").fetchall()
    return tuple(sorted(f"{r[0]}.{r[1]}" for r in rows))
