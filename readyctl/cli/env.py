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
        "Exit codes: 0 valid, 1 not valid, 2 usage error."
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
    from readyctl.cli._run import RunOptions, execute
    from readyctl.errors import ReadyctlError
    from readyctl.redact import global_redactor

    if env_file is None and not process_env and config is None and env is None:
        typer.echo("error: nothing to validate; pass --env-file FILE or --process-env", err=True)
        raise typer.Exit(2)
    try:
        code = execute(
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
    except ReadyctlError as e:
        typer.echo(f"error: {global_redactor().text(str(e))}", err=True)
        raise typer.Exit(2) from None
    # validation is pass/fail: anything but ready is "not valid"
    raise typer.Exit(0 if code == 0 else (code if code in (2, 130) else 1))
