"""Prisma Migrate, rehearsed from its files: readyctl does what `prisma migrate deploy` does.

The Prisma CLI needs its schema-engine binary, downloaded from Prisma's servers (often
unreachable from CI), so readyctl reads the project's files and plays the engine's part:

- Migrations are the directories of the migrations directory (default
  `prisma/migrations`), each holding a `migration.sql`, applied in lexical order of their
  names (Prisma's timestamp prefix). `migration_lock.toml` names the provider; only
  `postgresql` is rehearsed.
- Each applied migration is recorded in `_prisma_migrations`, created as Prisma creates it
  when missing. As the schema engine does, a row is inserted (checksum = SHA-256 hex of the
  file's bytes, a uuid4 id) before the script runs; on success `applied_steps_count` becomes
  1 and `finished_at` is set; on failure the error goes to `logs` and the row stays failed
  (`prisma migrate deploy` then refuses to run: P3009). Applied = `finished_at` set and
  `rolled_back_at` empty.
- The script runs as Prisma runs it: the whole file as ONE simple-protocol query string (no
  parameters) on an autocommit session. PostgreSQL runs a multi-statement string in one
  implicit transaction, so a failing migration leaves no partial schema, and a
  `CREATE INDEX CONCURRENTLY` works only alone in its file (beside other statements it
  fails with "cannot run inside a transaction block", exactly as on deploy). Explicit
  BEGIN/COMMIT in the file are honoured. The session's lock_timeout and statement_timeout
  are SET first.
- Down migrations follow Prisma's documented pattern: `<name>/down.sql` beside
  `migration.sql` (written with `prisma migrate diff --script`). A downgrade runs it the
  same way and deletes the migration's row. A migration without `down.sql` is irreversible
  (`reversible()` is False): the rehearsal proves its upgrade and reports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import tomllib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from readyctl.postgres import scratch
from readyctl.rehearsal.environ import error_words, in_thread
from readyctl.rehearsal.errors import RehearsalError, StepFailed
from readyctl.rehearsal.migrator import Migrator, ToolReading

TABLE = "_prisma_migrations"
DEFAULT_DIR = "prisma/migrations"
SCHEMA_FILES = ("prisma/schema.prisma", "schema.prisma")  # where the Prisma CLI looks
# _prisma_migrations exactly as Prisma's schema engine creates it on PostgreSQL
CREATE_TABLE = """CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)"""
APPLIED_WHERE = "finished_at IS NOT NULL AND rolled_back_at IS NULL"
FAILED_WHERE = "finished_at IS NULL AND rolled_back_at IS NULL"
POSTGRES_PROVIDERS = ("postgresql", "postgres")
_PROVIDER = re.compile(r"""^\s*provider\s*=\s*"([^"]+)"\s*$""", re.MULTILINE)
_DATASOURCE = re.compile(r"datasource\s+\w+\s*\{(.*?)\}", re.DOTALL)
DOWN_HINT = (
    "write one with Prisma's down-migration pattern: before applying the migration run `npx "
    "prisma migrate diff "
    "--from-schema-datamodel prisma/schema.prisma --to-schema-datasource prisma/schema.prisma "
    "--script > down.sql` into its directory"
)


