"""`readyctl report render`, `readyctl diff`, `readyctl waivers lint` and
`readyctl attestations lint`."""

from __future__ import annotations

from pathlib import Path

import typer

from readyctl.cli._common import CONFIG_OPT, NO_COLOR_OPT

report_app = typer.Typer(help="Re-render saved reports.", no_args_is_help=True)
waivers_app = typer.Typer(
    help="Waivers: accepted risks with owners and expiry.", no_args_is_help=True
)
attestations_app = typer.Typer(
    help="Attestations: signed sign-offs for what no check can verify (security audit, legal "
    "review, DR test, support on call).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the command groups."""
    app.add_typer(report_app, name="report")
    app.add_typer(waivers_app, name="waivers")
    app.add_typer(attestations_app, name="attestations")

    @app.command(
        "diff",
        help="Show the score change and every result whose status changed between two runs.\n\n"
        "Example:\n\n  readyctl diff .readyctl/history/A.json reports/readiness.json",
    )
    def diff(
        old: Path = typer.Argument(..., help="The earlier readiness.json."),
        new: Path = typer.Argument(..., help="The later readiness.json."),
        no_color: bool = NO_COLOR_OPT,
    ) -> None:
        from rich.table import Table

        from readyctl import history
        from readyctl.cli._ui import make_console

        try:
            a = history.load_baseline(old)
            b = history.load_baseline(new)
        except (OSError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        cmp = history.compare(a, b["results"], b.get("score"))
        ui = make_console(no_color=no_color)
        delta = cmp["score_delta"]
        sign = "+" if delta and delta > 0 else ""
        ui.out.print(
            f"score {a.get('score')} -> {b.get('score')} "
            f"({sign}{delta if delta is not None else '-'}), verdict {a.get('verdict')} -> "
            f"{b.get('verdict')}",
            markup=False,
        )
        if not cmp["changes"]:
            ui.out.print("no result changed status")
            return
        table = Table(title=f"{len(cmp['changes'])} results changed status", title_justify="left")
        for col in ("Check", "Subject", "Before", "After"):
            table.add_column(col, overflow="fold")
        for c in cmp["changes"]:
            table.add_row(c["id"], c["subject"], c["from"], c["to"])
        ui.out.print(table)


@report_app.command(
    "render",
    help="Re-render a readiness.json into other formats (same file names as readyctl check).\n\n"
    "Example:\n\n  readyctl report render reports/readiness.json --format html,junit --out out/",
)
def render(
    file: Path = typer.Argument(..., help="A readiness.json."),
    format: str = typer.Option(
        "terminal", "--format", "-f", help="terminal,json,html,junit,markdown,sarif"
    ),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Output directory."),
    no_color: bool = NO_COLOR_OPT,
) -> None:
    from readyctl.cli._ui import make_console
    from readyctl.report import Report
    from readyctl.reporters import parse_formats, write_files
    from readyctl.reporters.terminal import render as render_terminal

    try:
        formats = parse_formats(format)
        report = Report.load(file)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    written = write_files(report, out, formats)
    if "terminal" in formats:
        render_terminal(report, make_console(no_color=no_color).out, json_path=written.get("json"))
    for name, path in written.items():
        typer.echo(f"{name}: {path}")


@waivers_app.command(
    "lint",
    help="Validate waivers and list days left. Exit codes: 0 all valid; 1 one is expired or "
    "invalid; 2 usage or config error; 4 internal error (a bug in readyctl).\n\n"
    "Example:\n\n  readyctl waivers lint --config readyctl.yaml",
)
def lint(config: Path | None = CONFIG_OPT, no_color: bool = NO_COLOR_OPT) -> None:
    from rich.table import Table

    from readyctl import waivers
    from readyctl.cli._run import redactor_today
    from readyctl.cli._ui import make_console
    from readyctl.config import load_config
    from readyctl.errors import ReadyctlError
    from readyctl.registry import load_catalog

    try:
        loaded = load_config(config)
    except ReadyctlError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    metas = {c.meta.id: c.meta for c in load_catalog()}
    states = waivers.evaluate(loaded.config.waivers, metas, redactor_today())
    ui = make_console(no_color=no_color)
    if not states:
        ui.out.print("no waivers")
        return
    table = Table(title=f"{len(states)} waivers", title_justify="left")
    for col in ("Check", "Subject", "Owner", "Expires", "Days left", "Status"):
        table.add_column(col, overflow="fold")
    bad = 0
    for s in states:
        w = s.waiver
        if s.problems:
            status, bad = "invalid: " + "; ".join(s.problems), bad + 1
        elif s.expired:
            status, bad = "EXPIRED", bad + 1
        else:
            status = "ok"
        table.add_row(
            w.check,
            w.subject or "*",
            w.owner,
            str(w.expires or "-"),
            "-" if s.days_left is None else str(s.days_left),
            status,
        )
    ui.out.print(table)
    raise typer.Exit(1 if bad else 0)


@attestations_app.command(
    "lint",
    help="Validate attestations (every field set, not expired, not on an item a check "
    "covers) and list days left; one expiring within 14 days is named. Exit codes: 0 all "
    "valid; 1 one is expired or invalid; 2 usage or config error; 4 internal error (a bug in "
    "readyctl).\n\n"
    "Example:\n\n  readyctl attestations lint --config readyctl.yaml",
)
def lint_attestations(
    config: Path | None = CONFIG_OPT,
    today: str | None = typer.Option(
        None, "--today", help="Judge expiry as of this day, YYYY-MM-DD (default: today, UTC)."
    ),
    no_color: bool = NO_COLOR_OPT,
) -> None:
    import datetime as dt

    from rich.table import Table
    from rich.text import Text

    from readyctl import attestations
    from readyctl.cli._run import redactor_today
    from readyctl.cli._ui import make_console
    from readyctl.config import load_config
    from readyctl.errors import ReadyctlError
    from readyctl.registry import load_catalog

    try:
        day = dt.date.fromisoformat(today) if today else redactor_today()
    except ValueError:
        typer.echo(f"error: --today {today!r} is not a YYYY-MM-DD date", err=True)
        raise typer.Exit(2) from None
    try:
        loaded = load_config(config)
    except ReadyctlError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    metas = {c.meta.id: c.meta for c in load_catalog()}
    states = attestations.evaluate(loaded.config.attestations, metas, day)
    ui = make_console(no_color=no_color)
    required = loaded.config.gate.require_attestations
    signed = {s.attestation.item for s in states if s.valid}
    unsigned = [i for i in required if i not in signed]
    if not states and not unsigned:
        ui.out.print("no attestations")
        return
    bad = 0
    if states:
        table = Table(title=f"{len(states)} attestations", title_justify="left")
        for col in ("Item", "By", "At", "Evidence", "Expires", "Days left", "Status"):
            table.add_column(col, overflow="fold")
        for s in states:
            a = s.attestation
            if s.problems:
                status, bad = "invalid: " + "; ".join(s.problems), bad + 1
            elif s.expired:
                status, bad = "EXPIRED", bad + 1
            elif s.expiring_soon:
                status = f"ok, expires in {s.days_left} days"
            else:
                status = "ok"
            table.add_row(
                a.item,
                a.by or "-",
                str(a.at or "-"),
                Text(a.evidence or "-"),
                str(a.expires or "-"),
                "-" if s.days_left is None else str(s.days_left),
                Text(status),
            )
        ui.out.print(table)
    for item in unsigned:
        bad += 1
        ui.out.print(
            Text(f"{item}: required by gate.require_attestations but has no valid attestation")
        )
    raise typer.Exit(1 if bad else 0)
