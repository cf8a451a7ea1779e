"""`readyctl runbook list|plan|run`: any runbook, with the engine `readyctl deploy` uses."""

from __future__ import annotations

from pathlib import Path

import typer

from readyctl.cli._common import BASE_URL_OPT, CONFIG_OPT, ENV_OPT, NO_COLOR_OPT, QUIET_OPT
from readyctl.cli.deploy import (
    ABANDON_OPT,
    DATABASE_URL_OPT,
    REASON_OPT,
    RESUME_OPT,
    RUN_EXIT_HELP,
    STATE_TABLE_OPT,
    VAR_OPT,
    YES_OPT,
    parse_vars,
    run_cli,
)

runbook_app = typer.Typer(
    help="Runbooks: ordered steps (built-in actions or commands) with rollback, state and an "
    "audit log.\n\nExamples:\n\n  readyctl runbook list\n\n  readyctl runbook plan deploy\n\n"
    "  readyctl runbook run runbooks/hotfix.yaml --env staging --yes",
    no_args_is_help=True,
)

NAME_ARG = typer.Argument(..., metavar="NAME", help="A runbook name (see list) or a YAML file.")


def register(app: typer.Typer) -> None:
    """Add the command group."""
    app.add_typer(runbook_app, name="runbook")


@runbook_app.command(
    "list",
    help="List the project's runbooks (runbooks/ next to readyctl.yaml) and the packaged ones.",
)
def list_cmd(config: Path | None = CONFIG_OPT) -> None:
    from readyctl.runbook.loader import list_runbooks, project_dir_of

    for name, path, description, source in list_runbooks(project_dir_of(config)):
        typer.echo(f"{name:<20} {source:<9} {description}  ({path})")


@runbook_app.command(
    "plan",
    help="Show every step of a runbook, what it does and touches; run nothing.\n\n"
    "Example:\n\n  readyctl runbook plan deploy --env production --release v2",
)
def plan_cmd(
    name: str = NAME_ARG,
    env: str | None = ENV_OPT,
    release: str | None = typer.Option(None, "--release", "-r", help="The release."),
    var: list[str] = VAR_OPT,
    config: Path | None = CONFIG_OPT,
    database_url: str | None = DATABASE_URL_OPT,
    base_url: str | None = BASE_URL_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    from readyctl.runbook.engine import DeployOptions

    opts = DeployOptions(
        runbook=name,
        config=config,
        env=env,
        release=release,
        vars=_vars(var),
        plan=True,
        database_url=database_url,
        base_url=base_url,
    )
    run_cli(opts, no_color=no_color)


@runbook_app.command(
    "run",
    help="Run a runbook against an environment (one run at a time per target).\n\n"
    "Example:\n\n  readyctl runbook run deploy --env staging --release v2 --yes\n\n"
    + RUN_EXIT_HELP,
)
def run_cmd(
    name: str = NAME_ARG,
    env: str | None = ENV_OPT,
    release: str | None = typer.Option(None, "--release", "-r", help="The release."),
    yes: bool = YES_OPT,
    resume: bool = RESUME_OPT,
    abandon: bool = ABANDON_OPT,
    reason: str | None = REASON_OPT,
    var: list[str] = VAR_OPT,
    config: Path | None = CONFIG_OPT,
    database_url: str | None = DATABASE_URL_OPT,
    base_url: str | None = BASE_URL_OPT,
    state_table: bool = STATE_TABLE_OPT,
    quiet: bool = QUIET_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    from readyctl.runbook.engine import DeployOptions

    opts = DeployOptions(
        runbook=name,
        config=config,
        env=env,
        release=release,
        vars=_vars(var),
        yes=yes,
        resume=resume,
        abandon=abandon,
        reason=reason,
        state_table=state_table,
        database_url=database_url,
        base_url=base_url,
    )
    run_cli(opts, no_color=no_color, quiet=quiet)


def _vars(items: list[str]) -> dict[str, str]:
    from readyctl.errors import ReadyctlError

    try:
        return parse_vars(items)
    except ReadyctlError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
