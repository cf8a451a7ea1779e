"""The run pipeline: config, environment, managed target, checks, report, history, files.

`readyctl check` and its narrower siblings call `execute_report` through the CLI (which only
parses flags and prints, through a `RunUI`); runbooks (`readyctl deploy`, `readyctl gate`)
call the same function, so there is one way to get a verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from readyctl.errors import ConfigError, ReadyctlError, UsageError


class RunUI:
    """What the pipeline shows while it works; the CLI's terminal UI overrides every hook.

    This base shows nothing: a runbook step or a library caller gets the report only.
    """

    quiet = True

    def say(self, text: str, style: str | None = None) -> None:
        """A line for the user (a warning or a status line)."""

    def warn(self, text: str) -> None:
        """A problem worth a line on stderr (cleanup problems)."""

    def show_plan(self, ctx: Any, items: Any, env_name: str, env: Any, coverage: Any) -> None:
        """`--plan`: what would run, the API map and the checklist coverage."""

    def progress(self, total: int) -> contextlib.AbstractContextManager[Any]:
        """A context manager whose `update(event, check_id, results)` follows the run."""
        return _NoProgress()

    def show_report(self, report: Any, json_path: Any) -> None:
        """The finished report (the terminal reporter, when the formats include it)."""


class _NoProgress(contextlib.AbstractContextManager["_NoProgress"]):
    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, event: str, check_id: str, results: Any) -> None:
        """Ignored."""


@dataclasses.dataclass
class RunOptions:
    """Everything `readyctl check` (and its narrower siblings) can be told."""

    config: Path | None = None
    env: str | None = None
    base_url: str | None = None
    env_file: Path | None = None
    database_url: str | None = None
    out: Path | None = None
    formats: str | None = None
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    jobs: int | None = None
    deadline: float | None = None
    plan: bool = False
    quiet: bool = False
    no_color: bool = False
    process_env: bool = False
    fixed_selection: Sequence[str] = ()
    no_defaults_config: bool = False
    baseline: str | None = None
    history: bool = True
    # headers every request to the target carries, over the environment's (a runbook's
    # maintenance bypass); values are redacted
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # per-check settings laid over readyctl.yaml's `checks:` (commands like `readyctl load`)
    settings_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # flags of a narrower command that name the target (e.g. --alembic-config): the managed
    # demo is then not started
    explicit_target: Sequence[str] = ()
    # a runbook's target: an environment already resolved (URLs, CA, database, a managed demo
    # the runbook started itself), used instead of the config's; never starts a managed demo
    environment: Any = None
    # variables over the process environment for the checks (a managed demo's test account)
    environ: dict[str, str] | None = None
    # a managed demo the caller started (a runbook's target): used, never started or stopped
    managed: Any = None


# Precedence: command-line flags > READYCTL_* variables > readyctl.yaml > managed defaults.
ENV_VARS = {
    "config": "READYCTL_CONFIG",
    "env": "READYCTL_ENV",
    "base_url": "READYCTL_BASE_URL",
    "env_file": "READYCTL_ENV_FILE",
    "database_url": "READYCTL_DATABASE_URL",
}


def split_patterns(values: Sequence[str]) -> list[str]:
    """`--only 'http.*,auth.*' --only env.required` -> three patterns (comma lists accepted)."""
    return [p.strip() for v in values for p in str(v).split(",") if p.strip()]


def _pick(flag_value: Any, flag: str, key: str) -> tuple[Any, str | None]:
    """A flag's value, else its READYCTL_* variable's, with where it came from."""
    if flag_value not in (None, ""):
        return flag_value, f"command line {flag}"
    var = ENV_VARS[key]
    got = os.environ.get(var)
    if got:
        return got, f"environment variable {var}"
    return None, None


def _parse_duration(text: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise UsageError(f"--deadline {text!r} is not a duration; write e.g. 90s, 5m or 1h")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def _install_log_redaction() -> None:
    from readyctl.redact import RedactingFilter

    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for f in root.filters):
        root.addFilter(RedactingFilter())
        for h in root.handlers:
            h.addFilter(RedactingFilter())
    level = os.environ.get("READYCTL_LOG")
    if level:
        handler = logging.FileHandler(level) if "/" in level else logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)


def _start_managed(env: Any, faults: list[str], console: RunUI) -> tuple[Any, Any]:
    from readyctl.demo import managed as demo_managed

    extra = f" with faults {', '.join(faults)}" if faults else ""
    console.say(f"Starting the managed demo target{extra}...", style="dim")
    try:
        shape = getattr(env, "demo_shape", "default")
        handle = (
            demo_managed.start(faults)
            if shape == "default"
            else demo_managed.start(faults, shape=shape)
        )
    except ValueError as e:
        raise ConfigError(f"managed demo: {e}") from None
    except RuntimeError as e:
        raise ReadyctlError(f"managed demo could not start: {e}") from None
    return handle, managed_environment(env, handle)


def managed_environment(env: Any, handle: Any) -> Any:
    """The environment with the managed demo's URLs, CA, env file and database (its API map
    comes from readyctl.demo.profile for the default shape, from discovery for the others)."""
    update = {
        "base_url": handle.base_url,
        "http_url": handle.http_url,
        "ca_bundle": handle.ca_bundle,
        "env_file": handle.env_file,
        "env_source": "file",
        "database_url": handle.database_url,
    }
    return env.model_copy(update=update)


def managed_environ(handle: Any) -> dict[str, str]:
    """Variables the managed demo provides to checks: the test account and mail provider."""
    user = handle.user("member")
    return {
        "READYCTL_AUTH_USERNAME": user["email"],
        "READYCTL_AUTH_PASSWORD": user["password"],
        "READYCTL_MAIL_URL": handle.mail_url,
        "READYCTL_MAIL_TOKEN": handle.mail_token,
        "READYCTL_WEBHOOK_SECRET": handle.webhook_secret,
        # the demo's state file (release swaps, maintenance) and maintenance bypass secret
        "READYCTL_DEMO_STATE": getattr(handle, "state_file", ""),
        "READYCTL_DEMO_WORKDIR": getattr(handle, "workdir", ""),
        "READYCTL_MAINTENANCE_BYPASS_SECRET": getattr(handle, "maintenance_secret", ""),
    }


def redactor_today() -> Any:
    """Today's date for waiver policy (UTC)."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).date()