def checksum(path: Path) -> str:
    """SHA-256 hex of a migration file's bytes (what Prisma stores in `checksum`)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def url_schema(url: str | None) -> str | None:
    """The `schema` query parameter of a Prisma URL (the schema Prisma migrates), if any."""
    if not url:
        return None
    for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if k == "schema" and v:
            return v
    return None


@dataclasses.dataclass
class PrismaMigrator(Migrator):
    """Prisma Migrate from its files: migration.sql up, down.sql down, `_prisma_migrations`."""

    migrations_dir: str
    session_options: dict[str, str] = dataclasses.field(default_factory=dict)
    schema: str | None = None  # the target URL's ?schema= (scratch URLs do not carry it)
    name: str = "prisma"
    version_table: str | None = TABLE
    lists_revisions = True

    def __post_init__(self) -> None:
        """Validate the directory and the provider its migration_lock.toml names."""
        root = Path(self.migrations_dir)
        if not root.is_dir():
            raise RehearsalError(f"prisma migrations directory {root} does not exist")
        lock = root / "migration_lock.toml"
        if lock.is_file():
            try:
                provider = str(tomllib.loads(lock.read_text(encoding="utf-8")).get("provider", ""))
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
                raise RehearsalError(f"cannot read {lock}: {e}") from None
            check_provider(provider, str(lock))

    # -- the files ----------------------------------------------------------------------------
    def migrations(self) -> list[str]:
        """Migration names in apply order (lexical); RehearsalError for a dir without SQL."""
        root = Path(self.migrations_dir)
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
        missing = [n for n in names if not (root / n / "migration.sql").is_file()]
        if missing:
            raise RehearsalError(
                f"prisma migration {missing[0]} has no migration.sql (Prisma refuses to deploy: "
                "P3015); restore the file or delete the directory"
            )
        return names

    def _file(self, revision: str, which: str) -> Path:
        return Path(self.migrations_dir) / revision / which

    def _known(self, revision: str) -> None:
        if revision not in self.migrations():
            raise StepFailed(f"{revision} is not a migration in {self.migrations_dir}")

    def down_hint(self, revision: str) -> str:
        """How to give `revision` a down migration (shown with an irreversible outcome)."""
        return f"{revision} has no down.sql: {DOWN_HINT}"

    def reversible(self, revision: str | None) -> bool:
        """Whether `revision` has a down.sql beside its migration.sql."""
        return revision is None or self._file(revision, "down.sql").is_file()

    def tracking_tables(self) -> tuple[str, ...]:
        """`_prisma_migrations`, in the target's schema when its URL names one."""
        if self.schema and self.schema != "public":
            return (f"{self.schema}.{TABLE}",)
        return (TABLE,)

    # -- connections --------------------------------------------------------------------------
    def _connect(self, url: str, *, read_only: bool, timeout_s: float = 10) -> Any:
        """A psycopg session on `url` (autocommit), search_path on Prisma's schema if given."""
        import psycopg

        opts = []
        if read_only:
            opts.append("-c default_transaction_read_only=on")
            opts.append(f"-c statement_timeout={int(timeout_s * 1000)}")
        conn = psycopg.connect(
            scratch.libpq_url(url),
            connect_timeout=max(1, min(10, int(timeout_s))),
            autocommit=True,
            options=" ".join(opts) or None,
        )
        schema = self._schema(url)
        if schema:
            from psycopg import sql

            if not read_only:  # Prisma creates the schema it migrates
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn

    def _schema(self, url: str) -> str | None:
        """The schema Prisma migrates: the URL's ?schema=, else the target's."""
        return url_schema(url) or self.schema

    @staticmethod
    def _has_table(conn: Any) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (f'"{TABLE}"',)).fetchone()
        return bool(row and row[0] is not None)

    def _rows(self, url: str, timeout_s: float = 10) -> list[tuple[str, str, bool, bool]]:
        """(migration_name, checksum, applied, failed) of every row, read-only."""
        with self._connect(url, read_only=True, timeout_s=timeout_s) as conn:
            if not self._has_table(conn):
                return []
            rows = conn.execute(
                f"SELECT migration_name, checksum, {APPLIED_WHERE}, {FAILED_WHERE} "
                f'FROM "{TABLE}" ORDER BY started_at, migration_name'
            ).fetchall()
        return [(str(r[0]), str(r[1]), bool(r[2]), bool(r[3])) for r in rows]

    # -- the Migrator interface ---------------------------------------------------------------
    def current(self, url: str) -> tuple[str, ...]:
        """Every applied migration's name, in apply order (read-only)."""
        return tuple(sorted({n for n, _, ok, _ in self._rows(url) if ok}))

    def applied(self, url: str) -> set[str] | None:
        """The names of the applied migrations (read-only)."""
        return set(self.current(url))

    def plan(self, current: Sequence[str]) -> dict[str, Any]:
        """Heads (the newest file), pending (files not applied, in order), applied, unknown.

        Like `prisma migrate deploy`, a migration older than the newest applied one is still
        pending when its row is missing (a merged branch).
        """
        names = self.migrations()
        done = set(current)
        return {
            "heads": names[-1:],
            "pending": [n for n in names if n not in done],
            "applied": [n for n in reversed(names) if n in done],
            "unknown": sorted(done - set(names)),
        }

    def state_notes(self, url: str) -> list[str]:
        """Edited migrations (checksum differs from the file) and failed rows, read-only."""
        notes: list[str] = []
        names = set(self.migrations())
        for name, recorded, ok, failed in self._rows(url):
            if failed:
                notes.append(
                    f"{name} is recorded as failed in {TABLE}: `prisma migrate deploy` refuses "
                    f"to run (P3009) until it is resolved (prisma migrate resolve)"
                )
            elif ok and name in names:
                actual = checksum(self._file(name, "migration.sql"))
                if actual != recorded:
                    notes.append(
                        f"{name}'s migration.sql was edited after it was applied (checksum "
                        f"{recorded[:12]}... recorded, {actual[:12]}... in the file); Prisma "
                        "warns about it and the database may not match the file"
                    )
        return notes

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """What readyctl, as Prisma's engine, reads in `_prisma_migrations` over `url`."""
        try:
            rows = self._rows(url, timeout_s)
        except Exception as e:
            return ToolReading(False, error_words(e), error_words(e))
        done = sorted({n for n, _, ok, _ in rows if ok})
        failed = sorted({n for n, _, _, bad in rows if bad})
        text = " ".join(done) or "no migration applied"
        said = f"{len(done)} applied" + (f", newest {done[-1]}" if done else "")
        if failed:
            said += f", failed: {', '.join(failed)}"
        return ToolReading(True, text, said)

    def source_file(self, revision: str) -> str | None:
        """The migration's migration.sql."""
        path = self._file(revision, "migration.sql")
        return str(path) if path.is_file() else None

    def offline_sql(self, revision: str, url: str | None, timeout_s: float) -> str | None:
        """The migration.sql text (what deploy runs)."""
        try:
            return self._file(revision, "migration.sql").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StepFailed(f"{revision} has no migration.sql") from None

    def upgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Apply one migration (`revision`, or the first pending) as `prisma migrate deploy`."""
        if revision is None:
            pending = self.plan(self.current(url))["pending"]
            if not pending:
                return
            revision = pending[0]
        self._known(revision)
        path = self._file(revision, "migration.sql")
        script = path.read_text(encoding="utf-8")
        digest = checksum(path)
        self._timed(lambda conn: self._apply(conn, revision, script, digest), url, timeout_s)

    def downgrade(self, url: str, revision: str | None, timeout_s: float) -> None:
        """Run `revision`'s down.sql (default: the newest applied) and delete its row."""
        if revision is None:
            done = self.current(url)
            if not done:
                raise StepFailed("no prisma migration is applied")
            revision = done[-1]
        self._known(revision)
        down = self._file(revision, "down.sql")
        if not down.is_file():
            raise StepFailed(f"{revision} has no down.sql: it is irreversible")
        script = down.read_text(encoding="utf-8")
        self._timed(lambda conn: self._revert(conn, revision, script), url, timeout_s)

    # -- steps --------------------------------------------------------------------------------
    def _timed(self, work: Any, url: str, timeout_s: float) -> None:
        """Run `work(conn)` on a fresh session within timeout_s (cancelled past it)."""
        import psycopg

        box: dict[str, Any] = {}

        def run() -> None:
            with self._connect(url, read_only=False, timeout_s=timeout_s) as conn:
                box["conn"] = conn
                for k, v in self.session_options.items():
                    conn.execute("SELECT set_config(%s, %s, false)", (k, str(v)))
                work(conn)

        try:
            in_thread(run, timeout_s)
        except StepFailed as e:
            conn = box.get("conn")
            if e.timed_out and conn is not None:
                with contextlib.suppress(Exception):  # best effort: scratch is dropped anyway
                    conn.cancel_safe()
            raise
        except psycopg.Error as e:
            raise StepFailed(error_words(e)) from None

    def _apply(self, conn: Any, revision: str, script: str, digest: str) -> None:
        """Prisma's apply: record started, run the script, record the step and finished."""
        import psycopg

        conn.execute(CREATE_TABLE)
        failed = conn.execute(
            f'SELECT migration_name FROM "{TABLE}" WHERE {FAILED_WHERE} ORDER BY started_at'
        ).fetchall()
        if failed:
            raise StepFailed(
                f"P3009: migrate found failed migrations in the target database ("
                f"{', '.join(str(r[0]) for r in failed)}); new migrations will not be applied"
            )
        already = conn.execute(
            f'SELECT 1 FROM "{TABLE}" WHERE migration_name = %s AND {APPLIED_WHERE}', (revision,)
        ).fetchone()
        if already:
            raise StepFailed(f"{revision} is already applied")
        row_id = str(uuid.uuid4())
        conn.execute(
            f'INSERT INTO "{TABLE}" (id, checksum, migration_name, started_at, '
            "applied_steps_count) VALUES (%s, %s, %s, now(), 0)",
            (row_id, digest, revision),
        )
        try:
            conn.execute(script)  # no parameters: one simple-protocol query
        except psycopg.Error as e:
            words = error_words(e)
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):  # the row stays failed either way
                    conn.execute(
                        f'UPDATE "{TABLE}" SET logs = %s WHERE id = %s',
                        (json.dumps({"error": str(e).strip()}), row_id),
                    )
            raise StepFailed(f"{revision}/migration.sql failed: {words}") from None
        conn.execute(
            f'UPDATE "{TABLE}" SET applied_steps_count = applied_steps_count + 1 WHERE id = %s',
            (row_id,),
        )
        conn.execute(f'UPDATE "{TABLE}" SET finished_at = now() WHERE id = %s', (row_id,))

    def _revert(self, conn: Any, revision: str, script: str) -> None:
        """Run down.sql as deploy would run a script, then forget the migration's rows."""
        import psycopg

        if not self._has_table(conn):
            raise StepFailed(f"{revision} is not applied ({TABLE} does not exist)")
        applied = conn.execute(
            f'SELECT 1 FROM "{TABLE}" WHERE migration_name = %s AND {APPLIED_WHERE}', (revision,)
        ).fetchone()
        if not applied:
            raise StepFailed(f"{revision} is not applied")
        try:
            conn.execute(script)  # as deploy runs a script
        except psycopg.Error as e:
            raise StepFailed(f"{revision}/down.sql failed: {error_words(e)}") from None
        conn.execute(f'DELETE FROM "{TABLE}" WHERE migration_name = %s', (revision,))


