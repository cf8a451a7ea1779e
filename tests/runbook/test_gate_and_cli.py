"""The `gate` action through the real check pipeline, and the commands' surface."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.test_verdicts import _env_only
from tests.runbook.helpers import mark, order, run, runs, state

GATED = (
    "name: gated\nsteps:\n  - uses: gate\n    with: {only: ['env.*', 'secrets.*']}\n"
    "    on_failure: stop\n"
    "  - id: ship\n    run: |-\n      " + mark("shipped") + "\n"
)


def test_gate_ready_continues_and_not_ready_stops(tmp_path: Path) -> None:
    _env_only(tmp_path, "gate: {require: none}\n")
    (tmp_path / "rb.yaml").write_text(GATED)
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "production")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["shipped"]
    st = state(runs(tmp_path)[0])
    assert st["records"]["gate"]["verdict"] == "ready"
    assert (Path(st["records"]["gate"]["report_dir"]) / "readiness.json").is_file()
    (tmp_path / ".env.production").write_text("DEBUG=true\n")  # required variables missing
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "production")
    assert r.code == 1, r.both
    assert order(tmp_path) == ["shipped"]  # not shipped again
    st = state(runs(tmp_path)[-1])
    assert st["status"] == "stopped" and st["finished"] is True  # nothing changed
    assert "NOT READY" in st["steps"][0]["summary"]


def test_deploy_plan_list_schema_and_flags(tmp_path: Path) -> None:
    (tmp_path / "readyctl.yaml").write_text("environments:\n  staging: {}\n")
    r = run(tmp_path, "deploy", "--env", "staging", "--release", "v2", "--plan")
    assert r.code == 0, r.both
    for sid in ("gate", "backup", "maintenance-on", "migrate", "deploy", "smoke", "monitor"):
        assert f". {sid} (" in r.out
    assert "after a rollback:" in r.out and "watch the target for 5m" in r.out
    r = run(
        tmp_path,
        "deploy",
        "--env",
        "staging",
        "--release",
        "v2",
        "--plan",
        "--monitor-window",
        "20s",
    )
    assert "watch the target for 20s" in r.out, r.out
    assert not (tmp_path / ".readyctl").exists()  # a plan does nothing
    r = run(tmp_path, "deploy", "--env", "staging")
    assert r.code == 2 and "--release is required" in r.err
    # the packaged runbook names no project: the deploy hook must come from the config
    r = run(tmp_path, "deploy", "--env", "staging", "--release", "v2")
    assert r.code == 2 and "variable deploy_command is not set" in r.err
    assert "environments.<env>.deploy.vars.deploy_command" in r.err and "Traceback" not in r.err
    r = run(tmp_path, "deploy", "--env", "staging", "--release", "v2", "--var", "oops")
    assert r.code == 2 and "NAME=VALUE" in r.err
    r = run(tmp_path, "deploy", "--env", "staging", "--release", "v2", "--resume", "--abandon")
    assert r.code == 2 and "exclude each other" in r.err
    r = run(tmp_path, "runbook", "list")
    assert r.code == 0 and r.out.startswith("deploy") and "packaged" in r.out
    r = run(tmp_path, "schema", "--runbook")
    schema = json.loads(r.out)
    assert "steps" in schema["properties"] and schema["title"] == "readyctl runbook"


def test_environment_deploy_vars_and_cli_vars(tmp_path: Path) -> None:
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  staging:\n    deploy:\n      vars: {who: config, color: red}\n"
    )
    (tmp_path / "rb.yaml").write_text(
        "name: v\nvars: {who: runbook, color: blue, size: s}\nsteps:\n"
        "  - run: echo ${vars.who}-${vars.color}-${vars.size}-${release} > out.txt\n"
    )
    r = run(
        tmp_path,
        "runbook",
        "run",
        "rb.yaml",
        "--env",
        "staging",
        "--var",
        "color=green",
        "--release",
        "v7",
    )
    assert r.code == 0, r.both
    assert (tmp_path / "out.txt").read_text().strip() == "config-green-s-v7"
