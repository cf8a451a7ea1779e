"""Options shared by several commands."""

from __future__ import annotations

import typer

CONFIG_OPT = typer.Option(
    None, "--config", "-c", help="Config file (default: ./readyctl.yaml, else built-in defaults)."
)
ENV_OPT = typer.Option(None, "--env", "-e", help="Environment name from the config.")
OUT_OPT = typer.Option(None, "--out", "-o", help="Report directory (default: reports/).")
FORMAT_OPT = typer.Option(
    None,
    "--format",
    "-f",
    help="Comma-separated formats: terminal,json,html,junit,markdown,sarif "
    "(default: terminal,json).",
)
BASE_URL_OPT = typer.Option(
    None, "--base-url", help="Target API base URL (overrides the environment's)."
)
ENV_FILE_OPT = typer.Option(
    None, "--env-file", help="Env file to validate (overrides the environment's)."
)
ONLY_OPT = typer.Option(
    [],
    "--only",
    help="Run only checks matching an id glob, tag or category (repeat, or a comma list).",
)
SKIP_OPT = typer.Option(
    [],
    "--skip",
    help="Skip checks matching an id glob, tag or category (repeat, or a comma list).",
)
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="Print only the verdict line.")
NO_COLOR_OPT = typer.Option(False, "--no-color", help="No colours in terminal output.")

FOCUSED_EXIT_HELP = (
    "Exit codes: 0 every check it ran passed (or warned); 1 any unwaived failure, whatever its "
    "severity; 3 nothing could be verified (only skips, blocks or errors); 2 usage or config "
    "error; 130 interrupted; 4 internal error (a bug in readyctl)."
)
