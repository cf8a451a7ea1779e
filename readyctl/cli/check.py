"""`readyctl check`: run the checklist, score it, gate the deploy."""

from __future__ import annotations

from pathlib import Path

import typer

from readyctl.cli._common import (
    BASE_URL_OPT,
    CONFIG_OPT,
    ENV_FILE_OPT,
    ENV_OPT,
    FORMAT_OPT,
    NO_COLOR_OPT,
    ONLY_OPT,
    OUT_OPT,
    QUIET_OPT,
    SKIP_OPT,
)

EXIT_HELP = (
    "Exit codes, first that applies: 2 usage or config error (nothing ran); 130 interrupted; "
    "1 not ready (a blocking failure, score under fail_under, a regression or an expired "
    "waiver); 3 inconclusive (no blocking failure, but a required checklist item was not "
    "verified, or a critical check errored or is blocked); 0 ready: every required checklist "
    "item was verified and held; 4 internal error (a bug in readyctl; please report it)."
)


def register(app: typer.Typer) -> None:
    """Add the command."""

    @app.command(
        "check",
        help=(
            "Run the readiness checks against an environment, score them and gate.\n\n"
            "Examples:\n\n"
            "  readyctl check\n\n"
            "  readyctl check --env staging --format json,junit --out reports/\n\n"
            "  readyctl check --only 'env.*' --skip env.example_drift\n\n"
            "  readyctl check --plan\n\n" + EXIT_HELP
        ),
    )
    def check(
        config: Path | None = CONFIG_OPT,
        env: str | None = ENV_OPT,
        base_url: str | None = BASE_URL_OPT,
        env_file: Path | None = ENV_FILE_OPT,
        out: Path | None = OUT_OPT,
        format: str | None = FORMAT_OPT,
        only: list[str] = ONLY_OPT,
        skip: list[str] = SKIP_OPT,
        jobs: int | None = typer.Option(None, "--jobs", "-j", help="Checks run in parallel."),
        deadline: str | None = typer.Option(
            None, "--deadline", help="Overall deadline, e.g. 90s or 10m."
        ),
        plan: bool = typer.Option(
            False, "--plan", help="List what would run and what it touches; contact nothing."
        ),
        baseline: str | None = typer.Option(
            None,
            "--baseline",
            help="Compare with a readiness.json or history run id, or 'last': the run pinned "
            "with `readyctl baseline pin`, else the newest run of the same env and selection "
            "whose gate passed.",
        ),
        no_history: bool = typer.Option(
            False, "--no-history", help="Do not keep this run under .readyctl/history/."
        ),
        quiet: bool = QUIET_OPT,
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from readyctl.cli._run import RunOptions, parse_duration, run_command
        from readyctl.errors import UsageError

        try:
            deadline_s = parse_duration(deadline) if deadline else None
        except UsageError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        run_command(
            RunOptions(
                config=config,
                env=env,
                base_url=base_url,
                env_file=env_file,
                out=out,
                formats=format,
                only=only,
                skip=skip,
                jobs=jobs,
                deadline=deadline_s,
                plan=plan,
                quiet=quiet,
                no_color=no_color,
                baseline=baseline,
                history=not no_history,
            )
        )
