"""A run's state: `.readyctl/runs/<run id>/state.json`, written atomically after every step.

The state says which runbook ran, for which release and target, who started it, every
step's status, timings and record (no secret: every value passes through the redactor), and
whether the run is `finished`. An unfinished run blocks a new deploy of the same target until
it is resumed or abandoned. Opt-in, the same record goes to a `readyctl_deploys` table on the
target database (a fresh CI runner has no `.readyctl/`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from readyctl.redact import MASK, is_secret_name

STATE_FILE = "state.json"
AUDIT_FILE = "audit.jsonl"
TABLE = "readyctl_deploys"
TERMINAL = ("succeeded", "rolled_back", "abandoned")


def who() -> str:
    """The user or CI actor starting the run (GITHUB_ACTOR, GITLAB_USER_LOGIN, else the
    login name)."""
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a container)
        return f"uid {os.getuid()}"


def now_iso() -> str:
    """The time in UTC, ISO 8601 with a Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """`20261130T035000.123Z-ab12`: sortable by start time (to the millisecond: two runs in
    one second keep their order), unique enough per target."""
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(2)}"


_NAME_KEYS = ("_env", "_var", "_header", "_name", "_names")


def clean(obj: Any, key: str | None = None) -> Any:
    """A JSON-like value with every secret masked: known secret values and shapes anywhere,
    and the values of secret-named keys (except keys that hold a variable's or header's
    *name*, like `bypass_secret_env`)."""
    from readyctl.redact import global_redactor

    red = global_redactor()
    if isinstance(obj, str):
        if key is not None and obj and is_secret_name(key) and not key.endswith(_NAME_KEYS):
            return MASK
        return red.text(obj)
    if isinstance(obj, Mapping):
        return {str(k): clean(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    return red.text(str(obj))


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to `path` through a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class RunState:
    """The state of one run, saved after every change (file, and the table when enabled)."""

    def __init__(self, runs_dir: Path, data: dict[str, Any]) -> None:
        """`data` is the state document (see `new`)."""
        self.runs_dir = runs_dir
        self.data = data
        self.table_writer: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    def new(cls, runs_dir: Path, run_id: str, **fields: Any) -> RunState:
        """A fresh state for run `run_id`."""
        data: dict[str, Any] = {
            "version": 1,
            "run_id": run_id,
            "started": now_iso(),
            "updated": now_iso(),
            "finished": False,
            "status": "running",
            "reason": None,
            "exit_code": None,
            "host": os.uname().nodename,
            "pid": os.getpid(),
            "steps": [],
            "compensations": [],
            "after_rollback": [],
            "records": {},
        }
        data.update(fields)
        return cls(runs_dir, data)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.data["run_id"])

    @property
    def dir(self) -> Path:
        """`.readyctl/runs/<run id>/`."""
        return self.runs_dir / self.run_id

    @property
    def path(self) -> Path:
        """The state file."""
        return self.dir / STATE_FILE

    @property
    def audit_path(self) -> Path:
        """The audit log."""
        return self.dir / AUDIT_FILE

    def step(self, section: str, step_id: str) -> dict[str, Any]:
        """The entry of a step in `steps` / `after_rollback` (created when missing)."""
        for entry in self.data[section]:
            if entry["id"] == step_id:
                return entry
        entry = {"id": step_id, "status": "pending"}
        self.data[section].append(entry)
        return entry

    def save(self) -> None:
        """Write the state atomically (redacted), and to the table when enabled."""
        self.data["updated"] = now_iso()
        self.data["pid"] = os.getpid()
        doc = clean(self.data)
        write_json_atomic(self.path, doc)
        if self.table_writer is not None:
            self.table_writer(doc)


def load_state(path: Path) -> dict[str, Any] | None:
    """A state document, or None when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run_id") else None


def unfinished_runs(runs_dir: Path, target_key: str) -> list[dict[str, Any]]:
    """Unfinished runs of a target recorded under `runs_dir`, newest first."""
    out = []
    if not runs_dir.is_dir():
        return out
    for path in runs_dir.glob(f"*/{STATE_FILE}"):
        data = load_state(path)
        if data and not data.get("finished") and data.get("target", {}).get("id") == target_key:
            out.append(data)
    return sorted(out, key=lambda d: str(d.get("run_id")), reverse=True)


# -- the opt-in table on the target ---------------------------------------------------------
def ensure_table(conn: Any) -> None:
    """Create `readyctl_deploys` if it is missing."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " run_id text PRIMARY KEY, target text NOT NULL, runbook text, release text,"
        " status text NOT NULL, finished boolean NOT NULL, who text,"
        " started timestamptz, updated timestamptz NOT NULL DEFAULT now(), state jsonb NOT NULL)"
    )


def table_upsert(conn: Any, doc: Mapping[str, Any]) -> None:
    """Insert or update the run's row (the state document, already redacted)."""
    from psycopg.types.json import Jsonb

    conn.execute(
        f"INSERT INTO {TABLE} (run_id, target, runbook, release, status, finished, who, started,"
        " updated, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s)"
        " ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status,"
        " finished = EXCLUDED.finished, updated = now(), state = EXCLUDED.state",
        (
            doc["run_id"],
            doc.get("target", {}).get("id", ""),
            doc.get("runbook"),
            doc.get("release"),
            doc.get("status"),
            bool(doc.get("finished")),
            doc.get("who"),
            doc.get("started"),
            Jsonb(dict(doc)),
        ),
    )


def table_unfinished(conn: Any, target_key: str) -> list[dict[str, Any]]:
    """Unfinished runs of the target recorded in the table (none when it does not exist)."""
    row = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
    if not row or row[0] is None:
        return []
    rows = conn.execute(
        f"SELECT state FROM {TABLE} WHERE target = %s AND NOT finished ORDER BY run_id DESC",
        (target_key,),
    ).fetchall()
    return [r[0] for r in rows if isinstance(r[0], dict)]
