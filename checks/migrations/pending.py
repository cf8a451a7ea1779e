"""migrations.pending: the database is at the single alembic head (nothing pending, no forks)."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.database._db import error_words, target_url
from readyctl.checks.migrations._project import ProjectSettings, find_migrator

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.rehearsal import KNOWN_TOOLS, RehearsalError
from readyctl.result import ErrorReason, Result


class Settings(ProjectSettings):
    """Settings of migrations.pending: the migration project (default: migrations.rehearsal's)."""


class MigrationsPending(Check):
    """One alembic head, and the database's revision equals it (read-only).

    Settings: the migration project keys of migrations.rehearsal (alembic_config, ...).
    """

    meta = CheckMeta(
        id="migrations.pending",
        title="Database is at the migration head",
        failure_title="Database is behind or migrations fork",
        description=(
            "Code deployed against a schema it does not expect fails at runtime, and two "
            "alembic heads mean the next `upgrade head` refuses to run. See "
            "https://alembic.sqlalchemy.org/en/latest/branches.html."
        ),
        remediation=RemediationSpec(
            text="Apply the pending revisions as part of the deploy (after rehearsing them), "
            "and merge forked heads into one.",
            snippet="alembic upgrade head\nalembic merge heads -m 'merge heads'",
            link="https://alembic.sqlalchemy.org/en/latest/branches.html",
        ),
        category=Category.MIGRATIONS,
        severity=Severity.HIGH,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=120,
        tags=("database", "migrations", "seed"),
        refs=("2",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Compare alembic_version with the script directory's heads."""
        import psycopg

        url = target_url(ctx)
        assert url
        try:
            migrator = find_migrator(ctx)
        except RehearsalError as e:
            yield self.errored("migrations", ErrorReason.CONFIG, str(e))
            return
        if isinstance(migrator, str):
            yield self.skipped("migrations", migrator)
            return
        if not migrator.lists_revisions:
            yield self.skipped(
                "migrations",
                f"pending migrations are read for tools readyctl knows ({KNOWN_TOOLS}); "
                "`commands:` cannot list them: set checks.migrations.rehearsal.tool",
            )
            return
        table = migrator.version_table or "the migration table"
        try:
            current = migrator.current(url)
        except psycopg.Error as e:
            yield self.errored(
                "revision",
                ErrorReason.CONNECTIVITY,
                f"could not read {table}: {error_words(ctx, e)}",
            )
            return
        try:
            plan = migrator.plan(current)
        except RehearsalError as e:
            yield self.errored("migrations", ErrorReason.CONFIG, str(e))
            return
        heads = list(plan["heads"])
        if len(heads) > 1:
            yield self.failed(
                "heads",
                f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
                "`alembic upgrade head` refuses to run until they are merged",
                measured=len(heads),
                threshold=1,
            )
        elif heads:
            yield self.passed("heads", f"the migrations have one head, {heads[0]}")
        else:
            yield self.skipped("heads", "the migration scripts contain no revision")
            return
        if len(current) > 3:  # tools that record every applied migration (prisma, django)
            at = f"{len(current)} applied migrations, the newest {sorted(current)[-1]}"
        else:
            at = ", ".join(current) or f"no revision ({table} is empty or missing)"
        ev = {"current": list(current), "heads": heads}
        if plan.get("unknown"):
            yield self.failed(
                "revision",
                f"the database is at {', '.join(plan['unknown'])}, which the migration scripts "
                "do not contain (the code is older than the database, or the wrong scripts)",
                evidence=ev,
            )
            return
        pending = list(plan["pending"])
        if pending:
            shown = ", ".join(pending[:8]) + (" ..." if len(pending) > 8 else "")
            yield self.failed(
                "revision",
                f"the database is at {at}; {len(pending)} revision(s) pending: {shown}",
                measured=len(pending),
                threshold=0,
                evidence={**ev, "pending": pending},
            )
        else:
            yield self.passed("revision", f"the database is at the head ({at})", evidence=ev)
