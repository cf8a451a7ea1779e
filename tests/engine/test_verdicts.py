"""Verdicts you can ship on: coverage in the gate, focused exits, precedence, comma lists.

Each test reproduces a case from issue 10 that used to give a wrong verdict.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import GOOD_ENV

DEMO_CONFIG = """\
version: 2
default_environment: demo
environments:
  demo:
    managed: demo
    production: true
"""


def _env_only(tmp_path: Path, extra: str = "") -> Path:
    """The issue's case: an environment that names only an env file (production)."""
    env = tmp_path / ".env.production"
    env.write_text(GOOD_ENV)
    os.chmod(env, 0o600)  # platform-rendered: 0600, outside any git checkout
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n"
        "  production:\n"
        "    env_file: .env.production\n"
        "    production: true\n"
        "checks:\n"
        "  secrets.no_plain_env: {platform_rendered: true}\n" + extra
    )
    return tmp_path / "readyctl.yaml"


def _report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "reports" / "readiness.json").read_text())


def test_env_only_environment_is_inconclusive_and_names_what_is_missing(
    tmp_path: Path, readyctl
) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path)
    r = readyctl("check", "--no-history", "--format", "terminal,json,markdown")
    assert r.code == 3, r.out + r.err
    data = _report(tmp_path)
    assert data["verdict"] == "inconclusive"
    # nothing failed: only coverage stops it
    assert not [x for x in data["results"] if x["status"] == "fail"]
    items = {it["item"]: it for it in data["checklist"]["items"]}
    for item in ("critical_paths", "2", "4", "6", "7", "9", "10"):
        assert items[item]["status"] == "unverified", item
        assert items[item]["required"] is True
    assert items["1"]["status"] == "verified" and items["1"]["outcome"] == "pass"
    # low items never block at require: high
    assert items["17"]["status"] == "unverified" and items["17"]["required"] is False
    unverified = [g for g in data["gate"]["reasons"] if g["code"] == "unverified"]
    assert {g["subject"] for g in unverified} == {
        it for it, v in items.items() if v["required"] and v["status"] == "unverified"
    }
    messages = " ".join(g["message"] for g in unverified)
    assert "environments.production.database_url" in messages
    assert "environments.production.base_url" in messages
    assert "checks.backups.freshness.location" in messages
    # every report says it: terminal and Markdown have a checklist section
    assert "Checklist" in r.out and "UNVERIFIED (required)" in r.out
    md = (tmp_path / "reports" / "readiness.md").read_text()
    assert "### Checklist" in md and "2. Database migration strategy" in md


