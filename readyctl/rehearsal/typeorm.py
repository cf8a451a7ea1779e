"""TypeORM, natively: a small Node shim run with the project's `node`, one step at a time.

The shim (written to a temporary directory) loads the project's DataSource the way the
TypeORM CLI does (`CommandUtils.loadDataSource`, with ts-node registered for a .ts file),
resolving `typeorm` from the data source file's own directory, so the project's node_modules
are used. It prints one `READYCTL-SHIM {json}` line.

- `info` never connects: it builds the migration classes from the DataSource's `migrations`
  option (classes or globs) and lists them as TypeORM would run them (sorted by the 13-digit
  timestamp their class names end in), with the migrations table's name and schema.
- `upgrade` connects to the scratch copy (the DataSource's connection options are overridden
  with the scratch connection before `initialize()`; synchronize, dropSchema and migrationsRun
  are turned off) and runs exactly one migration: the DataSource's migration list is narrowed
  to it before `runMigrations({transaction: "each"})`.
- `downgrade` checks that the newest applied migration is the one asked for, then runs
  `undoLastMigration()` (without a transaction when the migration says `transaction = false`).
- `current` connects and reads the applied migrations through TypeORM's own connection
  (`MigrationExecutor.getExecutedMigrations`, which never creates the table).

The migration state is TypeORM's `migrations` table (id, timestamp, name); a revision is a
migration's name (its class name, e.g. `AddUsers1700000000001`). `current()` reads it with a
read-only SQL session and never runs Node.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from readyctl.postgres import scratch
from readyctl.redact import clip
from readyctl.rehearsal.environ import (
    connection_parts,
    run_shim,
    sealed_environ,
    with_session_options,
)
from readyctl.rehearsal.errors import LINT_PLACEHOLDER_URL, RehearsalError, StepFailed
from readyctl.rehearsal.migrator import Migrator, ToolReading, VersionTable

# -- the Node shim --------------------------------------------------------------------------------
TYPEORM_SHIM = r"""
// readyctl's TypeORM shim: one action per run, JSON in (READYCTL_SHIM_REQUEST), one
// `READYCTL-SHIM {json}` line out. Needs only the project's typeorm (and ts-node for .ts).
"use strict";
const path = require("path");
const { createRequire } = require("module");

const req = JSON.parse(process.env.READYCTL_SHIM_REQUEST);
const dsFile = path.resolve(req.data_source);
const projectRequire = createRequire(dsFile);

function typeormModule(name) {
  try {
    return projectRequire(name);
  } catch (e) {
    if (e && e.code === "MODULE_NOT_FOUND" && String(e.message).includes("'typeorm")) {
      throw new Error(
        "Cannot find module 'typeorm' from " + path.dirname(dsFile) +
        ": install the project's dependencies (npm ci) or set checks.migrations.rehearsal.cwd"
      );
    }
    throw e;
  }
}

function registerTypeScript() {
  if (!/\.[cm]?tsx?$/.test(dsFile)) return;
  let where;
  try {
    where = projectRequire.resolve("ts-node/register");
  } catch (e) {
    throw new Error(
      "data source " + dsFile + " is TypeScript but ts-node is not installed in the project: " +
      "npm i -D ts-node typescript, or point data_source at the compiled .js"
    );
  }
  if (!process.env.TS_NODE_TRANSPILE_ONLY) process.env.TS_NODE_TRANSPILE_ONLY = "true";
  projectRequire(where);
}

async function loadDataSource() {
  registerTypeScript();
  const { CommandUtils } = typeormModule("typeorm/commands/CommandUtils");
  return CommandUtils.loadDataSource(dsFile);
}

function migrationName(m) {
  return m.name || m.constructor.name;
}

