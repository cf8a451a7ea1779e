"""`readyctl demo`: the bundled counseling API, for trying readyctl and for its tests."""

from __future__ import annotations

import typer

demo_app = typer.Typer(help="The bundled reference counseling API.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the command group."""
    app.add_typer(demo_app, name="demo")


@demo_app.command(
    "up",
    help="Serve the demo API and its embedded PostgreSQL in the foreground until Ctrl-C.\n\n"
    "Examples:\n\n  readyctl demo up\n\n  readyctl demo up --fault no-hsts --fault slow-counsel",
)
def up(
    fault: list[str] = typer.Option(
        [], "--fault", help="Switch a fault on (repeat, or a comma list)."
    ),
    shape: str | None = typer.Option(
        None,
        "--shape",
        help="API shape: default, alt, alt-norefresh or alt-noopenapi "
        "(default: $READYCTL_DEMO_SHAPE, else default).",
    ),
) -> None:
    from readyctl.cli._run import split_patterns
    from readyctl.demo.__main__ import run_foreground
    from readyctl.demo.faults import FAULTS

    fault = split_patterns(fault)
    unknown = [f for f in fault if f not in FAULTS]
    if unknown:
        typer.echo(
            f"error: unknown fault {unknown[0]!r}; `readyctl demo faults` lists them", err=True
        )
        raise typer.Exit(2)
    from readyctl import _interrupt

    _interrupt.uninstall()  # Ctrl-C/SIGTERM stop the foreground demo (run_foreground), exit 0
    raise typer.Exit(run_foreground(list(fault), typer.echo, shape))


@demo_app.command(
    "faults",
    help="List every fault switch, what it breaks and the checks that must turn red.\n\n"
    "Example:\n\n  readyctl demo faults --format json",
)
def faults(format: str = typer.Option("table", "--format", "-f", help="table or json.")) -> None:
    import json

    from readyctl.demo.faults import FAULTS

    rows = [
        {"name": f.name, "description": f.description, "checks": list(f.checks)}
        for f in FAULTS.values()
    ]
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if format != "table":
        typer.echo(f"error: --format {format!r}: choose table or json", err=True)
        raise typer.Exit(2)
    from rich.table import Table

    from readyctl.cli._ui import make_console

    table = Table(title=f"{len(rows)} demo faults", title_justify="left")
    table.add_column("Fault", no_wrap=True)
    table.add_column("Breaks", overflow="fold")
    table.add_column("Checks that must fail", overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["description"], ", ".join(r["checks"]) or "-")
    make_console().out.print(table)
