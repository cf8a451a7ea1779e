"""Run history under .readyctl/history/, baselines (`--baseline PATH|last`) and regressions."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from readyctl import _json
from readyctl.scoring import GateReason

PINS_FILE = "baseline-pins.json"
PINS_DIR = "pinned"


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
    tmp.write_text(_json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    runs = _runs(directory)
    for old, _ in runs[: max(0, len(runs) - keep)]:
        old.unlink(missing_ok=True)
    return path


def gate_passed(data: Mapping[str, Any]) -> bool:
    """The run finished (not interrupted) and its gate passed: only such runs are baselines."""
    if data.get("interrupted"):
        return False
    gate = data.get("gate")
    if isinstance(gate, Mapping) and isinstance(gate.get("passed"), bool):
        return bool(gate["passed"])
    return data.get("verdict") == "ready"


def run_id(path: Path, directory: Path) -> str:
    """A kept run's id (its file stem under the history directory), else the path."""
    try:
        if path.parent.resolve() == directory.resolve():
            return path.stem
    except OSError:
        pass
    return str(path)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The run a new run compares with: a pinned one, the newest passing one, or a file."""

    path: Path
    data: dict[str, Any]
    run: str
    pinned: bool = False
    selected_by: str = "given"  # pin | newest_passing | given (a path or run id was named)

    def describe(self) -> dict[str, Any]:
        """What reports say about the baseline: run, path, started_at, score, verdict, pinned."""
        return {
            "run": self.run,
            "path": str(self.path),
            "started_at": self.data.get("started_at"),
            "score": self.data.get("score"),
            "verdict": self.data.get("verdict"),
            "pinned": self.pinned,
            "selected_by": self.selected_by,
        }


def newest_passing(
    directory: Path, accept: Callable[[dict[str, Any]], bool] | None = None
) -> Baseline | None:
    """The newest kept run whose gate passed (and that `accept` takes)."""
    for p, d in reversed(_runs(directory)):
        if gate_passed(d) and (accept is None or accept(d)):
            return Baseline(p, d, p.stem, selected_by="newest_passing")
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "pin"


def read_pins(directory: Path) -> dict[str, dict[str, Any]]:
    """selection key -> pin entry, from `baseline-pins.json` (empty when there is none)."""
    path = directory / PINS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not readable baseline pins ({e}); delete it") from None
    pins = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(pins, dict):
        raise ValueError(f"{path} is not a readyctl baseline-pins file; delete it")
    return {k: v for k, v in pins.items() if isinstance(v, dict)}


def _write_pins(directory: Path, pins: Mapping[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PINS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_json.dumps({"version": 1, "pins": pins}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _pinned_baseline(directory: Path, key: str, entry: Mapping[str, Any]) -> Baseline:
    copy = directory / str(entry.get("file", ""))
    if not entry.get("file") or not copy.is_file():
        raise ValueError(
            f"the pinned baseline for {key} ({entry.get('run')}) lost its copy {copy}; "
            "pin it again or run `readyctl baseline unpin`"
        )
    run = str(entry.get("run") or copy)
    return Baseline(copy, load_baseline(copy), run, pinned=True, selected_by="pin")


def pinned(directory: Path, key: str) -> Baseline | None:
    """The run pinned for this selection key, if any."""
    entry = read_pins(directory).get(key)
    return None if entry is None else _pinned_baseline(directory, key, entry)


def pinned_for_environment(directory: Path, env_name: str) -> list[Baseline]:
    """Every run pinned for any selection of this environment, the latest pin first."""
    entries = sorted(
        (
            (str(e.get("pinned_at") or ""), k, e)
            for k, e in read_pins(directory).items()
            if e.get("environment") == env_name
        ),
        reverse=True,
    )
    return [_pinned_baseline(directory, k, e) for _, k, e in entries]


def pin(directory: Path, key: str, source: Path, data: Mapping[str, Any], run: str) -> Baseline:
    """Pin `data` (read from `source`) for this selection key, keeping a copy pruning skips."""
    pins = read_pins(directory)
    # pinned/<selection>/<the report's own file name>: outside the pruned *.json of the folder
    name = f"{PINS_DIR}/{_slug(key)}/{source.name}"
    copy = directory / name
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_suffix(".tmp")
    tmp.write_text(_json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, copy)
    old = pins.get(key, {}).get("file")
    if old and old != name:
        (directory / str(old)).unlink(missing_ok=True)
    pins[key] = {
        "run": run,
        "file": name,
        "source": str(source),
        "environment": (data.get("environment") or {}).get("name"),
        "started_at": data.get("started_at"),
        "pinned_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _write_pins(directory, pins)
    return Baseline(copy, dict(data), run, pinned=True, selected_by="pin")


def unpin(directory: Path, key: str) -> dict[str, Any] | None:
    """Remove this selection key's pin and its copy; the removed entry, or None."""
    pins = read_pins(directory)
    entry = pins.pop(key, None)
    if entry is None:
        return None
    _write_pins(directory, pins)
    if entry.get("file"):
        copy = directory / str(entry["file"])
        copy.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the selection's folder, when now empty
            copy.parent.rmdir()
    return entry


def find_last(directory: Path, key: str) -> Baseline | None:
    """`--baseline last`: the run pinned for this selection key, else the newest kept run
    with this key whose gate passed (never an interrupted or failing one)."""
    return pinned(directory, key) or newest_passing(
        directory, lambda d: d.get("selection_key") == key
    )


def resolve_run(directory: Path, spec: str) -> Baseline:
    """A history run id (file stem under the history directory) or a report path."""
    path = Path(spec)
    if path.is_file():
        return Baseline(path, load_baseline(path), run_id(path, directory))
    kept = directory / f"{spec}.json"
    if re.fullmatch(r"[A-Za-z0-9_.-]+", spec) and kept.is_file():
        return Baseline(kept, load_baseline(kept), spec)
    if path.suffix == ".json" or "/" in spec or os.sep in spec:
        raise ValueError(f"{spec}: no such file")
    raise ValueError(
        f"unknown run id {spec!r}: no {spec}.json under {directory} "
        "(pass a run id, a readiness.json path or 'last')"
    )


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
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
