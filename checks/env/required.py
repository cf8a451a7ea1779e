"""env.required: every required variable is present and non-empty (seed item 1)."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.env._rules import required_names

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Severity,
)
from readyctl.context import Context
from readyctl.result import Result


class Settings(CheckSettings):
    """env.required takes no settings (its rules come from the config's `env:` section)."""


class EnvRequired(Check):
    """Required variables present and non-empty."""

    meta = CheckMeta(
        id="env.required",
        title="Required environment variables are set",
        failure_title="Required environment variables are missing",
        description=(
            "A service that starts without its database URL, signing secret or provider keys "
            "fails at the first request that needs them, in production, not at deploy time. "
            "See https://12factor.net/config."
        ),
        remediation=RemediationSpec(
            text="Set every listed variable in the deployment's environment or secret store; "
            "fail fast at startup when one is missing.",
            snippet="required = ['DATABASE_URL', 'JWT_SECRET', ...]\n"
            "missing = [k for k in required if not os.environ.get(k)]\n"
            "if missing: raise SystemExit(f'missing env: {missing}')",
            link="https://12factor.net/config",
        ),
        category=Category.CONFIG,
        severity=Severity.CRITICAL,
        requires=(Capability.ENV,),
        tags=("env", "seed"),
        refs=("1",),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per required variable."""
        src = ctx.env_source()
        names = required_names(ctx.env_config())
        if not names:
            yield self.skipped(
                "*",
                "no required variables known: set env.required or env.preset (counseling), "
                "or document the variables in a .env.example",
            )
            return
        for name in names:
            value = src.values.get(name)
            if value is None:
                yield self.failed(name, f"{name} is not set in {src.origin}")
            elif not value.strip():
                yield self.failed(name, f"{name} is set but empty in {src.origin}")
            else:
                yield self.passed(name, f"{name} is set")
