"""The Report: the JSON contract every format renders from."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from readyctl import __version__, _json
from readyctl.check import CheckMeta
from readyctl.config import Config, Environment
from readyctl.redact import Redactor
from readyctl.result import Result, Status
from readyctl.runner import RunOutcome
from readyctl.scoring import GateDecision, GateReason, decide, grade, score_results

SCHEMA_VERSION = 1
STATUS_ORDER = ["fail", "error", "blocked", "warn", "pass", "skip"]


def _target(env: Environment, redactor: Redactor) -> dict[str, Any]:
    db = None
    if env.database_url:
        from urllib.parse import urlsplit

        parts = urlsplit(env.database_url)
        db = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return redactor.value(
        {
            "base_url": env.base_url,
            "http_url": env.http_url,
            "managed": env.managed,
            "database": db,
            "env_file": env.env_file,
        }
    )


def result_dict(r: Result, meta: CheckMeta, weight: float | None) -> dict[str, Any]:
    """One result in the JSON contract."""
    failing = r.status in (Status.FAIL, Status.ERROR, Status.WARN)
    return {
        "id": r.check_id,
        "subject": r.subject,
        "title": meta.failure_title if failing else meta.title,
        "category": meta.category.value,
        "severity": meta.severity.value,
        "status": r.status.value,
        "score": r.value,
        "weight": round(weight, 4) if weight is not None else None,
        "summary": r.summary,
        "reason": r.reason,
        "error_reason": r.error_reason.value if r.error_reason else None,
        "measured": r.measured,
        "threshold": r.threshold,
        "unit": r.unit,
        "evidence": dict(r.evidence),
        "remediation": meta.remediation.build().to_dict(),
        "description": meta.description,
        "refs": list(meta.refs),
        "duration_ms": r.duration_ms,
        "attempts": r.attempts,
        "passed_on_retry": r.passed_on_retry,
        "trace": r.trace,
        "waiver": None,
    }


@dataclasses.dataclass
class Report:
    """A run's report as plain data (what `readiness.json` holds)."""

    data: dict[str, Any]

    # -- accessors ---------------------------------------------------------------------
    @property
    def verdict(self) -> str:
        """ready | not_ready | inconclusive."""
        return self.data["verdict"]

    @property
    def exit_code(self) -> int:
        """The documented exit code for this verdict."""
        return int(self.data["exit_code"])

    @property
    def score(self) -> float | None:
        """0-100, or None when nothing was scored."""
        return self.data["score"]

    @property
    def results(self) -> list[dict[str, Any]]:
        """Result dicts in stable order."""
        return self.data["results"]

    def to_json(self) -> str:
        """Serialized JSON."""
        return _json.dumps(self.data, indent=2, sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """Read a `readiness.json` written by any readyctl of this schema version."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path} is not a readyctl report of schema {SCHEMA_VERSION}")
        return cls(data)


def build_report(
    outcome: RunOutcome,
    *,
    config: Config,
    env_name: str,
    environment: Environment,
    redactor: Redactor,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    extra_metas: Mapping[str, CheckMeta] | None = None,
    today: dt.date | None = None,
    baseline: dict[str, Any] | None = None,
    baseline_path: str | None = None,
    baseline_info: Mapping[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    catalog_metas: Mapping[str, CheckMeta] | None = None,
    selected: Sequence[str] | None = None,
    target_origin: Mapping[str, str] | None = None,
    focused: bool = False,
) -> Report:
    """Waivers, score, gate and assembly; every string passes through the redactor."""
    from readyctl import history as _history
    from readyctl import waivers as _waivers

    metas = dict(outcome.metas)
    if extra_metas:
        metas.update(extra_metas)
    results = list(outcome.results)  # redacted by the runner, and again as dicts below
    if config.gate.retry_pass_is_warn:
        results = [
            dataclasses.replace(r, status=Status.WARN, score=0.5) if r.passed_on_retry else r
            for r in results
        ]
    today = today or outcome.started_at.date()
    states = _waivers.evaluate(config.waivers, metas, today)
    states, by_key = _waivers.apply(states, results)
    waived = {k for k, s in by_key.items() if not s.expired}
    scored = score_results(results, metas, config.scoring, excluded=waived)
    any_warn = any(r.status is Status.WARN and r.key not in waived for r in results)
    expired = [
        f"waiver for {s.describe()} (owner {s.waiver.owner}) expired on {s.waiver.expires}"
        for s in states
        if s.expired
    ]
    key = _history.selection_key(env_name, only, skip)
    order = sorted(
        results,
        key=lambda r: (
            metas[r.check_id].category.value,
            STATUS_ORDER.index(r.status.value),
            r.check_id,
            r.subject,
        ),
    )
    result_dicts = []
    for r in order:
        d = result_dict(r, metas[r.check_id], scored.weights.get(r.key))
        state = by_key.get(r.key)
        if state is not None:
            d["waiver"] = state.to_dict()
        result_dicts.append(redactor.value(d))
    comparison = None
    regression = []
    if baseline is not None:
        comparison = _history.compare(baseline, result_dicts, scored.overall)
        comparison["path"] = baseline_path
        if baseline_info is not None:
            # which run this one compared with: run id or path, started_at, verdict, pinned
            # and how it was chosen (pin | newest_passing | given)
            comparison.update(
                {
                    "path": baseline_info.get("path", baseline_path),
                    "run": baseline_info.get("run"),
                    "started_at": baseline_info.get("started_at"),
                    "verdict": baseline_info.get("verdict"),
                    "pinned": bool(baseline_info.get("pinned")),
                    "selected_by": baseline_info.get("selected_by"),
                }
            )
        regression = _history.regressions(comparison, config.gate.max_regression, waived)
    from readyctl import attestations as _attestations
    from readyctl import coverage as _coverage

    cov_metas = dict(catalog_metas) if catalog_metas else dict(metas)
    attested = _attestations.evaluate(config.attestations, cov_metas, today)
    items = _coverage.compute(
        results,
        cov_metas,
        selected=selected if selected is not None else list(metas),
        waived=waived,
        declared=[
            _coverage.Declared(d.item, d.reason, d.owner, d.expires) for d in config.not_applicable
        ],
        require=config.gate.require_severity,
        env_name=env_name,
        today=today,
        scope_to_selection=focused,
        attestations=attested,
        required_attestations=config.gate.require_attestations,
    )
    unverified = [
        GateReason("unverified", redactor.text(it.gate_message()), None, it.item)
        for it in items
        if it.blocks_gate
    ]
    decision: GateDecision = decide(
        results,
        metas,
        scored.overall,
        config.gate,
        waived=waived,
        expired_waivers=expired,
        regression=regression,
        interrupted=outcome.interrupted,
        unverified=unverified,
        errors_are_inconclusive=focused,
    )
    counts = Counter(r.status.value for r in results)
    categories = []
    for cat, value in scored.categories.items():
        cat_counts = Counter(r.status.value for r in results if metas[r.check_id].category == cat)
        categories.append({"name": cat, "score": value, "counts": dict(cat_counts)})
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "readyctl", "version": __version__},
        "score": scored.overall,
        "grade": grade(scored.overall, any_warn),
        "verdict": decision.verdict,
        "exit_code": decision.exit_code,
        "gate": {
            "passed": decision.verdict == "ready",
            "reasons": [redactor.value(g.to_dict()) for g in decision.reasons],
            "block_on": config.gate.block_on.value,
            "require": config.gate.require,
            "focused": focused,
            "fail_under": config.gate.fail_under,
            "max_regression": config.gate.max_regression,
        },
        "environment": {"name": env_name, "production": environment.production},
        "target": {**_target(environment, redactor), "origin": dict(target_origin or {})},
        "api": redactor.value(outcome.api_map) if outcome.api_map else None,
        "checklist": {
            "require": config.gate.require,
            "summary": _coverage.summary(items),
            "items": [redactor.value(it.to_dict()) for it in items],
            "deploy_day": "verified by `readyctl deploy`, not by `readyctl check`",
            "attestations": [redactor.value(s.to_dict()) for s in attested],
        },
        "started_at": outcome.started_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": outcome.duration_s,
        "interrupted": outcome.interrupted,
        "selection": {"only": list(only), "skip": list(skip)},
        "selection_key": key,
        "counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
        "categories": categories,
        "cleanup_problems": [redactor.text(p) for p in outcome.cleanup_problems],
        "results": result_dicts,
        "waivers": [redactor.value(s.to_dict()) for s in states],
        "baseline": redactor.value(comparison) if comparison is not None else None,
        "history": history or [],
    }
    return Report(data)


def gate_reasons(report: Report) -> list[GateReason]:
    """The gate's reasons as objects."""
    return [GateReason(**g) for g in report.data["gate"]["reasons"]]
