"""A runbook step for the deploy tests: what the managed demo looks like, saved as JSON.

`python demo_probe.py before OUT`: creates a probe table with rows (data written before the
deploy) and records the serving release, maintenance, the schema digest and the revision.
`python demo_probe.py after OUT`: records the same (the probe rows must all be there).
The demo is found through READYCTL_DEMO_STATE, as the runbook's other demo steps find it.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import psycopg

from readyctl.postgres import fingerprint
from readyctl.postgres.urls import libpq_url

ROWS = 25


def _get(state: dict, path: str) -> tuple[int, str | None]:
    ctx = ssl.create_default_context(cafile=state["ca_bundle"])
    try:
        with urllib.request.urlopen(state["base_url"] + path, context=ctx, timeout=10) as r:
            return r.status, r.headers.get("X-Release")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Release")


def main(phase: str, out: str) -> None:
    with open(os.environ["READYCTL_DEMO_STATE"], encoding="utf-8") as fh:
        state = json.load(fh)
    url = libpq_url(state["database_url"])
    with psycopg.connect(url, autocommit=True) as conn:
        if phase == "before":
            conn.execute("CREATE TABLE IF NOT EXISTS readyctl_probe_rows (n int PRIMARY KEY)")
            conn.execute(
                "INSERT INTO readyctl_probe_rows SELECT g FROM generate_series(1, %s) g "
                "ON CONFLICT DO NOTHING",
                (ROWS,),
            )
        rows = conn.execute("SELECT count(*) FROM readyctl_probe_rows").fetchone()[0]
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        digest = fingerprint.take(conn, sample_rows=0).schema_digest()
    ready, release = _get(state, "/health/ready")
    users_see, _ = _get(state, "/v1/auth/me")  # 503 while maintenance is on, else 401
    doc = {
        "rows": rows,
        "revision": revision,
        "schema": digest,
        "release": release or "v1",
        "ready": ready,
        "maintenance": users_see == 503,
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
