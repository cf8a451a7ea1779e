"""The `readyctl` command: one module per command group; heavy imports happen inside commands."""

from __future__ import annotations

import os
import sys

import typer

from readyctl import __version__

app = typer.Typer(
    name="readyctl",
    help=(
        "Measure an API's production readiness: run the checklist as checks, score it, "
        "gate the deploy.\n\n"
        "Examples:\n\n"
        "  readyctl check                          # the bundled demo target\n\n"
        "  readyctl check --env staging --format json,junit\n\n"
        "  readyctl env validate --env-file .env.production\n\n"
        "  readyctl list --format json"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"readyctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Production-readiness checks for HTTP APIs with PostgreSQL."""


from readyctl.cli import baseline as _baseline  # noqa: E402
from readyctl.cli import catalog as _catalog  # noqa: E402
from readyctl.cli import check as _check  # noqa: E402
from readyctl.cli import config_cmd as _config_cmd  # noqa: E402
from readyctl.cli import db as _db  # noqa: E402
from readyctl.cli import demo as _demo  # noqa: E402
from readyctl.cli import deploy as _deploy  # noqa: E402
from readyctl.cli import env as _env  # noqa: E402
from readyctl.cli import gate as _gate  # noqa: E402
from readyctl.cli import init_cmd as _init_cmd  # noqa: E402
from readyctl.cli import load as _load  # noqa: E402
from readyctl.cli import report as _report  # noqa: E402
from readyctl.cli import runbook as _runbook  # noqa: E402
from readyctl.cli import schema as _schema  # noqa: E402
from readyctl.cli import smoke as _smoke  # noqa: E402

_check.register(app)
_catalog.register(app)
_env.register(app)
_demo.register(app)
_schema.register(app)
_report.register(app)
_db.register(app)
_smoke.register(app)
_load.register(app)
_baseline.register(app)
_config_cmd.register(app)
_init_cmd.register(app)
_gate.register(app)
_deploy.register(app)
_runbook.register(app)


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback; a bug
    in readyctl prints one line and exits 4 (EXIT_INTERNAL)."""
    from readyctl import _interrupt

    # SIGINT/SIGTERM never kill readyctl: cleanups, a report marked interrupted, exit 130
    with _interrupt.guarded():
        _main()


def _main() -> None:
    """The command, with its documented exit codes."""
    from readyctl.errors import ReadyctlError

    try:
        app(standalone_mode=True)
    except ReadyctlError as e:
        from readyctl.redact import global_redactor

        sys.stderr.write(f"error: {global_redactor().text(str(e))}\n")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:  # a bug in readyctl: no traceback unless asked for
        if os.environ.get("READYCTL_DEBUG"):
            raise
        from readyctl.redact import global_redactor
        from readyctl.scoring import EXIT_INTERNAL

        msg = global_redactor().text(f"{type(e).__name__}: {e}")
        first = (msg.splitlines() or [type(e).__name__])[0][:500]
        sys.stderr.write(
            f"internal error: {first} (set READYCTL_DEBUG=1 for the traceback); please report it\n"
        )
        # its own code, distinct from 3 (inconclusive): CI must not read a bug as a verdict
        sys.exit(EXIT_INTERNAL)