NO_PASSING_BASELINE = (
    "no baseline: no passing run of environment {env} with this selection was found yet "
    "(--baseline last compares only with a run whose gate passed); the next passing run "
    "becomes the baseline, or pin one with `readyctl baseline pin RUN`"
)


def _resolve_baseline(
    spec: str | None, history_dir: Path, env_name: str, only: Sequence[str], skip: Sequence[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """`--baseline last` (pinned, else the newest passing run of the same environment and
    selection) or a path; (report, description) or (None, None) when there is none."""
    if not spec:
        return None, None
    from readyctl import history as _history

    try:
        if spec == "last":
            found = _history.find_last(history_dir, _history.selection_key(env_name, only, skip))
            if found is None:
                return None, None  # no passing run yet: nothing to compare with
        else:
            found = _history.resolve_run(history_dir, spec)
    except OSError as e:
        raise UsageError(f"--baseline {spec}: {e}") from None
    except ValueError as e:
        if "no such file" in str(e) or "unknown run id" in str(e):
            raise UsageError(
                f"--baseline {spec}: no such file or history run; pass a readiness.json, "
                "a run id or 'last'"
            ) from None
        raise UsageError(f"--baseline {spec}: {e}") from None
    return found.data, found.describe()


def validate_check_settings(loaded: Any, cfg: Any, catalog: Any) -> None:
    """Every `checks:` entry names a known check and only its typed settings (else exit 2)."""
    import difflib

    from readyctl.check import settings_problem

    for cid, raw in cfg.checks.items():
        if cid not in catalog.checks:
            close = difflib.get_close_matches(cid, catalog.ids(), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; see `readyctl list`"
            raise loaded.error(("checks", cid), f"unknown check id {cid!r}{hint}")
        problem = settings_problem(catalog.checks[cid], raw)
        if problem is not None:
            loc, message = problem
            if cfg.version < 2:
                message += (
                    " (this config is version 1, which did not check settings; "
                    "`readyctl config migrate` lists every change)"
                )
            raise loaded.error(("checks", cid, *loc), message)


def plan_coverage(
    items: Sequence[Any], cfg: Any, catalog: Any, selected: Sequence[Any], env_name: str
) -> list[Any]:
    """The checklist as the plan foresees it: an item whose checks would all be skipped
    cannot be verified by this run (its missing settings named), before anything is contacted.

    Checks that would run count as verifiable, unless a program they run is missing on this
    machine (promtool for alerts.rules: item 8 then cannot be verified here); whether they
    produce a scored result is only known after the run.
    """
    import datetime as dt

    from readyctl import coverage
    from readyctl.alerts.tools import missing_reason
    from readyctl.result import Result

    def foresee(i: Any) -> Result:
        if i.action != "run":
            return Result.skipped(i.meta.id, "*", i.reason or "would be skipped")
        if i.missing_tools:
            why = "; ".join(missing_reason(t) for t in i.missing_tools)
            return Result.skipped(i.meta.id, "*", why)
        return Result.passed(i.meta.id, "*", "would run")

    foreseen = [foresee(i) for i in items]
    return coverage.compute(
        foreseen,
        {c.meta.id: c.meta for c in catalog},
        selected=[c.meta.id for c in selected],
        waived=set(),
        declared=[
            coverage.Declared(d.item, d.reason, d.owner, d.expires) for d in cfg.not_applicable
        ],
        require=cfg.gate.require_severity,
        env_name=env_name,
        today=dt.datetime.now(dt.UTC).date(),
        scope_to_selection=False,
    )


def execute(opts: RunOptions, ui: RunUI | None = None) -> int:
    """Run checks as configured; returns the exit code."""
    return execute_report(opts, ui)[0]


def execute_report(opts: RunOptions, ui: RunUI | None = None) -> tuple[int, Any]:
    """Run checks as configured; returns the exit code and the Report (None if nothing ran).

    Raises ReadyctlError (exit code 2 and one line) on bad input.
    """
    from readyctl.config import load_config
    from readyctl.context import Context
    from readyctl.redact import global_redactor
    from readyctl.registry import load_catalog
    from readyctl.reporters import parse_formats, write_files
    from readyctl.runner import plan, run, select, unknown_patterns

    _install_log_redaction()
    redactor = global_redactor()
    console = ui or RunUI()
    config_path, _ = _pick(opts.config, "--config", "config")
    loaded = load_config(
        None if opts.no_defaults_config else (Path(config_path) if config_path else None)
    )
    cfg = loaded.config
    if opts.fixed_selection:
        # a focused command judges only its own checks: any unwaived fail blocks, whatever
        # its severity, and the score threshold does not apply (k6 thresholds, pytest tests)
        from readyctl.check import Severity

        focused_gate = cfg.gate.model_copy(update={"block_on": Severity.INFO, "fail_under": 0})
        cfg = cfg.model_copy(update={"gate": focused_gate})
    if opts.settings_overrides:
        merged = {k: dict(v) for k, v in cfg.checks.items()}
        for cid, extra in opts.settings_overrides.items():
            merged.setdefault(cid, {}).update(extra)
        cfg = cfg.model_copy(update={"checks": merged})
    env_choice, _ = _pick(opts.env, "--env", "env")
    env_name, env = loaded.environment(env_choice)
    if opts.environment is not None and opts.managed is None:
        env = opts.environment.model_copy(update={"managed": None, "faults": []})
    elif opts.environment is not None:
        env = opts.environment
    origin: dict[str, str] = {}
    for key in ("base_url", "http_url", "env_file", "database_url"):
        if getattr(env, key):
            origin[key] = f"{loaded.where('environments', env_name, key)} ({key})"
    update: dict[str, Any] = {}
    explicit: list[str] = list(opts.explicit_target)
    base_url, where = _pick(opts.base_url, "--base-url", "base_url")
    if base_url:
        update["base_url"] = str(base_url).rstrip("/")
        origin["base_url"] = str(where)
        explicit.append(str(where))
    env_file, where = _pick(opts.env_file, "--env-file", "env_file")
    if env_file:
        env_path = Path(env_file)
        if not env_path.is_file():
            raise UsageError(f"{where}: {env_file}: no such file; check the path")
        update["env_file"] = str(env_path.resolve())
        update["env_source"] = "both" if opts.process_env else "file"
        origin["env_file"] = str(where)
        explicit.append(str(where))
    elif opts.process_env:
        update["env_source"] = "both" if env.env_file else "process"
        origin["env_source"] = "command line --process-env"
    database_url, where = _pick(opts.database_url, "--database-url", "database_url")
    if database_url:
        update["database_url"] = database_url
        origin["database_url"] = str(where)
        explicit.append(str(where))
    if explicit and env.managed == "demo":
        # an explicit target on the command line means the managed demo is not started for it
        update.update(managed=None, faults=[])
        origin["managed"] = f"not started: explicit target ({', '.join(explicit)})"
    if opts.headers:
        update["headers"] = {**env.headers, **opts.headers}
    if update:
        env = env.model_copy(update=update)
        redactor.add(env.database_url)
    for value in env.headers.values():
        redactor.add(value)
    if env.env_file and env.env_source in ("file", "both"):
        # an env file readyctl cannot read (too big, not UTF-8) is bad input: exit 2, up front
        from readyctl.dotenv import read as read_dotenv

        read_dotenv(loaded.resolve_path(env.env_file))

    try:
        formats = parse_formats(opts.formats or cfg.report.formats)
    except ValueError as e:
        if opts.formats:
            raise UsageError(f"--format: {e}") from None
        # from readyctl.yaml: name the file, the line and the key
        bad = next((i for i, f in enumerate(cfg.report.formats) if repr(f) in str(e)), None)
        loc = ("report", "formats") if bad is None else ("report", "formats", bad)
        raise loaded.error(loc, str(e)) from None
    out_dir = opts.out or loaded.resolve_path(cfg.report.out)

    catalog = load_catalog()
    only = split_patterns(opts.only) or list(cfg.only)
    skip = split_patterns(opts.skip) + list(cfg.skip)
    flag_patterns = (
        ("--only", split_patterns(opts.only), "only"),
        ("--skip", split_patterns(opts.skip), "skip"),
    )
    for flag, patterns, key in flag_patterns:
        bad = unknown_patterns(catalog, patterns)
        if bad:
            raise UsageError(
                f"{flag} {bad[0]!r} matches no check id, tag or category; "
                "see `readyctl list` for the ids"
            )
        bad = unknown_patterns(catalog, getattr(cfg, key))
        if bad:
            idx = list(getattr(cfg, key)).index(bad[0])
            raise loaded.error((key, idx), f"{bad[0]!r} matches no check id, tag or category")
    validate_check_settings(loaded, cfg, catalog)
    candidates = list(catalog)
    if opts.fixed_selection:
        candidates = select(candidates, opts.fixed_selection, ())
    selected = select(candidates, only, skip)
    if not selected:
        raise UsageError("the selection is empty: --only/--skip leave no check to run")

    from readyctl import waivers as _waivers

    for state in _waivers.evaluate(
        cfg.waivers, {c.meta.id: c.meta for c in catalog}, redactor_today()
    ):
        if state.problems:
            raise loaded.error(("waivers", state.index), "; ".join(state.problems))
    history_dir = loaded.resolve_path(cfg.report.history_dir)
    baseline_data, baseline_info = _resolve_baseline(
        opts.baseline, history_dir, env_name, only, skip
    )
    if opts.baseline == "last" and baseline_data is None and not opts.plan:
        console.say(NO_PASSING_BASELINE.format(env=env_name), style="yellow")

    deadline_s = opts.deadline if opts.deadline is not None else cfg.runner.deadline_s
    jobs = opts.jobs or cfg.runner.jobs
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")

    ctx_kwargs: dict[str, Any] = dict(
        config=cfg, env_name=env_name, base_dir=loaded.base_dir, redactor=redactor
    )
    if opts.plan:
        planned = env
        if env.managed == "demo":  # what the managed demo will provide once started
            planned = env.model_copy(
                update={
                    "base_url": env.base_url or "https://managed-demo.invalid",
                    "database_url": env.database_url or "postgresql://managed-demo.invalid/demo",
                    "env_file": env.env_file or ".env.managed-demo",
                }
            )
        ctx = Context(environment=planned, **ctx_kwargs)
        items = plan(ctx, selected, catalog.checks)
        coverage = plan_coverage(items, cfg, catalog, selected, env_name)
        console.show_plan(ctx, items, env_name, env, coverage)
        return 0, None

    from readyctl import _interrupt, _proc
    from readyctl import history as _history
    from readyctl.report import build_report
    from readyctl.runner import RunOutcome

    key = _history.selection_key(env_name, only, skip)
    trend = _history.trend(history_dir, key, cfg.report.trend_runs - 1) if opts.history else []
    ctx = Context(environment=env, **ctx_kwargs)  # replaced once the target is known
    started_at, t0 = ctx.now(), time.monotonic()
    partial: dict[str, list[Any]] = {}  # results recorded so far (for the fallback report)

    def make_report(outcome: Any) -> Any:
        report = build_report(
            outcome,
            config=cfg,
            env_name=env_name,
            environment=ctx.environment,
            redactor=redactor,
            only=only,
            skip=skip,
            today=ctx.now().date(),
            baseline=baseline_data,
            baseline_info=baseline_info,
            history=trend,
            catalog_metas={c.meta.id: c.meta for c in catalog},
            selected=[c.meta.id for c in selected],
            target_origin=origin,
            focused=bool(opts.fixed_selection),
        )
        report.data["history"] = [
            *trend,
            {
                "started_at": report.data["started_at"],
                "score": report.score,
                "verdict": report.verdict,
            },
        ]
        return report

    def interrupted_outcome(problems: list[str]) -> Any:
        done = dict(partial)  # a copy: the runner may still be adding to it
        results = [r for cid in sorted(done) for r in done[cid]]
        return RunOutcome(
            results=results,
            started_at=started_at,
            duration_s=round(time.monotonic() - t0, 3),
            interrupted=True,
            cleanup_problems=problems,
            metas={c.meta.id: c.meta for c in catalog},
        )

    def fallback_report() -> None:
        # the process must end before the real report: write what is known, marked interrupted
        why = "readyctl exited before its cleanups finished; scratch resources may be left"
        write_files(make_report(interrupted_outcome([why])), out_dir, formats)

    handle = None
    outcome: Any = None
    _interrupt.set_fallback(fallback_report)
    try:
        with _proc.scope():
            try:
                if _interrupt.requested():
                    raise KeyboardInterrupt
                if env.managed == "demo" and opts.managed is None:
                    faults = list(env.faults)
                    faults += [
                        f for f in os.environ.get("READYCTL_DEMO_FAULTS", "").split(",") if f
                    ]
                    with _interrupt.raising():  # managed.start cleans up after itself
                        handle, env = _start_managed(env, list(dict.fromkeys(faults)), console)
                    for key_ in ("base_url", "http_url", "env_file", "database_url"):
                        origin[key_] = "managed demo (started by readyctl)"
                environ = {**os.environ, **opts.environ} if opts.environ else None
                if handle is not None:
                    environ = {**os.environ, **managed_environ(handle)}
                    for value in (
                        handle.mail_token,
                        handle.webhook_secret,
                        getattr(handle, "maintenance_secret", ""),
                    ):
                        redactor.add(value)
                if opts.managed is not None:  # the caller's demo: used, not stopped
                    extra = opts.environ or {}
                    environ = {**os.environ, **managed_environ(opts.managed), **extra}
                ctx = Context(
                    environment=env, managed=handle or opts.managed, environ=environ, **ctx_kwargs
                )
                if handle is not None:
                    ctx.add_cleanup(handle.stop)
                items = plan(ctx, selected, catalog.checks)
                if _interrupt.requested():
                    raise KeyboardInterrupt
                with console.progress(len(items)) as progress:

                    def on_progress(event: str, cid: str, results: Any) -> None:
                        if event == "done" and results is not None:
                            partial[cid] = list(results)
                        progress.update(event, cid, results)

                    outcome = run(
                        ctx, items, jobs=jobs, deadline_s=deadline_s, progress=on_progress
                    )
            except KeyboardInterrupt:
                # before the first check ran, or while the managed demo was starting
                _proc.close_scope(grace=1.0)
                problems: list[str] = []
                if handle is not None:
                    budget = max(1.0, _interrupt.remaining() - 5)
                    problems = [redactor.text(p) for p in _stop_within(handle.stop, budget)]
                outcome = interrupted_outcome(problems)
        if _interrupt.requested():
            outcome.interrupted = True  # a signal after the last check still counts
        report = make_report(outcome)
        with _interrupt.writing_report():
            written = write_files(report, out_dir, formats)
        if "terminal" in formats:
            console.show_report(report, written.get("json"))
        for problem in outcome.cleanup_problems:
            console.warn(problem)
        if _interrupt.requested() and not outcome.interrupted:
            # signalled while the report was being written: say so in the files too
            outcome.interrupted = True
            report = make_report(outcome)
            with _interrupt.writing_report():
                write_files(report, out_dir, formats)
        if opts.history and not outcome.interrupted:
            _history.save(report.data, history_dir, cfg.report.history_keep)
    finally:
        _interrupt.set_fallback(None)
    return report.exit_code, report


def _stop_within(stop: Any, budget_s: float) -> list[str]:
    """Call `stop` in a thread; a problem line if it fails or outlasts `budget_s`."""
    import threading

    box: list[str] = []

    def work() -> None:
        try:
            stop()
        except Exception as e:  # cleanup must go on
            box.append(f"cleanup failed: {e}")

    t = threading.Thread(target=work, name="readyctl-stop-managed", daemon=True)
    t.start()
    t.join(budget_s)
    if t.is_alive():
        return [f"stopping the managed demo did not finish within {budget_s:.0f} s"]
    return box


def focused_exit(
    report: Any, *, nothing_is_ok: bool = False, own: Sequence[str] = ()
) -> tuple[int, str | None]:
    """The exit code of a focused command (smoke, load, db *, env validate) and why.

    Like k6 on thresholds and pytest on a test: 1 on any unwaived fail of the checks it ran,
    whatever their severity; 3 when nothing could be verified (only skips, blocks, errors);
    0 otherwise. `nothing_is_ok`: nothing to check is a pass (lint with nothing pending).
    `own`: id globs of the command's own checks; a passing probe (database.reachable) does
    not make a rehearsal that had nothing to rehearse "verified".
    """
    import fnmatch

    if report is None:
        return 130, None
    if report.data.get("interrupted"):
        return 130, None

    def live(r: dict[str, Any]) -> bool:
        w = r.get("waiver")
        return not (w and not w.get("expired"))

    results = [r for r in report.results if live(r)]
    if any(r["status"] == "fail" for r in results):
        return 1, None
    mine = [r for r in results if not own or any(fnmatch.fnmatchcase(r["id"], p) for p in own)]
    errors = [r for r in mine if r["status"] in ("error", "blocked")]
    scored = [r for r in mine if r["status"] in ("pass", "warn")]
    if errors:
        first = errors[0]
        return 3, f"could not verify {first['id']}: {first['reason'] or first['summary']}"
    if not scored:
        first = next(iter(mine), None) or next(iter(report.results), None)
        reason = (first["reason"] or first["summary"]) if first else "no check ran"
        if nothing_is_ok:
            return 0, f"nothing to do: {reason}"
        return 3, f"nothing was verified: {reason}"
    return 0, None


parse_duration = _parse_duration
