"""Run history under .readyctl/history/, baselines (`--baseline PATH|last`) and regressions."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from readyctl.scoring import GateReason


def selection_key(env_name: str, only: Sequence[str], skip: Sequence[str]) -> str:
    """Runs compare only with runs of the same environment and selection."""
    return f"{env_name}|only={','.join(sorted(only))}|skip={','.join(sorted(skip))}"


def _runs(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    if not directory.is_dir():
        return out
    for p in sorted(directory.glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "results" in data:
            out.append((p, data))
    out.sort(key=lambda item: (item[1].get("started_at") or "", item[0].name))
    return out


def save(data: dict[str, Any], directory: Path, keep: int) -> Path:
    """Keep this run's JSON; prune the oldest beyond `keep`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = re.sub(r"[^0-9T]", "", str(data.get("started_at", "")))[:15] or "run"
    env = re.sub(r"[^A-Za-z0-9_.-]", "_", str(data.get("environment", {}).get("name", "env")))
    path = directory / f"{stamp}-{env}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stamp}-{env}-{n}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    runs = _runs(directory)
    for old, _ in runs[: max(0, len(runs) - keep)]:
        old.unlink(missing_ok=True)
    return path


def find_last(directory: Path, key: str) -> Path | None:
    """The newest kept run with this selection key."""
    matching = [p for p, d in _runs(directory) if d.get("selection_key") == key]
    return matching[-1] if matching else None


def trend(directory: Path, key: str, n: int) -> list[dict[str, Any]]:
    """The last `n` runs with this key, oldest first: started_at, score, verdict."""
    rows = [
        {"started_at": d.get("started_at"), "score": d.get("score"), "verdict": d.get("verdict")}
        for _, d in _runs(directory)
        if d.get("selection_key") == key
    ]
    return rows[-n:]


def load_baseline(path: Path) -> dict[str, Any]:
    """A previous readiness.json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "results" not in data:
        raise ValueError(f"{path} is not a readyctl report")
    return data


def compare(
    baseline: dict[str, Any], results: Sequence[dict[str, Any]], score: float | None
) -> dict[str, Any]:
    """Score delta and every (check, subject) whose status changed."""
    before = {(r["id"], r["subject"]): r["status"] for r in baseline.get("results", [])}
    changes = []
    for r in results:
        old = before.get((r["id"], r["subject"]))
        if old is not None and old != r["status"]:
            changes.append({"id": r["id"], "subject": r["subject"], "from": old, "to": r["status"]})
    base_score = baseline.get("score")
    delta = None
    if score is not None and base_score is not None:
        delta = round(score - base_score, 1)
    return {"score": base_score, "score_delta": delta, "changes": changes}


def regressions(
    comparison: dict[str, Any], max_regression: float, waived: set[tuple[str, str]]
) -> list[GateReason]:
    """Gate reasons: the score fell beyond max_regression, or a pass became a fail."""
    reasons = []
    delta = comparison.get("score_delta")
    if delta is not None and -delta > max_regression:
        reasons.append(
            GateReason(
                "regression",
                f"score fell {-delta:g} points against the baseline "
                f"({comparison.get('score')}), more than max_regression {max_regression:g}",
            )
        )
    for c in comparison["changes"]:
        if (
            c["from"] == "pass"
            and c["to"] in ("fail", "error")
            and (c["id"], c["subject"]) not in waived
        ):
            reasons.append(
                GateReason(
                    "regression",
                    f"{c['id']} [{c['subject']}] went from pass to {c['to']} since the baseline",
                    c["id"],
                    c["subject"],
                )
            )
    return reasons
