"""Crash safety of a deploy against a demo started apart (`readyctl demo up --state-file`),
so that the demo outlives the readyctl runs these tests SIGKILL: the advisory lock refuses a
second run while the first lives, the unfinished-run record refuses one after the first
died, and `--resume` either completes the deploy or (`resume: rollback`) puts the target back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from readyctl.demo.control import read_state, request_release, set_maintenance
from readyctl.postgres.urls import libpq_url, url_parts
from readyctl.runbook.lock import advisory_key
from tests.helpers import snapshot
from tests.runbook.helpers import (
    WAIT_GO,
    env_for,
    events,
    order,
    run,
    runs,
    start,
    state,
    step_running,
    wait_for,
)

pytestmark = pytest.mark.slow

V1_HEAD = "0004_billing"
V2_HEAD = "0005_session_mood"
ARGS = ("runbook", "run", "rb.yaml", "--env", "apart", "--release", "v2")


@dataclasses.dataclass
class Apart:
    """A demo served by a `readyctl demo up --state-file` process of its own."""

    proc: subprocess.Popen[str]
    state_file: Path
    tmpdir: Path
    output: list[str]

    @property
    def state(self) -> dict[str, Any]:
        """The demo's state file, now."""
        return read_state(self.state_file)

    @property
    def url(self) -> str:
        """The demo's database URL."""
        return str(self.state["database_url"])

    def env(self) -> dict[str, str]:
        """What the readyctl runs get: the demo's state file for its `demo` commands."""
        return {"READYCTL_DEMO_STATE": str(self.state_file)}


def _drain(proc: subprocess.Popen[str], into: list[str]) -> None:
    """Read the demo's output until it ends (a full pipe would stall the demo)."""
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, ""):
        into.append(line)


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apart]:
    """`readyctl demo up --state-file` in a subprocess for this module; SIGTERM at the end,
    which must leave nothing behind (state file, workdir and database gone)."""
    tmpdir = tmp_path_factory.mktemp("apart-demo")
    state_file = tmpdir / "demo.json"
    env = env_for({"TMPDIR": str(tmpdir)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "readyctl", "demo", "up", "--state-file", str(state_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmpdir,
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=_drain, args=(proc, output), daemon=True)
    reader.start()
    demo = Apart(proc, state_file, tmpdir, output)
    try:
        wait_for(
            lambda: proc.poll() is not None or "state file" in "".join(output),
            90,
            "the demo to come up",
        )
        assert proc.poll() is None, "".join(output)
        assert demo.state["release"] == "v1"
        yield demo
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        reader.join(10)
    assert proc.returncode == 0, "".join(output[-20:])
    assert list(tmpdir.iterdir()) == []  # state file, workdir and database all gone


def _revision(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        return sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))


@pytest.fixture
def fresh(apart: Apart) -> Apart:
    """The demo as a deploy finds it: release v1 at v1's head, maintenance off."""
    st = apart.state
    set_maintenance(st["maintenance_file"], False)
    if st["release"] != "v1":
        request_release(st, "v1")
    if _revision(apart.url) != [V1_HEAD]:
        from alembic import command
        from alembic.config import Config

        cfg = Config(st["alembic_ini"]["v2"])
        cfg.set_main_option("sqlalchemy.url", apart.url.replace("%", "%%"))
        command.downgrade(cfg, V1_HEAD)
    assert _revision(apart.url) == [V1_HEAD]
    return apart


def _project(tmp_path: Path, demo: Apart, head: str = "") -> None:
    """readyctl.yaml (environment `apart`: the demo) and rb.yaml: backup, maintenance on,
    migrate (rehearsed), a step waiting for a file named `go`, deploy v2, maintenance off."""
    st = demo.state
    cfg = {
        "version": 2,
        "environments": {
            "apart": {
                "base_url": st["base_url"],
                "ca_bundle": st["ca_bundle"],
                "database_url": st["database_url"],
            }
        },
        "gate": {"require": "none"},
    }
    (tmp_path / "readyctl.yaml").write_text(json.dumps(cfg, indent=2))  # JSON is YAML
    demo_cmd = "$READYCTL_CMD demo"
    (tmp_path / "rb.yaml").write_text(
        f"""name: apart
description: v1 -> v2 on a demo started apart, with a step that waits for a file
{head}steps:
  - id: backup
    uses: backup
    on_failure: stop
  - id: maintenance-on
    uses: maintenance
    with:
      mode: "on"
      run: {demo_cmd} maintenance on
      "off": {{run: "{demo_cmd} maintenance off"}}
  - id: migrate
    uses: migrate
    with:
      require_rehearsal: rehearse
      project: {{alembic_config: "{st["alembic_ini"]["v2"]}"}}
  - id: wait
    run: |-
      {WAIT_GO}
  - id: deploy
    uses: deploy
    with:
      command: {demo_cmd} release ${{release}}
      previous_release_command: {demo_cmd} release --current
  - id: maintenance-off
    uses: maintenance
    with:
      mode: "off"
      run: {demo_cmd} maintenance off
after_rollback:
  - id: maintenance-off-after-rollback
    uses: maintenance
    with:
      mode: "off"
      run: {demo_cmd} maintenance off
"""
    )


def _kill_first(first: subprocess.Popen[str], tmp_path: Path) -> None:
    """SIGKILL the run (no cleanup at all) and the waiting command it leaves behind."""
    if first.poll() is None:
        first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((tmp_path / "waiter.pid").read_text()), signal.SIGKILL)


