"""Selection, capability probes, the thread pool, cooperative deadlines, dependencies, retries."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import importlib.util
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from readyctl import _interrupt, _proc
from readyctl.apimap import RouteUnknown
from readyctl.check import Capability, Check, CheckMeta, Safety
from readyctl.context import Context
from readyctl.errors import ConfigError, DeadlineExceeded, ReadyctlError
from readyctl.redact import using_redactor
from readyctl.result import ErrorReason, Result, Status

# A capability's probe check: when it fails, every check needing the capability is blocked.
PROBES: dict[Capability, str] = {
    Capability.HTTP: "http.reachable",
    Capability.DB: "database.reachable",
    Capability.AUTH: "auth.session",
}

RETRIES = 2
CLEANUP_RESERVE_S = 5.0  # of the interrupt budget, kept for writing the report
_log = logging.getLogger("readyctl.runner")
BACKOFF_S = 0.25


# -- selection -------------------------------------------------------------------------------
def matches(meta: CheckMeta, pattern: str) -> bool:
    """A selection pattern matches an id glob, a tag, or a category."""
    pattern = pattern.strip()
    if pattern.startswith("tag:"):
        return pattern[4:] in meta.tags
    if pattern.startswith("category:"):
        return meta.category.value == pattern[9:]
    return (
        fnmatch.fnmatchcase(meta.id, pattern)
        or pattern in meta.tags
        or pattern == meta.category.value
        or meta.id.startswith(pattern + ".")
    )


def unknown_patterns(checks: Iterable[type[Check]], patterns: Iterable[str]) -> list[str]:
    """Patterns that match no check id, tag or category."""
    metas = [c.meta for c in checks]
    return [p for p in patterns if p.strip() and not any(matches(m, p) for m in metas)]


def select(
    checks: Iterable[type[Check]], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[type[Check]]:
    """Checks matching any `only` pattern (all when empty) and no `skip` pattern."""
    out = []
    for c in checks:
        if only and not any(matches(c.meta, p) for p in only):
            continue
        if any(matches(c.meta, p) for p in skip):
            continue
        out.append(c)
    return sorted(out, key=lambda c: c.meta.id)


# -- capabilities ----------------------------------------------------------------------------
def capability_status(cap: Capability, ctx: Context) -> tuple[bool, str]:
    """Whether a capability is configured, and if not, why."""
    env = ctx.environment
    if cap is Capability.ENV:
        return True, ""
    if cap is Capability.HTTP:
        return (bool(env.base_url), "no base_url configured for this environment")
    if cap is Capability.AUTH:
        if not env.base_url:
            return False, "no base_url configured for this environment"
        api = ctx.api_static()
        discoverable = (env.api.openapi if env.api else "auto") != "off"
        return (
            api.login_known or discoverable,
            f"no login: set environments.{ctx.env_name}.api.login or api.token (discovery is off)",
        )
    if cap is Capability.DB:
        return (bool(env.database_url), "no database_url configured for this environment")
    if cap is Capability.AWS:
        return (env.aws is not None, "no aws: settings configured for this environment")
    if cap is Capability.LOAD:
        ok = importlib.util.find_spec("locust") is not None
        return ok, "locust is not installed (pip install locust)"
    if cap is Capability.MANAGED_TARGET:
        return (ctx.managed is not None, "only runs against a managed target (managed: demo)")
    if cap is Capability.REPO:
        ok = (Path(ctx.base_dir) / ".git").exists()
        return ok, f"no git repository at {ctx.base_dir}"
    return False, f"unknown capability {cap.value}"


def allowed_on_production(meta: CheckMeta, allow: Sequence[str]) -> bool:
    """Production refuses mutating and load checks unless `allow:` names them."""
    if meta.safety not in (Safety.MUTATING, Safety.LOAD):
        return True
    return any(matches(meta, p) for p in allow)


@dataclasses.dataclass(frozen=True)
class PlanItem:
    """What the runner would do with one check, decided without contacting anything."""

    check: type[Check]
    action: str  # "run" | "skip"
    reason: str | None
    depends_on: tuple[str, ...]
    touches: str
    # programs the check runs that this machine lacks: it will skip (what --plan foresees)
    missing_tools: tuple[str, ...] = ()

    @property
    def meta(self) -> CheckMeta:
        """The check's metadata."""
        return self.check.meta


