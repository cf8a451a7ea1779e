"""Rehearsal overhead: `readyctl db rehearse` vs bare alembic doing the same steps, same run.

Both work on the demo's four migrations from an empty database (so all four are pending):
readyctl dumps the schema read-only, starts a scratch PostgreSQL, restores, and for each
revision runs upgrade, downgrade, upgrade with catalog fingerprints in between; bare alembic
runs upgrade, downgrade, upgrade per revision directly on an empty database.

Two figures (goal: under 3x):
- command: `readyctl db rehearse` (a process) vs the `alembic` command for each step;
- engine: readyctl.rehearsal in-process vs alembic.command in-process (imports warm).

Run: python bench/rehearsal_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from readyctl import rehearsal
from readyctl.demo.migrate import alembic_config, write_alembic_ini
from readyctl.postgres.embedded import EmbeddedPostgres

REVISIONS = ["0001_orgs_users", "0002_auth_tokens", "0003_counseling", "0004_billing"]


def bare_alembic_inprocess(pg: EmbeddedPostgres, name: str) -> float:
    """upgrade, downgrade, upgrade per revision with alembic.command, in this process."""
    from alembic import command

    url = pg.create_database(name)
    cfg = alembic_config(url)
    t0 = time.perf_counter()
    for rev in REVISIONS:
        command.upgrade(cfg, rev)
        command.downgrade(cfg, "-1")
        command.upgrade(cfg, rev)
    return time.perf_counter() - t0


def bare_alembic_cli(pg: EmbeddedPostgres, name: str, ini: str) -> float:
    """The same steps as `alembic -c ini ...` commands."""
    url = pg.create_database(name)
    env = dict(os.environ, DATABASE_URL=url)
    alembic = [sys.executable, "-m", "alembic", "-c", ini]
    t0 = time.perf_counter()
    for rev in REVISIONS:
        for args in (["upgrade", rev], ["downgrade", "-1"], ["upgrade", rev]):
            subprocess.run([*alembic, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def readyctl_engine(pg: EmbeddedPostgres, name: str, ini: str) -> float:
    """readyctl.rehearsal in-process, including the scratch server's start and stop."""
    url = pg.create_database(name)
    s = rehearsal.RehearsalSettings()
    m = rehearsal.AlembicMigrator(ini=ini, session_options=s.session_options())
    t0 = time.perf_counter()
    with rehearsal.scratch_for_rehearsal() as server:  # as the check does it
        out = rehearsal.rehearse(m, url, server, s)
    took = time.perf_counter() - t0
    assert [r.status for r in out.revisions] == ["pass"] * 4, out.revisions
    return took


def readyctl_cli(pg: EmbeddedPostgres, name: str, ini: str, cwd: str) -> float:
    """`readyctl db rehearse --database-url ... --alembic-config ...` as a process."""
    url = pg.create_database(name)
    cmd = [
        sys.executable,
        "-m",
        "readyctl",
        "db",
        "rehearse",
        "--database-url",
        url,
        "--alembic-config",
        ini,
        "--quiet",
        "--format",
        "json",
        "--out",
        cwd,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return took


def main() -> None:
    """Run each variant `rounds` times and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    import alembic.command  # noqa: F401  (warm imports for both in-process variants)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedPostgres() as pg:
        ini = write_alembic_ini(Path(tmp) / "alembic.ini")
        times: dict[str, list[float]] = {k: [] for k in ("bare", "engine", "bare_cli", "cli")}
        for i in range(rounds):
            times["bare"].append(bare_alembic_inprocess(pg, f"bare_{i}"))
            times["engine"].append(readyctl_engine(pg, f"engine_{i}", ini))
            times["bare_cli"].append(bare_alembic_cli(pg, f"barecli_{i}", ini))
            times["cli"].append(readyctl_cli(pg, f"cli_{i}", ini, tmp))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"rehearsal overhead, demo migrations ({len(REVISIONS)} revisions x up/down/up), "
            f"median of {rounds}:"
        )
        print(
            f"  command: readyctl db rehearse {med['cli']:.2f} s vs alembic commands "
            f"{med['bare_cli']:.2f} s -> {med['cli'] / med['bare_cli']:.2f}x (goal < 3x)"
        )
        print(
            f"  engine:  readyctl.rehearsal {med['engine']:.2f} s vs alembic.command "
            f"{med['bare']:.2f} s -> {med['engine'] / med['bare']:.2f}x (goal < 3x)"
        )


if __name__ == "__main__":
    main()