# -- the project ----------------------------------------------------------------------------------
def check_provider(provider: str, where: str) -> None:
    """RehearsalError unless `provider` is PostgreSQL."""
    if provider and provider not in POSTGRES_PROVIDERS:
        raise RehearsalError(
            f"{where} says provider {provider!r}: readyctl rehearses Prisma migrations on "
            'PostgreSQL only (provider "postgresql")'
        )


def schema_file(base: Path) -> Path | None:
    """The project's schema.prisma: package.json's prisma.schema, else Prisma's defaults."""
    pkg = base / "package.json"
    if pkg.is_file():
        try:
            declared = json.loads(pkg.read_text(encoding="utf-8")).get("prisma", {}).get("schema")
        except (ValueError, OSError, AttributeError):
            declared = None
        if isinstance(declared, str) and (base / declared).is_file():
            return base / declared
    return next((base / f for f in SCHEMA_FILES if (base / f).is_file()), None)


def datasource_provider(schema: Path) -> str | None:
    """The provider of schema.prisma's datasource block (None when not found)."""
    try:
        text = schema.read_text(encoding="utf-8")
    except OSError:
        return None
    block = _DATASOURCE.search(text)
    found = _PROVIDER.search(block.group(1)) if block else None
    return found.group(1) if found else None


def detect(ctx: Any, settings: Any) -> bool:
    """Whether the project uses Prisma Migrate: migrations_dir set, prisma/migrations or a
    schema.prisma at the base directory."""
    if getattr(settings, "migrations_dir", None):
        return True
    base = Path(ctx.base_dir)
    return (base / DEFAULT_DIR).is_dir() or schema_file(base) is not None