def _touches(meta: CheckMeta, ctx: Context, check_cls: Any = None) -> str:
    env = ctx.environment
    parts = []
    for cap in meta.requires:
        if cap is Capability.HTTP:
            parts.append(env.base_url or "(no base_url)")
        elif cap is Capability.DB:
            parts.append("database")
        elif cap is Capability.ENV:
            parts.append(env.env_file or "process environment")
        elif cap is Capability.AWS:
            parts.append("AWS " + (env.aws.region or "") if env.aws else "AWS")
        elif cap is Capability.MANAGED_TARGET:
            parts.append("managed target processes")
        elif cap is Capability.REPO:
            parts.append("git repository")
        elif cap is Capability.LOAD:
            parts.append("locust subprocess")
    text = ", ".join(dict.fromkeys(parts)) or "nothing outside readyctl"
    missing = tools_missing(check_cls, ctx)
    if missing:
        text += f"; not on this machine: {', '.join(missing)} (those parts skip)"
    return text


def tools_missing(check_cls: Any, ctx: Context) -> list[str]:
    """The programs `check_cls` would run with its settings (`needed_tools(settings)`, else its
    `system_tools`) that are not on this machine."""
    tools: Sequence[str] = getattr(check_cls, "system_tools", ())
    needed = getattr(check_cls, "needed_tools", None)
    if needed is not None and tools:
        with contextlib.suppress(Exception):  # bad settings are reported by the check itself
            tools = needed(ctx.settings(check_cls.meta.id))
    return missing_tools(tools, ctx)


def missing_tools(tools: Sequence[str], ctx: Context) -> list[str]:
    """The programs a check runs (its `system_tools`) that are not on the target's PATH."""
    import shutil

    path = ctx.environ.get("PATH") if ctx.environ is not None else None
    return [t for t in tools if shutil.which(t, path=path) is None]


def plan(
    ctx: Context, selected: Sequence[type[Check]], catalog: dict[str, type[Check]]
) -> list[PlanItem]:
    """Decide, for each selected check plus the probes they need, whether it runs."""
    env = ctx.environment
    wanted: dict[str, type[Check]] = {c.meta.id: c for c in selected}
    # add the probe checks that the selection depends on
    for c in list(wanted.values()):
        for cap in c.meta.requires:
            probe = PROBES.get(cap)
            if probe and probe in catalog and probe not in wanted:
                wanted[probe] = catalog[probe]
    items = []
    for cid in sorted(wanted):
        cls = wanted[cid]
        meta = cls.meta
        deps = list(meta.depends_on)
        for cap in meta.requires:
            probe = PROBES.get(cap)
            if probe and probe in wanted and probe != cid and not meta.diagnoses_probe:
                deps.append(probe)
        reason = None
        for cap in meta.requires:
            ok, why = capability_status(cap, ctx)
            if not ok:
                reason = why
                break
        if reason is None and env.production and not allowed_on_production(meta, env.allow):
            reason = (
                f"refused on production environment: {meta.safety.value} check; "
                f"name {meta.id} under allow: to run it"
            )
        items.append(
            PlanItem(
                check=cls,
                action="skip" if reason else "run",
                reason=reason,
                depends_on=tuple(dict.fromkeys(d for d in deps if d in wanted)),
                touches=_touches(meta, ctx, cls),
                missing_tools=tuple(tools_missing(cls, ctx)),
            )
        )
    return items


# -- running ---------------------------------------------------------------------------------
@dataclasses.dataclass
class RunOutcome:
    """What the runner produced."""

    results: list[Result]
    started_at: dt.datetime
    duration_s: float
    interrupted: bool
    cleanup_problems: list[str]
    metas: dict[str, CheckMeta]
    api_map: dict[str, Any] | None = None  # the resolved API map with each value's source


