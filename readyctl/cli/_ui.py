"""Console, live progress and the plan table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _RichProgress
from rich.table import Table
from rich.text import Text

from readyctl.reporters.terminal import make_console as _make


class UI:
    """stdout for the report, stderr for progress and notes."""

    def __init__(self, *, no_color: bool, quiet: bool) -> None:
        self.out: Console = _make(no_color=no_color)
        self.err: Console = _make(no_color=no_color, stderr=True)
        self.quiet = quiet

    def print(self, *args: Any, **kw: Any) -> None:
        """A note on stderr (silent with --quiet)."""
        if not self.quiet:
            self.err.print(*args, **kw)


def make_console(*, no_color: bool = False, quiet: bool = False) -> UI:
    """The UI pair for one command."""
    return UI(no_color=no_color, quiet=quiet)


class Progress:
    """A live progress bar on stderr when it is a terminal; plain lines are not printed."""

    def __init__(self, ui: UI, *, total: int, enabled: bool) -> None:
        self.ui = ui
        self.total = total
        self.enabled = enabled and ui.err.is_terminal
        self._bar: _RichProgress | None = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._bar = _RichProgress(
                TextColumn("[bold]checks"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}", style="dim"),
                console=self.ui.err,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, event: str, check_id: str, results: Sequence[Any] | None) -> None:
        """Runner callback."""
        if self._bar is None:
            return
        if event == "start":
            self._bar.update(self._task, description=check_id)
        elif event == "done":
            self._bar.advance(self._task)


def print_plan(ui: UI, items: Sequence[Any], env_name: str, env: Any) -> None:
    """What would run, its safety class and what it would touch; contacts nothing."""
    table = Table(title=f"Plan for environment {env_name}", title_justify="left")
    table.add_column("Check", no_wrap=True)
    table.add_column("Action", no_wrap=True)
    table.add_column("Safety", no_wrap=True)
    table.add_column("Phase", no_wrap=True)
    table.add_column("Touches / reason", overflow="fold")
    for item in items:
        meta = item.meta
        action = Text("run", style="green") if item.action == "run" else Text("skip", style="dim")
        note = item.touches if item.action == "run" else (item.reason or "")
        if item.depends_on and item.action == "run":
            note += f" (after {', '.join(item.depends_on)})"
        table.add_row(
            meta.id,
            action,
            meta.safety.value,
            "exclusive" if meta.exclusive else "parallel",
            note,
        )
    ui.out.print(table)
    runs = sum(1 for i in items if i.action == "run")
    managed = " (the managed demo would be started)" if env.managed else ""
    ui.out.print(f"{runs} of {len(items)} checks would run{managed}; nothing was contacted.")


def print_plan_api(ui: UI, ctx: Any) -> None:
    """The API map as configured, each value with its source, and what discovery will try."""
    from readyctl import apimap

    env = ctx.environment
    api = ctx.api_static()
    rows = list(api.describe())
    spec = env.api.openapi if env.api is not None else "auto"
    if env.managed == "demo" and getattr(env, "demo_shape", "default") == "default":
        rows.append(("*", "the managed demo's routes (readyctl/demo/profile.py)", apimap.DEFAULT))
    if not rows and spec == "off":
        ui.out.print("API map: empty and discovery is off; route-needing checks will skip.")
        return
    table = Table(title="API map", title_justify="left")
    table.add_column("Key", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_column("Source", no_wrap=True)
    for key, value, source in rows:
        table.add_row(key, value, source)
    if spec != "off":
        where = "the usual places" if spec == "auto" else spec
        table.add_row("openapi", f"discovered at run time from {where}", "openapi")
    ui.out.print(table)
    for note in api.notes:
        ui.out.print(f"note: {note}", style="yellow")


def print_plan_coverage(ui: UI, items: Sequence[Any]) -> None:
    """Which required checklist items this configuration cannot verify, and what each needs."""
    blocked = [it for it in items if it.blocks_gate]
    if not blocked:
        ui.out.print("Every required checklist item has a check that would run.")
        return
    from readyctl.coverage import item_label

    ui.out.print(
        f"At least {len(blocked)} required checklist item(s) cannot be verified with this "
        "configuration (the verdict would be INCONCLUSIVE; checks that run may still skip):",
        style="yellow",
    )
    for it in blocked:
        settings = [m["setting"] for m in it.missing if m["setting"]]
        needs = "; ".join(dict.fromkeys(settings or [m["reason"] for m in it.missing]))
        ui.out.print(f"  - {it.priority.value} item {item_label(it.item)}: needs {needs}")
