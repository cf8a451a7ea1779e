"""Shared pieces of the runbook tests: a project directory, runbooks of commands, runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import Run

PY = "$READYCTL_PYTHON"  # the test interpreter, as the engine exports it to commands


def project(tmp_path: Path, runbook: str, config: str | None = None) -> Path:
    """A readyctl.yaml (an environment `staging` with no database) and rb.yaml."""
    (tmp_path / "readyctl.yaml").write_text(config or "environments:\n  staging: {}\n")
    (tmp_path / "rb.yaml").write_text(runbook)
    return tmp_path


def mark(name: str, code: int = 0) -> str:
    """A command appending `name` to order.txt, then exiting with `code`."""
    return f"{PY} -c \"import sys; open('order.txt', 'a').write('{name}\\n'); sys.exit({code})\""


def order(tmp_path: Path) -> list[str]:
    """What the commands appended, in order."""
    path = tmp_path / "order.txt"
    return path.read_text().split() if path.exists() else []


def env_for(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The subprocess environment: no colours, wide lines, no CI actor from the host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "GITHUB_ACTOR": "ci-bot"})
    env.update(extra or {})
    return env


def cmd(*args: str) -> list[str]:
    """The readyctl command line."""
    return [sys.executable, "-m", "readyctl", *args]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """`readyctl ARGS` in tmp_path, stdin not a terminal."""
    p = subprocess.run(
        cmd(*args),
        cwd=tmp_path,
        env=env_for(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(p.returncode, p.stdout, p.stderr)


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`readyctl ARGS` in the background."""
    return subprocess.Popen(
        cmd(*args),
        cwd=tmp_path,
        env=env_for(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def runs(tmp_path: Path) -> list[Path]:
    """The run directories, oldest first."""
    base = tmp_path / ".readyctl" / "runs"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def state(run_dir: Path) -> dict[str, Any]:
    """A run's state.json."""
    return json.loads((run_dir / "state.json").read_text())


def audit(run_dir: Path) -> list[dict[str, Any]]:
    """A run's audit log."""
    return [json.loads(line) for line in (run_dir / "audit.jsonl").read_text().splitlines()]


def events(run_dir: Path) -> list[tuple[str, str | None]]:
    """(event, step) of every audit line."""
    return [(e["event"], e.get("step")) for e in audit(run_dir)]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until `predicate()` is true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def step_running(tmp_path: Path, step_id: str) -> bool:
    """Whether the newest run's state shows `step_id` running."""
    found = runs(tmp_path)
    if not found:
        return False
    steps = {s["id"]: s for s in state(found[-1])["steps"]}
    return steps.get(step_id, {}).get("status") == "running"


WAIT_GO = (
    f"{PY} -c \"import os, time; open('waiter.pid', 'w').write(str(os.getpid())); "
    "[time.sleep(0.05) for _ in range(1200) if not os.path.exists('go')]; "
    "open('order.txt', 'a').write('waited\\n')\""
)
"""A command that waits (up to 60 s) for a file named `go`, then appends `waited`."""


def step(step_id: str, command: str, **extra: str) -> str:
    """One `run:` step in YAML (the command as a literal block); `extra`: more keys."""
    out = f"  - id: {step_id}\n    run: |-\n      {command}\n"
    for key, value in extra.items():
        if key == "rollback":
            out += f"    rollback:\n      run: |-\n        {value}\n"
        else:
            out += f"    {key}: {value}\n"
    return out


def runbook(*steps: str, after: tuple[str, ...] = (), head: str = "") -> str:
    """A runbook named t with these steps (and after_rollback steps)."""
    text = f"name: t\ndescription: a test runbook\n{head}steps:\n" + "".join(steps)
    if after:
        text += "after_rollback:\n" + "".join(after)
    return text
