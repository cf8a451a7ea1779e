"""What the built-in actions share: the step's config and Context, durations, the target's
HTTP client and routes, the maintenance bypass, and checks through the run pipeline."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from readyctl.redact import clip, global_redactor
from readyctl.runbook.actions.base import ActionFailed, StepContext


@dataclasses.dataclass
class Target:
    """The step's view of readyctl.yaml: the loaded config, the environment's name and the
    resolved environment (the engine's `sc.target` when set, else readyctl.yaml's)."""

    loaded: Any
    env_name: str
    env: Any

    @property
    def config(self) -> Any:
        """The validated readyctl.yaml (built-in defaults without a file)."""
        return self.loaded.config

    @property
    def base_dir(self) -> Path:
        """The directory readyctl.yaml's relative paths start from."""
        return Path(self.loaded.base_dir)


def target(sc: StepContext) -> Target:
    """Load readyctl.yaml (or the defaults) and resolve the step's environment."""
    from readyctl.config import load_config
    from readyctl.errors import ReadyctlError

    try:
        loaded = load_config(sc.config_path)
        env_name, env = loaded.environment(sc.env_name)
    except ReadyctlError as e:
        raise ActionFailed(f"{sc.step_id}: {redact(str(e))}") from None
    if sc.target is not None:
        env = sc.target
    red = global_redactor()
    red.add(env.database_url)
    for value in env.headers.values():
        red.add(value)
    return Target(loaded, env_name, env)


def context(
    sc: StepContext, t: Target | None = None, overrides: Mapping[str, Mapping[str, Any]] = ()
) -> Any:
    """A readyctl Context for the step's target, as `readyctl check` builds one (drivers such
    as find_migrator and the backup locations take it); `overrides` lay check settings over
    readyctl.yaml's `checks:`."""
    from readyctl.context import Context

    t = t or target(sc)
    cfg = t.config
    if overrides:
        merged = {k: dict(v) for k, v in cfg.checks.items()}
        for cid, extra in dict(overrides).items():
            merged.setdefault(cid, {}).update(extra)
        cfg = cfg.model_copy(update={"checks": merged})
    return Context(
        config=cfg,
        env_name=t.env_name,
        environment=t.env,
        base_dir=t.base_dir,
        redactor=global_redactor(),
        environ=dict(sc.environ),
        managed=sc.managed,
    )


def redact(text: Any, limit: int = 300) -> str:
    """One line of `text` with every known secret and URL password masked."""
    red = global_redactor()
    line = " ".join(str(text).split())
    return clip(red.text(line), limit)


