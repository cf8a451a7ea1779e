"""smoke.scenarios: the deploy-day critical paths run end to end, one result per step."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from pydantic import Field

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
from readyctl.coverage import CRITICAL_PATH_EVIDENCE
from readyctl.errors import ConfigError
from readyctl.result import ErrorReason, Result, Status
from readyctl.scenarios import (
    Runner,
    StepOutcome,
    Suite,
    default_suite,
    load_suite,
    parse_suite,
)


class Settings(CheckSettings):
    """Settings of smoke.scenarios."""

    suite: str | tuple[str, ...] = Field(
        (),
        description="suite YAML file(s), relative to readyctl.yaml (default: none; without a "
        "suite or inline scenarios the check skips)",
    )
    # validated by the suite parser (readyctl.scenarios), which names the bad step
    scenarios: tuple[dict[str, Any], ...] | dict[str, Any] = Field(
        (), description="inline scenarios (a list, or a mapping with vars and scenarios)"
    )
    include_default: bool = Field(
        False,
        description="run the bundled counseling-demo suite as well as suite/scenarios (the "
        "managed demo's default shape sets it)",
    )
    only: str | tuple[str, ...] = Field((), description="run only these scenarios (names)")
    vars: dict[str, Any] = Field(
        default_factory=dict, description="override the suite's vars, e.g. {api: /v1}"
    )
    env: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict,
        description="extra template variables seen as env (e.g. READYCTL_MAIL_URL)",
    )
    evidence_chars: int = Field(
        2000, ge=0, description="characters kept per request/response body in evidence"
    )
    max_ms: float | None = Field(
        None,
        gt=0,
        description="latency ceiling of every step without its own expect.max_ms (a slow "
        "release fails its smoke test instead of passing slowly)",
    )


def _names(value: str | tuple[str, ...]) -> list[str]:
    """One name or several, as a list (an empty string is none)."""
    if isinstance(value, str):
        return [value] if value else []
    return list(value)


NO_SUITE = (
    "no smoke suite configured: write the API's critical paths as a suite file and name it in "
    "checks.smoke.scenarios.suite (or inline checks.smoke.scenarios.scenarios); the bundled "
    "suite fits only the counseling demo (include_default)"
)


def suite_from_settings(ctx: Context, s: Settings) -> Suite | None:
    """The suite to run: `suite` files and inline `scenarios`, plus the bundled counseling
    suite when `include_default` is set; None when there is nothing to run."""
    files = _names(s.suite)
    scenarios: list[Any] = []
    suite_vars: dict[str, Any] = {}
    for f in files:
        loaded = load_suite(ctx.resolve(f))
        scenarios += loaded.scenarios
        suite_vars.update(loaded.vars)
    if s.scenarios:
        raw = list(s.scenarios) if isinstance(s.scenarios, tuple) else s.scenarios
        inline = parse_suite(raw, "checks.smoke.scenarios.scenarios")
        scenarios += inline.scenarios
        suite_vars.update(inline.vars)
    if s.include_default:
        base = default_suite()
        scenarios = [*base.scenarios, *scenarios]
        suite_vars = {**base.vars, **suite_vars}
    if not scenarios:
        return None
    try:
        return Suite(vars=suite_vars, scenarios=scenarios)
    except ValueError as e:
        raise ConfigError(f"smoke suite: {e}") from None


def template_env(ctx: Context, s: Settings) -> dict[str, str]:
    """Variables templates see as `env`: readyctl's environment, the managed demo's extras."""
    env = dict(ctx.environ)
    managed = ctx.managed
    if managed is not None and not env.get("READYCTL_OTHER_USERNAME"):
        me = env.get("READYCTL_AUTH_USERNAME", "")
        users = list(getattr(managed, "users", ()) or ())
        my_org = next((u.get("org_id") for u in users if u.get("email") == me), None)
        other = next(
            (u for u in users if u.get("org_id") != my_org and u.get("role") == "member"), None
        )
        if other is not None:
            env["READYCTL_OTHER_USERNAME"] = str(other["email"])
            env["READYCTL_OTHER_PASSWORD"] = str(other["password"])
            ctx.redactor.add(str(other["password"]))
    for k, v in s.env.items():
        env[k] = "" if v is None else str(v)
    return env


class SmokeScenarios(Check):
    """Run the smoke suite; each step is a result, a failed step blocks the rest of its scenario.

    Settings: `suite` (a YAML file or list of files, relative to readyctl.yaml) and/or
    `scenarios` (inline list): the API's critical paths; without either the check skips naming
    `checks.smoke.scenarios.suite`. `include_default: true` adds the bundled counseling-demo
    suite (the managed demo's default shape sets it); `only` (scenario names); `vars`
    (override the suite's vars, e.g. `api: /v1`); `env` (extra template variables, e.g.
    READYCTL_MAIL_URL for a target); `evidence_chars` (2000, per request/response body in
    evidence). The bundled suite reads READYCTL_AUTH_USERNAME/PASSWORD,
    READYCTL_OTHER_USERNAME/PASSWORD, READYCTL_MAIL_URL/TOKEN and READYCTL_WEBHOOK_SECRET; on
    the managed demo they are provided.
    """

    meta = CheckMeta(
        id="smoke.scenarios",
        title="Critical paths work end to end",
        failure_title="A critical path is broken",
        description=(
            "Deploy-day smoke tests catch what unit tests miss: registration mail that never "
            "arrives, crisis messages without resources, forged payment webhooks accepted, one "
            "tenant reading another's sessions. See https://martinfowler.com/bliki/SmokeTest.html."
        ),
        remediation=RemediationSpec(
            text="Open the failed step's evidence (request and response), fix the endpoint, and "
            "re-run `readyctl smoke`; steps after a failed one are blocked until it passes.",
            snippet="checks:\n  smoke.scenarios:\n    suite: smoke/critical-paths.yaml\n"
            "    vars: {api: /v1}",
            link="https://martinfowler.com/bliki/SmokeTest.html",
        ),
        category=Category.SMOKE,
        severity=Severity.CRITICAL,
        requires=(Capability.HTTP,),
        safety=Safety.MUTATING,
        timeout_s=180,
        tags=("smoke", "seed", "deploy-day"),
        refs=("2",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per scenario step (subject scenario/step)."""
        s: Settings = ctx.settings()
        try:
            suite = suite_from_settings(ctx, s)
        except ConfigError as e:
            yield self.errored("*", ErrorReason.CONFIG, str(e))
            return
        if suite is None:
            yield self.skipped("*", NO_SUITE)
            return
        only = _names(s.only)
        unknown = sorted(set(only) - {sc.name for sc in suite.scenarios})
        if unknown:
            yield self.errored("*", ErrorReason.CONFIG, f"only: no scenario named {unknown[0]!r}")
            return
        runner = Runner(
            ctx.http(timeout=15),
            redactor=ctx.redactor,
            env=template_env(ctx, s),
            variables=dict(s.vars),
            remaining=ctx.remaining,
            cancelled=ctx.state.cancelled.is_set,
            evidence_chars=s.evidence_chars,
            run_id=secrets.token_hex(5),
            max_ms=s.max_ms,
        )
        for outcome in runner.run_suite(suite, only):
            yield self._result(outcome)

    def _result(self, o: StepOutcome) -> Result:
        """A step outcome as a result."""
        subject = o.subject
        evidence = {"cleanup": True, **o.evidence} if o.cleanup else dict(o.evidence)
        if o.covers:
            evidence[CRITICAL_PATH_EVIDENCE] = o.covers
        kw: dict[str, Any] = {"evidence": evidence}
        if o.duration_ms is not None:
            kw.update(measured=o.duration_ms, unit="ms")
            if o.max_ms is not None:
                kw["threshold"] = o.max_ms
        if o.status is Status.PASS:
            return self.passed(subject, o.summary, **kw)
        if o.status is Status.FAIL:
            return self.failed(subject, o.summary, **kw)
        if o.status is Status.WARN:
            return self.warned(subject, o.summary, **kw)
        marker = {CRITICAL_PATH_EVIDENCE: o.covers} if o.covers else None
        if o.status is Status.SKIP:
            return self.skipped(subject, o.summary, evidence=marker)
        if o.status is Status.BLOCKED:
            return self.blocked(subject, o.summary, evidence=marker)
        return self.errored(subject, o.error_reason or ErrorReason.BUG, o.summary, **kw)