async function listMigrations(ds) {
  // what TypeORM's MigrationExecutor.getMigrations() sees, without connecting
  const { MigrationExecutor } = typeormModule("typeorm");
  if (!ds.isInitialized) {
    const { ConnectionMetadataBuilder } = typeormModule(
      "typeorm/connection/ConnectionMetadataBuilder"
    );
    const { ObjectUtils } = typeormModule("typeorm/util/ObjectUtils");
    const flat = ObjectUtils.mixedListToArray(ds.options.migrations || []);
    const built = await new ConnectionMetadataBuilder(ds).buildMigrations(flat);
    Object.assign(ds, { migrations: built });
  }
  const executor = new MigrationExecutor(ds);
  return { executor, migrations: executor.getMigrations() };
}

function credentials(c) {
  return {
    url: c.url,
    host: c.host,
    port: c.port ? Number(c.port) : 5432,
    username: c.user,
    password: c.password || "",
    database: c.dbname,
    ssl: false,
  };
}

function pointAtScratch(ds) {
  // the scratch connection wins over whatever the DataSource was built with
  const o = ds.options;
  if (o.type !== "postgres") {
    throw new Error("the data source's type is " + o.type + ", not postgres");
  }
  const creds = credentials(req.conn);
  const extra = Object.assign({}, o.extra || {});
  for (const k of ["connectionString", "host", "port", "user", "password", "database", "ssl"]) {
    delete extra[k];
  }
  const next = Object.assign({}, creds, {
    extra,
    synchronize: false,
    dropSchema: false,
    migrationsRun: false,
  });
  if (o.replication) next.replication = { master: creds, slaves: [] };
  ds.setOptions(next);
}

async function connected() {
  const ds = await loadDataSource();
  pointAtScratch(ds);
  await ds.initialize();
  return ds;
}

async function info() {
  const ds = await loadDataSource();
  const { executor, migrations } = await listMigrations(ds);
  return {
    table: executor.migrationsTableName,
    schema: executor.migrationsSchema || null,
    migrations: migrations.map((m) => ({
      name: m.name,
      timestamp: m.timestamp,
      reversible: typeof m.instance.down === "function",
      transaction: m.instance.transaction === undefined ? null : Boolean(m.instance.transaction),
    })),
  };
}

