"""The contract between the runbook engine and its built-in actions (`uses:` in a step).

The engine (readyctl/runbook/engine.py) validates a runbook, walks its steps, keeps the run's
state and audit log, and calls an action through this interface only. An action reuses the
engine's parts (readyctl.pipeline for checks, readyctl.postgres for dumps and fingerprints,
readyctl.rehearsal for migrations, the smoke runner) and never prints: it returns what
happened and logs through `StepContext.log`, which the engine redacts and records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar


class ActionFailed(Exception):
    """The step did not do what it should; the message says why in one line."""

    def __init__(self, message: str, *, record: Mapping[str, Any] | None = None) -> None:
        """`record`: what the step did before failing (saved like ActionResult.record)."""
        super().__init__(message)
        self.record = dict(record or {})


class NeedsConfirmation(Exception):
    """The step needs a human's yes (a restore, a migration without a passing rehearsal) and
    the run has none (no TTY, no --yes): the engine stops the run, state kept."""


@dataclasses.dataclass
class ActionResult:
    """What a step did: a one-line summary, values later steps and the rollback need
    (`record`: saved in the run's state under the step's id, e.g. the backup's location, the
    revision before the migration, the schema fingerprint), and evidence for the report."""

    summary: str
    record: dict[str, Any] = dataclasses.field(default_factory=dict)
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StepContext:
    """Everything an action may use. Built by the engine for each step (and each rollback)."""

    run_id: str
    step_id: str
    params: dict[str, Any]  # the step's `with:`, ${...} already expanded
    release: str | None  # --release
    previous_release: str | None  # what was serving before (recorded by the deploy action)
    config_path: Path | None  # readyctl.yaml (None: built-in defaults)
    env_name: str | None  # --env
    environ: Mapping[str, str]  # the process environment (secrets come from here, by name)
    records: dict[str, dict[str, Any]]  # every earlier step's record, by step id (read-only)
    workdir: Path  # .readyctl/runs/<run id>/: files the step keeps (dumps, reports)
    log: Callable[[str], None]  # a progress line, redacted and written to the audit log
    confirm: Callable[[str], bool]  # ask a human (True with --yes; NeedsConfirmation w/o TTY)
    check_deadline: Callable[[], None]  # raises when the step's timeout or Ctrl-C came
    timeout_s: float  # the step's timeout
    dry_run: bool = False  # --plan: describe only, never touch anything
    target: Any = None  # the resolved environment (readyctl.config.Environment), lazily set
    bypass_headers: dict[str, str] = dataclasses.field(default_factory=dict)  # maintenance
    managed: Any = None  # the managed demo's handle when the engine started one (else None)

    def record_of(self, uses: str) -> dict[str, Any] | None:
        """The newest record of an earlier step that used `uses` (e.g. "backup")."""
        for rec in reversed(list(self.records.values())):
            if rec.get("uses") == uses:
                return rec
        return None


class Action:
    """A built-in action. Subclasses set `name` and implement `run` (and `rollback` when the
    step can be compensated); `describe` says what the step touches for `--plan`."""

    name: ClassVar[str] = ""
    # what the step may change: "none" | "target-read" | "target-write" | "release" | "traffic"
    touches: ClassVar[str] = "none"

    def describe(self, params: Mapping[str, Any]) -> str:
        """One line for `readyctl deploy --plan`: what the step would do and touch."""
        return self.name

    def run(self, sc: StepContext) -> ActionResult:
        """Do the step; raise ActionFailed (or NeedsConfirmation) when it cannot."""
        raise NotImplementedError

    def rollback(self, sc: StepContext, record: Mapping[str, Any]) -> ActionResult | None:
        """Undo what `run` did, from the record it left (None: nothing to undo)."""
        return None


REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: make an action available as `uses: NAME`."""
    REGISTRY[cls.name] = cls
    return cls