def test_not_applicable_declarations_and_require_none(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    decl = "".join(
        f"  - {{item: '{i}', reason: 'env-only staging gate', owner: platform}}\n"
        for i in ("critical_paths", "2", "4", "6", "7", "8", "9", "10")
    )
    _env_only(tmp_path, "not_applicable:\n" + decl)
    r = readyctl("check", "--no-history", "--format", "json,html")
    assert r.code == 0, r.out + r.err
    data = _report(tmp_path)
    items = {it["item"]: it for it in data["checklist"]["items"]}
    assert items["7"]["status"] == "not_applicable"
    assert items["7"]["declaration"]["owner"] == "platform"
    html = (tmp_path / "reports" / "readiness.html").read_text()
    assert 'id="checklist"' in html and "env-only staging gate" in html

    # an expired declaration no longer counts
    decl_expired = decl.replace("owner: platform}", "owner: platform, expires: 2020-01-01}")
    _env_only(tmp_path, "not_applicable:\n" + decl_expired)
    assert readyctl("check", "--no-history", "--format", "json").code == 3
    items = {it["item"]: it for it in _report(tmp_path)["checklist"]["items"]}
    assert items["4"]["status"] == "unverified"
    assert items["4"]["declaration"]["expired"] is True

    # require: none turns coverage off for the gate (and says so in the report)
    _env_only(tmp_path, "gate: {require: none}\n")
    assert readyctl("check", "--no-history", "--format", "json").code == 0
    assert _report(tmp_path)["gate"]["require"] == "none"


def test_not_applicable_rejects_unknown_items(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path, "not_applicable:\n  - {item: '42', reason: nope, owner: me}\n")
    r = readyctl("check", "--plan")
    assert r.code == 2
    assert "readyctl.yaml:8: not_applicable.0.item" in r.err and "1-20" in r.err
    assert "Traceback" not in r.err


def test_a_failed_high_check_blocks_by_default(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    """block_on defaults to high: secrets.no_plain_env (high) failing is NOT READY, exit 1."""
    _env_only(tmp_path)
    text = (tmp_path / "readyctl.yaml").read_text().replace("{platform_rendered: true}", "{}")
    (tmp_path / "readyctl.yaml").write_text(text)
    r = readyctl("check", "--no-history", "--format", "json")
    assert r.code == 1, r.out
    reasons = _report(tmp_path)["gate"]["reasons"]
    assert any(
        g["code"] == "blocking_fail" and g["check_id"] == "secrets.no_plain_env" for g in reasons
    )


WEAK_ENV = "DATABASE_URL=postgres://u:p@db/app\nJWT_SECRET=short\n"


def test_explicit_env_file_beats_a_managed_demo_config(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    """`env validate --env-file weak.env` in a demo directory validates weak.env (exit 1)."""
    (tmp_path / "readyctl.yaml").write_text(DEMO_CONFIG)
    (tmp_path / "weak.env").write_text(WEAK_ENV)
    r = readyctl("env", "validate", "--env-file", "weak.env", "--format", "json")
    assert r.code == 1, r.out + r.err
    assert "Starting the managed demo" not in r.out + r.err
    data = _report(tmp_path)
    assert data["target"]["env_file"].endswith("weak.env")
    assert data["target"]["origin"]["env_file"] == "command line --env-file"
    assert data["target"]["origin"]["managed"].startswith("not started")


def test_readyctl_variables_sit_between_flags_and_the_config(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "readyctl.yaml").write_text(DEMO_CONFIG)
    (tmp_path / "weak.env").write_text(WEAK_ENV)
    (tmp_path / "good.env").write_text(GOOD_ENV)
    (tmp_path / ".env.example").write_text(
        "\n".join(line.split("=")[0] + "=" for line in GOOD_ENV.splitlines() if "=" in line)
    )
    env = {"READYCTL_ENV_FILE": str(tmp_path / "weak.env")}
    r = readyctl("env", "validate", "--format", "json", env=env)
    assert r.code == 1, r.out + r.err
    assert _report(tmp_path)["target"]["origin"]["env_file"] == (
        "environment variable READYCTL_ENV_FILE"
    )
    r = readyctl("env", "validate", "--env-file", "good.env", "--format", "json", env=env)
    assert _report(tmp_path)["target"]["env_file"].endswith("good.env")
    assert _report(tmp_path)["target"]["origin"]["env_file"] == "command line --env-file"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_explicit_database_url_and_alembic_config_do_not_start_the_demo(
    tmp_path: Path, readyctl
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "readyctl.yaml").write_text(DEMO_CONFIG)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    url = f"postgresql://ro:pw@127.0.0.1:{_closed_port()}/app"
    r = readyctl(
        "db", "rehearse", "--database-url", url, "--alembic-config", "alembic.ini",
        "--format", "json",
    )  # fmt: skip
    assert "Starting the managed demo" not in r.out + r.err
    data = _report(tmp_path)
    assert data["target"]["origin"]["database_url"] == "command line --database-url"
    assert "not started" in data["target"]["origin"]["managed"]
    assert data["target"]["database"].startswith("127.0.0.1:")
    # the database it was told to use does not answer: a failure, never a pass
    assert r.code == 1, r.out + r.err
    assert "pw" not in r.out + r.err + json.dumps(data)


def test_comma_lists_are_accepted_wherever_a_flag_repeats(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path)
    r = readyctl("check", "--plan", "--only", "http.*,auth.*", "--only", "env.required")
    assert r.code == 0, r.err
    assert "http.cors" in r.out and "auth.session" in r.out and "env.required" in r.out
    assert "env.format" not in r.out
    r = readyctl("check", "--plan", "--skip", "http.*, auth.*")
    assert r.code == 0 and "http.cors" not in r.out and "env.format" in r.out
    r = readyctl("check", "--plan", "--only", "http.*,nosuch.*")
    assert r.code == 2 and "'nosuch.*' matches no check" in r.err


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["pass", "pass"], 0),
        (["pass", "warn"], 0),
        (["pass", "fail"], 1),
        (["error", "fail"], 1),
        (["pass", "error"], 3),
        (["skip", "skip"], 3),
        (["blocked"], 3),
    ],
)
def test_focused_commands_exit_by_their_own_checks(statuses: list[str], code: int) -> None:
    from readyctl.cli._run import focused_exit
    from readyctl.report import Report

    results = [
        {"id": "load.thresholds", "subject": f"s{i}", "status": s, "reason": "r", "summary": "x",
         "waiver": None, "severity": "low"}
        for i, s in enumerate(statuses)
    ]  # fmt: skip
    report = Report({"results": results, "interrupted": False})
    assert focused_exit(report)[0] == code
    # a waived failure does not fail the command
    if code == 1:
        for r in results:
            if r["status"] == "fail":
                r["waiver"] = {"expired": False}
        assert focused_exit(report)[0] != 1
    # nothing to do can be fine (db lint with nothing pending)
    if statuses == ["skip", "skip"]:
        assert focused_exit(report, nothing_is_ok=True)[0] == 0


