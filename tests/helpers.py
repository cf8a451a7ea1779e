"""In-process helpers: run checks through the real runner against a config and env file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from readyctl.check import Check
from readyctl.config import Config, Environment
from readyctl.context import Clock, Context, system_clock
from readyctl.redact import Redactor
from readyctl.registry import load_catalog
from readyctl.report import Report, build_report
from readyctl.result import Result
from readyctl.runner import RunOutcome, plan, run, select


def make_context(
    *,
    config: Config | None = None,
    environment: Environment | None = None,
    env_name: str = "default",
    base_dir: Path | None = None,
    clock: Clock = system_clock,
    environ: dict[str, str] | None = None,
    managed: Any = None,
) -> Context:
    """A Context as the CLI would build it."""
    return Context(
        config=config or Config(),
        env_name=env_name,
        environment=environment or Environment(),
        base_dir=base_dir or Path.cwd(),
        redactor=Redactor(),
        clock=clock,
        environ=environ if environ is not None else {},
        managed=managed,
    )


def run_checks(
    ctx: Context,
    checks: Sequence[type[Check]] | None = None,
    *,
    only: Sequence[str] = (),
    jobs: int = 4,
    deadline_s: float | None = 60,
) -> RunOutcome:
    """Plan and run through the real runner (statuses are recorded for the proof plugin)."""
    catalog = load_catalog().checks
    pool = list(checks) if checks is not None else list(catalog.values())
    selected = select(pool, only, ())
    extra = {c.meta.id: c for c in pool}
    return run(ctx, plan(ctx, selected, {**catalog, **extra}), jobs=jobs, deadline_s=deadline_s)


def results_of(outcome: RunOutcome, check_id: str) -> dict[str, Result]:
    """subject -> result for one check."""
    return {r.subject: r for r in outcome.results if r.check_id == check_id}


def statuses(outcome: RunOutcome, check_id: str) -> dict[str, str]:
    """subject -> status value for one check."""
    return {s: r.status.value for s, r in results_of(outcome, check_id).items()}


def report_of(ctx: Context, outcome: RunOutcome) -> Report:
    """Build the report for an outcome."""
    return build_report(
        outcome,
        config=ctx.config,
        env_name=ctx.env_name,
        environment=ctx.environment,
        redactor=ctx.redactor,
        catalog_metas={c.meta.id: c.meta for c in load_catalog()},
        selected=list(outcome.metas),
    )


def fixed_clock(when: str) -> Clock:
    """A clock frozen at an ISO timestamp."""
    t = dt.datetime.fromisoformat(when)
    return lambda: t


def snapshot(url: str) -> tuple[str, dict[str, str], list[str], list[str]]:
    """Schema digest, every row hash, the alembic revision and the server's databases."""
    import psycopg

    from readyctl.postgres import fingerprint as fpm
    from readyctl.postgres import scratch

    with psycopg.connect(scratch.libpq_url(url)) as conn:
        f = fpm.take(conn, sample_rows=None)
        try:
            rev = sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
        except psycopg.errors.UndefinedTable:
            rev = []
        conn.rollback()
        dbs = sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database"))
    return f.schema_digest(), f.rows, rev, dbs
