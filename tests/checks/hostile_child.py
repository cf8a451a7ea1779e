"""Child process for the hostile-server tests: run readyctl's CLI, report results and peak RSS.

Usage: python -m tests.checks.hostile_child SPEC.json. The spec lists runs, each a config file
plus `readyctl check` arguments; every run goes through the real CLI (in this process, one
after the other) and writes readiness.json to its own directory. The address space is capped
(RLIMIT_AS), so a body that blows up memory ends this process, never the machine. Prints one
JSON object: per run the exit code, time taken and results; and this process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _one(run: dict[str, Any]) -> dict[str, Any]:
    from readyctl.cli import main

    out = Path(run["out"])
    argv = ["readyctl", "check", "--config", run["config"], "--format", "json"]
    argv += ["--out", str(out), "--no-history", "--only", ",".join(run["only"])]
    if run.get("deadline"):
        argv += ["--deadline", run["deadline"]]
    sys.argv = argv
    t0 = time.monotonic()
    code: Any = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    took = time.monotonic() - t0
    report = out / "readiness.json"
    results = json.loads(report.read_text())["results"] if report.exists() else []
    keep = ("id", "subject", "status", "summary", "error_reason", "evidence", "duration_ms")
    return {
        "exit_code": code,
        "took_s": round(took, 2),
        "results": [{k: r.get(k) for k in keep} for r in results],
    }


def main() -> None:
    """Run the spec's runs; print the JSON answer."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    limit = int(spec.get("rlimit_as", 1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    answer: dict[str, Any] = {"runs": {}}
    for run in spec["runs"]:
        answer["runs"][run["name"]] = _one(run)
    answer["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write("\n" + json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
