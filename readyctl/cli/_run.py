"""The CLI side of running checks: the terminal UI and exit codes (the pipeline is
readyctl.pipeline)."""

from __future__ import annotations

import sys
from typing import Any

from readyctl.errors import ReadyctlError
from readyctl.pipeline import (
    RunOptions,
    RunUI,
    execute_report,
    focused_exit,
    managed_environ,
    managed_environment,
    parse_duration,
    redactor_today,
    split_patterns,
    validate_check_settings,
)

__all__ = [
    "RunOptions",
    "TerminalUI",
    "execute",
    "execute_report",
    "focused_exit",
    "managed_environ",
    "managed_environment",
    "parse_duration",
    "redactor_today",
    "run_command",
    "run_focused",
    "split_patterns",
    "validate_check_settings",
]


class TerminalUI(RunUI):
    """Rich output on stdout/stderr: status lines, the progress bar, the plan, the report."""

    def __init__(self, *, no_color: bool = False, quiet: bool = False) -> None:
        from readyctl.cli._ui import make_console

        self.ui = make_console(no_color=no_color, quiet=quiet)
        self.quiet = quiet

    def say(self, text: str, style: str | None = None) -> None:
        """A note on stderr unless --quiet."""
        self.ui.print(text, style=style, markup=False)

    def warn(self, text: str) -> None:
        """A line on stderr."""
        self.ui.err.print(text, style="yellow", markup=False)

    def show_plan(self, ctx: Any, items: Any, env_name: str, env: Any, coverage: Any) -> None:
        """The plan, the API map and the coverage, as `check --plan` prints them."""
        from readyctl.cli._ui import print_plan, print_plan_api, print_plan_coverage

        print_plan(self.ui, items, env_name, env)
        print_plan_api(self.ui, ctx)
        print_plan_coverage(self.ui, coverage)

    def progress(self, total: int) -> Any:
        """The live progress bar (on a terminal)."""
        from readyctl.cli._ui import Progress

        return Progress(self.ui, total=total, enabled=not self.quiet)

    def show_report(self, report: Any, json_path: Any) -> None:
        """The terminal report (one line with --quiet)."""
        from readyctl.reporters.terminal import render, render_quiet

        if self.quiet:
            render_quiet(report, self.ui.out, json_path=json_path)
        else:
            render(report, self.ui.out, json_path=json_path)


def execute(opts: RunOptions) -> int:
    """Run checks with the terminal UI; the exit code."""
    return execute_report(opts, TerminalUI(no_color=opts.no_color, quiet=opts.quiet))[0]


def run_command(opts: RunOptions) -> None:
    """Execute and exit with the documented code (user errors are one line, exit 2)."""
    import typer

    try:
        code = execute(opts)
    except ReadyctlError as e:
        from readyctl.redact import global_redactor

        sys.stderr.write(f"error: {global_redactor().text(str(e))}\n")
        raise typer.Exit(e.exit_code) from None
    raise typer.Exit(code)


def run_focused(opts: RunOptions, *, nothing_is_ok: bool = False) -> None:
    """Execute a focused command and exit by its own checks (see `focused_exit`)."""
    import typer

    from readyctl.redact import global_redactor

    try:
        code, report = execute_report(opts, TerminalUI(no_color=opts.no_color, quiet=opts.quiet))
    except ReadyctlError as e:
        sys.stderr.write(f"error: {global_redactor().text(str(e))}\n")
        raise typer.Exit(e.exit_code) from None
    if code in (2, 130) or report is None:
        raise typer.Exit(code)
    focused, why = focused_exit(report, nothing_is_ok=nothing_is_ok, own=opts.fixed_selection)
    if why:
        sys.stderr.write(global_redactor().text(why) + "\n")
    raise typer.Exit(focused)
