"""One run per target (PostgreSQL advisory lock), the unfinished-run record after a crash,
--resume, and the opt-in readyctl_deploys table; real PostgreSQL (the session's server)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from pathlib import Path

import psycopg

from tests.runbook.helpers import (
    WAIT_GO,
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


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_lock_refuses_a_second_run_and_a_crash_leaves_a_record_until_resume(
    tmp_path: Path, shared_pg
) -> None:  # type: ignore[no-untyped-def]
    url = shared_pg.create_database(f"rb_lock_{secrets.token_hex(4)}")
    project(
        tmp_path,
        runbook(step("wait", WAIT_GO), step("after", mark("after"))),
        config=f"environments:\n  t:\n    database_url: {url}\n",
    )
    args = ("runbook", "run", "rb.yaml", "--env", "t", "--state-table")
    first = start(tmp_path, *args)
    try:
        wait_for(lambda: step_running(tmp_path, "wait"), 30, "the first run's step")
        wait_for(lambda: (tmp_path / "waiter.pid").exists(), 30, "the command")
        [rd] = runs(tmp_path)
        r = run(tmp_path, *args)
        assert r.code == 1, r.both
        assert "another deploy of this target is running" in r.err, r.err
        assert re.search(rf"run {rd.name}, started \S+ by ci-bot", r.err), r.err
        assert "Traceback" not in r.err and len(runs(tmp_path)) == 1
        # the first readyctl dies (SIGKILL: no cleanup at all); its command goes too
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        with contextlib.suppress(OSError, ValueError):
            _kill(int((tmp_path / "waiter.pid").read_text()))
    # the server released the lock; the unfinished-run record refuses instead
    r = run(tmp_path, *args)
    assert r.code == 1, r.both
    assert "unfinished run" in r.err and rd.name in r.err and "--resume" in r.err, r.err
    assert state(rd)["steps"][0]["status"] == "running"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT status, finished FROM readyctl_deploys WHERE run_id = %s", (rd.name,)
        ).fetchone()
    assert row == ("running", False)
    # --resume continues from the interrupted step, in the same run
    (tmp_path / "go").write_text("")
    r = run(tmp_path, *args, "--resume")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["waited", "after"]
    assert len(runs(tmp_path)) == 1
    st = state(rd)
    assert st["status"] == "succeeded" and st["finished"] is True
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT status, finished, state->>'who' FROM readyctl_deploys WHERE run_id = %s",
            (rd.name,),
        ).fetchone()
    assert row == ("succeeded", True, "ci-bot")
    assert url.split("@")[0] not in (rd / "state.json").read_text()  # no credentials


def test_state_table_record_is_found_without_a_local_run_directory(
    tmp_path: Path, shared_pg
) -> None:  # type: ignore[no-untyped-def]
    """A fresh CI runner has no .readyctl/: the table's record still refuses a new run."""
    import shutil

    url = shared_pg.create_database(f"rb_table_{secrets.token_hex(4)}")
    project(
        tmp_path,
        runbook(step("a", mark("a")), step("b", mark("b"), confirm="true")),
        config=f"environments:\n  t:\n    database_url: {url}\n",
    )
    args = ("runbook", "run", "rb.yaml", "--env", "t", "--state-table")
    assert run(tmp_path, *args).code == 3
    shutil.rmtree(tmp_path / ".readyctl")
    r = run(tmp_path, *args, "--yes")
    assert r.code == 1 and "unfinished run" in r.err, r.both
    r = run(tmp_path, *args, "--resume", "--yes")
    assert r.code == 0, r.both
    assert order(tmp_path) == ["a", "b"]
