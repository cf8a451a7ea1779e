"""database.reachable: the database answers SELECT 1 (the probe every database check needs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.database._db import connect, describe, error_words, target_url

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result


class Settings(CheckSettings):
    """Settings of database.reachable."""

    connect_timeout_s: float = Field(5.0, gt=0, description="connection timeout in seconds")
    statement_timeout_s: float = Field(
        5.0, gt=0, description="statement timeout of the SELECT 1, in seconds"
    )


class DatabaseReachable(Check):
    """`SELECT 1` on the environment's database_url within connect and statement timeouts.

    Settings: `connect_timeout_s` (default 5), `statement_timeout_s` (default 5).
    """

    meta = CheckMeta(
        id="database.reachable",
        title="Database answers queries",
        failure_title="Database does not answer queries",
        description=(
            "Every database check needs a working connection; when it fails, the dependent "
            "checks are blocked with this one root cause. See "
            "https://www.postgresql.org/docs/current/libpq-connect.html."
        ),
        remediation=RemediationSpec(
            text="Check database_url (host, port, database, user, password), that the server "
            "is up and that this machine may connect (pg_hba.conf, security groups).",
            snippet="psql \"$DATABASE_URL\" -c 'SELECT 1'",
            link="https://www.postgresql.org/docs/current/libpq-connect.html",
        ),
        category=Category.DATABASE,
        severity=Severity.CRITICAL,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        retryable=True,
        timeout_s=20,
        tags=("probe",),
        refs=("4",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Connect, run SELECT 1, report the round trip."""
        import psycopg

        url = target_url(ctx)
        assert url  # the runner skips this check without a database_url
        subject = describe(url)
        settings: Settings = ctx.settings()
        t0 = time.perf_counter()
        try:
            conn = connect(
                ctx,
                url,
                timeout=settings.connect_timeout_s,
                statement_timeout_s=settings.statement_timeout_s,
            )
            with conn:
                row = conn.execute("SELECT 1").fetchone()
                version = conn.info.server_version
        except psycopg.errors.QueryCanceled:
            yield self.errored(
                subject, ErrorReason.TIMEOUT, f"{subject}: SELECT 1 ran past the statement timeout"
            )
            return
        except psycopg.Error as e:
            yield self.failed(subject, f"{subject}: cannot connect ({error_words(ctx, e)})")
            return
        ms = round((time.perf_counter() - t0) * 1000, 1)
        if not row or row[0] != 1:
            yield self.failed(subject, f"{subject}: SELECT 1 returned {row!r}")
            return
        yield self.passed(
            subject,
            f"{subject} answered SELECT 1 in {ms:g} ms (PostgreSQL {version // 10000})",
            measured=ms,
            unit=" ms",
            evidence={"server_version_num": version},
        )
