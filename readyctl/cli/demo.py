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
    state_file: str | None = typer.Option(
        None,
        "--state-file",
        help="Write the demo's state (URLs, files, pid, control socket; mode 0600, secrets "
        "inside) to this file, for `readyctl demo release|maintenance --state-file` from other "
        "processes. Removed when the demo stops.",
    ),
) -> None:
    from readyctl.cli._run import split_patterns
    from readyctl.demo.__main__ import run_foreground
    from readyctl.demo.faults import ALL_FAULT_NAMES

    fault = split_patterns(fault)
    unknown = [f for f in fault if f not in ALL_FAULT_NAMES]
    if unknown:
        typer.echo(
            f"error: unknown fault {unknown[0]!r}; `readyctl demo faults` lists them", err=True
        )
        raise typer.Exit(2)
    from readyctl import _interrupt

    _interrupt.uninstall()  # Ctrl-C/SIGTERM stop the foreground demo (run_foreground), exit 0
    raise typer.Exit(run_foreground(list(fault), typer.echo, shape, state_file))


@demo_app.command(
    "faults",
    help="List every fault switch, what it breaks and the checks that must turn red.\n\n"
    "Release faults (bad-release, slow-release, failing-migration) break no check: they "
    "affect `readyctl deploy --release v2`.\n\n"
    "Example:\n\n  readyctl demo faults --format json",
)
def faults(format: str = typer.Option("table", "--format", "-f", help="table or json.")) -> None:
    import json

    from readyctl.demo.faults import FAULTS, RELEASE_FAULT_TARGET, RELEASE_FAULTS

    rows = [
        {
            "name": f.name,
            "description": f.description,
            "checks": list(f.checks),
            "affects": "readyctl check",
        }
        for f in FAULTS.values()
    ]
    rows += [
        {
            "name": f.name,
            "description": f.description,
            "checks": [],
            "affects": RELEASE_FAULT_TARGET,
        }
        for f in RELEASE_FAULTS.values()
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
        checks = ", ".join(r["checks"]) or "-"
        if r["affects"] != "readyctl check":
            checks = f"none: affects {r['affects']}"
        table.add_row(r["name"], r["description"], checks)
    make_console().out.print(table)


STATE_FILE_HELP = (
    "State file of the demo (written by `readyctl demo up --state-file`, or by the managed demo "
    "of `readyctl check`/`deploy`, which sets $READYCTL_DEMO_STATE)."
)


def _state_or_exit(state_file: str | None) -> dict[str, object]:
    """Read the state file, or print one line and exit 1."""
    from readyctl.demo.control import ControlError, read_state

    if not state_file:
        typer.echo("error: --state-file is required (or set READYCTL_DEMO_STATE)", err=True)
        raise typer.Exit(2)
    try:
        return read_state(state_file)
    except ControlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@demo_app.command(
    "release",
    help="Swap the running demo to a release with a graceful restart (no refused connection): "
    "a new server starts on the same sockets, answers ready, then the old one drains.\n\n"
    "Exits 0 once the release serves ready, 1 with one line otherwise. Migrations are not run "
    "(alembic with the state file's alembic_ini of the release).\n\n"
    "Example:\n\n  readyctl demo release v2 --state-file demo.json",
)
def release(
    name: str | None = typer.Argument(None, metavar="RELEASE", help="v1 or v2."),
    state_file: str | None = typer.Option(
        None, "--state-file", envvar="READYCTL_DEMO_STATE", help=STATE_FILE_HELP
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for ready."),
    current: bool = typer.Option(
        False, "--current", help="Print the release serving now (a deploy's previous release)."
    ),
) -> None:
    from readyctl.demo.control import ControlError, request_release
    from readyctl.demo.releases import RELEASES

    if current:
        from readyctl.demo.control import probe_ready

        status, tag = probe_ready(_state_or_exit(state_file))
        if status == 0:
            typer.echo(f"error: the demo does not answer ({tag})", err=True)
            raise typer.Exit(1)
        typer.echo(tag or "v1")  # v1 sends no X-Release header
        return
    if name is None:
        typer.echo("error: name the release (v1 or v2), or pass --current", err=True)
        raise typer.Exit(2)
    if name not in RELEASES:
        typer.echo(f"error: unknown release {name!r}; choose {', '.join(RELEASES)}", err=True)
        raise typer.Exit(2)
    state = _state_or_exit(state_file)
    try:
        answer = request_release(state, name, timeout_s=timeout)
    except ControlError as exc:
        typer.echo(f"error: release {name}: {exc}", err=True)
        raise typer.Exit(1) from None
    from readyctl.demo.control import probe_ready

    status, tag = probe_ready(state)
    expected = None if name == "v1" else name
    if status != 200 or tag != expected:
        typer.echo(
            f"error: release {name}: the ready endpoint answered {status or tag} "
            f"(X-Release: {tag or 'none'})",
            err=True,
        )
        raise typer.Exit(1)
    how = "already served" if answer.get("unchanged") else f"swapped in {answer.get('seconds')} s"
    typer.echo(f"release {name} serves ready (server pid {answer.get('server_pid')}, {how})")


@demo_app.command(
    "maintenance",
    help="Switch the demo's maintenance mode on or off, or show it: while on, every route but "
    "the health probes answers 503 with Retry-After, except to requests carrying the bypass "
    "header (name and secret in the state file).\n\n"
    "Example:\n\n  readyctl demo maintenance on --state-file demo.json",
)
def maintenance(
    mode: str = typer.Argument(..., metavar="on|off|status", help="on, off or status."),
    state_file: str | None = typer.Option(
        None, "--state-file", envvar="READYCTL_DEMO_STATE", help=STATE_FILE_HELP
    ),
) -> None:
    import os

    from readyctl.demo.control import owner_alive, set_maintenance

    if mode not in ("on", "off", "status"):
        typer.echo(f"error: {mode!r}: choose on, off or status", err=True)
        raise typer.Exit(2)
    state = _state_or_exit(state_file)
    flag = str(state.get("maintenance_file") or "")
    if not flag:
        typer.echo("error: the state file names no maintenance file", err=True)
        raise typer.Exit(1)
    if mode == "status":
        typer.echo(f"maintenance is {'on' if os.path.exists(flag) else 'off'}")
        return
    if not owner_alive(state):
        typer.echo(
            f"error: the process that owns the demo (pid {state.get('pid')}) is gone", err=True
        )
        raise typer.Exit(1)
    try:
        was_on = set_maintenance(flag, mode == "on")
    except OSError as exc:
        typer.echo(f"error: cannot switch maintenance {mode}: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"maintenance is {mode} (was {'on' if was_on else 'off'})")
