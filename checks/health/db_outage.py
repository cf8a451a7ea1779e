"""health.db_outage: readiness follows the database down and up again; liveness stays up."""

from __future__ import annotations

import time
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

POLL_S = 0.25


class Settings(CheckSettings):
    """Settings of health.db_outage."""

    ready_path: str | None = Field(
        None, description="the readiness probe (default: from the API map, api.health.ready)"
    )
    live_path: str | None = Field(
        None, description="the liveness probe (default: from the API map, api.health.live)"
    )
    fail_within_s: float = Field(
        10.0, gt=0, description="readiness must turn non-2xx this soon after the database stops"
    )
    recover_within_s: float = Field(
        10.0, gt=0, description="readiness must be 200 again this soon after the database starts"
    )


class HealthDbOutage(Check):
    """Stop the managed target's database, watch the probes, start it again, watch readiness.

    Settings: `ready_path` and `live_path` (default: from the API map, api.health.ready and
    api.health.live; unknown: the check skips naming the key), `fail_within_s` (10:
    readiness must turn non-2xx this soon after the database stops), `recover_within_s` (10:
    readiness must be back to 200 this soon after the database starts).
    """

    meta = CheckMeta(
        id="health.db_outage",
        title="Readiness follows a database outage",
        failure_title="Readiness ignores a database outage",
        description=(
            "A readiness probe that stays green while the database is down keeps traffic "
            "flowing to an instance that can only fail, and a liveness probe that turns red "
            "gets healthy processes restarted in a loop. See "
            "https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/."
        ),
        remediation=RemediationSpec(
            text="Make the readiness probe run a cheap query (SELECT 1, with a short timeout) "
            "and answer 503 when it fails; keep the liveness probe free of dependencies.",
            snippet="try:\n    async with asyncio.timeout(2):\n        await db.execute('SELECT 1')"
            "\nexcept Exception:\n    return JSONResponse({'status': 'not_ready'}, 503)",
            link="https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/",
        ),
        category=Category.OPERATIONS,
        severity=Severity.HIGH,
        requires=(Capability.MANAGED_TARGET, Capability.HTTP),
        safety=Safety.MUTATING,
        exclusive=True,
        order=10,
        timeout_s=60,
        tags=("health", "managed"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Positive control, outage, restart (always), recovery."""
        s: Settings = ctx.settings()
        ready = s.ready_path or ctx.api().need("health.ready")
        live = s.live_path or ctx.api().need("health.live")
        fail_within = s.fail_within_s
        recover_within = s.recover_within_s
        subj_down = f"{ready} during database outage"
        subj_live = f"{live} during database outage"
        subj_back = f"{ready} after database restart"
        client = ctx.http(timeout=5)

        def get(path: str) -> Answer | str:
            try:
                return fetch(ctx, client, "GET", path, cap=64_000, budget_s=5)
            except TargetError as e:
                return e.detail

        before_ready, before_live = get(ready), get(live)
        if not (isinstance(before_ready, Answer) and before_ready.status == 200) or not (
            isinstance(before_live, Answer) and before_live.status == 200
        ):
            what = _show(before_ready) if not _is200(before_ready) else _show(before_live)
            detail = f"the probes were not both 200 before the outage ({what})"
            for subject in (subj_down, subj_live, subj_back):
                yield self.errored(subject, ErrorReason.INCONCLUSIVE, detail)
            return

        managed = ctx.managed
        ready_failed_after: float | None = None
        ready_answer = ""
        live_bad: list[str] = []
        live_checks = 0
        back_after: float | None = None
        back_last = ""
        restart_error: str | None = None
        managed.stop_database()
        t_stop = time.monotonic()
        try:
            deadline = t_stop + fail_within
            extra_live = 0
            while time.monotonic() < deadline and ctx.remaining() > recover_within + 2:
                r = get(ready)
                if ready_failed_after is None and not _is2xx(r):
                    ready_failed_after = time.monotonic() - t_stop
                    ready_answer = _show(r)
                lv = get(live)
                live_checks += 1
                if not _is200(lv):
                    live_bad.append(_show(lv))
                if ready_failed_after is not None:
                    extra_live += 1
                    if extra_live >= 3:  # liveness observed during the outage, after readiness
                        break
                time.sleep(POLL_S)
        finally:
            try:
                managed.start_database()
            except Exception as e:  # reported below; the run's cleanup stops the demo
                restart_error = f"{type(e).__name__}: {ctx.redactor.clip(e, 160)}"
        t_start = time.monotonic()
        if restart_error is None:
            deadline = t_start + recover_within
            while time.monotonic() < deadline:
                r = get(ready)
                back_last = _show(r)
                if _is200(r):
                    back_after = time.monotonic() - t_start
                    break
                if ctx.remaining() < 0.5:
                    break
                time.sleep(POLL_S)

        if ready_failed_after is None:
            yield self.failed(
                subj_down,
                f"GET {ready} kept answering 2xx for {fail_within:g} s with the database stopped",
                threshold=fail_within,
                unit="s",
            )
        else:
            yield self.passed(
                subj_down,
                f"GET {ready} answered {ready_answer} {ready_failed_after:.1f} s after the "
                "database stopped",
                measured=round(ready_failed_after, 2),
                threshold=fail_within,
                unit="s",
            )
        if live_bad:
            yield self.failed(
                subj_live,
                f"GET {live} failed {len(live_bad)} of {live_checks} times during the database "
                f"outage (first: {live_bad[0]})",
                measured=len(live_bad),
                threshold=0,
            )
        else:
            yield self.passed(
                subj_live,
                f"GET {live} answered 200 all {live_checks} times during the database outage",
            )
        if restart_error is not None:
            yield self.errored(
                subj_back,
                ErrorReason.INCONCLUSIVE,
                f"the database did not restart: {restart_error}",
            )
        elif back_after is None:
            yield self.failed(
                subj_back,
                f"GET {ready} was not 200 within {recover_within:g} s of the database restart "
                f"(last: {back_last})",
                threshold=recover_within,
                unit="s",
            )
        else:
            yield self.passed(
                subj_back,
                f"GET {ready} was 200 again {back_after:.1f} s after the database restarted",
                measured=round(back_after, 2),
                threshold=recover_within,
                unit="s",
            )


def _is200(r: Answer | str) -> bool:
    """A 200 answer."""
    return isinstance(r, Answer) and r.status == 200


def _is2xx(r: Answer | str) -> bool:
    """A 2xx answer."""
    return isinstance(r, Answer) and r.ok


def _show(r: Answer | str) -> str:
    """A status code, or the one-sentence transport error."""
    return str(r.status) if isinstance(r, Answer) else r
