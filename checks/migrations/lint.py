"""migrations.lint: the SQL of pending migrations takes no dangerous lock and loses no data."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from readyctl.checks.database._db import error_words, target_url
from readyctl.checks.migrations._lint_rules import Finding, Linter
from readyctl.checks.migrations._project import PROJECT_CHECK, ProjectSettings, find_migrator

from readyctl.check import (
    Category,
    Check,
    CheckMeta,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.rehearsal import Migrator, RehearsalError, StepFailed
from readyctl.result import ErrorReason, Result

APPLIED_TABLES = (
    ("_prisma_migrations", "migration_name"),
    ("flyway_schema_history", "script"),
)


LintRule = Literal[
    "index-not-concurrent",
    "concurrently-in-transaction",
    "add-column-not-null-no-default",
    "column-type-change",
    "drop-column",
    "drop-table",
    "constraint-without-not-valid",
    "set-not-null",
    "missing-lock-timeout",
]


class Settings(ProjectSettings):
    """Settings of migrations.lint: the migration project keys (default: migrations.rehearsal's)
    plus what to lint."""

    ignore: tuple[LintRule, ...] = Field((), description="rule ids to silence")
    last: int | None = Field(
        None,
        ge=0,
        description="also lint the newest N applied revisions (default 0; 1 without a database)",
    )
    revisions: tuple[str, ...] = Field(
        (), description="lint exactly these revisions instead of the pending ones"
    )
    sql_files: str | None = Field(
        None,
        description="glob of SQL migration files for other stacks, e.g. "
        "prisma/migrations/*/migration.sql (default: migrations.rehearsal's)",
    )


class MigrationsLint(Check):
    """Parse the SQL each pending revision runs (alembic --sql, or SQL files) with pglast.

    Findings: index without CONCURRENTLY on an existing table, NOT NULL column without a
    default, column type change, column or table drop, constraint without NOT VALID,
    SET NOT NULL, CONCURRENTLY inside a transaction, no lock_timeout before a strong lock.
    Settings: the project keys of migrations.rehearsal; `ignore` (rule ids), `last` (also lint
    the newest N applied revisions; default 0, or 1 without a database), `revisions`
    (explicit list), `sql_files` (a glob for other stacks, e.g.
    "prisma/migrations/*/migration.sql").
    """

    meta = CheckMeta(
        id="migrations.lint",
        title="Pending migrations are lock-safe",
        failure_title="A pending migration locks or rewrites a table",
        description=(
            "A plain CREATE INDEX, a type change or a validated constraint holds a lock that "
            "stops writes for as long as the table takes to scan, which is an outage on a large "
            "table. See https://www.postgresql.org/docs/current/sql-createindex.html"
            "#SQL-CREATEINDEX-CONCURRENTLY."
        ),
        remediation=RemediationSpec(
            text="Rewrite the named statement with the recipe in the finding (CONCURRENTLY, "
            "NOT VALID + VALIDATE, expand/contract for type changes and drops) and start "
            "migrations with SET lock_timeout.",
            snippet=(
                "with op.get_context().autocommit_block():\n"
                "    op.create_index('ix_t_col', 't', ['col'], postgresql_concurrently=True)"
            ),
            link="https://www.postgresql.org/docs/current/sql-createindex.html"
            "#SQL-CREATEINDEX-CONCURRENTLY",
        ),
        category=Category.MIGRATIONS,
        severity=Severity.HIGH,
        requires=(),
        safety=Safety.READ_ONLY,
        timeout_s=300,
        tags=("database", "migrations", "seed"),
        refs=("2",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Lint each pending revision's SQL in apply order."""
        own: Settings = ctx.settings()
        ignore = list(own.ignore)
        url = target_url(ctx)
        sql_files = own.sql_files or ctx.settings(PROJECT_CHECK).sql_files
        if sql_files:
            yield from self._sql_files(ctx, sql_files, own, url, ignore)
            return
        try:
            migrator = find_migrator(ctx)
        except RehearsalError as e:
            yield self.errored("migrations", ErrorReason.CONFIG, str(e))
            return
        if isinstance(migrator, str):
            yield self.skipped("migrations", migrator + " (or sql_files for SQL migrations)")
            return
        if not migrator.lists_revisions:
            yield self.skipped(
                "migrations", "command migrations have no offline SQL: set sql_files to lint them"
            )
            return
        revisions, why = self._revisions(ctx, migrator, own, url)
        if isinstance(revisions, Result):
            yield revisions
            return
        if not revisions:
            yield self.skipped("migrations", why)
            return
        linter = Linter(ignore)
        for rev in revisions:
            ctx.check_deadline()
            try:
                sql = migrator.offline_sql(rev, url, ctx.timeout(120))
            except (StepFailed, RehearsalError) as e:
                yield self.errored(
                    rev, ErrorReason.CONFIG, f"{migrator.name} could not render {rev} as SQL: {e}"
                )
                continue
            if sql is None:
                yield self.skipped(rev, migrator.no_sql_reason(rev))
                continue
            yield self._lint_one(linter, rev, sql, source=migrator.source_file(rev))

    # -- a tool that lists its revisions -------------------------------------------------------
    def _revisions(
        self, ctx: Context, migrator: Migrator, own: Settings, url: str | None
    ) -> tuple[list[str] | Result, str]:
        """Revisions to lint in apply order, and why there are none."""
        import psycopg

        if own.revisions:
            return list(own.revisions), ""
        current: tuple[str, ...] = ()
        if url:
            try:
                current = migrator.current(url)
            except psycopg.Error as e:
                return self.errored(
                    "migrations",
                    ErrorReason.CONNECTIVITY,
                    f"could not read the database's revision: {error_words(ctx, e)}",
                ), ""
        try:
            plan = migrator.plan(current)
        except RehearsalError as e:
            return self.errored("migrations", ErrorReason.CONFIG, str(e)), ""
        last = own.last if own.last is not None else (0 if url else 1)
        if url:
            applied = list(reversed(plan["applied"][:last])) if last > 0 else []
            pending = list(plan["pending"])
            at = ", ".join(current) or "no revision"
            why = (
                f"nothing pending to lint (the database is at {at}); set "
                "checks.migrations.lint.last to lint applied revisions too"
            )
            return applied + pending, why
        newest = list(plan["pending"])[-last:] if last > 0 else []
        return newest, "no revision to lint"

    # -- SQL files ------------------------------------------------------------------------------
    def _sql_files(
        self, ctx: Context, pattern: str, own: Settings, url: str | None, ignore: list[str]
    ) -> Iterator[Result]:
        """Lint SQL migration files (Prisma, Flyway, ...): the unapplied ones, or the newest."""
        files = sorted(Path(p) for p in glob.glob(str(ctx.resolve(pattern))))
        if not files:
            yield self.skipped("migrations", f"no SQL migration files match {pattern}")
            return

        def rev_of(p: Path) -> str:
            return p.parent.name if p.name == "migration.sql" else p.stem

        applied = self._applied_names(ctx, url) if url else None
        if applied is not None:
            chosen = [p for p in files if rev_of(p) not in applied and p.name not in applied]
            why = "every SQL migration file is applied"
        else:
            chosen = files[-(own.last if own.last is not None else 1) :]
            why = "no SQL migration file to lint"
        if not chosen:
            yield self.skipped("migrations", why)
            return
        linter = Linter(ignore)
        for p in chosen:
            try:
                sql = p.read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                yield self.errored(rev_of(p), ErrorReason.CONFIG, f"cannot read {p}: {e}")
                continue
            # absolute: the SARIF report makes it relative to the repository root
            yield self._lint_one(linter, rev_of(p), sql, source=str(p.resolve()))

    @staticmethod
    def _applied_names(ctx: Context, url: str) -> set[str] | None:
        """Names of applied SQL migrations from a known history table (None when unknown)."""
        import psycopg
        from psycopg import sql
        from readyctl.checks.database._db import connect

        try:
            with connect(ctx, url, timeout=10) as conn:
                for table, column in APPLIED_TABLES:
                    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                        continue
                    rows = conn.execute(
                        sql.SQL("SELECT {} FROM {}").format(
                            sql.Identifier(column), sql.Identifier(table)
                        )
                    ).fetchall()
                    return {str(r[0]) for r in rows}
        except psycopg.Error:
            return None
        return None

    # -- one revision -------------------------------------------------------------------------
    def _lint_one(self, linter: Linter, rev: str, sql: str, source: str | None = None) -> Result:
        """Lint one revision's SQL into one result."""
        from pglast.parser import ParseError

        try:
            findings = linter.lint(rev, sql)
        except ParseError as e:
            return self.errored(
                rev, ErrorReason.INCONCLUSIVE, f"{rev}'s SQL does not parse as PostgreSQL: {e}"
            )
        ev: dict[str, Any] = {"findings": [_finding_json(f) for f in findings]}
        if source:
            ev["file"] = source
        if not findings:
            return self.passed(rev, f"{rev}: no lock-unsafe or destructive statement", evidence=ev)
        words = "; ".join(dict.fromkeys(f.message for f in findings))
        summary = f"{rev}: {len(findings)} unsafe statement(s): {words}"
        if all(f.severity == "warn" for f in findings):
            return self.warned(rev, summary, measured=len(findings), evidence=ev)
        return self.failed(rev, summary, measured=len(findings), threshold=0, evidence=ev)


def _finding_json(f: Finding) -> dict[str, Any]:
    """A finding as evidence."""
    return {
        "rule": f.rule,
        "revision": f.revision,
        "table": f.table,
        "statement": f.statement,
        "message": f.message,
        "recipe": f.recipe,
        "severity": f.severity,
    }
