"""`readyctl db`: migration rehearsal, migration lint and the restore drill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from readyctl.cli._common import CONFIG_OPT, ENV_OPT, FORMAT_OPT, NO_COLOR_OPT, OUT_OPT, QUIET_OPT

db_app = typer.Typer(
    help="Database safety: rehearse migrations, lint them, drill a restore.",
    no_args_is_help=True,
)

DATABASE_URL_OPT = typer.Option(
    None,
    "--database-url",
    help="Database to read (overrides the environment's database_url); only ever read.",
)
ALEMBIC_OPT = typer.Option(
    None,
    "--alembic-config",
    help="The project's alembic.ini (default: checks.migrations.rehearsal.alembic_config, the "
    "managed demo's, or ./alembic.ini).",
)
EXIT_HELP = (
    "Exit codes: 0 {ok}; 1 {bad}; 3 nothing could be verified; 2 usage or config error; "
    "130 interrupted; 4 internal error (a bug in readyctl)."
)


def register(app: typer.Typer) -> None:
    """Add the `db` command group."""
    app.add_typer(db_app, name="db")


def _alembic_overrides(alembic_config: Path | None, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per-check settings carrying --alembic-config (exit 2 when the file does not exist)."""
    if alembic_config is None:
        return {}
    if not alembic_config.is_file():
        typer.echo(f"error: --alembic-config {alembic_config}: no such file", err=True)
        raise typer.Exit(2)
    path = str(alembic_config.resolve())
    return {cid: {"alembic_config": path} for cid in ids}


def _run(
    *,
    selection: list[str],
    overrides: dict[str, dict[str, Any]],
    config: Path | None,
    env: str | None,
    database_url: str | None,
    out: Path | None,
    format: str | None,
    quiet: bool,
    no_color: bool,
    nothing_is_ok: bool = False,
    overrides_flags: dict[str, Any] | None = None,
) -> None:
    """Run the selection through the shared path; exit by its own checks.

    1 on any unwaived fail, 3 when nothing could be verified (nothing to rehearse is not a
    pass), 0 otherwise; with `nothing_is_ok` nothing to check is 0 (lint: no pending SQL).
    """
    from readyctl.cli._run import RunOptions, run_focused
    from readyctl.redact import global_redactor

    if database_url:
        global_redactor().add(database_url)
    overrides_flags = overrides_flags or {}
    explicit = [
        f"--{key.replace('_', '-')}" for key, value in overrides_flags.items() if value is not None
    ]
    run_focused(
        RunOptions(
            config=config,
            env=env,
            database_url=database_url,
            out=out,
            formats=format,
            quiet=quiet,
            no_color=no_color,
            fixed_selection=selection,
            settings_overrides=overrides,
            history=False,
            explicit_target=explicit,
        ),
        nothing_is_ok=nothing_is_ok,
    )


@db_app.command(
    "rehearse",
    help=(
        "Rehearse migrations on a scratch copy: restore the target's schema (read-only dump) "
        "into a scratch PostgreSQL readyctl starts, then for each pending revision (or the "
        "last 3) upgrade, downgrade and upgrade again, comparing catalog fingerprints. The "
        "target is never changed; the scratch server is always removed.\n\n"
        "Examples:\n\n"
        "  readyctl db rehearse\n\n"
        "  readyctl db rehearse --env staging --alembic-config alembic.ini\n\n"
        "  readyctl db rehearse --database-url postgresql://ro@db:5432/app\n\n"
        + EXIT_HELP.format(
            ok="every rehearsed revision round-trips",
            bad="a revision fails or does not restore the schema (named, with the difference); "
            "nothing rehearsed is 3, not a pass",
        )
    ),
)
def rehearse(
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    database_url: str | None = DATABASE_URL_OPT,
    alembic_config: Path | None = ALEMBIC_OPT,
    out: Path | None = OUT_OPT,
    format: str | None = FORMAT_OPT,
    quiet: bool = QUIET_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    _run(
        selection=["migrations.rehearsal"],
        overrides=_alembic_overrides(alembic_config, ["migrations.rehearsal"]),
        overrides_flags={"alembic_config": alembic_config},
        config=config,
        env=env,
        database_url=database_url,
        out=out,
        format=format,
        quiet=quiet,
        no_color=no_color,
    )


@db_app.command(
    "lint",
    help=(
        "Lint the SQL the pending migrations will run (alembic --sql, parsed by PostgreSQL's "
        "own parser): indexes without CONCURRENTLY, NOT NULL without default, type changes, "
        "drops, constraints without NOT VALID, no lock_timeout.\n\n"
        "Examples:\n\n"
        "  readyctl db lint\n\n"
        "  readyctl db lint --env staging --alembic-config alembic.ini\n\n"
        + EXIT_HELP.format(
            ok="no unsafe statement (or nothing pending)", bad="an unsafe statement was found"
        )
    ),
)
def lint(
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    database_url: str | None = DATABASE_URL_OPT,
    alembic_config: Path | None = ALEMBIC_OPT,
    out: Path | None = OUT_OPT,
    format: str | None = FORMAT_OPT,
    quiet: bool = QUIET_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    _run(
        selection=["migrations.lint"],
        overrides=_alembic_overrides(alembic_config, ["migrations.rehearsal", "migrations.lint"]),
        overrides_flags={"alembic_config": alembic_config},
        config=config,
        env=env,
        database_url=database_url,
        out=out,
        format=format,
        quiet=quiet,
        no_color=no_color,
        nothing_is_ok=True,
    )


@db_app.command(
    "restore-drill",
    help=(
        "Drill a restore: take a logical backup of the target (or use the newest in the "
        "configured location), restore it into a scratch database, compare row counts and "
        "the newest timestamps, and time it against the RTO. The scratch database is always "
        "dropped.\n\n"
        "Examples:\n\n"
        "  readyctl db restore-drill\n\n"
        "  readyctl db restore-drill --env staging\n\n"
        + EXIT_HELP.format(ok="the restore is complete and within the RTO", bad="the drill failed")
    ),
)
def restore_drill(
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    database_url: str | None = DATABASE_URL_OPT,
    out: Path | None = OUT_OPT,
    format: str | None = FORMAT_OPT,
    quiet: bool = QUIET_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    _run(
        selection=["backups.restore_drill"],
        overrides={},
        config=config,
        env=env,
        database_url=database_url,
        out=out,
        format=format,
        quiet=quiet,
        no_color=no_color,
    )
