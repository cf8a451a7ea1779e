"""Migration rehearsal on a scratch copy: upgrade, fingerprint, downgrade, compare, upgrade again.

The target is only read: a schema-only pg_dump (read-only session) and a sample of rows copied
inside a READ ONLY transaction. Everything else happens in a scratch database on a scratch
PostgreSQL (readyctl.postgres.scratch), which is always dropped and stopped.

Migration tools, one module each (a new tool is a new module with a `Migrator` subclass and
`detect`/`from_project`, see checks/migrations/_project.py):
- `alembic`: in this process (fast) or in the project's own interpreter/command (`python:`),
  through a small shim that needs only alembic.
- `typeorm`: the project's DataSource through a Node shim, one migration per step.
- `django`: `manage.py`'s migration graph through a shim in the project's interpreter.
- `prisma`: from the files, as `prisma migrate deploy` applies them (no Prisma CLI needed);
  `down.sql` beside a migration is its down step, and one without it is irreversible.
- `commands`: any other stack (Knex, Flyway, ...) through `up`, `down` and `current` shell
  commands; the database URL reaches them through environment variables.

Sealed: every migration subprocess (commands, the shim in the project's interpreter) gets an
allow-listed environment (`sealed_environ`): PATH, HOME, locale, TZ, TMPDIR, VIRTUAL_ENV,
NODE_*, the `env:` map of the settings, and the scratch connection as URL variables (`url_env`)
and as parts (`connection_env`); nothing else of readyctl's environment or the target's reaches
it. Before the first step a sentinel (`prove_scratch`) makes the scratch copy's migration state
differ from the target's and expects the tool's own `current` to see it.
"""

from __future__ import annotations

from readyctl.rehearsal.alembic import ALEMBIC_LOCK, ALEMBIC_SHIM, AlembicMigrator
from readyctl.rehearsal.commands import CommandMigrator
from readyctl.rehearsal.core import RehearsalSettings, copy_sample, rehearse, scratch_for_rehearsal
from readyctl.rehearsal.environ import (
    CONNECTION_PARTS,
    DEFAULT_URL_VARS,
    PG_CONNECTION_VARS,
    SEALED_HINT,
    SEALED_NAMES,
    SEALED_PREFIXES,
    connection_parts,
    isolated_environ,
    run_process,
    sealed_environ,
    with_session_options,
)
from readyctl.rehearsal.errors import (
    KNOWN_TOOLS,
    LINT_PLACEHOLDER_URL,
    MAX_DISCOVERED,
    TRACKING_TABLES,
    RehearsalError,
    StepFailed,
)
from readyctl.rehearsal.migrator import Migrator, ToolReading, read_version_table
from readyctl.rehearsal.outcome import RehearsalOutcome, RevisionOutcome
from readyctl.rehearsal.sentinel import NOT_SCRATCH_HINT, SENTINEL_PREFIX, prove_scratch

__all__ = [
    "ALEMBIC_LOCK",
    "ALEMBIC_SHIM",
    "CONNECTION_PARTS",
    "DEFAULT_URL_VARS",
    "KNOWN_TOOLS",
    "LINT_PLACEHOLDER_URL",
    "MAX_DISCOVERED",
    "NOT_SCRATCH_HINT",
    "PG_CONNECTION_VARS",
    "SEALED_HINT",
    "SEALED_NAMES",
    "SEALED_PREFIXES",
    "SENTINEL_PREFIX",
    "TRACKING_TABLES",
    "AlembicMigrator",
    "CommandMigrator",
    "Migrator",
    "RehearsalError",
    "RehearsalOutcome",
    "RehearsalSettings",
    "RevisionOutcome",
    "StepFailed",
    "ToolReading",
    "connection_parts",
    "copy_sample",
    "isolated_environ",
    "prove_scratch",
    "read_version_table",
    "rehearse",
    "run_process",
    "scratch_for_rehearsal",
    "sealed_environ",
    "with_session_options",
]
