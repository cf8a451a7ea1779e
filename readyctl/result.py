"""Results: frozen data made only through named constructors; rendering lives in reporters."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

Number = int | float


class Status(enum.StrEnum):
    """What a result says about its subject."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    BLOCKED = "blocked"
    ERROR = "error"

    @property
    def scored(self) -> bool:
        """Whether results of this status count towards the score."""
        return self in (Status.PASS, Status.WARN, Status.FAIL, Status.ERROR)


class ErrorReason(enum.StrEnum):
    """Why a check could not run."""

    TIMEOUT = "timeout"
    CONNECTIVITY = "connectivity"
    CONFIG = "config"
    BUG = "bug"
    INCONCLUSIVE = "inconclusive"


DEFAULT_STATUS_SCORE = {Status.PASS: 1.0, Status.WARN: 0.5, Status.FAIL: 0.0, Status.ERROR: 0.0}


@dataclasses.dataclass(frozen=True)
class Curve:
    """A log-normal scoring curve: `good` scores 0.9 and `poor` scores 0.5 (Lighthouse's method)."""

    good: float
    poor: float

    def __post_init__(self) -> None:
        if self.good <= 0 or self.poor <= 0 or self.good == self.poor:
            raise ValueError("curve needs positive, different good and poor values")

    @property
    def higher_is_better(self) -> bool:
        """True when larger measurements are better (days to expiry, entropy)."""
        return self.good > self.poor

    def score(self, value: float) -> float:
        """Map a measurement to 0..1."""
        good, poor, x = self.good, self.poor, float(value)
        if self.higher_is_better:
            if x <= 0:
                return 0.0
            good, poor, x = 1 / good, 1 / poor, 1 / x
        if x <= 0:
            return 1.0
        inverse_erfc_one_fifth = 0.9061938024368232
        x_log_ratio = math.log(x / poor)
        p10_log_ratio = -math.log(good / poor)
        standardized = x_log_ratio * inverse_erfc_one_fifth / p10_log_ratio
        score = math.erfc(standardized) / 2
        return round(min(1.0, max(0.0, score)), 4)


@dataclasses.dataclass(frozen=True)
class Remediation:
    """How to fix a failure: text, an optional snippet and a link."""

    text: str
    snippet: str | None = None
    link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"text": self.text, "snippet": self.snippet, "link": self.link}


