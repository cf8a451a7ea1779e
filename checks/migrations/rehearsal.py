"""migrations.rehearsal: every pending (or recent) migration round-trips on a scratch copy."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.database._db import target_url
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
from readyctl.postgres import scratch
from readyctl.postgres.scratch import ScratchError, cleanup_dir
from readyctl.rehearsal import RehearsalError, RehearsalSettings, rehearse
from readyctl.result import ErrorReason, Result

_KIND = {
    "connectivity": ErrorReason.CONNECTIVITY,
    "timeout": ErrorReason.TIMEOUT,
    "config": ErrorReason.CONFIG,
}


class Settings(ProjectSettings):
    """Settings of migrations.rehearsal: the migration project, plus how to rehearse."""

    last: int = Field(3, ge=0, description="revisions rehearsed when nothing is pending")
    sample_rows: int = Field(100, ge=0, description="rows copied per table into the scratch copy")
    lock_timeout_s: float = Field(5.0, gt=0, description="lock_timeout of each migration step")
    statement_timeout_s: float = Field(
        60.0, gt=0, description="statement_timeout of each migration step"
    )
    step_timeout_s: float = Field(120.0, gt=0, description="seconds one migration step may take")
    dump_timeout_s: float = Field(300.0, gt=0, description="seconds the schema dump may take")
    exclude_tables: tuple[str, ...] = Field((), description="tables whose rows are not compared")
    sql_files: str | None = Field(
        None, description="glob of SQL migration files for migrations.lint (stacks without alembic)"
    )
    require_reversible: bool = Field(
        False,
        description="fail (instead of warn) on a migration without a down migration (Prisma: "
        "no down.sql), whose rollback needs a restore from backup",
    )


def rehearsal_settings(s: Settings) -> RehearsalSettings:
    """Timeouts, sample size and depth from check settings."""
    return RehearsalSettings(
        last=s.last,
        sample_rows=s.sample_rows,
        lock_timeout_s=s.lock_timeout_s,
        statement_timeout_s=s.statement_timeout_s,
        step_timeout_s=s.step_timeout_s,
        dump_timeout_s=s.dump_timeout_s,
        exclude_tables=s.exclude_tables,
    )


class MigrationsRehearsal(Check):
    """Upgrade, downgrade and upgrade each revision on a scratch copy, comparing fingerprints.

    The target is only read (schema-only pg_dump in a read-only session, a sample of rows in a
    READ ONLY transaction); the work happens on a scratch PostgreSQL readyctl starts and
    removes. Settings (the migration project; lint and pending read them from here):
    - `alembic_config` (alembic.ini; default: the managed demo's, else ./alembic.ini),
      `script_location`, `version_locations`, `version_table` (alembic_version).
    - `python`: run alembic in the project's interpreter or command, e.g. ".venv/bin/python"
      or "poetry run python"; `url_env`: variables that receive the scratch URL (env.py
      reading DATABASE_URL; implies a subprocess); `connection_env`: variables that receive
      its parts ({host: POSTGRES_SERVER, port: ..., user, password, dbname}; implies a
      subprocess); `set_sqlalchemy_url` (true); `cwd`; `env`.
    - `commands: {up, down, current}`: other stacks (one step up, one step down, print the
      current version); the scratch URL is passed in `url_env` (default DATABASE_URL), its
      parts in `connection_env`.
    - Migration subprocesses run sealed: PATH, HOME, locale, TZ, TMPDIR, VIRTUAL_ENV, NODE_*,
      `env` and the scratch connection, nothing else. Before the first step a sentinel in the
      scratch copy's version table must show in the tool's own `current`, else the rehearsal
      stops (the tool would have migrated another database).
    - `last` (3): revisions rehearsed when nothing is pending; `sample_rows` (100 per table);
      `lock_timeout_s` (5), `statement_timeout_s` (60), `step_timeout_s` (120),
      `dump_timeout_s` (300); `exclude_tables`: tables whose rows are not compared.
    - `tool: prisma` (auto-detected from prisma/schema.prisma or prisma/migrations):
      `migrations_dir` (prisma/migrations); readyctl applies each migration.sql as `prisma
      migrate deploy` does and reverts it with the down.sql beside it; no Prisma CLI needed.
    - Irreversible migrations (no downgrade: a Prisma migration without down.sql): the
      upgrade is still rehearsed, and the revision is a WARN (rolling back needs a restore
      from backup); `require_reversible: true` makes it a FAIL. When nothing is pending, the
      walk down stops at it and older revisions are reported as not rehearsed.
    """

    meta = CheckMeta(
        id="migrations.rehearsal",
        title="Migrations round-trip on a scratch copy",
        failure_title="A migration does not round-trip",
        description=(
            "A rollback plan is only real if each migration's downgrade restores the schema "
            "its upgrade changed; finding out during an incident loses data. See "
            "https://alembic.sqlalchemy.org/en/latest/tutorial.html#downgrading."
        ),
        remediation=RemediationSpec(
            text="Make the named revision's downgrade() undo exactly what upgrade() did (drop "
            "added columns, restore defaults and nullability), or make it explicitly "
            "irreversible and plan a restore-based rollback (Prisma: give the migration a "
            "down.sql that reverts its migration.sql); rerun `readyctl db rehearse`.",
            snippet="def downgrade() -> None:\n    op.drop_column('users', 'timezone')",
            link="https://alembic.sqlalchemy.org/en/latest/tutorial.html#downgrading",
        ),
        category=Category.MIGRATIONS,
        severity=Severity.CRITICAL,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=600,
        tags=("database", "migrations", "seed"),
        refs=("2",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Dump the schema read-only, restore into scratch, rehearse, report per revision."""
        url = target_url(ctx)
        assert url
        own: Settings = ctx.settings()
        s = rehearsal_settings(own)
        try:
            migrator = find_migrator(ctx, s.session_options())
        except RehearsalError as e:
            yield self.errored("migrations", ErrorReason.CONFIG, str(e))
            return
        if isinstance(migrator, str):
            yield self.skipped("migrations", migrator)
            return
        work = tempfile.mkdtemp(prefix="readyctl-rehearsal-")
        ctx.add_cleanup(lambda: cleanup_dir(work))  # also when this thread is abandoned
        for secret in scratch.config_secrets(ctx.config):
            ctx.redactor.add(secret)
        # readyctl.yaml's scratch: section picks the server; rehearse() starts it
        server = scratch.select(target_url=url, config=ctx.config, base_dir=ctx.base_dir)
        ctx.add_cleanup(server.close)
        try:
            with contextlib.closing(server):
                outcome = rehearse(
                    migrator, url, server, s, check_deadline=ctx.check_deadline, workdir=work
                )
        except (RehearsalError, ScratchError) as e:  # ScratchError: no server fits the target
            kind = _KIND.get(e.kind, ErrorReason.CONFIG) if isinstance(e, RehearsalError) else None
            ev = {"scratch_server": server.describe(), "target_server": server.target_description()}
            yield self.errored("migrations", kind or ErrorReason.CONFIG, str(e), evidence=ev)
            return
        finally:
            cleanup_dir(work)
        if not outcome.revisions:
            at = ", ".join(outcome.source_revision) or "no revision"
            yield self.skipped(
                "migrations",
                f"nothing to rehearse: the database is at {at}, nothing is pending and "
                f"last={s.last} found no revision to go down",
            )
            return
        common = {
            "mode": "pending revisions"
            if outcome.mode == "pending"
            else f"last {s.last} revisions",
            "tool": outcome.tool,
            "source_revision": list(outcome.source_revision),
            "dump_s": round(outcome.dump_s, 3),
            "restore_s": round(outcome.restore_s, 3),
            "sampled_rows": outcome.sampled_rows,
            "notes": outcome.notes,
            "scratch_server": server.describe(),  # kind, version, where (no credentials)
            "target_server": server.target_description(),
        }
        for r in outcome.revisions:
            ev = {**common, **r.durations()}
            if r.status == "pass":
                yield self.passed(r.revision, r.summary, measured=r.up_s, unit=" s", evidence=ev)
            elif r.status == "fail":
                ev["failed_step"] = r.step
                if r.difference:
                    ev["difference"] = r.difference[:20]
                yield self.failed(r.revision, r.summary, evidence=ev)
            elif r.status == "irreversible":
                ev["irreversible"] = True
                hint = getattr(migrator, "down_hint", None)
                if callable(hint):
                    ev["remedy"] = hint(r.revision)
                if own.require_reversible:
                    summary = f"{r.summary} (require_reversible is set)"
                    yield self.failed(r.revision, summary, evidence=ev)
                else:
                    yield self.warned(r.revision, r.summary, evidence=ev)
            elif r.status == "not_rehearsed" and r.blocked_by is None:
                yield self.skipped(r.revision, r.summary)
            else:
                yield self.blocked(r.revision, r.summary)
