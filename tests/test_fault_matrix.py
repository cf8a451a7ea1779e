"""Under each demo fault exactly its mapped checks turn red; on the healthy demo none does.

Every check runs against a managed demo with the fault(s) switched on, through the real
runner, and the set of checks with a failing or erroring result must equal the fault's mapping
(`readyctl demo faults`). To fit CI's budget, faults whose mapped sets are disjoint share one
demo (the expectation is then the union); READYCTL_FULL_MATRIX=1 runs one demo per fault.
"""

from __future__ import annotations

import os
import shutil

import pytest

from readyctl.demo.faults import FAULT_INCIDENTAL, FAULTS, MIGRATION_FAULTS
from tests.conftest import repo_demo_context
from tests.helpers import report_of, run_checks

RED = ("fail", "error")


def fault_groups(
    max_size: int, *, leave_out: frozenset[str] = frozenset()
) -> list[tuple[str, ...]]:
    """Greedy packing of faults into groups whose mapped check sets are disjoint (incidental
    checks included; each migration fault adds its own head revision: one per demo)."""
    groups: list[list[str]] = []
    used: list[set[str]] = []
    for name, fault in FAULTS.items():
        if name in leave_out:
            continue
        checks = set(fault.checks) | set(FAULT_INCIDENTAL.get(name, ()))
        if name in MIGRATION_FAULTS:
            checks.add("<alembic head>")
        for g, u in zip(groups, used, strict=True):
            if len(g) < max_size and not (checks & u):
                g.append(name)
                u |= checks
                break
        else:
            groups.append([name])
            used.append(set(checks))
    return [tuple(g) for g in groups]


GROUPS = [(f,) for f in FAULTS] if os.environ.get("READYCTL_FULL_MATRIX") else fault_groups(6)


def red_checks(outcome, incidental: frozenset[str] = frozenset()) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Checks with a failing or erroring result; an incidental check's `error` is tolerated."""
    red: dict[str, list[str]] = {}
    for r in outcome.results:
        if r.status.value == "error" and r.check_id in incidental:
            continue
        if r.status.value in RED:
            red.setdefault(r.check_id, []).append(f"{r.subject}: {r.summary}")
    return red


@pytest.mark.slow
@pytest.mark.parametrize("faults", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_faults_turn_exactly_their_checks_red(faults, faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(*faults, own_pg=True)
    out = run_checks(repo_demo_context(d), jobs=8, deadline_s=600)
    expected = set().union(*(FAULTS[f].checks for f in faults))
    incidental = frozenset().union(*(FAULT_INCIDENTAL.get(f, ()) for f in faults))
    red = red_checks(out, incidental)
    assert set(red) == expected, {
        "unexpected": {k: v for k, v in red.items() if k not in expected},
        "missing": expected - set(red),
    }
    # a fault that breaks a critical or high check must stop the release: NOT READY
    ctx = repo_demo_context(d)
    severe = {cid for cid in expected if out.metas[cid].severity.value in ("critical", "high")}
    report = report_of(ctx, out)
    if severe:
        assert report.verdict == "not_ready", (faults, report.data["gate"]["reasons"])
        blocking = {g["check_id"] for g in report.data["gate"]["reasons"]}
        assert blocking & severe, (faults, report.data["gate"]["reasons"])


@pytest.mark.slow
def test_healthy_demo_turns_nothing_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(own_pg=True)
    ctx = repo_demo_context(d)
    out = run_checks(ctx, jobs=8, deadline_s=600)
    assert red_checks(out) == {}
    # READY >= 95 with every required checklist item verified, nothing declared n/a
    report = report_of(ctx, out)
    assert report.verdict == "ready", report.data["gate"]["reasons"]
    assert report.score is not None and report.score >= 95
    items = report.data["checklist"]["items"]
    assert all(it["status"] == "verified" for it in items if it["required"]), items
    assert not any(it["status"] == "not_applicable" for it in items)
    # item 8 by the alert checks' own results on the shipped rules and Alertmanager config
    if all(shutil.which(tool) for tool in ("promtool", "amtool")):
        (alerting,) = (it for it in items if it["item"] == "8")
        assert {"alerts.rules", "alerts.routing"} <= set(alerting["verified_by"]), alerting
    paths = {p["path"]: p["status"] for p in items[0]["paths"]}
    seed_paths = ("registration", "login", "counseling-session", "email", "payment")
    assert all(paths.get(p) == "verified" for p in (*seed_paths, "crisis-detection")), paths


def test_every_mapped_check_exists() -> None:
    from readyctl.registry import load_catalog

    ids = set(load_catalog().ids())
    for fault in FAULTS.values():
        assert set(fault.checks) <= ids, fault.name
    for name, checks in FAULT_INCIDENTAL.items():
        assert name in FAULTS and set(checks) <= ids, name