async function syncIdSequence(ds, executor) {
  // rows copied into a scratch copy leave the id sequence behind them
  const table = executor.migrationsTable;
  const qr = ds.createQueryRunner();
  try {
    if (!(await qr.hasTable(table))) return;
    const quoted = table.split(".").map((p) => '"' + p.replace(/"/g, '""') + '"').join(".");
    await qr.query(
      "SELECT setval(pg_get_serial_sequence($1, 'id'), max(id)) FROM " + quoted +
      " HAVING max(id) IS NOT NULL",
      [quoted]
    );
  } finally {
    await qr.release();
  }
}

async function upgrade() {
  const ds = await connected();
  try {
    const { executor, migrations } = await listMigrations(ds);
    const applied = new Set((await executor.getExecutedMigrations()).map((m) => m.name));
    const pending = migrations.filter((m) => !applied.has(m.name));
    const target = req.revision
      ? migrations.find((m) => m.name === req.revision)
      : pending[0];
    if (!target) {
      if (req.revision) throw new Error("no migration " + req.revision + " in the data source");
      return { ran: null };
    }
    if (applied.has(target.name)) throw new Error(target.name + " is already applied");
    await syncIdSequence(ds, executor);
    const only = ds.migrations.filter((m) => migrationName(m) === target.name);
    Object.assign(ds, { migrations: only });
    const mode = ds.options.migrationsTransactionMode === "none" ? "none" : "each";
    const ran = await ds.runMigrations({ transaction: mode });
    if (ran.length !== 1 || ran[0].name !== target.name) {
      throw new Error("TypeORM ran " + ran.map((m) => m.name).join(", ") + ", not " + target.name);
    }
    return { ran: target.name };
  } finally {
    await ds.destroy();
  }
}

async function downgrade() {
  const ds = await connected();
  try {
    const { executor, migrations } = await listMigrations(ds);
    const executed = await executor.getExecutedMigrations(); // newest first (by id)
    if (!executed.length) throw new Error("no migration is applied: nothing to revert");
    const last = executed[0].name;
    if (req.revision && last !== req.revision) {
      throw new Error(
        "the newest applied migration is " + last + ", not " + req.revision +
        " (TypeORM reverts the newest one only)"
      );
    }
    const found = migrations.find((m) => m.name === last);
    if (!found) throw new Error(last + " is applied but not among the data source's migrations");
    const mode =
      found.instance.transaction === false || ds.options.migrationsTransactionMode === "none"
        ? "none"
        : "each";
    await ds.undoLastMigration({ transaction: mode });
    return { reverted: last };
  } finally {
    await ds.destroy();
  }
}

async function current() {
  const ds = await connected();
  try {
    const { MigrationExecutor } = typeormModule("typeorm");
    const executed = await new MigrationExecutor(ds).getExecutedMigrations();
    return { applied: executed.map((m) => m.name) };
  } finally {
    await ds.destroy();
  }
}

const ACTIONS = { info, upgrade, downgrade, current };

function report(out) {
  process.stdout.write("\nREADYCTL-SHIM " + JSON.stringify(out) + "\n", () => process.exit(0));
}

ACTIONS[req.action]().then(report, (e) => {
  const name = (e && e.name) || "Error";
  const lines = String((e && e.message) || e).trim().split("\n");
  report({ error: name + ": " + lines[0] });
});
"""

NO_NODE_MODULE = re.compile(r"Cannot find module '([^']+)'")
DATA_SOURCE_CANDIDATES = (
    "data-source.ts",
    "data-source.js",
    "src/data-source.ts",
    "src/data-source.js",
    "src/db/data-source.ts",
    "src/db/data-source.js",
    "src/database/data-source.ts",
    "src/database/data-source.js",
    "src/config/data-source.ts",
    "src/config/data-source.js",
    "dist/data-source.js",
    "dist/src/data-source.js",
    "ormconfig.ts",
    "ormconfig.js",
)


@dataclasses.dataclass
class TypeORMMigrator(Migrator):
    """TypeORM through the project's `node`: a shim loads the DataSource file per step."""

    data_source: str
    node: list[str] = dataclasses.field(default_factory=lambda: ["node"])
    cwd: str | None = None
    url_env: list[str] = dataclasses.field(default_factory=list)
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    connection_env: dict[str, str] = dataclasses.field(default_factory=dict)
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = "typeorm"

    def __post_init__(self) -> None:
        """Validate the data source path; nothing runs until the project is first read."""
        if not Path(self.data_source).is_file():
            raise RehearsalError(f"TypeORM data_source {self.data_source} does not exist")
        self._info: dict[str, Any] | None = None
        self._seen: dict[tuple[str, ...], tuple[str, ...]] = {}  # current() -> all applied

    # -- the shim -------------------------------------------------------------------------------
    def _call(self, action: str, url: str | None, timeout_s: float, **extra: Any) -> dict[str, Any]:
        """Run one shim action; StepFailed with the tool's error line when it fails."""
        target = url or LINT_PLACEHOLDER_URL  # `info` never connects
        libpq = scratch.libpq_url(target)
        if url and self.session_options:
            libpq = with_session_options(libpq, self.session_options)
        req: dict[str, Any] = {
            "action": action,
            "data_source": str(Path(self.data_source).resolve()),
            "conn": {**connection_parts(target), "url": libpq},
            **extra,
        }
        env = sealed_environ(
            target,
            url_env=self.url_env,
            connection_env=self.connection_env,
            extra=self.extra_env,
            options=self.session_options if url else None,
        )
        return run_shim(
            TYPEORM_SHIM,
            "readyctl_typeorm_shim.cjs",
            self.node,
            request=req,
            env=env,
            cwd=self.cwd or str(Path(self.data_source).resolve().parent),
            timeout_s=timeout_s,
            tool="node",
            hint=self.hint,
            missing=" (set checks.migrations.rehearsal.node to the project's Node.js)",
        )

    def hint(self, message: str) -> str:
        """`message`, plus what to do when Node could not load one of the project's modules."""
        found = NO_NODE_MODULE.search(message)
        if not found or "npm ci" in message:
            return message
        return (
            f"{message}: node could not load {found.group(1)!r} for "
            f"{Path(self.data_source).name}; install the project's dependencies (npm ci) or set "
            "checks.migrations.rehearsal.cwd/node (migrations run with a sealed environment: "
            "pass NODE_PATH and the like in checks.migrations.rehearsal.env)"
        )

    def info(self) -> dict[str, Any]:
        """The project's migrations (apply order) and the migrations table, read once."""
        if self._info is None:
            try:
                self._info = self._call("info", None, 120)
            except StepFailed as e:
                raise RehearsalError(f"TypeORM could not read the migrations: {e}") from None
        return self._info

    # -- the Migrator interface -----------------------------------------------------------------
    @property
    def version_table(self) -> str | None:  # type: ignore[override]
        """The migrations table ("schema.table" when the DataSource sets a schema)."""
        data = self.info()
        table = str(data.get("table") or "migrations")
        schema = data.get("schema")
        return VersionTable(f"{schema}.{table}" if schema else table, "name")

    def tracking_tables(self) -> tuple[str, ...]:
        """TypeORM's migrations table."""
        return (str(self.version_table),)

    def _read(self, url: str, timeout_s: float = 10) -> tuple[str, ...]:
        """Every applied migration's name, newest first (by id), read-only."""
        import psycopg
        from psycopg import sql

        try:
            table = str(self.version_table)
        except RehearsalError:  # the project cannot be read: plan() says why
            table = "migrations"
        with psycopg.connect(
            scratch.libpq_url(url),
            connect_timeout=max(1, int(timeout_s)),
            options="-c default_transaction_read_only=on "
            f"-c statement_timeout={int(timeout_s * 1000)}",
            autocommit=True,
        ) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if not exists or exists[0] is None:
                return ()
            rows = conn.execute(
                sql.SQL("SELECT name FROM {} ORDER BY id DESC").format(
                    sql.Identifier(*table.split("."))
                )
            ).fetchall()
        return tuple(str(r[0]) for r in rows)

    def current(self, url: str) -> tuple[str, ...]:
        """The newest applied migration (by id), read-only; never runs Node."""
        names = self._read(url)
        key = names[:1]
        self._seen[key] = names
        return key

    def applied(self, url: str) -> set[str] | None:
        """Every migration recorded in the migrations table (read-only)."""
        return set(self._read(url))

    def plan(self, current: Sequence[str]) -> dict[str, Any]:
        """Pending (TypeORM's order: by timestamp), applied (newest first) and unknown names.

        `current` is what current() returned: the applied set read with it is used; for any
        other value the migrations up to the named one (by timestamp) count as applied.
        Recorded names the files lack are `unknown` only when the newest one is among them.
        """
        files = [str(m["name"]) for m in self.info().get("migrations", [])]
        key = tuple(current)
        recorded = self._seen.get(key)
        if recorded is None:
            recorded = (
                tuple(reversed(files[: files.index(key[0]) + 1]))
                if key and key[0] in files
                else key
            )
        done = set(recorded)
        return {
            "heads": files[-1:],
            "pending": [f for f in files if f not in done],
            "applied": [r for r in recorded if r in files],
            # TypeORM runs fine with old, deleted migrations still recorded; only a newest
            # migration the files lack means the code is older than the database
            "unknown": [r for r in recorded if r not in files]
            if recorded and recorded[0] not in files
            else [],
        }

    def reversible(self, revision: str | None) -> bool:
        """Whether the migration class has a `down` method."""
        for m in self.info().get("migrations", []):
            if m.get("name") == revision:
                return bool(m.get("reversible", True))
        return True

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run exactly one migration (`revision`, or the next pending one) on `url`."""
        self._call("upgrade", url, timeout_s, revision=revision)

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Revert the newest applied migration (which must be `revision` when given)."""
        self._call("downgrade", url, timeout_s, revision=revision)

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """The applied migrations TypeORM reads through the DataSource's own connection."""
        try:
            names = [str(n) for n in self._call("current", url, timeout_s).get("applied", [])]
        except StepFailed as e:
            return ToolReading(False, str(e), str(e))
        said = " ".join(names) or "no migration applied"
        return ToolReading(True, said, clip(said, 300))

    def offline_sql(self, revision: str, url: str | None, timeout_s: float) -> str | None:
        """TypeORM migrations are code: no SQL without running them."""
        return None

    def no_sql_reason(self, revision: str) -> str:
        """Why lint cannot read a TypeORM migration's SQL."""
        return (
            f"{revision} is a TypeORM migration (code calling queryRunner), which cannot be "
            "rendered as SQL without running it"
        )


# -- finding the project --------------------------------------------------------------------------
def _package_json(path: Path) -> dict[str, Any]:
    """package.json's content ({} when missing or unreadable)."""
    try:
        data = json.loads((path / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _uses_typeorm(path: Path) -> bool:
    """Whether package.json at `path` lists typeorm as a dependency."""
    pkg = _package_json(path)
    return any(
        isinstance(pkg.get(k), dict) and "typeorm" in pkg[k]
        for k in ("dependencies", "devDependencies", "peerDependencies")
    )


def _project_dir(ctx: Any, settings: Any) -> Path:
    """The project's directory: `cwd` when set, else the config's base directory."""
    return Path(ctx.resolve(settings.cwd)) if settings.cwd else Path(ctx.base_dir)


def detect(ctx: Any, settings: Any) -> bool:
    """Whether the project uses TypeORM: `data_source` is set, or package.json lists typeorm."""
    if getattr(settings, "data_source", None):
        return True
    return _uses_typeorm(_project_dir(ctx, settings))


def _data_source_from_scripts(root: Path) -> str | None:
    """The `-d`/`--dataSource` file of a typeorm script in package.json, if any."""
    scripts = _package_json(root).get("scripts")
    if not isinstance(scripts, dict):
        return None
    for cmd in scripts.values():
        if not isinstance(cmd, str) or "typeorm" not in cmd:
            continue
        try:
            words = shlex.split(cmd)
        except ValueError:
            continue
        for i, w in enumerate(words[:-1]):
            if w in ("-d", "--dataSource", "--data-source") and (root / words[i + 1]).is_file():
                return str(root / words[i + 1])
    return None


def _node_command(value: Any, ctx: Any) -> list[str]:
    """The node command (a string or a list; a relative path is config-relative)."""
    if not value:
        return ["node"]
    parts = shlex.split(value) if isinstance(value, str) else [str(x) for x in value]
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
    """The project's TypeORM migrator, or a skip reason when no data source can be found.

    Raises RehearsalError when `data_source` (or `cwd`) names something that does not exist.
    """
    root = _project_dir(ctx, settings)
    if settings.cwd and not root.is_dir():
        raise RehearsalError(f"cwd {root} does not exist")
    if settings.data_source:
        path = Path(ctx.resolve(settings.data_source))
        if not path.is_file():
            raise RehearsalError(f"TypeORM data_source {path} does not exist")
        found: str | None = str(path)
    else:
        found = _data_source_from_scripts(root) or next(
            (str(root / c) for c in DATA_SOURCE_CANDIDATES if (root / c).is_file()), None
        )
    if found is None:
        return (
            f"TypeORM project at {root} but no data source file found: set "
            "checks.migrations.rehearsal.data_source to the file exporting the DataSource "
            "(e.g. src/data-source.ts, or its compiled .js)"
        )
    return TypeORMMigrator(
        data_source=found,
        node=_node_command(settings.node, ctx),
        cwd=str(root),
        url_env=list(settings.url_env or []),
        extra_env=dict(extra_env or {}),
        connection_env=dict(connection_env or {}),
        session_options=dict(session_options or {}),
    )
