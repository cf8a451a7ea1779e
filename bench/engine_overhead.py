"""Engine overhead: config load to report written, in-process, for a config with 500 env rules.

Run: python bench/engine_overhead.py
Prints the median of several runs (goal: under 0.5 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from readyctl.config import load_config
from readyctl.context import Context
from readyctl.redact import Redactor
from readyctl.registry import load_catalog
from readyctl.report import build_report
from readyctl.reporters import write_files
from readyctl.runner import plan, run, select

N = 500


def setup(d: Path) -> Path:
    """Write an env file, an example and a config with N rules."""
    kinds = ["int", "url", "email", "bool", "duration", "str"]
    values = {
        "int": "42",
        "url": "https://x.example.org/a",
        "email": "a@b.org",
        "bool": "true",
        "duration": "30s",
        "str": "plain-value-123",
    }
    lines, rules = [], []
    for i in range(N):
        kind = kinds[i % len(kinds)]
        lines.append(f"VAR_{i}={values[kind]}")
        extra = ", min_length: 3" if kind == "str" else ""
        rules.append(f"    VAR_{i}: {{type: {kind}{extra}}}")
    (d / ".env").write_text("\n".join(lines) + "\n")
    (d / ".env.example").write_text("\n".join(ln.split("=")[0] + "=" for ln in lines) + "\n")
    cfg = d / "readyctl.yaml"
    cfg.write_text(
        "environments:\n  bench:\n    env_file: .env\n    production: false\n"
        "env:\n  required: [" + ", ".join(f"VAR_{i}" for i in range(0, N, 5)) + "]\n"
        "  rules:\n" + "\n".join(rules) + "\n"
    )
    return cfg


def once(cfg: Path, out: Path) -> float:
    """One run from config load to report written."""
    t0 = time.perf_counter()
    loaded = load_config(cfg)
    name, env = loaded.environment(None)
    red = Redactor()
    ctx = Context(
        config=loaded.config, env_name=name, environment=env, base_dir=loaded.base_dir, redactor=red
    )
    catalog = load_catalog()
    items = plan(ctx, select(catalog, ["env.*"]), catalog.checks)
    outcome = run(ctx, items, jobs=8)
    report = build_report(
        outcome, config=loaded.config, env_name=name, environment=env, redactor=red
    )
    write_files(report, out, ["json"])
    assert len(report.results) >= N
    return time.perf_counter() - t0


def main() -> None:
    """Print the figure."""
    with tempfile.TemporaryDirectory() as d:
        cfg = setup(Path(d))
        once(cfg, Path(d) / "out")  # warm imports
        times = [once(cfg, Path(d) / "out") for _ in range(7)]
    print(
        f"engine overhead, {N} env rules: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; goal < 500 ms)"
    )


if __name__ == "__main__":
    main()
