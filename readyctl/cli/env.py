"""`readyctl env validate`: seed item 1 against an env file or the process environment."""

from __future__ import annotations

from pathlib import Path

import typer

from readyctl.cli._common import CONFIG_OPT, ENV_OPT, FORMAT_OPT, NO_COLOR_OPT, OUT_OPT, QUIET_OPT

env_app = typer.Typer(help="Environment variable validation.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the command group."""
    app.add_typer(env_app, name="env")


@env_app.command(
    "validate",
    help=(
        "Validate an env file (or the process environment) against the rules: required "
        "variables, formats, placeholders, secret strength, .env.example drift, production "
        "sanity. Works without a readyctl.yaml, using the counseling API's defaults.\n\n"
        "Examples:\n\n  readyctl env validate --env-file .env.production\n\n"
        "  readyctl env validate --process-env\n\n"
        "Exit codes: 0 valid; 1 not valid (any failed rule, whatever its severity); 3 nothing "
        "could be verified; 2 usage or config error; 130 interrupted; 4 internal error (a "
        "bug in readyctl)."
    ),
)
def validate(
    env_file: Path | None = typer.Option(None, "--env-file", help="The dotenv file to validate."),
    process_env: bool = typer.Option(
        False, "--process-env", help="Validate the process environment (merged over the file)."
    ),
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    out: Path | None = OUT_OPT,
    format: str | None = FORMAT_OPT,
    quiet: bool = QUIET_OPT,
    no_color: bool = NO_COLOR_OPT,
) -> None:
    import os

    from readyctl.cli._run import RunOptions, run_focused

    explicit = env_file is not None or os.environ.get("READYCTL_ENV_FILE")
    if not explicit and not process_env and config is None and env is None:
        typer.echo("error: nothing to validate; pass --env-file FILE or --process-env", err=True)
        raise typer.Exit(2)
    run_focused(
        RunOptions(
            config=config,
            env=env,
            env_file=env_file,
            process_env=process_env,
            out=out,
            formats=format,
            quiet=quiet,
            no_color=no_color,
            fixed_selection=["env.*"],
        )
    )
