"""The interface every migration tool implements, and reading a version table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from readyctl.postgres import scratch
from readyctl.rehearsal.errors import TRACKING_TABLES


@dataclasses.dataclass(frozen=True)
class ToolReading:
    """The migration tool's own `current`: whether it ran, everything it printed, and the
    line that says it (the revisions, or the error)."""

    ok: bool
    text: str
    said: str


class VersionTable(str):
    """A version table whose revision column is not alembic's `version_num` (TypeORM's
    `migrations` keeps it in `name`): a str, so code that passes table names on keeps working."""

    column: str

    def __new__(cls, table: str, column: str = "version_num") -> VersionTable:
        """`table` ("schema.table" or "table"), read through `column`."""
        out = super().__new__(cls, table)
        out.column = column
        return out


# -- migrators ------------------------------------------------------------------------------------
class Migrator:
    """One migration tool, driven one step at a time against a database URL."""

    name = "migrations"
    version_table: str | None = None
    lists_revisions = True  # plan() knows the project's revisions (commands: it cannot)

    def current(self, url: str) -> tuple[str, ...]:
        """The revisions the database is at, read from the tool's table in a read-only session.

        Never runs the tool: migrations.pending calls it on the target.
        """
        raise NotImplementedError

    def applied(self, url: str) -> set[str] | None:
        """Every revision the database records as applied (read-only; None: not readable).

        The rehearsal checks after each step that the step's revision appeared (up) or went
        away (down) on scratch, which proves the step ran there.
        """
        if not self.version_table:
            return None
        return set(read_version_table(url, self.version_table))

    def plan(self, current: Sequence[str]) -> dict[str, Any] | None:
        """From the project's files, given `current`: {"heads", "pending" (apply order),
        "applied" (newest first), "unknown" (recorded revisions the files do not have)}, or
        None when the tool cannot tell (commands). Never connects to a database."""
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

    def source_file(self, revision: str) -> str | None:
        """The file that defines `revision` (lint results and SARIF point at it), if known."""
        return None

    def no_sql_reason(self, revision: str) -> str:
        """Why offline_sql gave None for `revision` (lint skips it with this reason)."""
        return f"{self.name} cannot render {revision} as SQL without running it"

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """What the tool itself reads as the database's revision (through its own connection)."""
        raise NotImplementedError

    def reversible(self, revision: str | None) -> bool:
        """Whether `revision` has a downgrade (False: irreversible; the rehearsal proves its
        upgrade and reports that rolling it back needs a restore)."""
        return True

    def state_notes(self, url: str) -> list[str]:
        """Remarks on the database's migration state (read-only), e.g. edited migrations."""
        return []

    def tracking_tables(self) -> tuple[str, ...]:
        """The tool's own bookkeeping tables (left out of fingerprints, copied whole)."""
        return (self.version_table,) if self.version_table else TRACKING_TABLES


class ShimMigrator(Migrator):
    """A migrator that asks its tool through a shim (readyctl.rehearsal.environ.run_shim):
    the plan from the shim's `info` action (no database; cached per current revision set),
    what the tool's own connection reads from its `current` action."""

    tool_label = "the tool"  # in messages: "alembic could not read the migrations: ..."
    current_key = "applied"  # the key of the `current` answer listing revisions
    current_none = "no migration applied"
    _plan_cache: dict[tuple[str, ...], dict[str, Any]]  # set up by the subclass

    def _call(self, action: str, url: str | None, timeout_s: float, **extra: Any) -> dict[str, Any]:
        """Run one shim action (StepFailed when the tool fails)."""
        raise NotImplementedError

    def plan(self, current: Sequence[str]) -> dict[str, Any]:
        """Heads, pending and applied revisions from the project's files (no database)."""
        from readyctl.rehearsal.errors import RehearsalError, StepFailed

        key = tuple(sorted(current))
        if key not in self._plan_cache:
            try:
                self._plan_cache[key] = self._call("info", None, 120, current=list(key))
            except StepFailed as e:
                raise RehearsalError(
                    f"{self.tool_label} could not read the migrations: {e}"
                ) from None
        return self._plan_cache[key]

    def tool_current(self, url: str, timeout_s: float) -> ToolReading:
        """The revisions the tool's own connection reads (never writing)."""
        from readyctl.rehearsal.errors import StepFailed

        try:
            found = self._call("current", url, timeout_s).get(self.current_key, [])
        except StepFailed as e:
            return ToolReading(False, str(e), str(e))
        said = " ".join(str(r) for r in found) or self.current_none
        return ToolReading(True, said, said)


def read_version_table(url: str, table: str, *, timeout_s: float = 10) -> tuple[str, ...]:
    """Read a migration version table read-only (empty when the table does not exist).

    A `VersionTable` names its revision column; a plain name reads `version_num`.
    """
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
            sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier(getattr(table, "column", "version_num")),
                sql.Identifier(*table.split(".")),
            )
        ).fetchall()
    return tuple(sorted(str(r[0]) for r in rows))
