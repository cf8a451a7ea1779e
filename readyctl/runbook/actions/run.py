"""`run: CMD`: a shell command as a step (or a compensation), in its own process group.

`with:` keys (for `uses: run`): `command` (the shell command, required), `cwd` (default: the
project's directory), `env` (extra variables). The engine passes `run:` steps here with the
command already expanded. Output (stdout and stderr) goes, redacted line by line, to
`<workdir>/<step id>.log`; the step fails on a non-zero exit. On timeout, or on a second
Ctrl-C, the command's whole process group is stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

STOP_GRACE_S = 2.0
"""How long a command gets after SIGTERM (timeout or abort) before SIGKILL."""


def _shown(command: str) -> str:
    from readyctl.redact import global_redactor

    text = " ".join(command.split())
    return global_redactor().clip(text, 120, marker="...")


@register
class RunCommand(Action):
    """A shell command (`/bin/sh -c`); fails on a non-zero exit code."""

    name = "run"
    touches = "target-write"

    def describe(self, params: Mapping[str, Any]) -> str:
        """`runs `CMD``."""
        return f"runs `{_shown(str(params.get('command', '')))}` (/bin/sh -c)"

    def run(self, sc: StepContext) -> ActionResult:
        """Run the command until it exits, times out or the step is aborted."""
        from readyctl import _proc
        from readyctl.redact import global_redactor

        command = sc.params.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ActionFailed("no command to run: give `run: CMD` or `with: {command: CMD}`")
        red = global_redactor()
        env = {**sc.environ, **{str(k): str(v) for k, v in (sc.params.get("env") or {}).items()}}
        cwd = sc.params.get("cwd") or None
        log_path = sc.workdir / f"{sc.step_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        tail: deque[str] = deque(maxlen=20)
        try:
            proc = _proc.popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                name=f"step {sc.step_id}",
            )
        except OSError as e:
            raise ActionFailed(f"cannot run `{_shown(command)}`: {e.strerror or e}") from None

        def pump() -> None:
            assert proc.stdout is not None
            with open(log_path, "a", encoding="utf-8") as out:
                for raw in iter(proc.stdout.readline, b""):
                    line = red.text(raw.decode("utf-8", errors="replace"))
                    out.write(line)
                    out.flush()
                    if line.strip():
                        tail.append(line.rstrip("\n"))

        reader = threading.Thread(target=pump, name=f"readyctl-step-{sc.step_id}", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    sc.check_deadline()
        except BaseException:
            _proc.stop(proc, grace=STOP_GRACE_S)
            reader.join(2.0)
            raise
        # it is done: what it left running in its group (`cmd &`) goes with it
        _proc.signal_group(proc, 9)
        reader.join(5.0)
        _proc.release(proc)
        code = proc.returncode
        record = {"exit_code": code, "log": str(Path(log_path))}
        if code != 0:
            last = tail[-1] if tail else "no output"
            why = f"killed by signal {-code}" if code < 0 else f"exited {code}"
            raise ActionFailed(f"`{_shown(command)}` {why}: {red.clip(last, 200)}", record=record)
        return ActionResult(f"`{_shown(command)}` exited 0", record=record)
