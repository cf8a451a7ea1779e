"""readiness.json: the contract every other format renders from."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from readyctl import _json
from readyctl.redact import global_redactor
from readyctl.report import Report


def write(report: Report, out_dir: Path) -> Path:
    """Write readiness.json atomically (a reader never sees half a file)."""
    path = out_dir / "readiness.json"
    # redact values, never the serialized text: keys and structure must stay intact
    data = global_redactor().value(report.data)
    text = _json.dumps(data, indent=2)  # NaN and infinity become null: always valid JSON
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".readiness.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, path)
    return path
