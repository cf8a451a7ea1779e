"""The runbook engine: plan a runbook, run it step by step, roll back, resume.

For each step: its `when:` condition, a human's confirmation (`confirm: true`; `--yes`), the
action (or the `run:` command) with its timeout and retries, the outcome recorded in the
run's state (written after every step) and audit log. On a failure with `on_failure:
rollback`, the compensations of the completed steps (and of the failed one) run in reverse:
a step's own `rollback:` when given, else its action's `rollback`; then `after_rollback:`.

Exit codes: 0 succeeded; 1 failed (rolled back or not), stopped, or refused (another run
holds the target, or an unfinished run waits for --resume/--abandon); 2 bad input (runbook,
config, flags: nothing ran); 3 a step needs a confirmation the run could not get (no TTY,
no --yes), or the gate was inconclusive (unverifiable); 130 interrupted (state kept).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readyctl.errors import ConfigError, ReadyctlError, UsageError
from readyctl.runbook.actions.base import (
    REGISTRY,
    Action,
    ActionFailed,
    ActionResult,
    NeedsConfirmation,
    StepContext,
)
from readyctl.runbook.loader import LoadedRunbook, find_runbook, load_runbook, project_dir_of
from readyctl.runbook.model import (
    BUILTIN_ACTIONS,
    BUILTIN_NAMES,
    PLACEHOLDER,
    Compensation,
    Step,
    parse_condition,
    parse_duration,
)
from readyctl.runbook.state import RunState

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CONFIRM, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Pause before retry n (the last value repeats)."""
NO_CHANGE = ("none", "target-read")
"""What an action touches when having run it leaves nothing to undo."""

_IMPORT_PROBLEMS: dict[str, str] = {}


class DeployRefused(ReadyctlError):
    """The run cannot start on this target now (an unfinished run waits): exit 1."""

    exit_code = 1


class StepTimeout(ActionFailed):
    """The step ran past its timeout (raised by `StepContext.check_deadline`)."""


class StepAborted(KeyboardInterrupt):
    """A second Ctrl-C: abort the running step (raised by `StepContext.check_deadline`)."""


def registry() -> dict[str, type[Action]]:
    """The built-in actions (`uses:`), importing their modules; a module that is missing or
    broken leaves its action unavailable (named when a step uses it)."""
    try:
        importlib.import_module("readyctl.runbook.actions")
    except Exception as e:  # a module of the package failed: import the others one by one
        _IMPORT_PROBLEMS["*"] = f"{type(e).__name__}: {e}"
    for name in BUILTIN_ACTIONS:
        if name in REGISTRY:
            continue
        try:
            importlib.import_module(f"readyctl.runbook.actions.{name}")
        except Exception as e:
            _IMPORT_PROBLEMS[name] = f"{type(e).__name__}: {e}"
    return REGISTRY


# -- options, UI, result --------------------------------------------------------------------
@dataclasses.dataclass
class DeployOptions:
    """What `readyctl deploy` / `readyctl runbook run|plan` can be told."""

    runbook: str | None = None  # a name (`deploy`) or a path; default `deploy`
    config: Path | None = None
    env: str | None = None
    release: str | None = None
    vars: dict[str, str] = dataclasses.field(default_factory=dict)
    yes: bool = False
    plan: bool = False
    resume: bool = False
    abandon: bool = False
    reason: str | None = None  # why a run is abandoned (audit log)
    state_table: bool = False
    database_url: str | None = None
    base_url: str | None = None
    require_release: bool = False  # `readyctl deploy`: --release is required to run


class RunbookUI:
    """What the engine shows; the CLI overrides every hook. This base shows nothing."""

    def say(self, text: str) -> None:
        """A note for the user."""

    def step_started(self, section: str, step_id: str, what: str) -> None:
        """A step (or compensation) starts."""

    def step_finished(self, section: str, entry: Mapping[str, Any]) -> None:
        """A step ended: entry has id, status, duration_s, summary."""

    def log(self, step_id: str, line: str) -> None:
        """A progress line of a step (already redacted)."""

    def ask(self, question: str) -> bool | None:
        """Ask a human; None when nobody can answer (no TTY)."""
        return None


@dataclasses.dataclass
class RunResult:
    """How a run (or a plan) ended."""

    exit_code: int
    status: str
    run_id: str | None = None
    state_path: Path | None = None
    audit_path: Path | None = None
    message: str | None = None
    plan: list[dict[str, Any]] | None = None
    runbook_path: Path | None = None
    timeline: dict[str, Path] = dataclasses.field(default_factory=dict)  # deploy.md / .html


# -- helpers ---------------------------------------------------------------------------------
def _signals() -> int:
    """How many SIGINT/SIGTERM the process received (readyctl._interrupt's record)."""
    from readyctl import _interrupt

    return len(getattr(_interrupt._state, "received", []))