def test_config_version_1_still_loads_and_migrate_explains(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    cfg = _env_only(tmp_path)
    cfg.write_text("# my config\nversion: 1  # old\n" + cfg.read_text())
    assert readyctl("check", "--plan").code == 0
    r = readyctl("config", "migrate")
    assert r.code == 0, r.err
    assert "version 1 -> 2" in r.out and "block_on" in r.out and "require" in r.out
    # a typo: v1 accepted it silently; now exit 2 with a note pointing at migrate
    cfg.write_text(cfg.read_text() + "  http.reachable: {pth: /health}\n")
    r = readyctl("check", "--plan")
    assert r.code == 2 and "did you mean `path`?" in r.err and "config migrate" in r.err
    r = readyctl("config", "migrate", "--write")
    assert r.code == 1 and "checks.http.reachable.pth" in r.out
    text = cfg.read_text()
    assert "version: 2  # old" in text and text.startswith("# my config\n")


@pytest.mark.slow
def test_load_with_a_failed_threshold_exits_1(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    """`readyctl load` on the demo's slow-counsel fault: p95 over the limit is exit 1.

    load.thresholds is high; before, block_on defaulted to critical and the command said READY.
    """
    (tmp_path / "readyctl.yaml").write_text(
        DEMO_CONFIG + "    faults: [slow-counsel]\n    allow: ['load.*']\n"
    )
    r = readyctl(
        "load", "--users", "4", "--spawn-rate", "20", "--duration", "6s", "--format", "json",
        "--no-color", timeout=240,
    )  # fmt: skip
    data = _report(tmp_path)
    failed = [x for x in data["results"] if x["id"] == "load.thresholds" and x["status"] == "fail"]
    assert failed, [(x["subject"], x["status"], x["summary"]) for x in data["results"]]
    assert any(x["subject"].endswith("p95_ms") for x in failed)
    assert r.code == 1, r.out + r.err


def test_plan_foresees_unverifiable_checklist_items(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    """`check --plan` contacts nothing, yet names the required items this config cannot
    verify and the setting each needs."""
    _env_only(tmp_path)
    r = readyctl("check", "--plan")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "required checklist item(s) cannot be verified" in text
    assert (
        "critical item 4. Database connection pool: needs environments.production.database_url"
        in text
    )
    assert "high item 6. Load testing: needs environments.production.base_url" in text
    assert "1. Environment variable validation" not in text  # its checks would run
    # declared not applicable: no longer foreseen as unverified
    _env_only(tmp_path, "not_applicable:\n  - {item: '4', reason: no database here, owner: me}\n")
    r = readyctl("check", "--plan")
    assert "4. Database connection pool" not in " ".join(r.out.split())
