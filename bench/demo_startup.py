"""Time from launcher start to the managed demo answering /health/ready: first and warm start.

Each measurement runs in a fresh Python process (imports included), as `readyctl check` would.
The first start uses an empty cache dir (initdb runs); warm starts reuse its template data dir.

    python bench/demo_startup.py [--warm-runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import time
t0 = time.monotonic()
from readyctl.demo.managed import start
demo = start()
ready = time.monotonic() - t0
demo.stop()
print(f"{ready:.3f}")
"""


def one_start(cache_dir: str) -> float:
    """Run one managed start in a fresh interpreter; return seconds until /health/ready."""
    env = dict(os.environ, READYCTL_CACHE_DIR=cache_dir, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    """Print the first-start and warm-start figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm-runs", type=int, default=3, help="number of warm starts")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="readyctl-bench-cache-")
    try:
        first = one_start(cache)
        warm = [one_start(cache) for _ in range(args.warm_runs)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"first start (fresh cache, initdb): {first:.2f} s   (goal < 6 s)")
    print(
        f"warm start (template copy):        {statistics.median(warm):.2f} s median "
        f"of {len(warm)}: {', '.join(f'{w:.2f}' for w in warm)}   (goal < 3 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