def seconds(value: Any, default: float, key: str) -> float:
    """A duration from `with:` (a number of seconds, or "90s", "5m", "500ms")."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ActionFailed(f"with.{key}: {value!r} is not a duration; write e.g. 30s or 5m")
    if isinstance(value, int | float):
        return float(value)
    from readyctl.errors import UsageError
    from readyctl.pipeline import parse_duration

    try:
        return parse_duration(str(value))
    except UsageError:
        raise ActionFailed(
            f"with.{key}: {value!r} is not a duration; write e.g. 30s or 5m"
        ) from None


def number(params: Mapping[str, Any], key: str, default: float) -> float:
    """A number from `with:` (ActionFailed naming the key when it is not one)."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ActionFailed(f"with.{key}: {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise ActionFailed(f"with.{key}: {value!r} is not a number") from None


def unknown_keys(sc: StepContext, allowed: Sequence[str]) -> None:
    """Refuse `with:` keys the action does not know (a typo must not silently do nothing)."""
    extra = sorted(set(sc.params) - set(allowed))
    if extra:
        raise ActionFailed(
            f"{sc.step_id}: unknown with: key {extra[0]!r} (known: {', '.join(allowed)})"
        )


# -- the maintenance bypass ------------------------------------------------------------------
def bypass_headers(sc: StepContext) -> dict[str, str]:
    """The maintenance bypass for readyctl's own requests: the engine's `sc.bypass_headers`,
    else the newest maintenance step's record (header name, secret by variable name), while
    maintenance is on."""
    if sc.bypass_headers:
        return dict(sc.bypass_headers)
    rec = sc.record_of("maintenance")
    if not rec or rec.get("mode") != "on":
        return {}
    header, var = rec.get("bypass_header"), rec.get("bypass_secret_env")
    secret = sc.environ.get(str(var)) if var else None
    if not header or not secret:
        return {}
    global_redactor().add(secret)
    return {str(header): secret}


# -- the target over HTTP --------------------------------------------------------------------
def http_client(sc: StepContext, t: Target, *, timeout: float = 10.0) -> Any:
    """The target's client from its Context (bounded reads, its CA bundle and headers), with
    the maintenance bypass."""
    view = context(sc, t).for_check(f"runbook.{sc.step_id}", max(timeout * 10, 60.0), None)
    client = view.http(timeout=timeout)
    client.headers.update(bypass_headers(sc))
    return client


def api_map(sc: StepContext, t: Target) -> Any:
    """The target's API map from readyctl.yaml (and the managed demo's defaults): no network."""
    from readyctl import apimap

    ctx = context(sc, t)
    b = ctx._map_builder()
    if ctx.managed is None and t.env.managed == "demo" and t.env.demo_shape == "default":
        from readyctl.demo.profile import COUNSELING_MAP

        b.add(COUNSELING_MAP, apimap.DEFAULT)
    return b.build()


def absolute(t: Target, url_or_path: str) -> str:
    """A URL for `url_or_path`: as given when absolute, else on the target's base URL."""
    if "://" in url_or_path:
        return url_or_path
    if not t.env.base_url:
        raise ActionFailed(
            f"{url_or_path} is a path but the target has no base_url; give a full URL"
        )
    return urljoin(t.env.base_url.rstrip("/") + "/", url_or_path.lstrip("/"))


def ready_url(sc: StepContext, t: Target, given: Any = None) -> str:
    """`with: ready_url`, else the API map's health ready route, else /health."""
    if given:
        return absolute(t, str(given))
    health = api_map(sc, t).health
    return absolute(t, health.ready or health.live or "/health")


def wait_ready(sc: StepContext, t: Target, url: str, timeout_s: float) -> tuple[int, float]:
    """Poll `url` until it answers 2xx; (status, seconds waited). ActionFailed on timeout."""
    import httpx

    t0 = time.monotonic()
    last = "no answer yet"
    with http_client(sc, t, timeout=min(5.0, max(0.5, timeout_s))) as client:
        while True:
            sc.check_deadline()
            try:
                resp = client.get(url)
                if 200 <= resp.status_code < 300:
                    return resp.status_code, time.monotonic() - t0
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as e:
                last = type(e).__name__
            if time.monotonic() - t0 >= timeout_s:
                raise ActionFailed(
                    f"{redact(url)} did not answer 2xx within {timeout_s:.0f} s (last: {last})"
                )
            time.sleep(0.25)


# -- checks through the run pipeline ---------------------------------------------------------
def run_checks(
    sc: StepContext,
    t: Target,
    selection: Sequence[str],
    *,
    out: Path,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    history: bool = False,
) -> tuple[int, Any]:
    """Run `selection` through readyctl.pipeline.execute_report against the step's target
    (never a second managed demo), with the maintenance bypass; JSON into `out`, no history.

    Returns (exit code, Report). The resolved environment goes in `RunOptions.environment`
    (with the step's variables in `environ`; a pipeline without those fields gets the base
    URL, database URL and env file as explicit targets), and the managed handle in
    `RunOptions.managed` when the pipeline has that field.
    """
    from readyctl.errors import ReadyctlError
    from readyctl.pipeline import RunOptions, execute_report

    fields = {f.name for f in dataclasses.fields(RunOptions)}
    kwargs: dict[str, Any] = dict(
        config=sc.config_path,
        env=t.env_name,
        out=out,
        formats="json",
        fixed_selection=list(selection),
        history=history,
        quiet=True,
        headers=bypass_headers(sc),
        settings_overrides={k: dict(v) for k, v in (overrides or {}).items()},
    )
    if "environ" in fields:
        kwargs["environ"] = dict(sc.environ)
    if "environment" in fields:
        kwargs["environment"] = t.env
    else:
        for key in ("base_url", "database_url", "env_file"):
            value = getattr(t.env, key, None)
            if value:
                kwargs[key] = value
    if "managed" in fields and sc.managed is not None:
        kwargs["managed"] = sc.managed
    try:
        return execute_report(RunOptions(**kwargs))
    except ReadyctlError as e:
        raise ActionFailed(f"{', '.join(selection)}: {redact(str(e))}") from None


def first_problem(report: Any, own: Sequence[str]) -> str:
    """`subject: summary` of the first failing (else erroring) result of `own` checks."""
    import fnmatch

    if report is None:
        return "no report"
    mine = [r for r in report.results if any(fnmatch.fnmatchcase(r["id"], p) for p in own)] or list(
        report.results
    )
    for wanted in (("fail",), ("error", "blocked")):
        for r in mine:
            if r["status"] in wanted:
                return redact(f"{r['id']} {r['subject']}: {r['reason'] or r['summary']}", 240)
    return "no failing result"


def counts(report: Any) -> dict[str, int]:
    """Results by status."""
    out: dict[str, int] = {}
    for r in getattr(report, "results", []) or []:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out
