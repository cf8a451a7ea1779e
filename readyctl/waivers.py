"""Waivers: matching results, policy (expiry rules), days left."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from readyctl.check import CheckMeta, Severity
from readyctl.config import Waiver
from readyctl.result import Result

MAX_DAYS_AHEAD = 90


@dataclasses.dataclass(frozen=True)
class WaiverState:
    """A waiver as of one day: validity problems, days left, what it matched."""

    index: int
    waiver: Waiver
    problems: tuple[str, ...]
    days_left: int | None
    expired: bool
    matched: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the report's `waivers` list and a result's `waiver`)."""
        w = self.waiver
        return {
            "check": w.check,
            "subject": w.subject,
            "reason": w.reason,
            "owner": w.owner,
            "expires": w.expires.isoformat() if w.expires else None,
            "days_left": self.days_left,
            "expired": self.expired,
            "ticket": w.ticket,
            "approver": w.approver,
            "problems": list(self.problems),
            "matched": len(self.matched),
        }

    def describe(self) -> str:
        """`check [subject]` for messages."""
        return self.waiver.check + (f" [{self.waiver.subject}]" if self.waiver.subject else "")


def _severities(pattern: str, metas: Mapping[str, CheckMeta]) -> list[Severity]:
    return [m.severity for cid, m in metas.items() if fnmatch.fnmatchcase(cid, pattern)]


def evaluate(
    waivers: Sequence[Waiver], metas: Mapping[str, CheckMeta], today: dt.date
) -> list[WaiverState]:
    """Policy: critical/high need an expiry, at most 90 days ahead; expired is reported."""
    states = []
    for i, w in enumerate(waivers):
        problems = []
        sevs = _severities(w.check, metas)
        if not sevs:
            problems.append(f"{w.check!r} matches no known check id")
        needs_expiry = any(s in (Severity.CRITICAL, Severity.HIGH) for s in sevs)
        days_left = (w.expires - today).days if w.expires else None
        if w.expires is None and needs_expiry:
            problems.append("waivers of critical or high checks need an expires: date")
        if days_left is not None and days_left > MAX_DAYS_AHEAD:
            problems.append(
                f"expires {w.expires} is {days_left} days ahead; the limit is {MAX_DAYS_AHEAD}"
            )
        expired = days_left is not None and days_left < 0
        states.append(WaiverState(i, w, tuple(problems), days_left, expired))
    return states


def apply(
    states: Sequence[WaiverState], results: Sequence[Result]
) -> tuple[list[WaiverState], dict[tuple[str, str], WaiverState]]:
    """Match results to the first waiver that covers them; returns states with matches filled."""
    by_key: dict[tuple[str, str], WaiverState] = {}
    matched: dict[int, list[tuple[str, str]]] = {s.index: [] for s in states}
    for r in results:
        for s in states:
            w = s.waiver
            if not fnmatch.fnmatchcase(r.check_id, w.check):
                continue
            if w.subject is not None and not fnmatch.fnmatchcase(r.subject, w.subject):
                continue
            matched[s.index].append(r.key)
            by_key.setdefault(r.key, s)
            break
    filled = [dataclasses.replace(s, matched=tuple(matched[s.index])) for s in states]
    lookup = {s.index: s for s in filled}
    return filled, {k: lookup[v.index] for k, v in by_key.items()}
