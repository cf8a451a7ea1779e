"""The run's audit log: `.readyctl/runs/<id>/audit.jsonl`, one JSON object per event.

Every line passes through the redactor before it is written; nothing else writes the file.
Events: run started/resumed/finished/abandoned, step started/finished/failed/retried/
skipped/log, confirm asked/answered, rollback started, compensation done/failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from readyctl.runbook.state import clean


class AuditLog:
    """Appends events to one run's audit.jsonl (thread-safe, flushed per line)."""

    def __init__(self, path: Path, run_id: str, who: str) -> None:
        """Open (append) the log of run `run_id`; `who` is recorded on every line."""
        self.path = path
        self.run_id = run_id
        self.who = who
        self._lock = threading.Lock()

    def event(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one event (`ts`, `run_id`, `who`, `event`, then the fields, redacted)."""
        from readyctl.redact import global_redactor

        entry: dict[str, Any] = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "run_id": self.run_id,
            "who": self.who,
            "event": event,
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        entry = clean(entry)
        line = global_redactor().text(json.dumps(entry, default=str, ensure_ascii=False))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        return entry


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event of an audit log (a torn last line is skipped)."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
