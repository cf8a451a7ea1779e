"""The parallel phase of the API checks against the local demo, as a ratio to the slowest one.

Run: python bench/parallel_phase.py
Starts a managed demo, runs every non-exclusive check of the running-API areas (tls, http,
auth, observability) together, then each alone, and prints the phase time over the slowest
single check's time (goal: under 1.5x). Logins are warmed first so each check's time is its own.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from readyctl.demo.managed import start
from readyctl.registry import load_catalog
from readyctl.runner import plan, run
from tests.conftest import demo_context

AREAS = ("tls.", "http.", "auth.", "observability.")


def timed(handle, checks) -> float:  # type: ignore[no-untyped-def]
    """Seconds for one runner pass over `checks` (probes warmed, session cached)."""
    ctx = demo_context(handle)
    catalog = load_catalog().checks
    ctx.auth()  # the session is shared by the run; log in outside the measurement
    items = plan(ctx, checks, catalog)  # with the probes the checks wait for
    t0 = time.perf_counter()
    outcome = run(ctx, items, jobs=8)
    took = time.perf_counter() - t0
    bad = [r for r in outcome.results if r.status.value in ("error", "blocked")]
    assert not bad, [(r.check_id, r.summary) for r in bad]
    ctx.run_cleanups()
    return took


def main() -> None:
    """Print the figures."""
    catalog = load_catalog()
    checks = [
        c
        for c in catalog
        if c.meta.id.startswith(AREAS)
        and not c.meta.exclusive
        and c.meta.id not in ("http.reachable", "auth.session")
    ]
    handle = start()
    try:
        timed(handle, checks)  # warm imports and the server
        phase = statistics.median(timed(handle, checks) for _ in range(3))
        alone = {c.meta.id: statistics.median(timed(handle, [c]) for _ in range(3)) for c in checks}
    finally:
        handle.stop()
    slowest_id = max(alone, key=alone.get)  # type: ignore[arg-type]
    slowest = alone[slowest_id]
    print(
        f"{len(checks)} checks in the parallel phase: {phase * 1000:.0f} ms; slowest alone "
        f"{slowest_id} {slowest * 1000:.0f} ms; ratio {phase / slowest:.2f}x (goal < 1.5x)"
    )


if __name__ == "__main__":
    main()
