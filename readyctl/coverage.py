"""Checklist coverage: which seed items a run verified, and what each unverified one needs.

Seed items 1-20 carry the seed checklist's priority (1-5 critical, 6-10 high, 11-15 medium,
16-20 low); "critical paths" (the configured smoke suite) is critical. An item is covered by
the checks whose `refs` name it. Per item a run says:

- verified: at least one unwaived scored result (pass, warn or fail) of its checks; for an
  item with decisive checks (DECISIVE), one of theirs: item 8 asks for alert rules, so metrics
  and an error tracker alone (what is measured) never verify it without alerts.rules (who
  would be paged);
- waived: its checks' only results are waived;
- not_applicable: declared in readyctl.yaml with a reason and an owner (not expired);
- attested: no check can verify it, and a valid attestation (readyctl/attestations.py) signs
  it: who, when, evidence, expiry. A signature never passes a machine check: a seed item that
  a check covers stays judged by its checks;
- unverified: everything else, with the reasons and the setting that would make it verifiable.

Besides items 1-20 and critical paths, the checklist holds the named items only attestations
verify (security_audit, legal_review, dr_tested, support_on_call), required only when
`gate.require_attestations` names them. An expired or incomplete attestation leaves its item
unverified and is named in `missing`.

The deploy-day list is verified by `readyctl deploy`, not by `check`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from readyctl.check import CheckMeta, Severity
from readyctl.result import Result, Status

if TYPE_CHECKING:
    from readyctl.attestations import AttestationState

CRITICAL_PATHS = "critical_paths"
# the evidence key a smoke result carries to name the critical path it exercises
CRITICAL_PATH_EVIDENCE = "critical_path"

ITEMS: dict[str, tuple[str, Severity]] = {
    "1": ("Environment variable validation", Severity.CRITICAL),
    "2": ("Database migration strategy", Severity.CRITICAL),
    "3": ("Secrets management", Severity.CRITICAL),
    "4": ("Database connection pool", Severity.CRITICAL),
    "5": ("SSL/TLS enforced", Severity.CRITICAL),
    "6": ("Load testing", Severity.HIGH),
    "7": ("Backup & disaster recovery", Severity.HIGH),
    "8": ("Monitoring & alerting", Severity.HIGH),
    "9": ("Rate limiting per endpoint", Severity.HIGH),
    "10": ("API versioning", Severity.HIGH),
    "11": ("Database indexes", Severity.MEDIUM),
    "12": ("Caching strategy", Severity.MEDIUM),
    "13": ("Content delivery (CDN, compression)", Severity.MEDIUM),
    "14": ("Graceful shutdown", Severity.MEDIUM),
    "15": ("Performance optimization", Severity.MEDIUM),
    "16": ("Feature flags", Severity.LOW),
    "17": ("Blue-green deployment", Severity.LOW),
    "18": ("Auto-scaling", Severity.LOW),
    "19": ("WAF", Severity.LOW),
    "20": ("Compliance & legal", Severity.LOW),
    CRITICAL_PATHS: ("Critical paths (smoke suite)", Severity.CRITICAL),
}
ITEM_ORDER = [CRITICAL_PATHS, *[str(n) for n in range(1, 21)]]

VERIFIED = "verified"
UNVERIFIED = "unverified"
NOT_APPLICABLE = "not_applicable"
WAIVED = "waived"
ATTESTED = "attested"
ATTEST_SETTING = (
    "attestations: [{{item: {item}, by: ..., at: YYYY-MM-DD, evidence: https://..., "
    "expires: YYYY-MM-DD}}]"
)

# Items whose other checks only measure around the item: a scored result of one of these is
# what verifies it. Seed item 8 lists alert rules on six conditions; /metrics and Sentry show
# that something is measured, not that anyone is woken up.
DECISIVE: dict[str, frozenset[str]] = {"8": frozenset({"alerts.rules"})}

_SCORED = (Status.PASS, Status.WARN, Status.FAIL)
_WORST = [Status.FAIL, Status.WARN, Status.PASS]


def item_label(item: str) -> str:
    """`1. Environment variable validation`, or the critical-paths title."""
    if item not in ITEMS:
        from readyctl.attestations import NAMED

        return NAMED[item][0] if item in NAMED else item
    title = ITEMS[item][0]
    return title if item == CRITICAL_PATHS else f"{item}. {title}"


def requirement_met(priority: Severity, require: Severity | None) -> bool:
    """Whether an item of this priority is required by `gate.require` (None: nothing is)."""
    return require is not None and priority.rank >= require.rank


_SETTING = re.compile(
    r"\benvironments\.[A-Za-z0-9_-]+\.api\.[a-z_.]+[a-z]|\bchecks\.[a-z_]+\.[a-z_]+(?:\.[a-z_]+)?"
)


def _hint(reason: str, check_id: str, env_name: str) -> str:
    """The setting that would make a skipped or blocked result verifiable."""
    low = reason.lower()
    env = f"environments.{env_name}"
    table = (
        ("no base_url", f"{env}.base_url"),
        ("no login:", f"{env}.api.login"),
        ("no login route", f"{env}.api.login"),
        ("no database_url", f"{env}.database_url"),
        ("no aws:", f"{env}.aws"),
        ("refused on production", f"{env}.allow: [{check_id}]"),
        ("not selected", "include it in --only / remove it from --skip and skip:"),
        ("no git repository", "run readyctl from the project's git checkout"),
        ("locust is not installed", "pip install locust"),
        ("only runs against a managed target", "managed: demo (not applicable elsewhere)"),
    )
    for needle, hint in table:
        if needle in low:
            return hint
    installed = re.search(r"is not installed \(([^)]+)\)", reason)
    if installed:  # a program the check runs: the install command
        return installed.group(1)
    named = _SETTING.search(reason)
    if named:
        return named.group(0)
    return f"checks.{check_id} (readyctl explain {check_id})"


@dataclasses.dataclass(frozen=True)
class Declared:
    """A not-applicable declaration from readyctl.yaml."""

    item: str
    reason: str
    owner: str
    expires: dt.date | None = None


@dataclasses.dataclass
class ItemCoverage:
    """One checklist item's state in a run."""

    item: str
    title: str
    priority: Severity
    status: str
    required: bool
    checks: list[str]
    outcome: str | None = None  # worst scored status when verified: pass | warn | fail
    verified_by: list[str] = dataclasses.field(default_factory=list)
    missing: list[dict[str, str]] = dataclasses.field(default_factory=list)
    declaration: dict[str, Any] | None = None
    paths: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    attestation: dict[str, Any] | None = None  # the attestation that speaks for the item

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the report's `checklist.items[]`)."""
        d = dataclasses.asdict(self)
        d["priority"] = self.priority.value
        return d

    @property
    def blocks_gate(self) -> bool:
        """Required and not verified (nor declared not applicable nor waived)."""
        return self.required and self.status == UNVERIFIED

    def gate_message(self) -> str:
        """The gate's one sentence about this item."""
        settings = dict.fromkeys(m["setting"] for m in self.missing if m["setting"])
        needs = "; ".join(settings) or "a check for it"
        return (
            f"{self.priority.value} checklist item {item_label(self.item)} was not verified; "
            f"needs: {needs}"
        )