def _fmt_s(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _extend_interrupt_budget(seconds: float) -> None:
    """The first Ctrl-C lets the running step finish: give readyctl._interrupt's watchdog
    (which ends the process a budget after the first signal) at least that long."""
    from readyctl import _interrupt

    if _signals():
        return  # already counting down: the budget in force stays
    current = _interrupt.budget()
    os.environ["READYCTL_INTERRUPT_BUDGET_S"] = str(max(current, seconds + 30))


def _target_key(env_name: str, env: Any) -> tuple[str, dict[str, Any]]:
    """A stable key for "the same target" and what the state shows of it (no password)."""
    info: dict[str, Any] = {"env": env_name}
    if env.database_url:
        from readyctl.postgres.urls import url_parts

        parts = url_parts(env.database_url)
        where = f"{parts.get('host', 'localhost')}:{parts.get('port', '5432')}"
        info["database"] = f"{where}/{parts.get('dbname', '')}"
        key = f"postgres://{info['database']}"
    elif env.managed == "demo":
        key = f"managed-demo:{env_name}"
    elif env.base_url:
        key = f"url:{env.base_url}"
    else:
        key = f"env:{env_name}"
    if env.base_url:
        info["base_url"] = env.base_url
    info["id"] = key
    return key, info


def _env_missing(value: Any, environ: Mapping[str, str]) -> list[str]:
    """Environment variables a value's placeholders need and the process lacks."""
    out: list[str] = []
    if isinstance(value, str):
        for m in PLACEHOLDER.finditer(value):
            name = m.group("name")
            if "." in name or name in BUILTIN_NAMES or m.group("default") is not None:
                continue
            if name not in environ:
                out.append(name)
    elif isinstance(value, Mapping):
        for v in value.values():
            out += _env_missing(v, environ)
    elif isinstance(value, list | tuple):
        for v in value:
            out += _env_missing(v, environ)
    return out


# -- a run -----------------------------------------------------------------------------------
class _Run:
    """One run of a runbook (fresh or resumed): steps, rollback, state, audit."""

    def __init__(
        self,
        *,
        loaded: LoadedRunbook,
        state: RunState,
        vars: dict[str, Any],
        env_name: str,
        env: Any,
        config_path: Path | None,
        environ: dict[str, str],
        yes: bool,
        ui: RunbookUI,
        managed: Any = None,
    ) -> None:
        from readyctl.runbook.audit import AuditLog

        self.loaded = loaded
        self.rb = loaded.runbook
        self.state = state
        self.vars = vars
        self.env_name = env_name
        self.env = env
        self.config_path = config_path
        self.environ = environ
        self.yes = yes
        self.ui = ui
        self.managed = managed
        self.release: str | None = state.data.get("release")
        self.previous_release: str | None = state.data.get("previous_release")
        self.records: dict[str, dict[str, Any]] = dict(state.data.get("records") or {})
        self.bypass_headers: dict[str, str] = {}
        for record in self.records.values():
            self._note_bypass(record)
        self.workdir = state.dir
        self.audit = AuditLog(state.audit_path, state.run_id, str(state.data.get("who")))
        self.failed_inconclusive = False

    # -- placeholders and conditions ---------------------------------------------------------
    def _lookup(self, name: str, default: str | None, depth: int = 0) -> Any:
        if name.startswith("vars."):
            value = self.vars.get(name[5:])
            if isinstance(value, str) and "${" in value and depth < 3:
                value = self._expand_text(value, depth + 1)  # ${release} in a variable
            return value
        if name == "release":
            return self.release
        if name == "previous_release":
            return self.previous_release
        if name == "env":
            return self.env_name
        if name == "run_id":
            return self.state.run_id
        if name == "workdir":
            return str(self.workdir)
        value = self.environ.get(name, default)
        if value and name in self.environ:
            from readyctl.redact import global_redactor

            global_redactor().add(value)  # values of environment variables never show
        return value

    def expand(self, value: Any) -> Any:
        """`${...}` filled in (a value that is one placeholder keeps its type)."""
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                got = self._lookup(whole.group("name"), whole.group("default"))
                return "" if got is None else got
            return self._expand_text(value, 0)
        if isinstance(value, Mapping):
            return {k: self.expand(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.expand(v) for v in value]
        return value

    def _expand_text(self, value: str, depth: int) -> str:
        def sub(m: Any) -> str:
            got = self._lookup(m.group("name"), m.group("default"), depth)
            if got is None:
                return ""
            if isinstance(got, bool):
                return "true" if got else "false"
            return str(got)

        return PLACEHOLDER.sub(sub, value)

    def values(self) -> dict[str, Any]:
        """What `when:` conditions read."""
        out: dict[str, Any] = {
            "release": self.release,
            "previous_release": self.previous_release,
            "env": self.env_name,
            "run_id": self.state.run_id,
            "workdir": str(self.workdir),
        }
        out.update({f"vars.{k}": v for k, v in self.vars.items()})
        return out

    def holds(self, when: str | None) -> bool:
        """Whether a step's `when:` holds."""
        if when is None or when == "true":
            return True
        if when == "false":
            return False
        cond, _ = parse_condition(when)
        return cond(self.values())

    def timeout_of(self, value: Any) -> float:
        """A timeout in seconds (placeholders filled in)."""
        return parse_duration(self.expand(value))

    # -- recording ---------------------------------------------------------------------------
    def save(self) -> None:
        """Write the state (after every step)."""
        self.state.data["records"] = self.records
        self.state.data["previous_release"] = self.previous_release
        self.state.save()

    def _note_bypass(self, record: Mapping[str, Any]) -> None:
        header, secret_env = record.get("bypass_header"), record.get("bypass_secret_env")
        if isinstance(header, str) and isinstance(secret_env, str):
            value = self.environ.get(secret_env)
            if value:
                from readyctl.redact import global_redactor

                global_redactor().add(value)
                self.bypass_headers[header] = value

    def _keep_record(self, step_id: str, kind: str, record: Mapping[str, Any]) -> None:
        kept = {"uses": kind, **dict(record)}
        self.records[step_id] = kept
        prev = kept.get("previous_release")
        if isinstance(prev, str) and prev:
            self.previous_release = prev
        self._note_bypass(kept)

    # -- confirmation ----------------------------------------------------------------------
    def ask(self, step_id: str, question: str) -> bool:
        """A human's yes: --yes, else the terminal; NeedsConfirmation when nobody can answer."""
        self.audit.event("confirm asked", step=step_id, summary=question)
        if self.yes:
            self.audit.event("confirm answered", step=step_id, outcome="yes", summary="--yes")
            return True
        answer = self.ui.ask(question)
        if answer is None:
            self.audit.event(
                "confirm answered", step=step_id, outcome="unanswered", summary="no TTY, no --yes"
            )
            raise NeedsConfirmation(
                f"step {step_id} needs a confirmation ({question}) and there is no terminal to "
                "ask: run again with --resume --yes (or --yes) to approve"
            )
        self.audit.event(
            "confirm answered", step=step_id, outcome="yes" if answer else "no", summary="terminal"
        )
        return answer

    # -- invoking an action ------------------------------------------------------------------
    def _action(self, kind: str) -> Action:
        cls = registry().get(kind)
        if cls is None:
            why = _IMPORT_PROBLEMS.get(kind) or _IMPORT_PROBLEMS.get("*")
            extra = f" ({why})" if why else ""
            raise ActionFailed(f"action {kind!r} is not available in this installation{extra}")
        return cls()

    def _run_env(self) -> dict[str, str]:
        return {
            "READYCTL_RUN_ID": self.state.run_id,
            "READYCTL_RELEASE": self.release or "",
            "READYCTL_PREVIOUS_RELEASE": self.previous_release or "",
            "READYCTL_ENV": self.env_name,
            "READYCTL_WORKDIR": str(self.workdir),
        }

    def context(self, step_id: str, params: dict[str, Any], timeout_s: float) -> StepContext:
        """The StepContext of one attempt (its deadline starts now)."""
        deadline = time.monotonic() + timeout_s

        def check_deadline() -> None:
            if _signals() >= 2:
                raise StepAborted(f"step {step_id} aborted by a second interrupt")
            if time.monotonic() > deadline:
                raise StepTimeout(f"timed out after {_fmt_s(timeout_s)}")

        def log(line: str) -> None:
            from readyctl.redact import global_redactor

            text = global_redactor().clip(line, 500)
            self.audit.event("step log", step=step_id, summary=text)
            self.ui.log(step_id, text)

        return StepContext(
            run_id=self.state.run_id,
            step_id=step_id,
            params=params,
            release=self.release,
            previous_release=self.previous_release,
            config_path=self.config_path,
            env_name=self.env_name,
            environ=dict(self.environ),
            records={k: dict(v) for k, v in self.records.items()},
            workdir=self.workdir,
            log=log,
            confirm=lambda q: self.ask(step_id, q),
            check_deadline=check_deadline,
            timeout_s=timeout_s,
            target=self.env,
            bypass_headers=dict(self.bypass_headers),
            managed=self.managed,
        )

    def _params(self, kind: str, run: str | None, with_: Mapping[str, Any]) -> dict[str, Any]:
        if kind == "run" and run is not None:
            return {"command": self.expand(run), "env": self._run_env()}
        params = self.expand(dict(with_))
        if kind == "run":
            params.setdefault("env", {})
            params["env"] = {**self._run_env(), **params["env"]}
        return params

    def _attempt(
        self, step_id: str, call: Any, params: dict[str, Any], timeout_s: float
    ) -> tuple[str, ActionResult | None, str | None, dict[str, Any]]:
        """One call: (outcome, result, error, record); outcome is ok, failed,
        needs_confirmation or interrupted."""
        from readyctl.redact import global_redactor

        _extend_interrupt_budget(timeout_s)
        sc = self.context(step_id, params, timeout_s)
        try:
            result = call(sc)
        except NeedsConfirmation as e:
            return "needs_confirmation", None, str(e), {}
        except KeyboardInterrupt as e:  # StepAborted, or a signal inside a raising() block
            return "interrupted", None, str(e) or "interrupted", {}
        except ActionFailed as e:
            return "failed", None, str(e), dict(e.record)
        except ReadyctlError as e:
            return "failed", None, str(e), {}
        except Exception as e:  # a bug in an action: the run goes on to its rollback
            text = global_redactor().clip(f"{type(e).__name__}: {e}", 300)
            return "failed", None, f"internal error in the step: {text}", {}
        return "ok", result, None, {}

    # -- steps -----------------------------------------------------------------------------
    def describe(self, step: Step) -> str:
        """What a step does, for the plan and the prompt."""
        kind = step.kind
        params = self._params(kind, step.run, step.with_)
        cls = registry().get(kind)
        if cls is None:
            return f"{kind} (not available in this installation)"
        try:
            return cls().describe(params)
        except Exception as e:  # describe must never stop a plan
            return f"{kind} ({type(e).__name__})"

    def run_step(self, section: str, step: Step) -> str:
        """Run one step; its outcome: succeeded, skipped, failed, declined,
        needs_confirmation or interrupted."""
        sid, kind = step.step_id, step.kind
        entry = self.state.step(section, sid)
        entry.update(uses=kind, touches=self._touches(kind), attempts=0, error=None)
        self.state.data["current_step"] = sid
        if not self.holds(step.when):
            entry.update(status="skipped", summary=f"when: {step.when} does not hold")
            self.audit.event("step skipped", step=sid, uses=kind, summary=entry["summary"])
            self.save()
            self.ui.step_finished(section, entry)
            return "skipped"
        if step.confirm:
            try:
                yes = self.ask(sid, f"run step {sid}: {self.describe(step)}?")
            except NeedsConfirmation as e:
                entry.update(status="needs_confirmation", summary=str(e))
                self.save()
                self.ui.step_finished(section, entry)
                return "needs_confirmation"
            if not yes:
                entry.update(status="declined", summary="declined at the prompt")
                self.save()
                self.ui.step_finished(section, entry)
                return "declined"
        try:
            params = self._params(kind, step.run, step.with_)
            timeout_s = self.timeout_of(step.timeout)
            action = self._action(kind)
        except (ActionFailed, ValueError) as e:
            entry.update(status="failed", summary=str(e), duration_s=0.0)
            self.audit.event("step failed", step=sid, uses=kind, outcome="failed", summary=str(e))
            self.save()
            self.ui.step_finished(section, entry)
            return "failed"
        command = params.get("command") if kind == "run" else None
        entry.update(status="running", started=_now())
        self.save()
        self.ui.step_started(section, sid, self.describe(step))
        t_step = time.monotonic()
        for attempt in range(1, step.retries + 2):
            entry["attempts"] = attempt
            self.audit.event(
                "step started", step=sid, uses=kind, command=command, summary=f"attempt {attempt}"
            )
            t0 = time.monotonic()
            outcome, result, error, record = self._attempt(sid, action.run, params, timeout_s)
            took = round(time.monotonic() - t0, 3)
            if outcome == "ok" and result is not None:
                self._keep_record(sid, kind, result.record)
                entry.update(
                    status="succeeded",
                    summary=result.summary,
                    duration_s=round(time.monotonic() - t_step, 3),
                )
                self.audit.event(
                    "step finished",
                    step=sid,
                    uses=kind,
                    command=command,
                    outcome="succeeded",
                    duration_s=took,
                    summary=result.summary,
                    record=self.records[sid],
                )
                break
            if record:
                self._keep_record(sid, kind, record)
            if outcome in ("needs_confirmation", "interrupted"):
                entry.update(
                    status=outcome, summary=error, duration_s=round(time.monotonic() - t_step, 3)
                )
                self.audit.event(
                    "step " + ("interrupted" if outcome == "interrupted" else "stopped"),
                    step=sid,
                    uses=kind,
                    outcome=outcome,
                    duration_s=took,
                    summary=error,
                )
                break
            if attempt <= step.retries and not _signals():
                pause = BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]
                self.audit.event(
                    "step retried",
                    step=sid,
                    uses=kind,
                    outcome="failed",
                    duration_s=took,
                    summary=f"attempt {attempt} failed: {error}; retrying in {pause:g}s",
                )
                self.ui.log(sid, f"attempt {attempt} failed: {error}; retrying in {pause:g}s")
                if _sleep(pause):
                    continue
            if record.get("inconclusive"):
                self.failed_inconclusive = True
            entry.update(
                status="failed", summary=error, duration_s=round(time.monotonic() - t_step, 3)
            )
            self.audit.event(
                "step failed",
                step=sid,
                uses=kind,
                command=command,
                outcome="failed",
                duration_s=took,
                summary=error,
                record=self.records.get(sid),
            )
            break
        self.save()
        self.ui.step_finished(section, entry)
        status = entry["status"]
        return str(status)

    def _touches(self, kind: str) -> str:
        cls = registry().get(kind)
        return cls.touches if cls is not None else "unknown"

    def changed_something(self) -> bool:
        """Whether a completed step may have changed the target (so there is a half-done run
        to resume or roll back)."""
        return any(
            e.get("status") in ("succeeded", "running", "interrupted", "failed")
            and e.get("touches") not in NO_CHANGE
            for e in self.state.data["steps"]
        )

    # -- the run ----------------------------------------------------------------------------
    def run_main(self, start_at: int = 0) -> RunResult:
        """Steps from `start_at` on, then the outcome (rollback when a step says so)."""
        continued: list[str] = []
        for step in self.rb.steps[start_at:]:
            if _signals():
                return self.finish("interrupted", EXIT_INTERRUPTED, "interrupted before a step")
            outcome = self.run_step("steps", step)
            sid = step.step_id
            if outcome == "interrupted":
                return self.finish("interrupted", EXIT_INTERRUPTED, f"interrupted in step {sid}")
            if outcome == "needs_confirmation":
                return self.finish(
                    "stopped", EXIT_CONFIRM, f"step {sid} needs a confirmation: --resume --yes"
                )
            if outcome == "declined":
                return self.finish("stopped", EXIT_FAILED, f"step {sid} was declined")
            if outcome == "failed":
                if step.on_failure == "continue":
                    continued.append(sid)
                elif step.on_failure == "stop":
                    code = EXIT_CONFIRM if self.failed_inconclusive else EXIT_FAILED
                    return self.finish("stopped", code, f"step {sid} failed (on_failure: stop)")
                else:
                    return self.rollback(f"step {sid} failed", failed=sid)
            if _signals():
                return self.finish("interrupted", EXIT_INTERRUPTED, f"interrupted after step {sid}")
        reason = f"steps failed and continued: {', '.join(continued)}" if continued else None
        return self.finish("succeeded", EXIT_OK, reason)

    def rollback(self, reason: str, *, failed: str | None = None) -> RunResult:
        """Compensate in reverse (the failed step too), then the after_rollback steps."""
        data = self.state.data
        data["status"], data["phase"] = "rolling_back", "rollback"
        data.setdefault("rollback_reason", reason)
        self.save()
        self.audit.event("rollback started", step=failed, summary=reason)
        self.ui.say(f"rolling back: {reason}")
        problems: list[str] = []
        confirm_only = True
        done = {c["id"]: c for c in data["compensations"]}
        for step in reversed(self.rb.steps):
            sid = step.step_id
            entry = next((e for e in data["steps"] if e["id"] == sid), None)
            if entry is None or entry.get("status") not in (
                "succeeded",
                "failed",
                "interrupted",
                "running",
            ):
                continue
            if entry["status"] != "succeeded" and sid != failed and failed is not None:
                continue  # a step that failed and was continued, or never ran
            if done.get(sid, {}).get("status") in ("compensated", "nothing_to_undo"):
                continue
            if _signals():
                return self.finish("interrupted", EXIT_INTERRUPTED, "interrupted during rollback")
            status = self.compensate(step, failed=entry["status"] != "succeeded")
            if status not in ("compensated", "nothing_to_undo"):
                problems.append(f"{sid}: {status}")
                if status != "needs_confirmation":
                    confirm_only = False
        for step in self.rb.after_rollback:
            if _signals():
                return self.finish("interrupted", EXIT_INTERRUPTED, "interrupted during rollback")
            prior = next((e for e in data["after_rollback"] if e["id"] == step.step_id), None)
            if prior is not None and prior.get("status") in ("succeeded", "skipped"):
                continue
            outcome = self.run_step("after_rollback", step)
            if outcome not in ("succeeded", "skipped"):
                problems.append(f"{step.step_id}: {outcome}")
                if outcome != "needs_confirmation":
                    confirm_only = False
        if problems:
            code = EXIT_CONFIRM if confirm_only else EXIT_FAILED
            return self.finish(
                "rollback_failed", code, f"{reason}; rollback: {'; '.join(problems)}"
            )
        return self.finish("rolled_back", EXIT_FAILED, reason)

    def compensate(self, step: Step, *, failed: bool) -> str:
        """Undo one step: its `rollback:`, else its action's rollback; the outcome."""
        sid = step.step_id
        data = self.state.data
        entry = next((c for c in data["compensations"] if c["id"] == sid), None)
        if entry is None:
            entry = {"id": sid}
            data["compensations"].append(entry)
        comp: Compensation | None = step.rollback
        record = {**self.records.get(sid, {"uses": step.kind}), "failed": failed}
        t0 = time.monotonic()
        if comp is not None:
            kind = comp.uses or "run"
            entry.update(uses=kind, started=_now())
            try:
                params = self._params(kind, comp.run, comp.with_)
                timeout_s = self.timeout_of(comp.timeout if comp.timeout else step.timeout)
                action = self._action(kind)
            except (ActionFailed, ValueError) as e:
                return self._comp_done(entry, "failed", str(e), t0, {})
            call = action.run
            command = params.get("command") if kind == "run" else None
        elif step.uses is not None:
            kind = step.uses
            entry.update(uses=kind, started=_now())
            try:
                action = self._action(kind)
                timeout_s = self.timeout_of(step.timeout)
            except (ActionFailed, ValueError) as e:
                return self._comp_done(entry, "failed", str(e), t0, {})
            params = self._params(kind, None, step.with_)

            def call(sc: StepContext) -> ActionResult | None:
                return action.rollback(sc, record)

            command = None
        else:
            entry.update(uses="run")
            return self._comp_done(
                entry, "nothing_to_undo", "a run: step without rollback:", t0, {}
            )
        self.audit.event("compensation started", step=sid, uses=kind, command=command)
        self.ui.step_started("rollback", sid, f"undo {sid}")
        outcome, result, error, rec = self._attempt(sid, call, params, timeout_s)
        if outcome == "ok":
            if result is None:
                return self._comp_done(entry, "nothing_to_undo", "nothing to undo", t0, {})
            return self._comp_done(entry, "compensated", result.summary, t0, result.record)
        status = {"needs_confirmation": "needs_confirmation", "interrupted": "interrupted"}.get(
            outcome, "failed"
        )
        return self._comp_done(entry, status, error or status, t0, rec)

    def _comp_done(
        self, entry: dict[str, Any], status: str, summary: str, t0: float, record: Mapping[str, Any]
    ) -> str:
        entry.update(
            status=status,
            summary=summary,
            duration_s=round(time.monotonic() - t0, 3),
            record=dict(record),
        )
        event = (
            "compensation done"
            if status in ("compensated", "nothing_to_undo")
            else ("compensation failed")
        )
        self.audit.event(
            event,
            step=entry["id"],
            uses=entry.get("uses"),
            outcome=status,
            duration_s=entry["duration_s"],
            summary=summary,
            record=dict(record) or None,
        )
        self.save()
        self.ui.step_finished("rollback", entry)
        return status

    def finish(self, status: str, code: int, reason: str | None) -> RunResult:
        """Record the outcome: final state, the last audit event."""
        data = self.state.data
        if status in ("succeeded", "rolled_back"):
            finished = True
        elif status in ("stopped", "interrupted"):
            finished = not self.changed_something()
        else:
            finished = False
        data.update(
            status=status,
            finished=finished,
            reason=reason,
            exit_code=code,
            ended=_now(),
            current_step=None if finished else data.get("current_step"),
        )
        self.save()
        self.audit.event(
            "run finished",
            outcome=status,
            summary=reason,
            duration_s=round(time.monotonic() - self.t_start, 3),
        )
        from readyctl.runbook import timeline

        try:
            reports = timeline.write(self.state.dir, self.state.data)
        except OSError:
            reports = {}
        return RunResult(
            code,
            status,
            self.state.run_id,
            self.state.path,
            self.state.audit_path,
            reason,
            runbook_path=self.loaded.path,
            timeline=reports,
        )

    t_start: float = 0.0


def _now() -> str:
    from readyctl.runbook.state import now_iso

    return now_iso()


def _sleep(seconds: float) -> bool:
    """Sleep unless a signal comes; True when the whole pause passed."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _signals():
            return False
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))
    return True


# -- the entry point -------------------------------------------------------------------------
def execute(opts: DeployOptions, ui: RunbookUI | None = None) -> RunResult:
    """Plan or run a runbook against an environment; ReadyctlError on bad input (exit 2) or a
    refusal (exit 1)."""
    from readyctl.config import load_config
    from readyctl.pipeline import _pick
    from readyctl.redact import global_redactor

    ui = ui or RunbookUI()
    redactor = global_redactor()
    redactor.add_env(dict(os.environ))
    if opts.resume and opts.abandon:
        raise UsageError("--resume and --abandon exclude each other: pick one")
    config_path, _ = _pick(opts.config, "--config", "config")
    loaded_cfg = load_config(Path(config_path) if config_path else None)
    env_choice, _ = _pick(opts.env, "--env", "env")
    env_name, env = loaded_cfg.environment(env_choice)
    update: dict[str, Any] = {}
    base_url, _ = _pick(opts.base_url, "--base-url", "base_url")
    database_url, _ = _pick(opts.database_url, "--database-url", "database_url")
    if base_url:
        update["base_url"] = str(base_url).rstrip("/")
    if database_url:
        update["database_url"] = str(database_url)
        redactor.add(str(database_url))
    if update and env.managed == "demo":
        update.update(managed=None, faults=[])  # an explicit target: the demo is not started
    if update:
        env = env.model_copy(update=update)
    if env.database_url:
        redactor.add(env.database_url)
    project_dir = loaded_cfg.base_dir if loaded_cfg.path else project_dir_of(None)
    runs_dir = project_dir / ".readyctl" / "runs"

    deploy_vars = dict(env.deploy.vars) if env.deploy is not None else {}
    cli_vars = dict(opts.vars)
    path = find_runbook(opts.runbook or "deploy", project_dir)
    loaded = load_runbook(path, extra_vars=[*deploy_vars, *cli_vars])
    rb = loaded.runbook
    run_vars: dict[str, Any] = {**rb.vars, **deploy_vars, **cli_vars}
    for name, value in run_vars.items():
        if isinstance(value, str) and is_secretish(name):
            redactor.add(value)
    environ = dict(os.environ)
    # for commands: readyctl itself, whichever way it was installed
    environ.setdefault("READYCTL_PYTHON", sys.executable)
    environ.setdefault("READYCTL_CMD", f"{sys.executable} -m readyctl")
    if opts.release is not None:
        _check_release(opts.release)

    probe = (
        _Run(
            loaded=loaded,
            state=RunState.new(runs_dir, "plan", release=opts.release, who="plan"),
            vars=run_vars,
            env_name=env_name,
            env=env,
            config_path=loaded_cfg.path,
            environ=environ,
            yes=opts.yes,
            ui=ui,
        )
        if opts.plan
        else None
    )
    if probe is not None:
        return RunResult(EXIT_OK, "planned", plan=_plan(probe), runbook_path=loaded.path)

    if opts.require_release and not opts.release and not opts.resume and not opts.abandon:
        raise UsageError("--release is required: the release to deploy (e.g. --release v2)")
    _preflight(loaded, environ, run_vars)
    use_table = opts.state_table or rb.state.table
    return _with_target(
        opts, ui, loaded, loaded_cfg, env_name, env, run_vars, environ, runs_dir, use_table
    )


def is_secretish(name: str) -> bool:
    """Whether a variable's name says it holds a secret."""
    from readyctl.redact import is_secret_name

    return is_secret_name(name)


def _check_release(release: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+\-/:@]{0,127}", release):
        raise UsageError(
            f"--release {release[:40]!r}: use letters, digits and . _ + - / : @ "
            "(a tag, a version or a commit), at most 128 characters"
        )


def _preflight(
    loaded: LoadedRunbook, environ: Mapping[str, str], run_vars: Mapping[str, Any]
) -> None:
    """Before anything runs: required variables, environment variables the steps need, and
    their timeouts."""
    probe_vars = {k: ("" if v is None else v) for k, v in run_vars.items()}
    for i, name in enumerate(loaded.runbook.required_vars):
        if str(probe_vars.get(name, "")).strip() == "":
            raise loaded.error(
                ("required_vars", i),
                f"variable {name} is not set: set environments.<env>.deploy.vars.{name} in "
                f"readyctl.yaml or pass --var {name}=...",
            )
    for section, i, step in loaded.all_steps():
        for key, value in (
            ("run", step.run),
            ("with", step.with_),
            ("rollback", step.rollback.model_dump(by_alias=True) if step.rollback else None),
        ):
            missing = _env_missing(value, environ)
            if missing:
                name = missing[0]
                raise loaded.error(
                    (section, i, key),
                    f"environment variable {name} is not set; export it or write "
                    f"${{{name}:-default}}",
                )
        for key, value in (
            ("timeout", step.timeout),
            ("rollback", step.rollback.timeout if step.rollback else None),
        ):
            if value is None or not isinstance(value, str) or "${" not in value:
                continue
            text = PLACEHOLDER.sub(
                lambda m: (
                    str(probe_vars.get(m.group("name")[5:], ""))
                    if m.group("name").startswith("vars.")
                    else (m.group("default") or "")
                ),
                value,
            )
            try:
                parse_duration(text)
            except ValueError as e:
                raise loaded.error((section, i, key), f"{text!r}: {e}") from None


def _plan(run: _Run) -> list[dict[str, Any]]:
    """Every step and what it touches; nothing is contacted."""
    out = []
    for section, _, step in run.loaded.all_steps():
        kind = step.kind
        cls = registry().get(kind)
        rollback = None
        if step.rollback is not None:
            rb = step.rollback
            rollback = f"run `{run.expand(rb.run)}`" if rb.run else f"uses {rb.uses}"
        elif cls is not None and step.uses and cls.rollback is not Action.rollback:
            rollback = f"{kind}'s own rollback"
        out.append(
            {
                "section": section,
                "id": step.step_id,
                "uses": kind,
                "touches": cls.touches if cls is not None else "unknown",
                "what": run.describe(step),
                "when": step.when,
                "confirm": step.confirm,
                "on_failure": step.on_failure,
                "timeout": step.timeout,
                "retries": step.retries,
                "rollback": rollback,
            }
        )
    return out


def _with_target(
    opts: DeployOptions,
    ui: RunbookUI,
    loaded: LoadedRunbook,
    loaded_cfg: Any,
    env_name: str,
    env: Any,
    run_vars: dict[str, Any],
    environ: dict[str, str],
    runs_dir: Path,
    use_table: bool,
) -> RunResult:
    """Start the managed demo if the environment is one, lock the target, then run."""
    from readyctl import _interrupt
    from readyctl.runbook import lock as _lock
    from readyctl.runbook.state import new_run_id, who

    handle = None
    try:
        if env.managed == "demo":
            from readyctl.pipeline import RunUI, _start_managed, managed_environ
            from readyctl.redact import global_redactor

            class _Say(RunUI):
                def say(self, text: str, style: str | None = None) -> None:
                    ui.say(text)

            faults = list(env.faults) + [
                f for f in os.environ.get("READYCTL_DEMO_FAULTS", "").split(",") if f
            ]
            with _interrupt.raising():
                handle, env = _start_managed(env, list(dict.fromkeys(faults)), _Say())
            environ.update(managed_environ(handle))
            for value in (handle.mail_token, handle.webhook_secret, handle.database_url):
                global_redactor().add(value)
        key, target_info = _target_key(env_name, env)
        if handle is not None:
            key = target_info["id"] = f"managed-demo:{env_name}"
        run_id, actor = new_run_id(), who()
        if use_table and not env.database_url:
            raise UsageError(
                "the state table needs a target database: set database_url for environment "
                f"{env_name} or pass --database-url"
            )
        lock: Any
        if env.database_url:
            lock = _lock.PgLock(env.database_url, run_id=run_id, who=actor)
        else:
            lock = _lock.FileLock(runs_dir.parent / "locks", key, run_id=run_id, who=actor)
        lock.acquire()
        try:
            return _locked(
                opts,
                ui,
                loaded,
                loaded_cfg,
                env_name,
                env,
                run_vars,
                environ,
                runs_dir,
                use_table,
                lock,
                key,
                target_info,
                run_id,
                actor,
                managed=handle,
            )
        finally:
            lock.release()
    finally:
        if handle is not None:
            ui.say("stopping the managed demo")
            handle.stop()


def _locked(
    opts: DeployOptions,
    ui: RunbookUI,
    loaded: LoadedRunbook,
    loaded_cfg: Any,
    env_name: str,
    env: Any,
    run_vars: dict[str, Any],
    environ: dict[str, str],
    runs_dir: Path,
    use_table: bool,
    lock: Any,
    key: str,
    target_info: dict[str, Any],
    run_id: str,
    actor: str,
    *,
    managed: Any,
) -> RunResult:
    """Under the lock: unfinished runs (refuse, resume, abandon), then the run itself."""
    from readyctl import _interrupt
    from readyctl.runbook import state as _state
    from readyctl.runbook.audit import AuditLog

    conn = lock.conn if use_table else None
    if conn is not None:
        _state.ensure_table(conn)
    pending = {d["run_id"]: d for d in _state.unfinished_runs(runs_dir, key)}
    if conn is not None:
        for d in _state.table_unfinished(conn, key):
            pending.setdefault(d["run_id"], d)
    ordered = sorted(pending.values(), key=lambda d: str(d["run_id"]), reverse=True)

    def writer(doc: dict[str, Any]) -> None:
        try:
            _state.table_upsert(conn, doc)
        except Exception as e:  # the file is the record of last resort
            ui.say(f"warning: could not write the state table: {type(e).__name__}")

    def abandon(d: dict[str, Any], why: str) -> None:
        st = RunState(runs_dir, d)
        d.update(finished=True, status="abandoned", reason=why, current_step=None)
        if conn is not None:
            st.table_writer = writer
        st.save()
        AuditLog(st.audit_path, st.run_id, actor).event(
            "run abandoned", outcome="abandoned", summary=why
        )
        ui.say(f"run {st.run_id} marked abandoned")

    if managed is not None:
        for d in ordered:
            abandon(d, "the managed demo is started fresh for every run")
        ordered = []
    if opts.abandon:
        if not ordered:
            raise UsageError("--abandon: no unfinished run of this target to abandon")
        why = opts.reason or f"abandoned by {actor} with --abandon"
        for d in ordered:
            abandon(d, why)
        if not opts.release:
            d = ordered[0]
            return RunResult(
                EXIT_OK,
                "abandoned",
                str(d["run_id"]),
                runs_dir / str(d["run_id"]) / _state.STATE_FILE,
                runs_dir / str(d["run_id"]) / _state.AUDIT_FILE,
                why,
            )
        ordered = []
    if opts.resume:
        if not ordered:
            raise UsageError("--resume: no unfinished run of this target to resume")
        data = ordered[0]
        if opts.release and data.get("release") and opts.release != data.get("release"):
            raise UsageError(
                f"--resume: run {data['run_id']} deploys release {data.get('release')}, "
                f"not {opts.release}; drop --release or --abandon that run"
            )
        st = RunState(runs_dir, data)
    elif ordered:
        d = ordered[0]
        at = d.get("current_step") or "?"
        raise DeployRefused(
            f"an unfinished run of this target exists: run {d['run_id']} (runbook "
            f"{d.get('runbook')}, release {d.get('release') or '-'}, {d.get('status')} at step "
            f"{at}, started {d.get('started')} by {d.get('who')}); continue it with --resume "
            "or give it up with --abandon"
        )
    else:
        st = RunState.new(
            runs_dir,
            run_id,
            runbook=loaded.runbook.name,
            runbook_path=str(loaded.path),
            release=opts.release,
            previous_release=None,
            env=env_name,
            target=target_info,
            who=actor,
            vars=run_vars,
        )
        for step in loaded.runbook.steps:
            st.step("steps", step.step_id)
    if conn is not None:
        st.table_writer = writer
    run = _Run(
        loaded=loaded,
        state=st,
        vars=run_vars,
        env_name=env_name,
        env=env,
        config_path=loaded_cfg.path,
        environ=environ,
        yes=opts.yes,
        ui=ui,
        managed=managed,
    )
    run.t_start = time.monotonic()

    def fallback() -> None:  # the process must end now: the state says it was interrupted
        st.data.update(status="interrupted", reason="readyctl was stopped during a step")
        st.save()

    _interrupt.set_fallback(fallback)
    try:
        if opts.resume:
            return _resume(run)
        run.save()
        run.audit.event(
            "run started",
            summary=f"runbook {loaded.runbook.name}, release {opts.release or '-'}, env {env_name}",
            runbook=str(loaded.path),
            release=opts.release,
            target=target_info,
        )
        return run.run_main(0)
    finally:
        _interrupt.set_fallback(None)


def _resume(run: _Run) -> RunResult:
    """Continue an unfinished run: its rollback if one started, else by the runbook's
    `resume:` policy (continue from the interrupted step, or roll back)."""
    data = run.state.data
    ids = [s.step_id for s in run.rb.steps]
    known = [e["id"] for e in data["steps"]]
    if known and known != ids:
        raise ConfigError(
            f"{run.loaded.path}: the runbook's steps changed since run {run.state.run_id} "
            f"started ({', '.join(known)} then; {', '.join(ids)} now); --abandon that run"
        )
    prior = data.get("status")
    rolling = data.get("phase") == "rollback" or prior in ("rolling_back", "rollback_failed")
    policy = "rollback" if rolling else run.rb.resume
    data.update(status="running", finished=False, reason=None, exit_code=None)
    start = next(
        (i for i, e in enumerate(data["steps"]) if e.get("status") not in ("succeeded", "skipped")),
        len(ids),
    )
    run.audit.event(
        "run resumed",
        outcome=policy,
        step=ids[start] if start < len(ids) else None,
        summary=f"was {prior}; resume: {policy}",
    )
    run.ui.say(f"resuming run {run.state.run_id} (was {prior}; {policy})")
    if policy == "rollback":
        failed = ids[start] if start < len(ids) else None
        return run.rollback(
            data.get("rollback_reason") or "resumed with resume: rollback", failed=failed
        )
    return run.run_main(start)