def _start_and_wait(tmp_path: Path, demo: Apart) -> subprocess.Popen[str]:
    """Start the run; return once it waits in step `wait` (after migrate)."""
    first = start(tmp_path, *ARGS, env=demo.env())
    try:
        wait_for(
            lambda: first.poll() is not None or step_running(tmp_path, "wait"),
            90,
            "the run to reach step wait",
        )
        assert first.poll() is None, first.communicate()
        wait_for(lambda: (tmp_path / "waiter.pid").exists(), 30, "the waiting command")
    except BaseException:
        _kill_first(first, tmp_path)
        raise
    return first


def _lock_free(url: str) -> bool:
    """Whether the deploy lock of the target can be taken (it is released again at once)."""
    key = advisory_key(url_parts(url).get("dbname") or "postgres")
    with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row and row[0]:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return True
    return False


def _serving(demo: Apart) -> tuple[int, str | None]:
    """(status of GET /v1/version, the X-Release header of /health/ready)."""
    st = demo.state
    ctx = ssl.create_default_context(cafile=st["ca_bundle"])
    with httpx.Client(base_url=st["base_url"], verify=ctx, timeout=10) as c:
        release = c.get("/health/ready").headers.get("x-release", "v1")
        return c.get("/v1/version").status_code, release


def _steps(run_dir: Path, section: str = "steps") -> dict[str, str]:
    return {e["id"]: e["status"] for e in state(run_dir)[section]}


def test_lock_then_unfinished_record_refuse_and_resume_completes(
    tmp_path: Path, fresh: Apart
) -> None:
    _project(tmp_path, fresh)
    first = _start_and_wait(tmp_path, fresh)
    try:
        [rd] = runs(tmp_path)
        # (a) the first run lives: the advisory lock refuses, naming the run
        r = run(tmp_path, *ARGS, env=fresh.env())
        assert r.code == 1, r.both
        assert "another deploy of this target is running" in r.err, r.err
        assert re.search(rf"run {rd.name}, started \S+ by ci-bot", r.err), r.err
        assert "Traceback" not in r.both and len(runs(tmp_path)) == 1
    finally:
        _kill_first(first, tmp_path)
    # (b) it died after migrate: the server freed the lock, the record refuses instead
    wait_for(lambda: _lock_free(fresh.url), 15, "the server to release the lock")
    assert _steps(rd) == {
        "backup": "succeeded",
        "maintenance-on": "succeeded",
        "migrate": "succeeded",
        "wait": "running",
        "deploy": "pending",
        "maintenance-off": "pending",
    }
    assert _revision(fresh.url) == [V2_HEAD] and fresh.state["release"] == "v1"
    assert _serving(fresh) == (503, "v1")  # maintenance is still on
    r = run(tmp_path, *ARGS, env=fresh.env())
    assert r.code == 1, r.both
    assert "unfinished run" in r.err and rd.name in r.err and "--resume" in r.err, r.err
    assert "at step wait" in r.err, r.err
    # --resume continues from the interrupted step, in the same run, and completes
    (tmp_path / "go").write_text("")
    r = run(tmp_path, *ARGS, "--resume", env=fresh.env())
    assert r.code == 0, r.both
    assert runs(tmp_path) == [rd] and order(tmp_path) == ["waited"]
    st = state(rd)
    assert st["status"] == "succeeded" and st["finished"] is True
    assert set(_steps(rd).values()) == {"succeeded"}
    assert ("run resumed", "wait") in events(rd)
    assert fresh.state["release"] == "v2"
    assert _revision(fresh.url) == [V2_HEAD]
    assert _serving(fresh) == (200, "v2")  # maintenance off, v2 serves /v1/version


def test_resume_with_rollback_policy_puts_the_target_back(tmp_path: Path, fresh: Apart) -> None:
    before = snapshot(fresh.url)
    _project(tmp_path, fresh, head="resume: rollback\n")
    first = _start_and_wait(tmp_path, fresh)
    _kill_first(first, tmp_path)
    [rd] = runs(tmp_path)
    assert _revision(fresh.url) == [V2_HEAD]
    wait_for(lambda: _lock_free(fresh.url), 15, "the server to release the lock")
    r = run(tmp_path, *ARGS, "--resume", env=fresh.env())
    assert r.code == 1, r.both  # rolled back
    assert "Traceback" not in r.both
    st = state(rd)
    assert st["status"] == "rolled_back" and st["finished"] is True, st["reason"]
    comps = {c["id"]: c for c in st["compensations"]}
    assert comps["wait"]["status"] == "nothing_to_undo"
    assert comps["migrate"]["status"] == "compensated", comps["migrate"]
    assert comps["migrate"]["record"]["method"] in ("downgrade", "restore")
    assert comps["migrate"]["record"]["back"] is True
    assert comps["maintenance-on"]["status"] == "compensated"
    assert "deploy" not in comps  # it never ran
    assert comps.get("backup", {}).get("status", "nothing_to_undo") == "nothing_to_undo"
    assert _steps(rd, "after_rollback") == {"maintenance-off-after-rollback": "succeeded"}
    assert ("run resumed", "wait") in events(rd) and ("rollback started", "wait") in events(rd)
    # schema, rows, revision and the server's databases (no scratch copy left) as before
    assert snapshot(fresh.url) == before
    assert _revision(fresh.url) == [V1_HEAD]
    assert fresh.state["release"] == "v1"
    assert _serving(fresh) == (404, "v1")  # maintenance off; v1 has no /v1/version
    # the record is finished: a new run is no longer refused for it
    assert all(state(d)["finished"] for d in runs(tmp_path))
