"""What goes wrong in a rehearsal: the rehearsal cannot run, or a step failed; the
tracking tables every tool's state lives in."""

from __future__ import annotations

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
KNOWN_TOOLS = "alembic, typeorm, django, prisma"  # the tools with a module here
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
