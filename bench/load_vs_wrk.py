"""readyctl's load check versus wrk on the demo's /health, at the same concurrency, in one run.

Starts the managed demo, then alternates wrk and `readyctl load` (the load.thresholds check,
its generated locustfile, locust in a subprocess) for a few rounds at the same number of
connections/users and the same duration, and prints requests per second and p50/p95 of both
(medians over the rounds) with the ratios. Goal: readyctl's RPS >= 0.8x wrk's, p50 and p95
within 20% of wrk's; that holds when the server, not the generator, is the limit.

With --pin (the default on two or more CPUs) the demo server runs on CPU 0 and both load
generators on the other CPUs, so that the server, not the generator, is what is measured.

    python bench/load_vs_wrk.py [--concurrency 50] [--duration 8] [--rounds 5] [--no-pin]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WRK = shutil.which("wrk") or "/usr/bin/wrk"
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("READYCTL %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), errors))
end
"""


def pin_process(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a running process to `cpus`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def _pinned(cpus: set[int] | None) -> Any:
    """A preexec_fn that pins the child (and everything it starts) to `cpus`."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run_wrk(
    url: str, concurrency: int, duration: int, script: Path, cpus: set[int] | None = None
) -> dict[str, float]:
    """wrk (2 threads) against url: rps, p50 and p95 in ms."""
    out = subprocess.run(
        [WRK, "-t2", f"-c{concurrency}", f"-d{duration}s", "-s", str(script), url],
        preexec_fn=_pinned(cpus),
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    m = re.search(r"READYCTL (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, duration_us, p50_us, p95_us, errors = (int(x) for x in m.groups())
    if errors:
        raise RuntimeError(f"wrk saw {errors} errors")
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p95_ms": p95_us / 1000,
        "requests": requests,
    }


def run_readyctl(
    work: Path,
    demo: Any,
    concurrency: int,
    duration: int,
    workers: int,
    cpus: set[int] | None = None,
) -> dict[str, float]:
    """`readyctl load` with a /health profile: rps, p50 and p95 from its report."""
    config = {
        "version": 1,
        "default_environment": "bench",
        "environments": {"bench": {"base_url": demo.base_url, "ca_bundle": demo.ca_bundle}},
        "checks": {
            "load.thresholds": {
                "login": False,
                "profiles": [
                    {
                        "name": "health",
                        "users": concurrency,
                        "think_time_s": 0,
                        "tasks": [{"method": "GET", "path": "/health", "auth": False}],
                    }
                ],
            }
        },
    }
    cfg = work / "readyctl.yaml"
    cfg.write_text(json.dumps(config))
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, NO_COLOR="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "readyctl",
            "load",
            "--config",
            str(cfg),
            "--duration",
            f"{duration}s",
            "--spawn-rate",
            str(concurrency * 20),
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--format",
            "json",
            "--quiet",
            "--no-color",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 120,
        preexec_fn=_pinned(cpus),
    )
    data = json.loads((out / "readiness.json").read_text())
    for r in data["results"]:
        ev = r.get("evidence") or {}
        if r.get("id") == "load.thresholds" and "percentiles" in ev:
            overall = ev["percentiles"]["overall"]
            if overall["failures"]:
                raise RuntimeError(f"readyctl's run saw {overall['failures']} failures")
            return {
                "rps": float(overall["rps"]),
                "p50_ms": float(overall["p50_ms"]),
                "p95_ms": float(overall["p95_ms"]),
                "requests": overall["requests"],
            }
    raise RuntimeError("readyctl's report has no load percentiles")


def main() -> int:
    """Print both tools' figures and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true", help="Do not pin server and generators.")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(available) >= 2
    server_cpus = {available[0]} if pin else None
    load_cpus = set(available[1:]) if pin else None
    if not Path(WRK).exists():
        print("wrk is not installed (/usr/bin/wrk)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from readyctl.demo.managed import start

    demo = start()
    if server_cpus:
        pin_process(demo.pid, server_cpus)
    url = demo.base_url + "/health"
    work = Path(tempfile.mkdtemp(prefix="readyctl-bench-"))
    script = work / "report.lua"
    script.write_text(WRK_SCRIPT)
    wrk_runs: list[dict[str, float]] = []
    ready_runs: list[dict[str, float]] = []
    try:
        run_wrk(url, args.concurrency, 2, script, load_cpus)  # warm-up
        for i in range(args.rounds):
            wrk_runs.append(run_wrk(url, args.concurrency, args.duration, script, load_cpus))
            ready_runs.append(
                run_readyctl(work, demo, args.concurrency, args.duration, args.workers, load_cpus)
            )
            w, r = wrk_runs[-1], ready_runs[-1]
            print(
                f"round {i + 1}: wrk {w['rps']:.0f} req/s p50 {w['p50_ms']:.1f} p95 "
                f"{w['p95_ms']:.1f} ms | readyctl {r['rps']:.0f} req/s p50 {r['p50_ms']:.0f} "
                f"p95 {r['p95_ms']:.0f} ms | rps ratio {r['rps'] / w['rps']:.2f}",
                flush=True,
            )
    finally:
        demo.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def paired(key: str) -> float:
        # rounds alternate, so each pair saw the same machine; the median of the per-round
        # ratios is steadier than a ratio of medians on a noisy host
        pairs = zip(wrk_runs, ready_runs, strict=True)
        return statistics.median(r[key] / w[key] for w, r in pairs)

    where = (
        f"server on CPU {sorted(server_cpus or [])}, generators on {sorted(load_cpus or [])}"
        if pin
        else "not pinned"
    )
    print(
        f"\n/health over HTTPS, {args.concurrency} connections/users, {args.duration} s, "
        f"{args.rounds} alternating rounds (readyctl workers: {args.workers}; {where})\n"
    )
    print(f"{'median':10}{'wrk':>10}{'readyctl':>10}{'ratio':>8}  goal (ratio: median of rounds)")
    ok = True
    for key, label, goal in (
        ("rps", "req/s", "ratio >= 0.8"),
        ("p50_ms", "p50 ms", "within 20%"),
        ("p95_ms", "p95 ms", "within 20%"),
    ):
        w, r = med(wrk_runs, key), med(ready_runs, key)
        ratio = paired(key)
        met = ratio >= 0.8 if key == "rps" else abs(ratio - 1) <= 0.2
        ok = ok and met
        print(f"{label:10}{w:>10.1f}{r:>10.1f}{ratio:>8.2f}  {goal}: {'met' if met else 'MISSED'}")
    print(f"\ngoal {'met' if ok else 'missed'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
