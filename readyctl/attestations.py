"""Attestations: signed sign-offs for what no machine can verify, and their policy.

The seed's pre- and post-deployment lists hold tasks no check can judge: a security audit
(penetration test), a legal review of the terms and privacy policy, a tested disaster-recovery
procedure, support on call. `attestations:` in readyctl.yaml records who signed each, when,
a link to the evidence and an expiry; the checklist of every report shows them.

Policy (the same day arithmetic as waivers, on the run's clock):

- every field is needed: `by`, `at`, `evidence`, `expires`; an incomplete one does not count;
- `at` may not lie in the future, `expires` may not precede `at`;
- expired (`expires` before today) does not count; within `EXPIRING_SOON_DAYS` it still counts
  and lint says so;
- a seed item 1-20 can be attested only while no check covers it: a signature is never a pass
  of a machine check (the item stays judged by its checks, and lint says so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from readyctl.check import CheckMeta, Severity
from readyctl.config import Attestation

EXPIRING_SOON_DAYS = 14
REQUIRED_FIELDS = ("by", "at", "evidence", "expires")

# the named items: title and the priority shown in the checklist (required only when
# `gate.require_attestations` names them)
NAMED: dict[str, tuple[str, Severity]] = {
    "security_audit": ("Security audit (penetration test)", Severity.HIGH),
    "legal_review": ("Legal review (terms, privacy policy)", Severity.MEDIUM),
    "dr_tested": ("Disaster-recovery procedure tested", Severity.HIGH),
    "support_on_call": ("Support on call", Severity.MEDIUM),
}


def machine_checked(metas: Mapping[str, CheckMeta]) -> dict[str, list[str]]:
    """Seed item -> the checks whose `refs` name it (those items are judged by machines)."""
    out: dict[str, list[str]] = {}
    for cid, meta in metas.items():
        for ref in meta.refs:
            out.setdefault(ref, []).append(cid)
    return {k: sorted(v) for k, v in out.items()}


@dataclasses.dataclass(frozen=True)
class AttestationState:
    """An attestation as of one day: what is wrong with it, days left, whether it counts."""

    index: int
    attestation: Attestation
    problems: tuple[str, ...]
    days_left: int | None
    expired: bool

    @property
    def valid(self) -> bool:
        """Complete, consistent, not expired and on an attestable item: it counts."""
        return not self.problems and not self.expired

    @property
    def expiring_soon(self) -> bool:
        """Counts today but expires within EXPIRING_SOON_DAYS."""
        return self.valid and self.days_left is not None and self.days_left <= EXPIRING_SOON_DAYS

    def describe(self) -> str:
        """One phrase naming the attestation, for messages."""
        a = self.attestation
        who = f" by {a.by}" if a.by else ""
        when = f" on {a.at}" if a.at else ""
        return f"attestation of {a.item}{who}{when}"

    def why_not(self) -> str:
        """Why it does not count (empty when it does)."""
        if self.problems:
            return f"{self.describe()} is invalid: " + "; ".join(self.problems)
        if self.expired:
            return f"{self.describe()} expired on {self.attestation.expires}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (a checklist item's `attestation`, and the lint's rows)."""
        a = self.attestation
        return {
            "item": a.item,
            "by": a.by,
            "at": a.at.isoformat() if a.at else None,
            "evidence": a.evidence,
            "expires": a.expires.isoformat() if a.expires else None,
            "note": a.note,
            "days_left": self.days_left,
            "expired": self.expired,
            "expiring_soon": self.expiring_soon,
            "valid": self.valid,
            "problems": list(self.problems),
        }


def evaluate(
    attestations: Sequence[Attestation],
    metas: Mapping[str, CheckMeta],
    today: dt.date,
) -> list[AttestationState]:
    """Each attestation's state today (see the module docstring for the policy)."""
    checked = machine_checked(metas)
    states = []
    for i, a in enumerate(attestations):
        problems = []
        missing = [f for f in REQUIRED_FIELDS if getattr(a, f) in (None, "")]
        if missing:
            problems.append("missing " + ", ".join(missing))
        if a.at is not None and a.at > today:
            problems.append(f"signed at {a.at}, a date in the future")
        if a.at is not None and a.expires is not None and a.expires < a.at:
            problems.append(f"expires {a.expires} before it was signed ({a.at})")
        if a.item in checked:
            problems.append(
                f"seed item {a.item} is judged by checks ({', '.join(checked[a.item])}); "
                "a signature never passes a machine check"
            )
        days_left = (a.expires - today).days if a.expires else None
        expired = days_left is not None and days_left < 0
        states.append(AttestationState(i, a, tuple(problems), days_left, expired))
    return states


def by_item(states: Iterable[AttestationState]) -> dict[str, list[AttestationState]]:
    """Item -> its attestations, in config order."""
    out: dict[str, list[AttestationState]] = {}
    for s in states:
        out.setdefault(s.attestation.item, []).append(s)
    return out


def best(states: Sequence[AttestationState]) -> AttestationState | None:
    """The attestation that speaks for an item: the valid one expiring last, else the newest."""
    if not states:
        return None
    valid = [s for s in states if s.valid]
    if valid:
        return max(valid, key=lambda s: (s.attestation.expires or dt.date.max, s.index))
    return max(states, key=lambda s: (s.attestation.at or dt.date.min, s.index))
