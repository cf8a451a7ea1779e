"""`readyctl deploy --release v2` on the managed demo, as a user runs it: green, and rolled
back by itself under each release fault (issue 16's "Done when").

The packaged runbook runs with two probe steps added (tests/runbook/demo_probe.py): one after
the gate writes rows and records the target as it was, one at the end (after the steps, or
after the rollback) records it again before the managed demo stops. The gate runs a smaller
selection with `gate.require: none` (the full gate is the product's default; its own tests
prove it). READYCTL_DEPLOY_MATRIX=1 adds slow-release (its smoke takes ~80 s).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.runbook.helpers import run, runs

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("demo_probe.py")
GATE_SKIP = "load.*,ratelimit.*,health.db_outage,ops.graceful_shutdown,secrets.*"
V1_HEAD, V2_HEAD = "0004_billing", "0005_session_mood"
CASES = [
    ("", None),
    ("bad-release", "smoke"),
    ("failing-migration", "migrate"),
]
if os.environ.get("READYCTL_DEPLOY_MATRIX"):
    CASES.append(("slow-release", "monitor"))


def _project(tmp_path: Path) -> Path:
    config = (REPO / "readyctl.yaml").read_text().replace("  require: high ", "  require: none ")
    assert "require: none" in config
    (tmp_path / "readyctl.yaml").write_text(config)
    book = yaml.safe_load((REPO / "runbooks" / "deploy.yaml").read_text())
    probe = f"$READYCTL_PYTHON {PROBE}"
    book["steps"].insert(
        1, {"id": "probe-before", "run": f"{probe} before ${{workdir}}/before.json"}
    )
    book["steps"].append({"id": "probe-after", "run": f"{probe} after ${{workdir}}/after.json"})
    book["after_rollback"].append(
        {"id": "probe-after-rollback", "run": f"{probe} after ${{workdir}}/after.json"}
    )
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump(book, sort_keys=False))
    return tmp_path


def _events(run_dir: Path) -> list[tuple[str, str | None]]:
    lines = (run_dir / "audit.jsonl").read_text().splitlines()
    return [(e["event"], e.get("step")) for e in map(json.loads, lines)]


@pytest.mark.parametrize(("fault", "stops_at"), CASES, ids=[c[0] or "healthy" for c in CASES])
def test_deploy_v2_on_the_demo(tmp_path: Path, fault: str, stops_at: str | None) -> None:
    _project(tmp_path)
    env = {"READYCTL_DEMO_FAULTS": fault} if fault else {}
    r = run(
        tmp_path,
        "deploy",
        "--release",
        "v2",
        "--yes",
        "--runbook",
        "deploy.yaml",
        "--monitor-window",
        "4s",
        "--var",
        f"gate_skip={GATE_SKIP}",
        env=env,
        timeout=600,
    )
    [rd] = runs(tmp_path)
    state = json.loads((rd / "state.json").read_text())
    before = json.loads((rd / "before.json").read_text())
    after = json.loads((rd / "after.json").read_text())
    steps = {s["id"]: s["status"] for s in state["steps"]}
    events = _events(rd)
    # before the deploy: v1 serving, at v1's head, no maintenance
    assert before == {**before, "release": "v1", "revision": V1_HEAD, "maintenance": False}
    backup = state["records"]["backup"]
    assert backup["size"] > 0 and backup["toc_entries"] > 0 and Path(backup["local_path"]).is_file()
    # the audit log has every step it ran, and the timeline is written
    for step, status in steps.items():
        if status in ("succeeded", "failed"):
            assert ("step started", step) in events and (
                "step finished" if status == "succeeded" else "step failed",
                step,
            ) in events, (step, status)
    assert events[-1] == ("run finished", None)
    assert (rd / "deploy.html").is_file() and (rd / "deploy.md").is_file()
    # wherever it ended: every row written before is there, maintenance is off
    assert after["rows"] == before["rows"] == 25
    assert after["maintenance"] is False and after["ready"] == 200
    if stops_at is None:
        assert r.code == 0, r.both
        assert state["status"] == "succeeded" and state["finished"] is True
        assert all(s == "succeeded" for s in steps.values()), steps
        assert after["release"] == "v2" and after["revision"] == V2_HEAD
        assert state["records"]["migrate"]["applied"] == [V2_HEAD]
        assert "SUCCEEDED" in r.out
    else:
        assert r.code == 1, r.both
        assert state["status"] == "rolled_back", (state["status"], r.both[-3000:])
        assert steps[stops_at] == "failed", steps
        assert ("step failed", stops_at) in events and ("rollback started", stops_at) in events
        # back where it was: v1 serving, the schema (and revision) as before the deploy
        assert after["release"] == "v1"
        assert after["revision"] == V1_HEAD
        assert after["schema"] == before["schema"]
        comps = {c["id"]: c["status"] for c in state["compensations"]}
        assert comps.get("migrate") == "compensated", comps
        if stops_at != "migrate":  # the release was swapped: it was swapped back
            assert comps.get("deploy") == "compensated", comps
        assert "ROLLED BACK" in r.out
