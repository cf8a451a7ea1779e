"""`uses: deploy`: the project's deploy command (or hook), detached so the release outlives
readyctl, then wait until the ready endpoint answers; rollback deploys the previous release."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

KEYS = (
    "command",
    "release",
    "previous_release",
    "previous_release_command",
    "rollback_command",
    "ready_url",
    "ready_timeout",
)
PLACEHOLDERS = ("${release}", "${{ release }}", "{release}")


@register
class Deploy(Action):
    """Run the project's deploy command for a release, then wait until it is ready.

    `with:` keys:
    - `command` (required): a shell command; `${release}` (or `{release}`) in it is the
      release, which it also gets as READYCTL_RELEASE (and READYCTL_PREVIOUS_RELEASE). It runs
      in its own session (it survives readyctl), its output goes to `<step>-deploy.log` in the
      run's directory; readyctl waits for it to exit (a deploy hook returns when done).
    - `release`: the release to deploy (default: --release).
    - `previous_release`: what serves now (default: the engine's previous release, else the
      first line `previous_release_command` prints).
    - `previous_release_command`: a shell command printing the serving release.
    - `rollback_command`: the command for the rollback (default: `command` with the previous
      release in place of the release).
    - `ready_url` (default: the API map's health ready route on the target's base URL, else
      /health): must answer 2xx after the command.
    - `ready_timeout` (60s): how long to wait for it.

    Record: `release`, `previous_release`, `log`, `ready_url`, `ready_s`. Rollback: the same
    command with the previous release, then wait until ready.
    """

    name = "deploy"
    touches = "release"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        cmd = _common.redact(params.get("command") or "(no command)", 120)
        return f"run `{cmd}` (detached), then wait until the ready endpoint answers 2xx"

    def run(self, sc: StepContext) -> ActionResult:
        """Deploy the release, wait ready."""
        _common.unknown_keys(sc, KEYS)
        command = sc.params.get("command")
        if not command or not isinstance(command, str):
            raise ActionFailed("deploy: with.command (the deploy command) is required")
        release = str(sc.params.get("release") or sc.release or "")
        if not release:
            raise ActionFailed("deploy: no release (pass --release or with.release)")
        t = _common.target(sc)
        previous = sc.params.get("previous_release") or sc.previous_release
        if not previous and sc.params.get("previous_release_command"):
            previous = self._serving(sc, str(sc.params["previous_release_command"]))
        previous = str(previous) if previous else None
        url = _common.ready_url(sc, t, sc.params.get("ready_url"))
        wait_s = _common.seconds(sc.params.get("ready_timeout"), 60, "ready_timeout")
        log = sc.workdir / f"{_safe(sc.step_id)}-deploy.log"
        record: dict[str, Any] = {
            "release": release,
            "previous_release": previous,
            "log": str(log),
            "ready_url": _common.redact(url),
        }
        sc.log(f"deploying {release} (previous: {previous or 'unknown'})")
        _launch(sc, _with_release(command, release), release, previous, log, record)
        status, took = _wait(sc, t, url, wait_s, record)
        record["ready_s"] = round(took, 3)
        return ActionResult(
            f"deployed {release} (previous {previous or 'unknown'}); ready "
            f"(HTTP {status}) after {took:.1f} s",
            record=record,
        )

    def rollback(self, sc: StepContext, record: Mapping[str, Any]) -> ActionResult | None:
        """Deploy the previous release with the same command, then wait until ready."""
        previous = record.get("previous_release")
        release = str(record.get("release") or "")
        if not previous:
            raise ActionFailed(
                f"deploy rollback: no previous release recorded, {release} stays deployed"
            )
        previous = str(previous)
        explicit = sc.params.get("rollback_command")
        command = str(explicit or sc.params.get("command") or "")
        if not command:
            raise ActionFailed("deploy rollback: with.command is gone from the step")
        if explicit or any(p in command for p in PLACEHOLDERS):
            command = _with_release(command, previous)
        else:  # the engine expanded ${release} already: put the previous release in its place
            command = _swap_release(command, release, previous)
        t = _common.target(sc)
        url = _common.ready_url(sc, t, sc.params.get("ready_url"))
        wait_s = _common.seconds(sc.params.get("ready_timeout"), 60, "ready_timeout")
        log = sc.workdir / f"{_safe(sc.step_id)}-rollback.log"
        out: dict[str, Any] = {"release": previous, "replaced": release, "log": str(log)}
        sc.log(f"deploying the previous release {previous} in place of {release}")
        _launch(sc, command, previous, release, log, out)
        status, took = _wait(sc, t, url, wait_s, out)
        out["ready_s"] = round(took, 3)
        return ActionResult(
            f"rolled back to {previous}; ready (HTTP {status}) after {took:.1f} s", record=out
        )

    def _serving(self, sc: StepContext, command: str) -> str | None:
        """The first line `previous_release_command` prints (None when it prints nothing)."""
        try:
            proc = subprocess.run(
                command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=60,
                env=dict(sc.environ),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ActionFailed("deploy: previous_release_command did not finish in 60 s") from None
        if proc.returncode != 0:
            raise ActionFailed(
                f"deploy: previous_release_command exited with {proc.returncode}: "
                f"{_common.redact(_last(proc.stderr or proc.stdout), 200)}"
            )
        lines = [x.strip() for x in proc.stdout.splitlines() if x.strip()]
        return lines[0] if lines else None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "step"


def _last(text: str) -> str:
    lines = [x for x in (text or "").strip().splitlines() if x.strip()]
    return lines[-1] if lines else "no output"


def _with_release(command: str, release: str) -> str:
    """`command` with its release placeholders filled."""
    import shlex

    quoted = shlex.quote(release)
    for p in PLACEHOLDERS:
        command = command.replace(p, quoted)
    return command


def _swap_release(command: str, release: str, previous: str) -> str:
    """`command` with `release` (as a whole word) replaced by `previous`."""
    if not release:
        return command
    pattern = r"(?<![A-Za-z0-9_.-])" + re.escape(release) + r"(?![A-Za-z0-9_.-])"
    return re.sub(pattern, lambda _m: previous, command)


def _launch(
    sc: StepContext,
    command: str,
    release: str,
    previous: str | None,
    log: Path,
    record: dict[str, Any],
) -> None:
    """Run `command` in its own session (what it starts outlives readyctl), output to `log`,
    and wait for it to exit; ActionFailed on a non-zero exit or when it does not return."""
    env = {**sc.environ, "READYCTL_RELEASE": release, "READYCTL_RUN_ID": sc.run_id}
    if previous:
        env["READYCTL_PREVIOUS_RELEASE"] = previous
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise ActionFailed(f"deploy: cannot start the command: {e.strerror or e}") from None
    record["pid"] = proc.pid
    limit = max(1.0, sc.timeout_s)
    while True:
        try:
            code = proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        try:
            sc.check_deadline()
        except BaseException:
            record["command_s"] = round(time.monotonic() - t0, 3)
            raise
        if time.monotonic() - t0 > limit:
            raise ActionFailed(
                f"deploy command for {release} did not return within {limit:.0f} s (left "
                f"running, pid {proc.pid}; see {log})",
                record=record,
            )
    record["command_s"] = round(time.monotonic() - t0, 3)
    record["exit_code"] = code
    if code != 0:
        tail = _last(log.read_text(encoding="utf-8", errors="replace"))
        raise ActionFailed(
            f"deploy command for {release} exited with {code}: {_common.redact(tail, 200)}",
            record=record,
        )


def _wait(
    sc: StepContext, t: _common.Target, url: str, wait_s: float, record: dict[str, Any]
) -> tuple[int, float]:
    """Wait until the ready URL answers 2xx; ActionFailed (with the record) when it does not."""
    try:
        return _common.wait_ready(sc, t, url, wait_s)
    except ActionFailed as e:
        raise ActionFailed(f"{record['release']} is not ready: {e}", record=record) from None