def from_project(
    ctx: Any,
    settings: Any,
    *,
    session_options: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    connection_env: dict[str, str] | None = None,
) -> PrismaMigrator | str:
    """The project's Prisma migrator, or why there is nothing to rehearse.

    `extra_env` and `connection_env` are accepted for the common interface and unused: no
    subprocess runs; readyctl connects to the URL it is given. RehearsalError when a setting
    names a missing directory or the provider is not PostgreSQL.
    """
    configured = getattr(settings, "migrations_dir", None)
    base = Path(ctx.base_dir)
    schema = schema_file(base)
    if schema is not None:
        check_provider(datasource_provider(schema) or "", str(schema))
    if configured:
        root = Path(ctx.resolve(configured))
        if not root.is_dir():
            raise RehearsalError(f"migrations_dir {root} does not exist")
    else:
        root = (schema.parent if schema is not None else base / "prisma") / "migrations"
        if not root.is_dir():
            where = schema if schema is not None else base / "prisma"
            return (
                f"{where} has no migrations directory ({root}): the project has no Prisma "
                "migrations to rehearse (`prisma db push` keeps none); set "
                "checks.migrations.rehearsal.migrations_dir if they live elsewhere"
            )
    env = getattr(ctx, "environment", None)
    return PrismaMigrator(
        migrations_dir=str(root),
        session_options=dict(session_options or {}),
        schema=url_schema(getattr(env, "database_url", None)),
    )
