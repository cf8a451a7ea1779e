"""Restore-drill throughput next to pg_restore run by hand on the same dump (goal >= 0.9x).

A target database (default ~1.5 M rows in three tables, with indexes and a foreign key) is
dumped once with pg_dump -Fc. Then, alternately, N times each:
- by hand: a fresh scratch server, `createdb`-equivalent, `pg_restore --no-owner
  --no-privileges -d DB DUMP` (one job, as one types it);
- the drill: `backups.restore_drill` through the real runner with that dump as the newest
  backup; its restore phase (create database + pg_restore) is timed by the check itself.

Throughput is dump bytes per second of restore; the ratio is drill / by hand (medians). The
whole drill (scratch server start, verification of every table against the source, cleanup)
is printed too.

    python bench/restore_drill.py [--rows 500000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_target(pg: object, rows: int) -> str:
    """Create and fill the target database; return its URL."""
    import psycopg

    url = pg.create_database("bench_target")  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE account (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE session (id bigserial PRIMARY KEY, account_id bigint NOT NULL "
            "REFERENCES account(id), status text NOT NULL, title text, "
            "created_at timestamptz NOT NULL, updated_at timestamptz)"
        )
        conn.execute(
            "CREATE TABLE message (id bigserial PRIMARY KEY, session_id bigint NOT NULL, "
            "role text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO account (email, created_at) SELECT 'user' || g || '@example.org', "
            "'2026-01-01'::timestamptz + g * interval '1 second' "
            f"FROM generate_series(1, {rows // 10}) g"
        )
        conn.execute(
            "INSERT INTO session (account_id, status, title, created_at, updated_at) "
            f"SELECT 1 + g % {rows // 10}, (ARRAY['open','closed'])[1 + g % 2], "
            "'session ' || g, '2026-01-01'::timestamptz + g * interval '1 second', "
            "'2026-01-02'::timestamptz + g * interval '1 second' "
            f"FROM generate_series(1, {rows // 2}) g"
        )
        conn.execute(
            "INSERT INTO message (session_id, role, body, created_at) "
            f"SELECT 1 + g % {rows // 2}, (ARRAY['user','assistant'])[1 + g % 2], "
            "repeat(md5(g::text), 3), '2026-01-01'::timestamptz + g * interval '1 second' "
            f"FROM generate_series(1, {rows}) g"
        )
        conn.execute("CREATE INDEX session_account_status ON session (account_id, status)")
        conn.execute("CREATE INDEX message_session ON message (session_id, created_at)")
        conn.execute("ANALYZE")
    return str(url)


def by_hand(dump: Path) -> float:
    """Seconds for create database + pg_restore on a fresh scratch server."""
    from readyctl.postgres import scratch

    binary = scratch.pg_restore_path()
    with scratch.ScratchServer() as srv:
        t0 = time.monotonic()
        db = srv.create_database("hand")
        conninfo = scratch.url_parts(db.url)
        password = conninfo.pop("password")
        cmd = [
            binary,
            "--no-owner",
            "--no-privileges",
            "--dbname",
            " ".join(f"{k}={v}" for k, v in conninfo.items()),
            str(dump),
        ]
        subprocess.run(cmd, check=True, env={"PGPASSWORD": password}, capture_output=True)
        return time.monotonic() - t0


def drill(target_url: str, backups: Path, jobs: int | None) -> tuple[float, float]:
    """(restore-phase seconds, whole drill seconds) of backups.restore_drill via the runner."""
    from readyctl.config import Config, Environment
    from tests.helpers import make_context, results_of, run_checks

    settings: dict[str, object] = {"location": backups.as_uri()}
    if jobs:
        settings["jobs"] = jobs
    cfg = Config(checks={"backups.restore_drill": settings})
    ctx = make_context(config=cfg, environment=Environment(database_url=target_url))
    t0 = time.monotonic()
    out = run_checks(ctx, only=["backups.restore_drill"], deadline_s=1800)
    whole = time.monotonic() - t0
    got = results_of(out, "backups.restore_drill")
    bad = {s: r.summary for s, r in got.items() if r.status.value != "pass"}
    if bad:
        raise SystemExit(f"the drill did not pass: {bad}")
    return float(got["restore"].evidence["restore_s"]), whole


def main() -> int:
    """Print throughput by hand, in the drill, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the largest table")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each kind")
    args = parser.parse_args()

    from readyctl.postgres import scratch
    from readyctl.postgres.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as pg, tempfile.TemporaryDirectory(prefix="readyctl-bench-") as tmp:
        t0 = time.monotonic()
        url = build_target(pg, args.rows)
        backups = Path(tmp) / "backups"
        backups.mkdir()
        dump = scratch.dump_database(url, backups / "bench.dump")
        size_mb = dump.size_bytes / 1e6
        print(
            f"target: {args.rows * 1.6:,.0f} rows, dump {size_mb:.1f} MB "
            f"(built in {time.monotonic() - t0:.1f} s, dumped in {dump.seconds:.1f} s)"
        )
        hand, phase, whole, single = [], [], [], []
        for _ in range(args.runs):
            hand.append(by_hand(dump.path))
            p, w = drill(url, backups, None)
            phase.append(p)
            whole.append(w)
            single.append(drill(url, backups, 1)[0])
    h, p, w = statistics.median(hand), statistics.median(phase), statistics.median(whole)
    s = statistics.median(single)

    def row(name: str, secs: float, note: str = "") -> None:
        print(f"{name:<34}{secs:6.2f} s  {size_mb / secs:6.1f} MB/s  {note}")

    row("pg_restore by hand (1 job)", h, f"median of {args.runs}")
    row("drill restore (default jobs)", p)
    row("drill restore (jobs: 1)", s)
    row("drill whole (start, verify, clean)", w)
    print(f"throughput ratio drill/by hand:          {h / p:.2f}x   (goal >= 0.9x)")
    print(f"  same single job as by hand:            {h / s:.2f}x")
    print(f"  whole drill incl. verification:        {h / w:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
