"""`readyctl deploy`: run the deploy runbook (gate, backup, maintenance, migrate, deploy,
smoke, monitor) against an environment, with automatic rollback and an audit log."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer

from readyctl.cli._common import BASE_URL_OPT, CONFIG_OPT, ENV_OPT, NO_COLOR_OPT, QUIET_OPT

RUN_EXIT_HELP = (
    "Exit codes: 0 succeeded; 1 failed (rolled back or not), stopped, or refused (another "
    "deploy of the target is running, or an unfinished run waits for --resume/--abandon); "
    "2 bad input (runbook, config, flags: nothing ran); 3 a step needs a confirmation the run "
    "could not get (no terminal, no --yes: resume with --resume --yes), or the gate was "
    "inconclusive; 130 interrupted (the first Ctrl-C finishes the running step, the state is "
    "kept for --resume; a second aborts the step); 4 internal error."
)

RELEASE_OPT = typer.Option(None, "--release", "-r", help="The release to deploy (e.g. v2).")
PLAN_OPT = typer.Option(
    False, "--plan", help="List every step and what it touches; run nothing, contact nothing."
)
YES_OPT = typer.Option(False, "--yes", "-y", help="Answer yes to every confirmation (CI).")
RESUME_OPT = typer.Option(
    False,
    "--resume",
    help="Continue the target's unfinished run (from the interrupted step, or its rollback, "
    "by the runbook's resume: policy).",
)
ABANDON_OPT = typer.Option(
    False, "--abandon", help="Mark the target's unfinished run abandoned (audit log), then go on."
)
REASON_OPT = typer.Option(None, "--reason", help="Why the run is abandoned (audit log).")
VAR_OPT = typer.Option(
    [],
    "--var",
    help="A runbook variable, NAME=VALUE (repeat); over readyctl.yaml's and the runbook's.",
)
DATABASE_URL_OPT = typer.Option(
    None, "--database-url", help="Target database URL (overrides the environment's)."
)
STATE_TABLE_OPT = typer.Option(
    False,
    "--state-table",
    help="Also keep the run's state in a readyctl_deploys table on the target database.",
)


def parse_vars(items: list[str]) -> dict[str, str]:
    """`--var a=1 --var b=x=y` -> {"a": "1", "b": "x=y"}; UsageError on a bad one."""
    from readyctl.errors import UsageError

    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
            raise UsageError(f"--var {item[:40]!r}: write NAME=VALUE (NAME: letters, digits, _)")
        out[name] = value
    return out


class TerminalRunbookUI:
    """One line per step on stdout; notes and prompts on stderr."""

    STYLE = {
        "succeeded": "green",
        "compensated": "green",
        "skipped": "dim",
        "nothing_to_undo": "dim",
        "failed": "red",
        "needs_confirmation": "yellow",
        "declined": "yellow",
        "interrupted": "yellow",
    }

    def __init__(self, *, no_color: bool = False, quiet: bool = False) -> None:
        """Consoles for stdout and stderr."""
        from readyctl.cli._ui import make_console

        self.ui = make_console(no_color=no_color, quiet=quiet)
        self.quiet = quiet

    def say(self, text: str) -> None:
        """A note on stderr."""
        self.ui.print(text, style="dim", markup=False)

    def step_started(self, section: str, step_id: str, what: str) -> None:
        """Nothing: the line comes when the step ends (a note when not quiet)."""
        if not self.quiet:
            self.ui.err.print(f"  ... {step_id}: {what}", style="dim", markup=False)

    def step_finished(self, section: str, entry: Any) -> None:
        """`  ✓ migrate   succeeded   3.2s  applied 0005_session_mood`."""
        from rich.text import Text

        from readyctl.redact import global_redactor

        status = str(entry.get("status"))
        prefix = {"rollback": "undo ", "after_rollback": ""}.get(section, "")
        took = entry.get("duration_s")
        line = Text("  ")
        line.append(f"{prefix}{entry.get('id')}".ljust(30) + " ")
        line.append(status.ljust(19), style=self.STYLE.get(status, ""))
        line.append((f"{took:.1f}s" if isinstance(took, int | float) else "").rjust(8))
        summary = global_redactor().clip(entry.get("summary") or "", 160, marker="...")
        if summary:
            line.append(f"  {summary}", style="dim" if status == "succeeded" else "")
        self.ui.out.print(line)

    def log(self, step_id: str, line: str) -> None:
        """A step's progress line on stderr (unless quiet)."""
        if not self.quiet:
            self.ui.err.print(f"      {step_id}: {line}", style="dim", markup=False)

    def ask(self, question: str) -> bool | None:
        """Ask on the terminal; None when stdin is not one."""
        if not sys.stdin.isatty():
            return None
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        try:
            answer = sys.stdin.readline()
        except (EOFError, OSError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def show_plan(self, result: Any) -> None:
        """The plan: every step, what it does and touches, its policy."""
        from readyctl.redact import global_redactor

        red = global_redactor()
        out = self.ui.out
        out.print(f"Plan of runbook {result.runbook_path} (nothing runs):", markup=False)
        section = "steps"
        for n, step in enumerate(result.plan, 1):
            if step["section"] != section:
                section = step["section"]
                out.print("after a rollback:", markup=False)
            flags = [f"touches {step['touches']}", f"on_failure {step['on_failure']}"]
            if step["when"]:
                flags.append(f"when {step['when']}")
            if step["confirm"]:
                flags.append("asks first")
            if step["retries"]:
                flags.append(f"retries {step['retries']}")
            flags.append(f"timeout {step['timeout']}")
            out.print(f"  {n:>2}. {step['id']} ({step['uses']})", markup=False)
            out.print(f"      {red.clip(step['what'], 300)}", markup=False, style="dim")
            out.print(f"      {', '.join(flags)}", markup=False, style="dim")
            if step["rollback"]:
                out.print(f"      rollback: {red.clip(step['rollback'], 200)}", markup=False)

    def show_result(self, result: Any) -> None:
        """The run's final status and where its state and audit log are."""
        style = {"succeeded": "bold green", "rolled_back": "bold yellow"}.get(
            result.status, "bold red"
        )
        code = result.exit_code
        self.ui.out.print(
            f"run {result.run_id}: {result.status.upper().replace('_', ' ')} (exit {code})",
            style=style,
            markup=False,
        )
        from readyctl.redact import global_redactor

        if result.message:
            self.ui.out.print(f"  {global_redactor().clip(result.message, 400)}", markup=False)
        if result.state_path:
            self.ui.out.print(f"  state: {result.state_path}", markup=False)
        if result.audit_path:
            self.ui.out.print(f"  audit log: {result.audit_path}", markup=False)
        for kind, path in result.timeline.items():
            self.ui.out.print(f"  timeline ({kind}): {path}", markup=False)


def run_cli(opts: Any, *, no_color: bool = False, quiet: bool = False) -> None:
    """Plan or run; print; exit with the documented code (user errors: one line, exit 2)."""
    from readyctl.errors import ReadyctlError
    from readyctl.redact import global_redactor
    from readyctl.runbook.engine import execute

    ui = TerminalRunbookUI(no_color=no_color, quiet=quiet)
    try:
        result = execute(opts, ui)
    except ReadyctlError as e:
        sys.stderr.write(f"error: {global_redactor().text(str(e))}\n")
        raise typer.Exit(e.exit_code) from None
    if result.plan is not None:
        ui.show_plan(result)
        raise typer.Exit(0)
    ui.show_result(result)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the command."""

    @app.command(
        "deploy",
        help=(
            "Deploy a release with the deploy runbook: pre-deploy gate, verified backup, "
            "maintenance on, migrations, deploy, smoke, monitor, maintenance off; on a failure "
            "the completed steps are undone in reverse. One deploy at a time per target "
            "(a PostgreSQL advisory lock); state and a JSONL audit log under "
            ".readyctl/runs/<run id>/.\n\n"
            "The runbook: --runbook, else runbooks/deploy.yaml next to readyctl.yaml, else "
            "the packaged one.\n\n"
            "Examples:\n\n"
            "  readyctl deploy --env production --release v2 --plan\n\n"
            "  readyctl deploy --env production --release v2\n\n"
            "  readyctl deploy --release v2 --monitor-window 20s --yes\n\n"
            "  readyctl deploy --resume\n\n" + RUN_EXIT_HELP
        ),
    )
    def deploy(
        env: str | None = ENV_OPT,
        release: str | None = RELEASE_OPT,
        plan: bool = PLAN_OPT,
        yes: bool = YES_OPT,
        resume: bool = RESUME_OPT,
        abandon: bool = ABANDON_OPT,
        reason: str | None = REASON_OPT,
        runbook: str | None = typer.Option(
            None, "--runbook", help="A runbook file or name (default: deploy)."
        ),
        var: list[str] = VAR_OPT,
        monitor_window: str | None = typer.Option(
            None, "--monitor-window", help="The monitor step's window (sets vars.monitor_window)."
        ),
        config: Path | None = CONFIG_OPT,
        database_url: str | None = DATABASE_URL_OPT,
        base_url: str | None = BASE_URL_OPT,
        state_table: bool = STATE_TABLE_OPT,
        quiet: bool = QUIET_OPT,
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from readyctl.errors import ReadyctlError, UsageError
        from readyctl.runbook.engine import DeployOptions
        from readyctl.runbook.model import parse_duration

        try:
            variables = parse_vars(var)
            if monitor_window is not None:
                try:
                    parse_duration(monitor_window)
                except ValueError as e:
                    raise UsageError(f"--monitor-window: {e}") from None
                variables["monitor_window"] = monitor_window
        except ReadyctlError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        opts = DeployOptions(
            runbook=runbook,
            config=config,
            env=env,
            release=release,
            vars=variables,
            yes=yes,
            plan=plan,
            resume=resume,
            abandon=abandon,
            reason=reason,
            state_table=state_table,
            database_url=database_url,
            base_url=base_url,
            require_release=True,
        )
        run_cli(opts, no_color=no_color, quiet=quiet)
