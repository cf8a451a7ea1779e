"""Attestations: the checklist's signed items, expiry by the run's clock, lint, reports."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from readyctl import attestations
from readyctl.check import Category, Check, CheckMeta, RemediationSpec, Severity
from readyctl.config import Attestation, Config, Environment, GateConfig
from readyctl.registry import load_catalog
from tests.helpers import fixed_clock, make_context, report_of, run_checks

NOW = "2026-03-10T12:00:00+00:00"
TODAY = dt.date(2026, 3, 10)
YESTERDAY = TODAY - dt.timedelta(days=1)


class _Passes(Check):
    """A synthetic check that passes (so a report has something scored)."""

    meta = CheckMeta(
        id="synthetic.attest_passes",
        title="Synthetic passes",
        failure_title="Synthetic fails",
        description="A synthetic check for attestation tests.",
        remediation=RemediationSpec(text="none"),
        category=Category.CONFIG,
        severity=Severity.LOW,
        refs=("1",),
    )

    def run(self, ctx: Any) -> Iterator[Any]:
        yield self.passed("x", "x holds")


def _att(item: str, **kw: Any) -> Attestation:
    base = {
        "item": item,
        "by": "Dana Reyes (security lead)",
        "at": TODAY - dt.timedelta(days=30),
        "evidence": "https://tickets.example.org/SEC-42",
        "expires": TODAY + dt.timedelta(days=300),
    }
    return Attestation(**{**base, **kw})


def _report(config: Config) -> Any:
    ctx = make_context(config=config, environment=Environment(), clock=fixed_clock(NOW))
    out = run_checks(ctx, [_Passes])
    return report_of(ctx, out)


def _items(report: Any) -> dict[str, dict[str, Any]]:
    return {it["item"]: it for it in report.data["checklist"]["items"]}


def test_valid_attestation_attests_expired_yesterday_leaves_unverified_and_named() -> None:
    cfg = Config(
        attestations=[
            _att("security_audit"),
            _att("legal_review", expires=YESTERDAY, by="Legal (M. Okafor)"),
            _att("dr_tested", evidence=None),
        ]
    )
    report = _report(cfg)
    items = _items(report)
    assert items["security_audit"]["status"] == "attested"
    assert items["security_audit"]["attestation"]["by"] == "Dana Reyes (security lead)"
    legal = items["legal_review"]
    assert legal["status"] == "unverified"
    assert f"expired on {YESTERDAY}" in legal["missing"][0]["reason"]
    assert "Legal (M. Okafor)" in legal["missing"][0]["reason"]
    assert items["dr_tested"]["status"] == "unverified"
    assert "missing evidence" in items["dr_tested"]["missing"][0]["reason"]
    assert items["support_on_call"]["missing"][0]["reason"] == "no attestation"
    summary = report.data["checklist"]["summary"]
    assert summary["attested"] == 1
    # not required by default: the verdict does not depend on them
    named = set(attestations.NAMED)
    assert not any(g["subject"] in named for g in report.data["gate"]["reasons"])
    assert [a["item"] for a in report.data["checklist"]["attestations"]] == [
        "security_audit",
        "legal_review",
        "dr_tested",
    ]


def test_required_attestation_expired_makes_the_verdict_inconclusive() -> None:
    cfg = Config(
        gate=GateConfig(require="none", require_attestations=["legal_review"]),
        attestations=[_att("legal_review", expires=YESTERDAY)],
    )
    report = _report(cfg)
    assert report.verdict == "inconclusive", report.data["gate"]["reasons"]
    reasons = [g["message"] for g in report.data["gate"]["reasons"]]
    assert any("Legal review" in m and "attestations:" in m for m in reasons), reasons
    # the same attestation, still valid by the clock: ready
    cfg = cfg.model_copy(update={"attestations": [_att("legal_review")]})
    assert _report(cfg).verdict == "ready"


def test_a_signature_never_passes_a_machine_check() -> None:
    metas = {c.meta.id: c.meta for c in load_catalog()}
    states = attestations.evaluate([_att("7")], metas, TODAY)
    assert not states[0].valid
    assert "a signature never passes a machine check" in states[0].problems[0]
    report = _report(Config(attestations=[_att("7")]))
    item = _items(report)["7"]
    assert item["status"] != "attested"
    assert item["attestation"]["valid"] is False


def test_seed_item_without_checks_can_be_attested() -> None:
    from readyctl import coverage

    metas = {c.meta.id: c.meta for c in load_catalog()}
    unchecked = [i for i in map(str, range(1, 21)) if i not in attestations.machine_checked(metas)]
    metas_without = {k: m for k, m in metas.items() if "9" not in m.refs}
    states = attestations.evaluate([_att("9")], metas_without, TODAY)
    items = coverage.compute(
        [],
        metas_without,
        selected=list(metas_without),
        waived=set(),
        declared=[],
        require=None,
        env_name="default",
        today=TODAY,
        attestations=states,
    )
    assert {it.item: it.status for it in items}["9"] == "attested"
    assert unchecked == [] or all(i.isdigit() for i in unchecked)


def test_expiring_soon_and_future_dates_in_policy() -> None:
    states = attestations.evaluate(
        [
            _att("security_audit", expires=TODAY + dt.timedelta(days=5)),
            _att("dr_tested", at=TODAY + dt.timedelta(days=1)),
            _att("support_on_call", expires=TODAY - dt.timedelta(days=400)),
        ],
        {},
        TODAY,
    )
    assert states[0].valid and states[0].expiring_soon and states[0].days_left == 5
    assert "in the future" in states[1].problems[0]
    assert any("before it was signed" in p for p in states[2].problems) and states[2].expired


def test_reports_show_attestations_in_the_checklist(tmp_path: Path) -> None:
    from rich.console import Console

    from readyctl.reporters import html, markdown
    from readyctl.reporters.terminal import render as render_terminal

    cfg = Config(attestations=[_att("security_audit"), _att("legal_review", expires=YESTERDAY)])
    report = _report(cfg)
    md = markdown.render(report) if hasattr(markdown, "render") else ""
    page = html.render(report)
    console = Console(record=True, width=200)
    render_terminal(report, console)
    term = console.export_text()
    for text in (md, page, term):
        if not text:
            continue
        assert "Security audit" in text and "attested" in text
        assert "Dana Reyes" in text and "EXPIRED" in text
    assert json.loads(report.to_json())["checklist"]["summary"]["attested"] == 1


def _yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "readyctl.yaml"
    path.write_text("environments:\n  prod: {production: true}\n" + body)
    return path


def test_attestations_lint_cli(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _yaml(
        tmp_path,
        "attestations:\n"
        "  - {item: security_audit, by: Dana, at: 2026-01-05, "
        "evidence: 'https://x.example/SEC-1', expires: 2026-03-09}\n"
        "  - {item: legal_review, by: Legal, at: 2026-01-05, "
        "evidence: 'https://x.example/L-1', expires: 2026-03-20}\n",
    )
    r = readyctl("attestations", "lint", "--today", "2026-03-10")
    assert r.code == 1, r.both
    assert "EXPIRED" in r.out and "expires in 10 days" in r.out
    r = readyctl("attestations", "lint", "--today", "2026-03-01")
    assert r.code == 0, r.both
    _yaml(tmp_path, "attestations:\n  - {item: pentest, by: Dana}\n")
    r = readyctl("attestations", "lint")
    assert r.code == 2
    assert "readyctl.yaml:4" in r.err and "attestations.0.item" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
