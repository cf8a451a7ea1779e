"""Cold start: `readyctl --version` and `--help` against a bare Typer app with the same tree.

Run: python bench/cold_start.py [runs]
Prints medians (ms) and the ratio readyctl / bare (goal: at most 1.5x).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import typer
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
@app.callback()
def root(version: bool = typer.Option(False, "--version", help="v")) -> None:
    if version:
        print("bare 0"); raise typer.Exit(0)
for name in ("check", "list", "explain", "schema"):
    app.command(name, help=name)(lambda: None)
for group, cmds in (("env", ["validate"]), ("demo", ["up", "faults"])):
    sub = typer.Typer(help=group)
    for c in cmds:
        sub.command(c, help=c)(lambda: None)
    app.add_typer(sub, name=group)
app()
"""


def median_ms(cmd: list[str], runs: int) -> float:
    """Median wall time of a command, in milliseconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print the figures."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as d:
        bare = Path(d) / "bare.py"
        bare.write_text(BARE)
        for flag in ("--version", "--help"):
            ours = median_ms([sys.executable, "-m", "readyctl", flag], runs)
            theirs = median_ms([sys.executable, str(bare), flag], runs)
            print(
                f"readyctl {flag:9s} {ours:7.1f} ms   bare typer {theirs:7.1f} ms   "
                f"ratio {ours / theirs:.2f}x (goal <= 1.5x)"
            )


if __name__ == "__main__":
    main()
