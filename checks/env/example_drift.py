"""env.example_drift: the env file and .env.example document the same variables."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Severity,
)
from readyctl.context import Context, read_env_file
from readyctl.result import Result


class Settings(CheckSettings):
    """env.example_drift takes no settings (its rules come from the config's `env:` section)."""


class EnvExampleDrift(Check):
    """Drift in both directions: documented but unset, set but undocumented."""

    meta = CheckMeta(
        id="env.example_drift",
        title=".env.example matches the environment",
        failure_title=".env.example has drifted from the environment",
        description=(
            "The example file is how the next engineer learns what the service needs. A "
            "variable documented but unset breaks a feature; one set but undocumented is lost "
            "at the next environment rebuild."
        ),
        remediation=RemediationSpec(
            text="Add undocumented variables to .env.example (with a placeholder value) and set "
            "or remove the documented ones that are missing.",
            link="https://12factor.net/config",
        ),
        category=Category.CONFIG,
        severity=Severity.LOW,
        requires=(Capability.ENV,),
        tags=("env", "seed"),
        refs=("1",),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per drifting variable, or one pass."""
        src = ctx.env_source()
        example = ctx.example_path()
        if not example.is_file():
            yield self.skipped("*", f"no example file at {example}; set env.example_file")
            return
        if src.file is None:
            yield self.skipped(
                "*", "drift is checked for env files; the process environment has no file"
            )
            return
        documented = set(read_env_file(example))
        actual = {k for k, v in src.values.items() if v is not None}
        ignored = set(ctx.config.env.ignore_undocumented)
        unset = sorted(documented - actual)
        undocumented = sorted(actual - documented - ignored)
        for name in unset:
            yield self.failed(
                name, f"{name} is documented in {example.name} but not set in {src.file.name}"
            )
        for name in undocumented:
            yield self.failed(
                name, f"{name} is set in {src.file.name} but not documented in {example.name}"
            )
        if not unset and not undocumented:
            yield self.passed(
                example.name,
                f"{src.file.name} and {example.name} list the same {len(actual)} variables",
            )
