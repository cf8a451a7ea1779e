"""Deploy overhead: a v1 -> v2 `readyctl deploy` on the demo vs the same steps run by hand.

A managed demo is started in this process (its release swaps go through its control socket).
Both sides do, against it:
- by hand: `pg_dump -Fc` + `pg_restore --list`; `readyctl demo maintenance on`; `alembic -c
  <v2 ini> upgrade head`; `readyctl demo release v2`; `readyctl smoke` (past maintenance with
  the bypass header); `readyctl demo maintenance off`; each a process, as one types them;
- deploy: `readyctl deploy --release v2 --monitor-window 2s --yes` with the default runbook
  minus its gate step (the gate is left out of both sides); the monitor step's duration is
  subtracted from the run's wall time.

The deploy runs twice per round: first in a fresh project, where migrate's
`require_rehearsal: rehearse` rehearses 0005 on a scratch copy (kept in history), then again
with that rehearsal on record. Between runs the demo is put back: v1, revision 0004,
maintenance off. Goal: deploy minus monitor at most 1.5x by hand.

Run: python bench/deploy_overhead.py [--rounds N] [--monitor-window 2s]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from readyctl.demo.managed import ManagedDemo, start
from readyctl.pipeline import managed_environ
from readyctl.postgres.dump import pg_dump_path, pg_restore_path, server_major_version
from readyctl.postgres.urls import _client_env

ROOT = Path(__file__).resolve().parents[1]
RC = [sys.executable, "-m", "readyctl"]
V1_HEAD = "0004_billing"


def write_project(proj: Path, demo: ManagedDemo) -> None:
    """readyctl.yaml (environment `bench`: the demo, with the repository's deploy vars;
    `hand`: the same plus the bypass header for `readyctl smoke`) and the default deploy
    runbook without its gate step in runbooks/deploy.yaml."""
    proj.mkdir(parents=True)
    deploy_vars = {
        "deploy_command": "$READYCTL_CMD demo release $${release}",
        "previous_release_command": "$READYCTL_CMD demo release --current",
        "maintenance_on": "$READYCTL_CMD demo maintenance on",
        "maintenance_off": "$READYCTL_CMD demo maintenance off",
        "bypass_header": "X-Maintenance-Bypass",
        "bypass_secret_env": "READYCTL_MAINTENANCE_BYPASS_SECRET",
        "alembic_config": demo.alembic_ini_for("v2"),
    }
    cfg = {
        "version": 2,
        "environments": {
            "bench": {
                "base_url": demo.base_url,
                "ca_bundle": demo.ca_bundle,
                "database_url": demo.database_url,
                "deploy": {"vars": deploy_vars},
            },
            "hand": {
                "extends": "bench",
                "headers": {"X-Maintenance-Bypass": "${READYCTL_MAINTENANCE_BYPASS_SECRET}"},
            },
        },
        "gate": {"require": "none"},
        "checks": {"smoke.scenarios": {"include_default": True}},  # the bundled demo suite
    }
    (proj / "readyctl.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    runbook = yaml.safe_load((ROOT / "runbooks" / "deploy.yaml").read_text())
    runbook["steps"] = [s for s in runbook["steps"] if s["id"] != "gate"]
    (proj / "runbooks").mkdir()
    (proj / "runbooks" / "deploy.yaml").write_text(yaml.safe_dump(runbook, sort_keys=False))


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run a command (it must succeed); its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} exited {proc.returncode}: {proc.stderr[-800:]}")
    return took


def by_hand(demo: ManagedDemo, proj: Path, env: dict[str, str]) -> dict[str, float]:
    """The deploy's steps as one runs them by hand; seconds per step."""
    url = demo.database_url
    major = server_major_version(url)
    conninfo, pg_env = _client_env(url)
    dump = proj / "by-hand.dump"
    out: dict[str, float] = {}
    out["backup"] = timed(
        [pg_dump_path(major), "-Fc", "-f", str(dump), "--dbname", conninfo], pg_env, proj
    ) + timed([pg_restore_path(major), "--list", str(dump)], pg_env, proj)
    out["maintenance-on"] = timed([*RC, "demo", "maintenance", "on"], env, proj)
    alembic = [sys.executable, "-m", "alembic", "-c", demo.alembic_ini_for("v2")]
    out["migrate"] = timed([*alembic, "upgrade", "head"], {**env, "DATABASE_URL": url}, proj)
    out["deploy"] = timed([*RC, "demo", "release", "v2"], env, proj)
    smoke = [*RC, "smoke", "--env", "hand", "--quiet", "--out", str(proj / "smoke")]
    out["smoke"] = timed(smoke, env, proj)
    out["maintenance-off"] = timed([*RC, "demo", "maintenance", "off"], env, proj)
    return out


def deploy(proj: Path, env: dict[str, str], window: str) -> tuple[float, dict[str, float]]:
    """`readyctl deploy` v1 -> v2: (wall time minus the monitor step, seconds per step)."""
    cmd = [*RC, "deploy", "--env", "bench", "--release", "v2", "--yes", "--quiet"]
    took = timed([*cmd, "--monitor-window", window], env, proj)
    newest = sorted((proj / ".readyctl" / "runs").iterdir())[-1]
    st = json.loads((newest / "state.json").read_text())
    if st["status"] != "succeeded":
        raise SystemExit(f"deploy ended {st['status']}: {st.get('reason')}")
    steps = {e["id"]: float(e.get("duration_s") or 0.0) for e in st["steps"]}
    return took - steps.get("monitor", 0.0), steps


def reset(demo: ManagedDemo) -> None:
    """Back to v1 at revision 0004 with maintenance off."""
    from alembic import command
    from alembic.config import Config

    demo.set_maintenance(False)
    if demo.release != "v1":
        demo.deploy_release("v1")
    cfg = Config(demo.alembic_ini_for("v2"))
    cfg.set_main_option("sqlalchemy.url", demo.database_url.replace("%", "%%"))
    command.downgrade(cfg, V1_HEAD)


def main() -> None:
    """Time both sides `rounds` times; print medians, steps and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--monitor-window", default="2s")
    ns = parser.parse_args()
    times: dict[str, list[float]] = {"hand": [], "inline": [], "recorded": []}
    steps: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="readyctl-bench-") as tmp:
        demo = start([])
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_")}
            env.update(managed_environ(demo), NO_COLOR="1")
            for i in range(ns.rounds):
                proj = Path(tmp) / f"round{i}"
                write_project(proj, demo)
                steps["hand"] = by_hand(demo, proj, env)
                times["hand"].append(sum(steps["hand"].values()))
                reset(demo)
                took, steps["inline"] = deploy(proj, env, ns.monitor_window)
                times["inline"].append(took)
                reset(demo)
                took, steps["recorded"] = deploy(proj, env, ns.monitor_window)
                times["recorded"].append(took)
                reset(demo)
        finally:
            demo.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"deploy overhead, demo v1 -> v2 (gate left out, monitor subtracted), {ns.rounds} round(s):"
    )
    for name in ("hand", "inline", "recorded"):
        shown = ", ".join(f"{k} {v:.2f}" for k, v in steps[name].items() if k != "monitor")
        print(f"  {name:<9} {med[name]:6.2f} s  ({shown})")
    for name, what in (("recorded", "rehearsal on record"), ("inline", "rehearsing inline")):
        ratio = med[name] / med["hand"]
        print(f"  readyctl deploy ({what}) / by hand: {ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
