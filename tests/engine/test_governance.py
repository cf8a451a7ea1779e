"""Waivers, history, baselines, diff and re-rendering, through the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.conftest import GOOD_ENV

BROKEN = GOOD_ENV.replace(
    "POSTMARK_API_TOKEN=3f6a9c2e-71d4-4b8a-9e05-c8d2f1a7b6e3", "POSTMARK_API_TOKEN=changeme"
)


def _setup(tmp_path: Path, env_text: str, waivers: str = "") -> None:
    """An env-only production environment; these tests are about waivers and baselines, so
    the checklist does not gate (`require: none`) and the env file is platform-rendered."""
    env = tmp_path / ".env.production"
    env.write_text(env_text)
    env.chmod(0o600)
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  prod:\n    env_file: .env.production\n    production: true\n"
        "gate: {require: none}\n"
        "env: {preset: counseling}\n"
        "checks:\n  secrets.no_plain_env: {platform_rendered: true}\n" + waivers
    )


def _days(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


def _json(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "reports" / "readiness.json").read_text())


def test_waiver_excludes_from_gate_and_shows_everywhere(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(tmp_path, BROKEN)
    r = readyctl("check", "-q")
    assert r.code == 1
    _setup(
        tmp_path,
        BROKEN,
        f"""waivers:
  - check: env.placeholder
    subject: POSTMARK_API_TOKEN
    reason: provider account pending
    owner: ops@counsel.org
    expires: {_days(10)}
    ticket: OPS-12
  - check: env.secret_strength
    subject: POSTMARK_API_TOKEN
    reason: same token
    owner: ops@counsel.org
    expires: {_days(10)}
  - check: env.production
    subject: NOTHING
    reason: matches nothing on purpose
    owner: me
    expires: {_days(5)}
""",
    )
    r = readyctl("check")
    assert r.code == 0, r.both
    data = _json(tmp_path)
    waived = [x for x in data["results"] if x["waiver"]]
    assert {(x["id"], x["subject"]) for x in waived} == {
        ("env.placeholder", "POSTMARK_API_TOKEN"),
        ("env.secret_strength", "POSTMARK_API_TOKEN"),
    }
    assert all(x["status"] == "fail" for x in waived)  # a waived result keeps its status
    assert (
        waived[0]["waiver"]["days_left"] == 10 and waived[0]["waiver"]["owner"] == "ops@counsel.org"
    )
    unmatched = [w for w in data["waivers"] if w["matched"] == 0]
    assert len(unmatched) == 1 and "matches no result" in r.out
    assert "provider account pending" in r.out and "10 days left" in r.out


def test_expired_waiver_fails_the_gate(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(
        tmp_path,
        GOOD_ENV,
        f"""waivers:
  - check: env.placeholder
    reason: old exception
    owner: sec@counsel.org
    expires: {_days(-1)}
""",
    )
    r = readyctl("check")
    assert r.code == 1, r.both
    reasons = _json(tmp_path)["gate"]["reasons"]
    assert [g["code"] for g in reasons] == ["expired_waiver"]
    lint = readyctl("waivers", "lint")
    assert lint.code == 1 and "EXPIRED" in lint.out


def test_invalid_waivers_fail_fast(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(
        tmp_path,
        GOOD_ENV,
        """waivers:
  - check: env.placeholder
    reason: no expiry on a critical check
    owner: me
""",
    )
    r = readyctl("check")
    assert r.code == 2 and "waivers.0" in r.err and "expires" in r.err
    assert readyctl("waivers", "lint").code == 1
    _setup(
        tmp_path,
        GOOD_ENV,
        f"""waivers:
  - check: env.placeholder
    reason: too far ahead
    owner: me
    expires: {_days(200)}
""",
    )
    r = readyctl("check")
    assert r.code == 2 and "90" in r.err
    _setup(tmp_path, GOOD_ENV, "waivers_file: waivers.yaml\n")
    (tmp_path / "waivers.yaml").write_text("waivers:\n  - check: env.required\n    owner: x\n")
    r = readyctl("check")
    assert r.code == 2 and "waivers.yaml:2" in r.err and "reason" in r.err


def test_history_baseline_regression_diff_and_render(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _setup(tmp_path, GOOD_ENV)
    assert readyctl("check", "-q", "--baseline", "last", "--only", "env.*").code == 0
    first = sorted((tmp_path / ".readyctl" / "history").glob("*.json"))
    assert len(first) == 1
    # a high-severity regression that alone does not block: the baseline gate catches it
    _setup(tmp_path, GOOD_ENV.replace("NODE_ENV=production", "NODE_ENV=development"))
    r = readyctl("check", "--baseline", "last", "--only", "env.*")
    assert r.code == 1, r.both
    data = _json(tmp_path)
    codes = [g["code"] for g in data["gate"]["reasons"]]
    assert "regression" in codes
    assert {"id": "env.production", "subject": "NODE_ENV", "from": "pass", "to": "fail"} in data[
        "baseline"
    ]["changes"]
    assert len(data["history"]) == 2 and data["history"][0]["score"] == 100
    # a different selection has its own baseline
    r = readyctl("check", "-q", "--baseline", "last", "--only", "env.required")
    assert r.code == 0
    d = readyctl("diff", str(first[0]), str(tmp_path / "reports" / "readiness.json"))
    assert d.code == 0 and "score 100" in d.out
    r = readyctl(
        "report",
        "render",
        str(tmp_path / "reports" / "readiness.json"),
        "--format",
        "json",
        "--out",
        str(tmp_path / "again"),
    )
    assert r.code == 0 and (tmp_path / "again" / "readiness.json").exists()
    r = readyctl("report", "render", str(tmp_path / "nope.json"))
    assert r.code == 2 and "Traceback" not in r.both


def test_schema_commands_print_json_schemas(readyctl) -> None:  # type: ignore[no-untyped-def]
    r = readyctl("schema")
    schema = json.loads(r.out)
    assert r.code == 0 and schema["title"] == "readyctl.yaml"
    assert {"environments", "gate", "waivers", "env"} <= set(schema["properties"])
    r = readyctl("schema", "--report")
    report = json.loads(r.out)
    assert "results" in report["required"] and report["properties"]["verdict"]["enum"]


def test_passed_on_retry_is_reported_and_can_be_a_warn() -> None:
    from readyctl.check import Category, CheckMeta, RemediationSpec, Severity
    from readyctl.config import Config, GateConfig
    from readyctl.report import build_report
    from readyctl.result import Result
    from readyctl.runner import RunOutcome

    meta = CheckMeta(
        id="t.flaky",
        title="Holds",
        failure_title="Does not hold",
        description="Why it matters.",
        remediation=RemediationSpec(text="Fix."),
        category=Category.HTTP,
        severity=Severity.HIGH,
    )
    r = Result.passed("t.flaky", "s", "ok").with_run_info(
        duration_ms=1, attempts=2, passed_on_retry=True
    )
    outcome = RunOutcome([r], dt.datetime.now(dt.UTC), 0.1, False, [], {"t.flaky": meta})
    from readyctl.config import Environment
    from readyctl.redact import Redactor

    plain = build_report(
        outcome, config=Config(), env_name="e", environment=Environment(), redactor=Redactor()
    )
    (row,) = plain.results
    assert row["status"] == "pass" and row["passed_on_retry"] and row["attempts"] == 2
    strict = build_report(
        outcome,
        config=Config(gate=GateConfig(retry_pass_is_warn=True)),
        env_name="e",
        environment=Environment(),
        redactor=Redactor(),
    )
    (row,) = strict.results
    assert row["status"] == "warn" and strict.data["grade"] != "A+"
