"""The console script's entry: signal handlers first, then the CLI's imports.

A SIGINT or SIGTERM that arrives while the CLI is still importing is recorded (and ends in
exit 130 with an interrupted report) instead of killing the process.
"""

from __future__ import annotations


def main() -> None:
    """Install readyctl's signal handling, then run the CLI."""
    from readyctl import _interrupt

    _interrupt.install()

    from readyctl.cli import main as cli_main

    cli_main()
