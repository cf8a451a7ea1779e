"""`uses: gate`: the readiness checks (`readyctl check`) on a selection; continue only on READY.

`with:` keys: `only` (id globs, tags or categories: a list or a comma list; default: every
check), `skip` (likewise), `formats` (report files written to the step's directory under the
run's workdir; default `json,markdown`). The run's config and environment are used, and the
maintenance bypass headers when a maintenance step set them. READY (exit 0) passes, and only
then: not ready, inconclusive or interrupted fail the step (inconclusive is recorded as such,
so the run can exit 3: unverifiable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list | tuple):
        return [str(p).strip() for p in value if str(p).strip()]
    raise ActionFailed(f"`only`/`skip` must be a list of check id globs, got {value!r}")


def report_options(sc: StepContext, **overrides: Any) -> Any:
    """RunOptions for `readyctl.pipeline.execute_report` against the run's target.

    The run's config and environment (`sc.target`, already resolved: a managed demo the run
    started is not started again), its variables, and the maintenance bypass headers.
    """
    from readyctl.pipeline import RunOptions

    opts: dict[str, Any] = dict(
        config=sc.config_path,
        env=sc.env_name,
        environment=sc.target,
        managed=getattr(sc, "managed", None),
        environ=dict(sc.environ),
        headers=dict(sc.bypass_headers),
        out=sc.workdir / sc.step_id,
        formats="json",
        quiet=True,
        history=False,
    )
    opts.update(overrides)
    return RunOptions(**opts)


@register
class Gate(Action):
    """The readiness gate: continue only on READY."""

    name = "gate"
    touches = "target-read"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What it checks."""
        only = ", ".join(_patterns(params.get("only"))) or "every check"
        skip = _patterns(params.get("skip"))
        extra = f" except {', '.join(skip)}" if skip else ""
        return f"readyctl check on {only}{extra} (read-only); continues only on READY"

    def run(self, sc: StepContext) -> ActionResult:
        """Run the checks; fail unless the verdict is READY."""
        from readyctl.errors import ReadyctlError
        from readyctl.pipeline import execute_report

        formats = sc.params.get("formats", "json,markdown")
        opts = report_options(
            sc,
            only=_patterns(sc.params.get("only")),
            skip=_patterns(sc.params.get("skip")),
            formats=",".join(formats) if isinstance(formats, list) else str(formats),
        )
        sc.check_deadline()
        try:
            code, report = execute_report(opts)
        except ReadyctlError as e:
            raise ActionFailed(f"the checks could not run: {e}") from None
        record: dict[str, Any] = {"exit_code": code, "report_dir": str(opts.out)}
        if report is not None:
            record.update(verdict=report.verdict, score=report.score)
        if code == 130:
            raise KeyboardInterrupt
        verdict = (report.verdict if report is not None else "?").upper().replace("_", " ")
        score = f", score {report.score:g}" if report is not None else ""
        if code == 0:
            return ActionResult(f"{verdict}{score}", record=record)
        reasons = []
        if report is not None:
            reasons = [
                r.get("message") or r.get("code")
                for r in report.data.get("gate", {}).get("reasons", [])
            ]
        why = f": {reasons[0]}" if reasons else ""
        if code == 3:
            record["inconclusive"] = True
        raise ActionFailed(f"{verdict} (exit {code}){score}{why}", record=record)
