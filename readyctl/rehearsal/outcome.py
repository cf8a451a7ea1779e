"""What a rehearsal found: one outcome per revision and the run's totals."""

from __future__ import annotations

import dataclasses


# -- results --------------------------------------------------------------------------------------
@dataclasses.dataclass
class RevisionOutcome:
    """What happened to one revision: pass, fail, irreversible (its upgrade applied, it has no
    downgrade), error (infrastructure) or not_rehearsed (`blocked_by`: the revision that
    stopped the rehearsal first, when one failed)."""

    revision: str
    status: str
    summary: str
    up_s: float | None = None
    down_s: float | None = None
    up_again_s: float | None = None
    difference: list[str] = dataclasses.field(default_factory=list)
    step: str | None = None
    blocked_by: str | None = None

    def durations(self) -> dict[str, float]:
        """The measured step durations in seconds."""
        out = {}
        for k in ("up_s", "down_s", "up_again_s"):
            v = getattr(self, k)
            if v is not None:
                out[k] = round(v, 3)
        return out


@dataclasses.dataclass
class RehearsalOutcome:
    """Every revision's outcome and how the rehearsal went."""

    mode: str  # "pending" | "last" | "none"
    revisions: list[RevisionOutcome]
    source_revision: tuple[str, ...]
    tool: str
    notes: list[str] = dataclasses.field(default_factory=list)
    dump_s: float = 0.0
    restore_s: float = 0.0
    total_s: float = 0.0
    scratch_database: str | None = None
    sampled_rows: int = 0

    @property
    def first_failure(self) -> RevisionOutcome | None:
        """The first revision that failed."""
        return next((r for r in self.revisions if r.status == "fail"), None)

    @property
    def irreversible(self) -> list[RevisionOutcome]:
        """The revisions without a downgrade."""
        return [r for r in self.revisions if r.status == "irreversible"]

    @property
    def rehearsed(self) -> int:
        """How many revisions completed a round trip (pass)."""
        return sum(1 for r in self.revisions if r.status == "pass")
