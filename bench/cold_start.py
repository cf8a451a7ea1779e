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

BARE_HEAD = """
import typer
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})
def _version(value: bool) -> None:
    if value:
        print("bare 0")
        raise typer.Exit(0)
@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="v")) -> None:
    pass
"""


def bare_source() -> str:
    """A bare Typer app with readyctl's command tree (same commands and groups, no bodies)."""
    import typer.main

    from readyctl.cli import app

    cmd = typer.main.get_command(app)
    lines = [BARE_HEAD]
    for name, sub in cmd.commands.items():  # type: ignore[attr-defined]
        if hasattr(sub, "commands"):
            lines.append(f"g_{name} = typer.Typer(help={sub.help!r})")
            for child in sub.commands:
                lines.append(f"g_{name}.command({child!r}, help='x')(lambda: None)")
            lines.append(f"app.add_typer(g_{name}, name={name!r})")
        else:
            lines.append(f"app.command({name!r}, help={(sub.help or '')[:60]!r})(lambda: None)")
    lines.append("app()")
    return "\n".join(lines)


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
        bare.write_text(bare_source())
        for flag in ("--version", "--help"):
            ours = median_ms([sys.executable, "-m", "readyctl", flag], runs)
            theirs = median_ms([sys.executable, str(bare), flag], runs)
            print(
                f"readyctl {flag:9s} {ours:7.1f} ms   bare typer {theirs:7.1f} ms   "
                f"ratio {ours / theirs:.2f}x (goal <= 1.5x)"
            )


if __name__ == "__main__":
    main()
