"""readiness.xml: loaded back with a JUnit parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from readyctl.report import Report
from readyctl.reporters import file_writer
from readyctl.reporters.junit import write
from tests.reporters.conftest import GLOBAL_SECRET, PIPE_SUMMARY, PLANTED, RUN_SECRET, make_report


def _load(report: Report, tmp_path: Path) -> tuple[JUnitXml, dict[str, TestCase]]:
    """Write, parse, and index the testcases by name."""
    path = write(report, tmp_path)
    assert path == tmp_path / "readiness.xml"
    xml = JUnitXml.fromfile(str(path))
    cases = {case.name: case for suite in xml for case in suite}
    return xml, cases


def _only(case: TestCase, kind: type) -> Any:
    """The single result element of a testcase, of the given type."""
    results = case.result
    assert len(results) == 1, results
    assert isinstance(results[0], kind), results
    return results[0]


def test_registered(report: Report, tmp_path: Path) -> None:
    """file_writer('junit') writes readiness.xml."""
    assert file_writer("junit")(report, tmp_path).name == "readiness.xml"
    assert not list(tmp_path.glob(".readiness.*"))


def test_suite_per_category_with_counts(report: Report, tmp_path: Path) -> None:
    """One testsuite per category; the counts match the testcases and the report."""
    xml, cases = _load(report, tmp_path)
    suites: dict[str, TestSuite] = {s.name: s for s in xml}
    assert set(suites) == {r["category"] for r in report.results}
    assert len(cases) == len(report.results)
    assert xml.tests == len(report.results)
    # 2 fails (one waived is skipped, the expired waiver still fails), 1 error,
    # skipped: skip + blocked + the waived fail
    assert (xml.failures, xml.errors, xml.skipped) == (2, 1, 3)
    for suite in suites.values():
        cases_in = list(suite)
        assert suite.tests == len(cases_in)
        assert suite.failures == sum(c.is_failure for c in cases_in)
        assert suite.errors == sum(c.is_error for c in cases_in)
        assert suite.skipped == sum(c.is_skipped for c in cases_in)
        for case in cases_in:
            assert case.classname == f"readyctl.{suite.name}"
    http = suites["http"]
    assert (http.tests, http.failures) == (2, 1)
    assert http.time == pytest.approx(0.0425 + 0.120, abs=0.002)
    props = {p.name: p.value for p in http.properties()}
    assert props["verdict"] == "not_ready" and props["grade"] == "F"


def test_failure_has_summary_and_remediation(report: Report, tmp_path: Path) -> None:
    """fail -> <failure message=summary>; the body holds summary and the fix."""
    _, cases = _load(report, tmp_path)
    case = cases["http.server_banner [GET /]"]
    failure = _only(case, Failure)
    assert failure.message == PIPE_SUMMARY  # the planted script is plain text after parsing
    assert failure.type == "critical"
    assert PIPE_SUMMARY in failure.text
    assert "Remediation: Fix server banner on the server" in failure.text
    assert "https://example.org/fix" in failure.text
    assert case.time == pytest.approx(0.0425, abs=0.001)


def test_error_skip_blocked_waived(report: Report, tmp_path: Path) -> None:
    """error -> <error>; skip, blocked and waived -> <skipped> with the reason."""
    _, cases = _load(report, tmp_path)
    error = _only(cases["auth.jwt_forgery [POST /auth/login]"], Error)
    assert error.type == "timeout"
    assert "no answer within 10 s" in error.message
    assert "TimeoutError" in error.text

    skip = _only(cases["backups.age [s3://backups]"], Skipped)
    assert skip.message == "aws is not configured for staging"
    blocked = _only(cases["smoke.login [step 2: list sessions]"], Skipped)
    assert blocked.message == "blocked: step 1 (login) failed"

    waived = _only(cases["migrations.pending [alembic head]"], Skipped)
    assert "waived by dana@example.org" in waived.message
    assert "12 days left" in waived.message and "OPS-142" in waived.message
    assert PLANTED in waived.message  # escaped in the file, text again once parsed

    expired = cases["secrets.rotation [JWT_SECRET]"]
    _only(expired, Failure)
    assert "EXPIRED WAIVER" in expired.system_out


def test_warn_and_retry_pass_with_notes(report: Report, tmp_path: Path) -> None:
    """warn passes with a system-out warning; passed-on-retry is noted."""
    _, cases = _load(report, tmp_path)
    warn = cases["transport.hsts [https://api.example.org]"]
    assert warn.is_passed and warn.result == []
    assert warn.system_out.startswith("WARNING: HSTS max-age is 86400 s")
    retried = cases["http.compression [GET /api/items]"]
    assert retried.is_passed
    assert "passed on retry (2 attempts)" in retried.system_out
    assert cases["transport.tls_versions [api.example.org:443]"].system_out is None


def test_escaping_control_chars_and_secrets(tmp_path: Path) -> None:
    """Markup, control characters and secrets in target values still give valid, clean XML."""
    report = make_report()
    r = next(r for r in report.results if r["id"] == "http.server_banner")
    r["subject"] = 'GET /"a"&<b>\x00\x1b'
    r["summary"] = f"{PLANTED} ]]> token {GLOBAL_SECRET} \x07"
    _, cases = _load(report, tmp_path)
    name = next(n for n in cases if n.startswith(f"{r['id']} [GET /"))
    assert name == f'{r["id"]} [GET /"a"&<b>\\x00\\x1b]'
    failure = _only(cases[name], Failure)
    assert failure.message.startswith(f"{PLANTED} ]]> token ****")
    text = (tmp_path / "readiness.xml").read_text(encoding="utf-8")
    assert GLOBAL_SECRET not in text and RUN_SECRET not in text
    assert "<script>" not in text


def test_interrupted_property(report_factory: Any, tmp_path: Path) -> None:
    """A partial run says so in every suite's properties."""
    xml, _ = _load(report_factory(interrupted=True), tmp_path)
    for suite in xml:
        assert {p.name: p.value for p in suite.properties()}["interrupted"] == "true"