Progress = Callable[[str, str, Sequence[Result] | None], None]


def _classify(exc: BaseException) -> ErrorReason:
    if isinstance(exc, DeadlineExceeded | TimeoutError):
        return ErrorReason.TIMEOUT
    if isinstance(exc, ConfigError):
        return ErrorReason.CONFIG
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if "Timeout" in name:
        return ErrorReason.TIMEOUT
    if isinstance(exc, ConnectionError | OSError) or (
        module.startswith(("httpx", "httpcore", "psycopg", "botocore", "ssl"))
        and ("Connect" in name or "Operational" in name or "Endpoint" in name)
    ):
        return ErrorReason.CONNECTIVITY
    return ErrorReason.BUG


def _execute(check: type[Check], ctx: Context) -> list[Result]:
    """Run one check once; exceptions become one `error` result."""
    meta = check.meta
    _log.debug("running %s", meta.id)
    results = _execute_inner(check, ctx)
    for r in results:
        # raw text on purpose: the log's RedactingFilter is what keeps secrets out
        _log.debug("%s [%s] %s: %s", meta.id, r.subject, r.status.value, r.summary)
    return results


def _execute_inner(check: type[Check], ctx: Context) -> list[Result]:
    meta = check.meta
    try:
        with using_redactor(ctx.redactor):  # what `readyctl.redact.clip` redacts with
            results = list(check().run(ctx) or [])
    except RouteUnknown as e:
        return [Result.skipped(meta.id, "*", e.message)]
    except ReadyctlError as e:
        return [Result.errored(meta.id, "*", _classify(e), str(e))]
    except Exception as e:
        reason = _classify(e)
        detail = f"{type(e).__name__}: {e}".strip().rstrip(":")
        trace = traceback.format_exc() if reason is ErrorReason.BUG else None
        first = detail.splitlines()[0] if detail else ""
        return [Result.errored(meta.id, "*", reason, ctx.redactor.clip(first, 300), trace=trace)]
    if not results:
        return [Result.errored(meta.id, "*", ErrorReason.BUG, "the check produced no result")]
    for r in results:
        if r.check_id != meta.id:
            return [
                Result.errored(
                    meta.id, "*", ErrorReason.BUG, f"result carries foreign id {r.check_id}"
                )
            ]
    return results