@dataclasses.dataclass(frozen=True)
class Result:
    """One finding of one check about one subject. Build it with the named constructors."""

    check_id: str
    subject: str
    status: Status
    summary: str
    reason: str | None = None
    error_reason: ErrorReason | None = None
    measured: Number | str | None = None
    threshold: Number | str | None = None
    unit: str | None = None
    score: float | None = None
    evidence: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    duration_ms: float = 0.0
    attempts: int = 1
    passed_on_retry: bool = False
    trace: str | None = None

    # -- named constructors -------------------------------------------------------------
    @classmethod
    def passed(
        cls, check_id: str, subject: str, summary: str, *, score: float | None = None, **kw: Any
    ) -> Result:
        """The property holds."""
        return cls(check_id, subject, Status.PASS, summary, score=score, **kw)

    @classmethod
    def warned(
        cls, check_id: str, subject: str, summary: str, *, score: float | None = None, **kw: Any
    ) -> Result:
        """The property holds partly, or holds with a smell."""
        return cls(check_id, subject, Status.WARN, summary, score=score, **kw)

    @classmethod
    def failed(
        cls, check_id: str, subject: str, summary: str, *, score: float | None = None, **kw: Any
    ) -> Result:
        """The property does not hold."""
        return cls(check_id, subject, Status.FAIL, summary, score=score, **kw)

    @classmethod
    def skipped(
        cls,
        check_id: str,
        subject: str,
        reason: str,
        *,
        evidence: Mapping[str, Any] | None = None,
    ) -> Result:
        """Not applicable, not selected or not configured; the reason is required."""
        if not reason:
            raise ValueError("a skip needs a reason")
        return cls(
            check_id,
            subject,
            Status.SKIP,
            f"Skipped: {reason}",
            reason=reason,
            evidence=dict(evidence or {}),
        )

    @classmethod
    def blocked_by(
        cls,
        check_id: str,
        subject: str,
        root_cause: str,
        *,
        evidence: Mapping[str, Any] | None = None,
    ) -> Result:
        """A prerequisite failed; `root_cause` names it."""
        return cls(
            check_id,
            subject,
            Status.BLOCKED,
            f"Blocked: {root_cause}",
            reason=root_cause,
            evidence=dict(evidence or {}),
        )

    @classmethod
    def errored(
        cls,
        check_id: str,
        subject: str,
        reason: ErrorReason,
        detail: str,
        *,
        trace: str | None = None,
        **kw: Any,
    ) -> Result:
        """The check could not run; scored as a fail (fail closed)."""
        return cls(
            check_id,
            subject,
            Status.ERROR,
            f"Could not check {subject}: {detail}",
            reason=detail,
            error_reason=reason,
            trace=trace,
            **kw,
        )

    @classmethod
    def measure(
        cls,
        check_id: str,
        subject: str,
        value: Number,
        *,
        curve: Curve,
        summary: str,
        fail_at: Number | None = None,
        warn_at: Number | None = None,
        unit: str | None = None,
        **kw: Any,
    ) -> Result:
        """A continuous measurement: status from the thresholds, score from the curve.

        A value that is not a finite number (NaN, infinity) measured nothing: an error, never
        a pass (every comparison with NaN is false).
        """
        if not isinstance(value, int | float) or not math.isfinite(value):
            return cls.errored(
                check_id,
                subject,
                ErrorReason.INCONCLUSIVE,
                f"{summary} (the measurement is not a finite number: {value!r})",
                **({"evidence": kw["evidence"]} if "evidence" in kw else {}),
            )
        higher = curve.higher_is_better

        def beyond(limit: Number | None) -> bool:
            if limit is None:
                return False
            return value < limit if higher else value > limit

        if beyond(fail_at):
            status, threshold = Status.FAIL, fail_at
        elif beyond(warn_at):
            status, threshold = Status.WARN, warn_at
        else:
            status, threshold = Status.PASS, warn_at if warn_at is not None else fail_at
        score = curve.score(value)
        if status is Status.FAIL:
            score = min(score, 0.49)
        return cls(
            check_id,
            subject,
            status,
            summary,
            measured=value,
            threshold=threshold,
            unit=unit,
            score=score,
            **kw,
        )

    # -- derived ------------------------------------------------------------------------
    @property
    def key(self) -> tuple[str, str]:
        """Identity of a result across runs: check id plus subject."""
        return (self.check_id, self.subject)

    @property
    def value(self) -> float | None:
        """Score contribution 0..1, or None when excluded from the score."""
        if not self.status.scored:
            return None
        if self.status is Status.ERROR:
            return 0.0
        if self.score is not None:
            return self.score
        return DEFAULT_STATUS_SCORE[self.status]

    def with_run_info(self, *, duration_ms: float, attempts: int, passed_on_retry: bool) -> Result:
        """The same result with the runner's timing and attempt count."""
        return dataclasses.replace(
            self, duration_ms=duration_ms, attempts=attempts, passed_on_retry=passed_on_retry
        )

    def redacted(self, redact: Any) -> Result:
        """The same result with every text and evidence value passed through `redact`."""
        return dataclasses.replace(
            self,
            subject=redact.text(self.subject),
            summary=redact.text(self.summary),
            reason=redact.text(self.reason) if self.reason else None,
            measured=redact.value(self.measured),
            threshold=redact.value(self.threshold),
            evidence=redact.value(dict(self.evidence)),
            trace=redact.text(self.trace) if self.trace else None,
        )