def _path_of(r: Result) -> str | None:
    value = r.evidence.get(CRITICAL_PATH_EVIDENCE) if r.evidence else None
    return str(value) if value else None


def _critical_paths(results: Sequence[Result], waived: set[tuple[str, str]]) -> list[dict]:
    """Per critical path (smoke `covers:`): verified when a step of it was scored."""
    by_path: dict[str, list[Result]] = {}
    for r in results:
        path = _path_of(r)
        if path:
            by_path.setdefault(path, []).append(r)
    out = []
    for path, rs in by_path.items():
        scored = [r for r in rs if r.status in _SCORED and r.key not in waived]
        worst = next((s.value for s in _WORST if any(r.status is s for r in scored)), None)
        reasons = [r.reason or r.summary for r in rs if r.status not in _SCORED]
        out.append(
            {
                "path": path,
                "status": VERIFIED if scored else UNVERIFIED,
                "outcome": worst,
                "reasons": list(dict.fromkeys(reasons))[:3] if not scored else [],
            }
        )
    return out


def compute(
    results: Sequence[Result],
    metas: Mapping[str, CheckMeta],
    *,
    selected: Iterable[str],
    waived: set[tuple[str, str]],
    declared: Sequence[Declared],
    require: Severity | None,
    env_name: str,
    today: dt.date,
    smoke_check: str = "smoke.scenarios",
    scope_to_selection: bool = False,
    attestations: Sequence[AttestationState] | None = None,
    required_attestations: Iterable[str] = (),
) -> list[ItemCoverage]:
    """Coverage of every checklist item by this run's results.

    `scope_to_selection` (focused commands such as `readyctl smoke`): only items with a
    selected check can be required; the rest of the checklist is not this command's job.
    `attestations` (states as of `today`): None leaves the attested items out (a plan);
    otherwise they are listed after the seed items, `required_attestations` required.
    """
    from readyctl import attestations as _att

    signed = _att.by_item(attestations or ())
    selected = set(selected)
    by_item: dict[str, list[str]] = {i: [] for i in ITEMS}
    for cid, meta in metas.items():
        for ref in meta.refs:
            if ref in by_item:
                by_item[ref].append(cid)
    if smoke_check in metas:
        by_item[CRITICAL_PATHS].append(smoke_check)
    by_check: dict[str, list[Result]] = {}
    for r in results:
        by_check.setdefault(r.check_id, []).append(r)
    decl = {d.item: d for d in declared}
    out: list[ItemCoverage] = []
    for item in ITEM_ORDER:
        title, priority = ITEMS[item]
        checks = sorted(by_item[item])
        cov = ItemCoverage(
            item=item,
            title=title,
            priority=priority,
            status=UNVERIFIED,
            required=requirement_met(priority, require)
            and (not scope_to_selection or any(c in selected for c in checks)),
            checks=checks,
        )
        rs = [r for cid in checks for r in by_check.get(cid, [])]
        scored = [r for r in rs if r.status in _SCORED and r.key not in waived]
        decisive = sorted(DECISIVE.get(item, frozenset()) & set(checks))
        deciding = [r for r in rs if not decisive or r.check_id in decisive]
        d = decl.get(item)
        expired = d is not None and d.expires is not None and d.expires < today
        if d is not None:
            cov.declaration = {
                "reason": d.reason,
                "owner": d.owner,
                "expires": d.expires.isoformat() if d.expires else None,
                "expired": expired,
            }
        if item == CRITICAL_PATHS:
            cov.paths = _critical_paths(by_check.get(smoke_check, []), waived)
        att = _att.best(signed.get(item, []))
        if att is not None:
            cov.attestation = att.to_dict()
        if any(r.status in _SCORED and r.key not in waived for r in deciding):
            cov.status = VERIFIED
            cov.verified_by = sorted({r.check_id for r in scored})
            cov.outcome = next(s.value for s in _WORST if any(r.status is s for r in scored))
        elif d is not None and not expired:
            cov.status = NOT_APPLICABLE
        elif any(r.key in waived for r in deciding):
            cov.status = WAIVED
        elif not checks and att is not None and att.valid:
            cov.status = ATTESTED  # only where no check covers the item
        else:
            cov.missing = _missing(decisive or checks, by_check, selected, env_name)
            if scored:  # measured around the item by the others, not proven
                others = ", ".join(sorted({r.check_id for r in scored}))
                cov.missing.insert(
                    0,
                    {
                        "check": "",
                        "reason": "verified only by "
                        + ", ".join(decisive)
                        + f" ({others} alone do not verify it)",
                        "setting": "",
                    },
                )
            if not checks and item != CRITICAL_PATHS:
                cov.missing.append(_attestation_missing(item, att))
        out.append(cov)
    if attestations is None:
        return out
    required = set(required_attestations)
    for item, (title, priority) in _att.NAMED.items():
        att = _att.best(signed.get(item, []))
        cov = ItemCoverage(
            item=item,
            title=title,
            priority=priority,
            status=UNVERIFIED,
            required=item in required,
            checks=[],
            attestation=att.to_dict() if att is not None else None,
        )
        if att is not None and att.valid:
            cov.status = ATTESTED
        else:
            cov.missing = [_attestation_missing(item, att)]
        out.append(cov)
    return out


