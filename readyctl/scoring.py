"""Category and overall score, grade, the gate decision and the exit code."""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from readyctl.check import CheckMeta, Severity
from readyctl.config import GateConfig, ScoringConfig
from readyctl.result import Result, Status

EXIT_READY = 0
EXIT_NOT_READY = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INTERNAL = 4  # a bug in readyctl (an unexpected exception): please report it
EXIT_INTERRUPTED = 130

VERDICT_EXIT = {"ready": EXIT_READY, "not_ready": EXIT_NOT_READY, "inconclusive": EXIT_INCONCLUSIVE}

EXIT_CODES_HELP = (
    "Exit codes (first that applies): 2 usage or config error (nothing ran); "
    "130 interrupted; 1 not ready (a blocking failure, score under fail_under, a regression "
    "or an expired waiver); 3 inconclusive (no blocking failure, but a required checklist item "
    "was not verified, or a critical check errored or is blocked); 0 ready: every required "
    "checklist item was verified and held; 4 internal error (a bug in readyctl; please "
    "report it)."
)


def check_weight(meta: CheckMeta, scoring: ScoringConfig) -> float:
    """The weight of a check: a per-check override (id glob) or its severity's weight."""
    for pattern, weight in scoring.check_weights.items():
        if fnmatch.fnmatchcase(meta.id, pattern):
            return float(weight)
    return float(scoring.weights.get(meta.severity, 0))


def grade(score: float | None, any_warn: bool) -> str:
    """A+ (100, nothing warns), A >= 90, B >= 80, C >= 70, D >= 60, F below."""
    if score is None:
        return "-"
    if score >= 100 and not any_warn:
        return "A+"
    for limit, letter in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if score >= limit:
            return letter
    return "F"


@dataclasses.dataclass(frozen=True)
class Scored:
    """Per-result weights and the aggregate scores."""

    weights: dict[tuple[str, str], float]
    categories: dict[str, float | None]
    overall: float | None


def _floor1(x: float) -> float:
    return math.floor(x * 1000 + 1e-9) / 10


def score_results(
    results: Sequence[Result],
    metas: Mapping[str, CheckMeta],
    scoring: ScoringConfig,
    excluded: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
) -> Scored:
    """A check's weight is shared by its scored results; categories and overall are means."""
    by_check: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        if r.value is not None and r.key not in excluded:
            by_check[r.check_id].append(r)
    weights: dict[tuple[str, str], float] = {}
    cat_num: dict[str, float] = defaultdict(float)
    cat_den: dict[str, float] = defaultdict(float)
    num = den = 0.0
    for cid, rs in by_check.items():
        meta = metas[cid]
        w = check_weight(meta, scoring) / len(rs)
        for r in rs:
            weights[r.key] = w
            value = r.value or 0.0
            cat_num[meta.category.value] += w * value
            cat_den[meta.category.value] += w
            num += w * value
            den += w
    categories: dict[str, float | None] = {}
    for r in results:
        cat = metas[r.check_id].category.value
        if cat not in categories:
            categories[cat] = None
    for cat, d in cat_den.items():
        categories[cat] = _floor1(cat_num[cat] / d) if d > 0 else None
    overall = _floor1(num / den) if den > 0 else None
    return Scored(weights, dict(sorted(categories.items())), overall)


@dataclasses.dataclass(frozen=True)
class GateReason:
    """One reason the gate said no (or could not say yes)."""

    code: str  # blocking_fail | score | regression | expired_waiver | unverified | inconclusive
    # | interrupted
    message: str
    check_id: str | None = None
    subject: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """The verdict and why."""

    verdict: str  # ready | not_ready | inconclusive
    reasons: list[GateReason]
    exit_code: int


def decide(
    results: Sequence[Result],
    metas: Mapping[str, CheckMeta],
    score: float | None,
    gate: GateConfig,
    *,
    waived: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    expired_waivers: Sequence[str] = (),
    regression: Sequence[GateReason] = (),
    interrupted: bool = False,
    unverified: Sequence[GateReason] = (),
    errors_are_inconclusive: bool = False,
) -> GateDecision:
    """Apply the gate: blocking fails, fail_under, regressions, expired waivers, coverage.

    `unverified` names the required checklist items nothing verified: they make a run
    without a blocking failure inconclusive, whatever its score.
    """
    not_ready: list[GateReason] = []
    inconclusive: list[GateReason] = []
    block_rank = gate.block_on.rank
    for r in results:
        if r.key in waived:
            continue
        meta = metas[r.check_id]
        if r.status is Status.FAIL and meta.severity.rank >= block_rank:
            not_ready.append(
                GateReason(
                    "blocking_fail",
                    f"{meta.severity.value} check {r.check_id} failed: {r.summary}",
                    r.check_id,
                    r.subject,
                )
            )
        elif r.status in (Status.ERROR, Status.BLOCKED) and (
            meta.severity is Severity.CRITICAL or errors_are_inconclusive
        ):
            inconclusive.append(
                GateReason(
                    "inconclusive",
                    f"{meta.severity.value} check {r.check_id} {r.status.value}: "
                    f"{r.reason or r.summary}",
                    r.check_id,
                    r.subject,
                )
            )
    if score is not None and score < gate.fail_under:
        not_ready.append(
            GateReason("score", f"score {score:g} is under fail_under {gate.fail_under:g}")
        )
    for w in expired_waivers:
        not_ready.append(GateReason("expired_waiver", w))
    not_ready.extend(regression)
    inconclusive = [*unverified, *inconclusive]
    if score is None and not not_ready:
        inconclusive.append(
            GateReason("inconclusive", "no check produced a scored result (all skipped?)")
        )
    if interrupted:
        reasons = [GateReason("interrupted", "the run was interrupted before it finished")]
        return GateDecision("inconclusive", reasons + not_ready + inconclusive, EXIT_INTERRUPTED)
    if not_ready:
        return GateDecision("not_ready", not_ready + inconclusive, EXIT_NOT_READY)
    if inconclusive:
        return GateDecision("inconclusive", inconclusive, EXIT_INCONCLUSIVE)
    return GateDecision("ready", [], EXIT_READY)
