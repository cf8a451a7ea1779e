"""Weights, the log-normal curve, grades, the gate and exit-code precedence."""

from __future__ import annotations

import pytest

from readyctl.check import Category, CheckMeta, RemediationSpec, Severity
from readyctl.config import GateConfig, ScoringConfig
from readyctl.result import Curve, ErrorReason, Result
from readyctl.scoring import decide, grade, score_results


def _meta(cid: str, sev: Severity, cat: Category = Category.CONFIG) -> CheckMeta:
    return CheckMeta(
        id=cid,
        title="Works fine",
        failure_title="Does not work",
        description="Why it matters.",
        remediation=RemediationSpec(text="Fix it."),
        category=cat,
        severity=sev,
    )


def test_curve_matches_lighthouse_control_points() -> None:
    c = Curve(good=200, poor=1000)
    assert c.score(200) == pytest.approx(0.9, abs=1e-3)
    assert c.score(1000) == pytest.approx(0.5, abs=1e-3)
    assert c.score(50) > 0.99 and c.score(5000) == pytest.approx(0.1, abs=1e-3)
    up = Curve(good=60, poor=14)  # days to expiry: more is better
    assert up.score(60) == pytest.approx(0.9, abs=1e-3)
    assert up.score(14) == pytest.approx(0.5, abs=1e-3)
    assert up.score(1) < up.score(14) < up.score(90)


def test_measure_takes_status_from_threshold_and_score_from_curve() -> None:
    c = Curve(good=200, poor=1000)
    r = Result.measure(
        "load.p95", "counsel/p95", 300, curve=c, summary="p95 300 ms", fail_at=2000, warn_at=800
    )
    assert r.status.value == "pass" and 0.5 < r.score < 0.9
    r = Result.measure(
        "load.p95", "counsel/p95", 900, curve=c, summary="s", fail_at=2000, warn_at=800
    )
    assert r.status.value == "warn" and r.threshold == 800
    r = Result.measure("load.p95", "counsel/p95", 3000, curve=c, summary="s", fail_at=2000)
    assert r.status.value == "fail" and r.score < 0.5


def test_weights_by_severity_shared_across_subjects() -> None:
    metas = {"a.crit": _meta("a.crit", Severity.CRITICAL), "a.low": _meta("a.low", Severity.LOW)}
    results = [
        Result.passed("a.crit", "x", "ok"),
        Result.failed("a.crit", "y", "bad"),
        Result.failed("a.low", "z", "bad"),
    ]
    s = score_results(results, metas, ScoringConfig())
    # critical weight 10 split over 2 results: (5*1 + 5*0 + 1*0) / 11
    assert s.overall == pytest.approx(45.4, abs=0.1)
    s2 = score_results(results, metas, ScoringConfig(check_weights={"a.low": 0}))
    assert s2.overall == 50


def test_error_counts_as_fail_and_skip_is_excluded() -> None:
    metas = {"a.b": _meta("a.b", Severity.HIGH)}
    s = score_results(
        [
            Result.passed("a.b", "1", "ok"),
            Result.errored("a.b", "2", ErrorReason.TIMEOUT, "slow"),
            Result.skipped("a.b", "3", "n/a"),
        ],
        metas,
        ScoringConfig(),
    )
    assert s.overall == 50


@pytest.mark.parametrize(
    ("score", "warn", "letter"),
    [
        (100, False, "A+"),
        (100, True, "A"),
        (90, False, "A"),
        (89.9, False, "B"),
        (80, False, "B"),
        (70, False, "C"),
        (60, False, "D"),
        (59.9, False, "F"),
        (None, False, "-"),
    ],
)
def test_grades(score: float | None, warn: bool, letter: str) -> None:
    assert grade(score, warn) == letter


def test_gate_precedence() -> None:
    metas = {"c.x": _meta("c.x", Severity.CRITICAL), "h.x": _meta("h.x", Severity.HIGH)}
    gate = GateConfig()
    ready = decide([Result.passed("c.x", "s", "ok")], metas, 100, gate)
    assert (ready.verdict, ready.exit_code) == ("ready", 0)
    inc = decide([Result.errored("c.x", "s", ErrorReason.CONNECTIVITY, "down")], metas, 95, gate)
    assert (inc.verdict, inc.exit_code) == ("inconclusive", 3)
    both = [Result.errored("c.x", "s", ErrorReason.BUG, "x"), Result.failed("c.x", "t", "bad")]
    nr = decide(both, metas, 95, gate)
    assert (nr.verdict, nr.exit_code) == ("not_ready", 1)
    high_fail = [Result.failed("h.x", "s", "bad")]
    assert decide(high_fail, metas, 95, gate).exit_code == 1  # block_on defaults to high
    assert decide(high_fail, metas, 95, GateConfig(block_on=Severity.CRITICAL)).exit_code == 0
    # a required checklist item nothing verified: inconclusive whatever the score
    from readyctl.scoring import GateReason

    unverified = [GateReason("unverified", "critical checklist item 7 was not verified")]
    inc = decide([Result.passed("c.x", "s", "ok")], metas, 100, gate, unverified=unverified)
    assert (inc.verdict, inc.exit_code) == ("inconclusive", 3)
    assert inc.reasons[0].code == "unverified"
    # ...but a blocking failure still says not ready
    nr = decide(high_fail, metas, 100, gate, unverified=unverified)
    assert nr.verdict == "not_ready"
    low = decide([Result.passed("c.x", "s", "ok")], metas, 79.9, gate)
    assert low.exit_code == 1 and low.reasons[0].code == "score"
    intr = decide(both, metas, 95, gate, interrupted=True)
    assert intr.exit_code == 130
    waived = decide(both, metas, 95, gate, waived={("c.x", "t"), ("c.x", "s")})
    assert waived.exit_code == 0
    expired = decide(
        [Result.passed("c.x", "s", "ok")],
        metas,
        100,
        gate,
        expired_waivers=["waiver for c.x expired 2026-01-01"],
    )
    assert expired.exit_code == 1 and expired.reasons[0].code == "expired_waiver"


def test_a_measurement_that_is_not_a_number_is_an_error_never_a_pass() -> None:
    from readyctl.result import Curve, Status

    curve = Curve(good=300, poor=2000)
    for value in (float("nan"), float("inf"), float("-inf")):
        r = Result.measure("c.x", "p95", value, curve=curve, summary="p95", fail_at=2000)
        assert r.status is Status.ERROR and r.value == 0.0, value
    ok = Result.measure("c.x", "p95", 250.0, curve=curve, summary="p95", fail_at=2000)
    assert ok.status is Status.PASS
