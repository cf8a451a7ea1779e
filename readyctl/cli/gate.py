"""`readyctl gate -- CMD`: run CMD only when the verdict is READY, and pass its exit code on."""

from __future__ import annotations

import shlex
import subprocess
import sys
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

GATE_HELP = (
    "Run the readiness checks as `readyctl check` does; run CMD only when the verdict is READY "
    "and exit with CMD's exit code. Otherwise CMD does not run and the exit code is the "
    "check's: 1 not ready, 3 inconclusive, 2 usage or config error, 130 interrupted.\n\n"
    "Examples:\n\n"
    "  readyctl gate -- ./deploy.sh v2\n\n"
    "  readyctl gate --env production --only 'migrations.*' -- kubectl apply -f k8s/"
)


def _words(cmd: list[str]) -> str:
    return shlex.join(cmd)


def register(app: typer.Typer) -> None:
    """Add the command."""

    @app.command(
        "gate",
        help=GATE_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
        options_metavar="[OPTIONS] -- CMD [ARGS]...",
    )
    def gate(
        ctx: typer.Context,
        config: Path | None = CONFIG_OPT,
        env: str | None = ENV_OPT,
        base_url: str | None = BASE_URL_OPT,
        env_file: Path | None = ENV_FILE_OPT,
        out: Path | None = OUT_OPT,
        format: str | None = FORMAT_OPT,
        only: list[str] = ONLY_OPT,
        skip: list[str] = SKIP_OPT,
        quiet: bool = QUIET_OPT,
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from readyctl.cli._run import RunOptions, TerminalUI, execute_report
        from readyctl.errors import ReadyctlError
        from readyctl.redact import global_redactor

        cmd = list(ctx.args)
        if not cmd:
            typer.echo(
                "error: no command to gate: write it after --, e.g. `readyctl gate -- ./deploy.sh`",
                err=True,
            )
            raise typer.Exit(2)
        opts = RunOptions(
            config=config,
            env=env,
            base_url=base_url,
            env_file=env_file,
            out=out,
            formats=format,
            only=only,
            skip=skip,
            quiet=quiet,
            no_color=no_color,
        )
        try:
            code, report = execute_report(opts, TerminalUI(no_color=no_color, quiet=quiet))
        except ReadyctlError as e:
            sys.stderr.write(f"error: {global_redactor().text(str(e))}\n")
            raise typer.Exit(e.exit_code) from None
        shown = global_redactor().text(_words(cmd))
        if code != 0 or report is None:
            verdict = report.verdict.upper().replace("_", " ") if report is not None else "?"
            sys.stderr.write(f"gate: {verdict} (exit {code}): `{shown}` was not run\n")
            raise typer.Exit(code)
        sys.stderr.write(f"gate: READY: running `{shown}`\n")
        sys.stderr.flush()
        try:
            proc = subprocess.Popen(cmd)
        except OSError as e:
            sys.stderr.write(f"error: cannot run {cmd[0]}: {e.strerror}; check the command\n")
            raise typer.Exit(2) from None
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            # the command got the same Ctrl-C (one process group): let it finish its own way
            try:
                rc = proc.wait(timeout=30)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                proc.kill()
                rc = proc.wait()
        raise typer.Exit(rc if rc >= 0 else 128 - rc)