def _attestation_missing(item: str, att: AttestationState | None) -> dict[str, str]:
    """The `missing` row of an item only an attestation can verify."""
    reason = att.why_not() if att is not None else "no attestation"
    return {"check": "", "reason": reason, "setting": ATTEST_SETTING.format(item=item)}


def _missing(
    checks: Sequence[str],
    by_check: Mapping[str, Sequence[Result]],
    selected: set[str],
    env_name: str,
) -> list[dict[str, str]]:
    """Why each of an unverified item's checks produced nothing scored, and what it needs."""
    if not checks:
        return [{"check": "", "reason": "no readyctl check covers this item yet", "setting": ""}]
    rows: list[dict[str, str]] = []
    for cid in checks:
        rs = by_check.get(cid)
        if not rs:
            reason = "not selected" if cid not in selected else "produced no result"
            rows.append({"check": cid, "reason": reason, "setting": _hint(reason, cid, env_name)})
            continue
        seen: set[str] = set()
        for r in rs:
            reason = r.reason or r.summary
            setting = _hint(reason, cid, env_name)
            if r.status is Status.ERROR:
                reason, setting = f"error: {reason}", "fix the error and run again"
            elif r.status is Status.BLOCKED:
                reason, setting = f"blocked: {reason}", "fix the prerequisite it names"
            if reason in seen:
                continue
            seen.add(reason)
            rows.append({"check": cid, "reason": reason, "setting": setting})
    return rows


def summary(items: Sequence[ItemCoverage]) -> dict[str, int]:
    """Counts by status, and how many required items are not verified."""
    counts = {VERIFIED: 0, UNVERIFIED: 0, NOT_APPLICABLE: 0, WAIVED: 0, ATTESTED: 0}
    for it in items:
        counts[it.status] += 1
    counts["required_unverified"] = sum(1 for it in items if it.blocks_gate)
    return counts
