"""`uses: smoke`: the smoke scenarios (smoke.*) through the run pipeline, past maintenance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

KEYS = ("only", "max_ms")
OWN = ["smoke.*"]


@register
class Smoke(Action):
    """Run the configured smoke scenarios against the target; any failing step fails.

    `with:` keys:
    - `only`: run only these scenarios (names; a list or a comma list), over
      `checks.smoke.scenarios.only` in readyctl.yaml.
    - `max_ms`: the latency ceiling of every step without its own (over
      `checks.smoke.scenarios.max_ms`): a release that answers slowly fails here, before
      the monitor window (empty: none).

    The scenarios are readyctl.yaml's `checks.smoke.scenarios` (suite files, inline
    scenarios). Requests carry the maintenance bypass header when a maintenance step set one.
    The JSON report goes to `<step>-smoke/` in the run's directory (no history entry).
    Record: `exit_code`, `report` (its path), `counts` (results by status).
    """

    name = "smoke"
    touches = "target-read"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        only = params.get("only")
        which = f" ({only})" if only else ""
        return f"the smoke scenarios{which} against the target (past maintenance); any fail stops"

    def run(self, sc: StepContext) -> ActionResult:
        """Run smoke.* and judge like `readyctl smoke`."""
        from readyctl.pipeline import focused_exit

        _common.unknown_keys(sc, KEYS)
        t = _common.target(sc)
        overrides: dict[str, dict[str, Any]] = {}
        only = sc.params.get("only")
        if only:
            names = [p.strip() for p in only.split(",")] if isinstance(only, str) else only
            overrides["smoke.scenarios"] = {"only": [str(n) for n in names if str(n).strip()]}
        max_ms = sc.params.get("max_ms")
        if max_ms not in (None, ""):
            ceiling = _common.number(sc.params, "max_ms", 0.0)
            if ceiling <= 0:
                raise ActionFailed("smoke: max_ms must be a number of milliseconds above 0")
            overrides.setdefault("smoke.scenarios", {})["max_ms"] = ceiling
        out = sc.workdir / f"{sc.step_id}-smoke"
        sc.check_deadline()
        _, report = _common.run_checks(sc, t, OWN, out=out, overrides=overrides)
        code, why = focused_exit(report, own=OWN)
        counts = _common.counts(report)
        record: dict[str, Any] = {
            "exit_code": code,
            "report": str(out / "readiness.json"),
            "counts": counts,
        }
        if code == 130:
            raise KeyboardInterrupt
        if code == 1:
            raise ActionFailed(f"smoke failed: {_common.first_problem(report, OWN)}", record=record)
        if code != 0:
            raise ActionFailed(f"smoke could not verify the target: {why}", record=record)
        return ActionResult(
            f"smoke passed: {counts.get('pass', 0)} step(s) passed"
            + (f", {counts['warn']} warned" if counts.get("warn") else ""),
            record=record,
        )
