"""`readyctl load`: run the load checks (load.*) only, with the same reports as check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        "load",
        help=(
            "Run the load profile on locust (in subprocesses) and judge latency percentiles, "
            "error rate and throughput, per endpoint and overall, and against the baseline.\n\n"
            "Examples:\n\n"
            "  readyctl load\n\n"
            "  readyctl load --env staging --users 200 --duration 2m --workers 2\n\n"
            "  readyctl load --users 20 --spawn-rate 10 --duration 30s --out reports/load\n\n"
            + FOCUSED_EXIT_HELP
        ),
    )
    def load(
        config: Path | None = CONFIG_OPT,
        env: str | None = ENV_OPT,
        users: int | None = typer.Option(
            None, "--users", "-u", min=1, help="Concurrent users in total (profiles scale)."
        ),
        spawn_rate: float | None = typer.Option(
            None, "--spawn-rate", "-r", min=0.1, help="Users started per second."
        ),
        duration: str | None = typer.Option(
            None, "--duration", "-t", help="How long the load runs, e.g. 30s or 2m."
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            "-w",
            min=0,
            max=64,
            help="Run a local locust master and N worker processes (0: one process).",
        ),
        out: Path | None = OUT_OPT,
        format: str | None = FORMAT_OPT,
        quiet: bool = QUIET_OPT,
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from readyctl.cli._run import RunOptions, parse_duration, run_focused
        from readyctl.errors import UsageError

        overrides: dict[str, Any] = {}
        if users is not None:
            overrides["users"] = users
        if spawn_rate is not None:
            overrides["spawn_rate"] = spawn_rate
        if workers is not None:
            overrides["workers"] = workers
        if duration is not None:
            try:
                overrides["duration"] = parse_duration(duration)
            except UsageError:
                typer.echo(
                    f"error: --duration {duration!r} is not a duration; write e.g. 30s or 2m",
                    err=True,
                )
                raise typer.Exit(2) from None
        run_focused(
            RunOptions(
                config=config,
                env=env,
                out=out,
                formats=format,
                quiet=quiet,
                no_color=no_color,
                fixed_selection=["load.*"],
                settings_overrides={"load.thresholds": overrides} if overrides else {},
            )
        )