def _record_statuses(check_id: str, results: Sequence[Result]) -> None:
    """Append statuses to $READYCTL_STATUS_LOG (the test suite's proof that checks can fail)."""
    path = os.environ.get("READYCTL_STATUS_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(f"{check_id} {r.status.value}\n" for r in results))


def _retryable_failure(results: Sequence[Result]) -> bool:
    return any(
        r.status is Status.ERROR
        and r.error_reason in (ErrorReason.CONNECTIVITY, ErrorReason.TIMEOUT)
        for r in results
    )


def _attempt_loop(check: type[Check], ctx: Context, retries: int) -> tuple[list[Result], int]:
    attempts = 0
    while True:
        attempts += 1
        results = _execute(check, ctx)
        _record_statuses(check.meta.id, results)
        if not check.meta.retryable or attempts > retries or not _retryable_failure(results):
            return results, attempts
        delay = BACKOFF_S * (2 ** (attempts - 1))
        if ctx.remaining() <= delay or ctx.state.cancelled.is_set():
            return results, attempts
        time.sleep(delay)


def _root_cause(dep_id: str, dep_results: Sequence[Result]) -> str | None:
    bad = [r for r in dep_results if r.status in (Status.FAIL, Status.ERROR, Status.BLOCKED)]
    if not bad:
        return None
    first = bad[0]
    if first.status is Status.BLOCKED and first.reason:
        return first.reason
    return f"{dep_id} {first.status.value}: {first.summary}"


def run(
    ctx: Context,
    items: Sequence[PlanItem],
    *,
    jobs: int = 8,
    deadline_s: float | None = None,
    progress: Progress | None = None,
    retries: int = RETRIES,
) -> RunOutcome:
    """Run the plan: parallel phase, then exclusive checks one at a time."""
    started_at = ctx.now()
    t0 = time.monotonic()
    run_deadline = t0 + deadline_s if deadline_s else None
    metas = {i.meta.id: i.meta for i in items}
    done: dict[str, list[Result]] = {}
    order: list[str] = []

    def record(cid: str, results: list[Result]) -> None:
        done[cid] = [r.redacted(ctx.redactor) for r in results]
        order.append(cid)
        if progress:
            progress("done", cid, done[cid])

    for item in items:
        if item.action == "skip":
            record(item.meta.id, [Result.skipped(item.meta.id, "*", item.reason or "skipped")])
    api_map = _resolve_api(ctx, items)

    pending = [i for i in items if i.action == "run"]
    parallel = [i for i in pending if not i.meta.exclusive]
    exclusive = sorted(
        (i for i in pending if i.meta.exclusive), key=lambda i: (i.meta.order, i.meta.id)
    )
    finished: queue.Queue[tuple[str, list[Result], int, float]] = queue.Queue()
    running: dict[str, tuple[float, float]] = {}  # id -> (start, deadline)
    abandoned: set[str] = set()
    interrupted = False

    def blocked_reason(item: PlanItem) -> str | bool | None:
        """None: ready; str: blocked by this root cause; False: wait."""
        for dep in item.depends_on:
            if dep not in done:
                return False
            cause = _root_cause(dep, done[dep])
            if cause:
                return cause
        return None

    def skipped_probe(item: PlanItem) -> str | None:
        """A probe this check needs was skipped (nothing to probe): the check skips too."""
        for dep in item.depends_on:
            rs = done.get(dep) or []
            if rs and all(r.status is Status.SKIP for r in rs):
                return rs[0].reason or rs[0].summary
        return None

    def start(item: PlanItem) -> None:
        meta = item.meta
        view = ctx.for_check(meta.id, meta.timeout_s, run_deadline)
        begin = time.monotonic()
        running[meta.id] = (begin, view.deadline or begin + meta.timeout_s)
        if progress:
            progress("start", meta.id, None)

        def work() -> None:
            try:
                results, attempts = _attempt_loop(item.check, view, retries)
            finally:
                view.close_clients()  # idle keep-alive connections must not outlive the check
            finished.put((meta.id, results, attempts, time.monotonic() - begin))

        threading.Thread(target=work, name=f"check:{meta.id}", daemon=True).start()

    def collect(wait: float) -> None:
        try:
            cid, results, attempts, took = finished.get(timeout=wait)
        except queue.Empty:
            cid = None
        if cid is not None:
            if cid in abandoned:
                return
            running.pop(cid, None)
            first_ok = attempts > 1 and not _retryable_failure(results)
            record(
                cid,
                [
                    r.with_run_info(
                        duration_ms=round(took * 1000, 1),
                        attempts=attempts,
                        passed_on_retry=first_ok and r.status is Status.PASS,
                    )
                    for r in results
                ],
            )
        now = time.monotonic()
        for rid, (begin, deadline) in list(running.items()):
            if now >= deadline:
                running.pop(rid)
                abandoned.add(rid)
                limit = metas[rid].timeout_s
                why = (
                    "the run's deadline passed"
                    if run_deadline is not None
                    and deadline >= run_deadline - 1e-3
                    and deadline < begin + limit
                    else f"did not finish within its {limit:g} s timeout"
                )
                record(
                    rid,
                    [
                        Result.errored(rid, "*", ErrorReason.TIMEOUT, why).with_run_info(
                            duration_ms=round((now - begin) * 1000, 1),
                            attempts=1,
                            passed_on_retry=False,
                        )
                    ],
                )

    def drive(queue_items: list[PlanItem], limit: int) -> None:
        waiting = list(queue_items)
        while waiting or running:
            if _interrupt.requested():  # SIGINT/SIGTERM to the readyctl command
                raise KeyboardInterrupt
            progressed = True
            while progressed:
                progressed = False
                for item in list(waiting):
                    if len(running) >= limit:
                        break
                    state = blocked_reason(item)
                    if state is False:
                        continue
                    waiting.remove(item)
                    progressed = True
                    if isinstance(state, str):
                        record(item.meta.id, [Result.blocked_by(item.meta.id, "*", state)])
                    elif (why := skipped_probe(item)) is not None:
                        record(item.meta.id, [Result.skipped(item.meta.id, "*", why)])
                    else:
                        start(item)
            if not running and waiting:
                # the rest wait on checks that will never finish in this phase
                for item in waiting:
                    missing = [d for d in item.depends_on if d not in done]
                    record(
                        item.meta.id,
                        [
                            Result.errored(
                                item.meta.id,
                                "*",
                                ErrorReason.CONFIG,
                                f"depends on {', '.join(missing)}, which cannot run first",
                            )
                        ],
                    )
                waiting.clear()
                break
            collect(0.05)

    try:
        drive(parallel, max(1, jobs))
        drive(exclusive, 1)
    except KeyboardInterrupt:
        interrupted = True
    if interrupted or _interrupt.requested():
        # stop scheduling, cancel the running checks, stop the run's child processes (a
        # pg_dump reading the target first), then the cleanups, within the interrupt budget
        interrupted = True
        ctx.state.cancelled.set()
        note = f"run interrupted ({_interrupt.signal_name()}) before this check finished"
        for item in items:
            cid = item.meta.id
            if cid not in done:
                record(cid, [Result.skipped(cid, "*", note)])
        _log.debug("interrupted: stopping %d child process group(s)", len(_proc.live(None)))
        _proc.close_scope(grace=min(_proc.DEFAULT_GRACE_S, max(0.5, _interrupt.remaining() / 4)))
        _log.debug("interrupted: running the cleanups")
        problems = _bounded_cleanups(ctx, max(1.0, _interrupt.remaining() - CLEANUP_RESERVE_S))
        _log.debug("interrupted: cleanups done")
    else:
        problems = ctx.run_cleanups()
    results = [r for cid in sorted(done) for r in done[cid]]
    return RunOutcome(
        results=results,
        started_at=started_at,
        duration_s=round(time.monotonic() - t0, 3),
        interrupted=interrupted,
        cleanup_problems=problems,
        metas=metas,
        api_map=api_map,
    )


def _resolve_api(ctx: Context, items: Sequence[PlanItem]) -> dict[str, Any] | None:
    """Resolve the API map before the checks run (discovery included), for them and the report.

    Discovery gets its own bounded budget; a failure leaves the map as configured.
    """
    wanted = any(i.action == "run" and Capability.HTTP in i.meta.requires for i in items) or bool(
        ctx.environment.api or ctx.environment.auth
    )
    if not wanted:
        return None
    view = ctx.for_check("readyctl.api-map", 120, None)
    try:
        with using_redactor(ctx.redactor):
            api = view.api()
    except ReadyctlError:
        raise
    except Exception as e:  # discovery must never take the run down
        _log.debug("API map resolution failed: %s", type(e).__name__)
        return None
    finally:
        view.close_clients()
    return ctx.redactor.value(api.to_dict())


def _bounded_cleanups(ctx: Context, budget_s: float) -> list[str]:
    """Run the cleanups after an interrupt in a thread; give up waiting after `budget_s`."""
    box: dict[str, list[str]] = {}

    def work() -> None:
        box["problems"] = ctx.run_cleanups()

    t = threading.Thread(target=work, name="readyctl-cleanups", daemon=True)
    t.start()
    t.join(budget_s)
    if t.is_alive():
        return [
            f"cleanup did not finish within {budget_s:.0f} s of the interrupt; "
            "readyctl stopped waiting (its child processes were killed)"
        ]
    return box.get("problems", [])
