"""`readyctl smoke`: run the smoke scenarios (smoke.*) only, with the same reports as check."""

from __future__ import annotations

from pathlib import Path

import typer

from readyctl.cli._common import (
    CONFIG_OPT,
    ENV_OPT,
    FOCUSED_EXIT_HELP,
    FORMAT_OPT,
    NO_COLOR_OPT,
    OUT_OPT,
    QUIET_OPT,
)


def register(app: typer.Typer) -> None:
    """Add the command."""

    @app.command(
        "smoke",
        help=(
            "Run the smoke scenarios (checks.smoke.scenarios: your suite file or inline "
            "scenarios; the managed demo runs its bundled registration, email, login, "
            "counseling, crisis, payments and tenancy suite) against an environment and report "
            "each step.\n\n"
            "Examples:\n\n"
            "  readyctl smoke\n\n"
            "  readyctl smoke --env staging --out reports/smoke\n\n" + FOCUSED_EXIT_HELP
        ),
    )
    def smoke(
        config: Path | None = CONFIG_OPT,
        env: str | None = ENV_OPT,
        out: Path | None = OUT_OPT,
        format: str | None = FORMAT_OPT,
        quiet: bool = QUIET_OPT,
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from readyctl.cli._run import RunOptions, run_focused

        run_focused(
            RunOptions(
                config=config,
                env=env,
                out=out,
                formats=format,
                quiet=quiet,
                no_color=no_color,
                fixed_selection=["smoke.*"],
            )
        )
