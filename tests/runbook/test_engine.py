"""The runbook engine with `run:` steps: order, state, audit, rollback, retries, timeouts,
conditions, confirmation, interrupts, bad input and secrets."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.runbook.helpers import (
    PY,
    WAIT_GO,
    audit,
    events,
    mark,
    order,
    project,
    run,
    runbook,
    runs,
    start,
    state,
    step,
    step_running,
    wait_for,
)

STATE_AFTER_A = (
    f"{PY} -c \"import json, os; d = json.load(open(os.environ['READYCTL_WORKDIR'] + "
    "'/state.json')); s = {x['id']: x['status'] for x in d['steps']}; "
    "assert s == {'a': 'succeeded', 'b': 'running', 'c': 'pending'}, s; "
    "open('order.txt', 'a').write('b\\n')\""
)


def test_green_run_in_order_with_state_after_each_step_and_a_full_audit(tmp_path: Path) -> None:
    project(tmp_path, runbook(step("a", mark("a")), step("b", STATE_AFTER_A), step("c", mark("c"))))
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--release", "v2")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["a", "b", "c"]
    assert "SUCCEEDED" in r.out and "state: " in r.out and "audit log: " in r.out
    for sid in ("a", "b", "c"):
        assert any(
            line.strip().startswith(sid) and "succeeded" in line for line in r.out.splitlines()
        )
    [rd] = runs(tmp_path)
    st = state(rd)
    assert st["finished"] is True and st["status"] == "succeeded" and st["exit_code"] == 0
    assert st["release"] == "v2" and st["env"] == "staging" and st["who"] == "ci-bot"
    assert [s["status"] for s in st["steps"]] == ["succeeded"] * 3
    assert all(isinstance(s["duration_s"], float) for s in st["steps"])
    ev = events(rd)
    assert ev[0] == ("run started", None) and ev[-1] == ("run finished", None)
    for sid in ("a", "b", "c"):
        assert ("step started", sid) in ev and ("step finished", sid) in ev
    lines = audit(rd)
    assert all({"ts", "run_id", "who", "event"} <= set(e) for e in lines)
    assert all(e["run_id"] == rd.name for e in lines)
    started = next(e for e in lines if e["event"] == "step started")
    assert "open('order.txt'" in started["command"]
    assert (rd / "a.log").exists()


def test_failure_rolls_back_in_reverse_then_after_rollback(tmp_path: Path) -> None:
    project(
        tmp_path,
        runbook(
            step("a", mark("a"), rollback=mark("undo-a")),
            step("b", mark("b"), rollback=mark("undo-b")),
            step("skipme", mark("never"), when="env == production"),
            step("c", mark("c", 3), rollback=mark("undo-c")),
            step("d", mark("d")),
            after=(step("after", mark("after")),),
        ),
    )
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    assert r.code == 1, r.both
    assert order(tmp_path) == ["a", "b", "c", "undo-c", "undo-b", "undo-a", "after"]
    assert "ROLLED BACK" in r.out
    [rd] = runs(tmp_path)
    st = state(rd)
    assert st["status"] == "rolled_back" and st["finished"] is True
    assert [c["id"] for c in st["compensations"]] == ["c", "b", "a"]
    assert all(c["status"] == "compensated" for c in st["compensations"])
    assert {s["id"]: s["status"] for s in st["steps"]} == {
        "a": "succeeded",
        "b": "succeeded",
        "skipme": "skipped",
        "c": "failed",
        "d": "pending",
    }
    assert "exited 3" in next(s for s in st["steps"] if s["id"] == "c")["summary"]
    ev = events(rd)
    assert ("step failed", "c") in ev and ("rollback started", "c") in ev
    done = [s for e, s in ev if e == "compensation done"]
    assert done == ["c", "b", "a"]
    assert ("step finished", "after") in ev
    assert ev[-1] == ("run finished", None)
    # the deployment timeline for people: Markdown (a row per step and compensation) and HTML
    md = (rd / "deploy.md").read_text()
    assert md.startswith(f"## Deployment {rd.name}: ROLLED BACK")
    rows = [line.split("|")[2:5] for line in md.splitlines() if line.startswith("| ")][1:]
    got = [(a.strip(), b.strip(), c.strip()) for a, b, c in rows]
    assert ("c", "step", "failed") in got and ("c", "rollback", "done") in got
    assert [x[0] for x in got if x[1] == "rollback"] == ["c", "b", "a"]
    assert ("skipme", "step", "skipped") in got and ("after", "step", "succeeded") in got
    page = (rd / "deploy.html").read_text()
    assert 'id="timeline"' in page and "<svg" in page and "ROLLED BACK" in page
    assert "timeline (html)" in r.out


def test_on_failure_stop_and_continue(tmp_path: Path) -> None:
    project(
        tmp_path,
        runbook(
            step("a", mark("a", 1), on_failure="continue"),
            step("b", mark("b", 1), on_failure="stop", rollback=mark("undo-b")),
            step("c", mark("c")),
        ),
    )
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    assert r.code == 1, r.both
    assert order(tmp_path) == ["a", "b"]  # no rollback, nothing after the stop
    st = state(runs(tmp_path)[0])
    assert st["status"] == "stopped" and st["compensations"] == []


def test_retries_with_backoff_and_a_hanging_command_killed_at_its_timeout(tmp_path: Path) -> None:
    flaky = (
        f"{PY} -c \"import os, sys; n = len(open('order.txt').read().split()) "
        "if os.path.exists('order.txt') else 0; open('order.txt', 'a').write('try\\n'); "
        'sys.exit(0 if n >= 1 else 1)"'
    )
    hang = (
        f"{PY} -c \"import os, time; open('hang.pid', 'w').write(str(os.getpid())); "
        'time.sleep(60)"'
    )
    project(
        tmp_path,
        runbook(
            step("flaky", flaky, retries="2"),
            step("hang", hang, timeout="1s", retries="1", on_failure="stop"),
        ),
    )
    t0 = time.monotonic()
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    took = time.monotonic() - t0
    assert r.code == 1, r.both
    assert took < 20, took  # 2 x 1 s timeouts, a 0.5 s backoff, process start-up
    assert order(tmp_path) == ["try", "try"]
    rd = runs(tmp_path)[0]
    steps = {s["id"]: s for s in state(rd)["steps"]}
    assert steps["flaky"]["status"] == "succeeded" and steps["flaky"]["attempts"] == 2
    assert steps["hang"]["status"] == "failed" and steps["hang"]["attempts"] == 2
    assert "timed out after 1s" in steps["hang"]["summary"]
    ev = events(rd)
    assert ev.count(("step retried", "flaky")) == 1 and ev.count(("step retried", "hang")) == 1
    pid = int((tmp_path / "hang.pid").read_text())
    wait_for(lambda: not _alive(pid), 5, "the hanging command to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_when_conditions_skip_steps(tmp_path: Path) -> None:
    head = "vars:\n  flag: false\n  name: blue\n"
    project(
        tmp_path,
        runbook(
            step("by-flag", mark("flag"), when="vars.flag"),
            step("by-env", mark("env"), when="env == staging and not vars.flag"),
            step("by-release", mark("release"), when="release"),
            step("by-var", mark("var"), when="vars.name != blue or previous_release"),
            step("by-cli-var", mark("cli"), when="vars.flag == yes"),
            head=head,
        ),
    )
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--var", "flag=yes")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["flag", "cli"]
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["flag", "cli", "env"]
    st = state(runs(tmp_path)[-1])
    assert [s["status"] for s in st["steps"]] == [
        "skipped",
        "succeeded",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert "step skipped" in [e for e, _ in events(runs(tmp_path)[-1])]


def test_confirm_without_a_terminal_stops_with_3_then_resume_yes_proceeds(tmp_path: Path) -> None:
    project(tmp_path, runbook(step("a", mark("a")), step("b", mark("b"), confirm="true")))
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    assert r.code == 3, r.both
    assert "--yes" in r.out
    assert order(tmp_path) == ["a"]
    [rd] = runs(tmp_path)
    st = state(rd)
    assert st["status"] == "stopped" and st["finished"] is False
    assert st["steps"][1]["status"] == "needs_confirmation"
    assert ("confirm asked", "b") in events(rd)
    # a new run refuses while this one is unfinished
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--yes")
    assert r.code == 1 and "unfinished run" in r.err and rd.name in r.err, r.both
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--resume", "--yes")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["a", "b"]  # a is not run twice
    st = state(rd)
    assert st["status"] == "succeeded" and st["finished"] is True
    ev = events(rd)
    assert ("run resumed", "b") in ev
    answered = [e for e in audit(rd) if e["event"] == "confirm answered"]
    assert [a["outcome"] for a in answered] == ["unanswered", "yes"]


def test_abandon_marks_the_unfinished_run_and_lets_a_new_one_start(tmp_path: Path) -> None:
    project(tmp_path, runbook(step("a", mark("a")), step("b", mark("b"), confirm="true")))
    assert run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging").code == 3
    [first] = runs(tmp_path)
    r = run(
        tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--abandon", "--reason", "oops"
    )
    assert r.code == 0, r.both
    st = state(first)
    assert st["status"] == "abandoned" and st["finished"] is True
    last = audit(first)[-1]
    assert last["event"] == "run abandoned" and last["summary"] == "oops"
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", "--yes")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["a", "a", "b"]


def test_first_sigint_finishes_the_step_then_stops_with_130(tmp_path: Path) -> None:
    project(tmp_path, runbook(step("wait", WAIT_GO), step("next", mark("next"))))
    proc = start(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
    try:
        wait_for(lambda: step_running(tmp_path, "wait"), 30, "the step to start")
        wait_for(lambda: (tmp_path / "waiter.pid").exists(), 30, "the command to start")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # still finishing the step
        (tmp_path / "go").write_text("")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert order(tmp_path) == ["waited"]  # the step finished, the next never started
    [rd] = runs(tmp_path)
    st = state(rd)
    assert st["status"] == "interrupted" and st["finished"] is False
    assert [s["status"] for s in st["steps"]] == ["succeeded", "pending"]
    assert "Traceback" not in err


def test_bad_runbook_is_one_line_with_file_line_key_and_exit_2(tmp_path: Path) -> None:
    cases = {
        "retries": (
            runbook(step("a", mark("a")), step("b", mark("b"), retries="lots")),
            10,
            "steps.1.retries",
        ),
        "action": ("name: t\nsteps:\n  - uses: gate\n  - uses: deploi\n", 4, "steps.1.uses"),
        "var": ("name: t\nsteps:\n  - run: echo ${vars.nope}\n", 3, "steps.0.run"),
        "when": ("name: t\nsteps:\n  - run: echo\n    when: relase\n", 4, "steps.0.when"),
        "dup": (
            "name: t\nsteps:\n  - id: x\n    run: echo\n  - id: x\n    run: echo\n",
            5,
            "steps.1.id",
        ),
        "yaml": ("name: t\nsteps:\n  - run: [echo\n", 4, "YAML syntax error"),
        "timeout": ("name: t\nsteps:\n  - run: echo\n    timeout: soon\n", 4, "steps.0.timeout"),
    }
    from readyctl.errors import ConfigError
    from readyctl.runbook.loader import load_runbook

    for name, (text, line, key) in cases.items():
        project(tmp_path, text)
        if name in ("retries", "yaml"):  # the command: one line, exit 2, no traceback
            r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging")
            assert r.code == 2, (name, r.both)
            assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
            err = r.err
        else:
            with pytest.raises(ConfigError) as got:
                load_runbook(tmp_path / "rb.yaml")
            err = str(got.value)
        assert f"rb.yaml:{line}:" in err and key in err, (name, err)
    project(tmp_path, cases["action"][0])
    assert "did you mean 'deploy'" in run(tmp_path, "runbook", "plan", "rb.yaml").err
    assert not (tmp_path / ".readyctl" / "runs").exists()  # nothing ran


def test_a_canary_secret_never_shows_in_output_state_or_audit(tmp_path: Path) -> None:
    canary = "Zq8vN3kR7tLp2WxY9mBc4HdF"
    plain = "plain-canary-value-8812"
    echo = f"{PY} -c \"import os; print('token=' + os.environ['DEPLOY_TOKEN'])\""
    project(
        tmp_path,
        runbook(
            step("show", f"echo using ${{PLAIN_SETTING}} and $DEPLOY_TOKEN; {echo}"),
            step("fail", "echo ${PLAIN_SETTING} ${DEPLOY_TOKEN}; exit 4"),
            after=(step("after", "echo ${DEPLOY_TOKEN}"),),
        ),
    )
    env = {"DEPLOY_TOKEN": canary, "PLAIN_SETTING": plain}
    r = run(tmp_path, "runbook", "run", "rb.yaml", "--env", "staging", env=env)
    assert r.code == 1, r.both
    [rd] = runs(tmp_path)
    files = [p for p in rd.rglob("*") if p.is_file()]
    assert any(p.name == "show.log" for p in files)
    texts = [r.out, r.err] + [p.read_text() for p in files]
    for text in texts:
        assert canary not in text and plain not in text
    assert "token=****" in (rd / "show.log").read_text()
