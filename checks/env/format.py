"""env.format: variables match their declared type (url, https_url, postgres_dsn, email, ...)."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.env._rules import is_secret, type_problem

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
    """env.format takes no settings (its rules come from the config's `env:` section)."""


class EnvFormat(Check):
    """Each variable with a rule has a value of the rule's type and length."""

    meta = CheckMeta(
        id="env.format",
        title="Environment variables have valid formats",
        failure_title="Environment variables have invalid formats",
        description=(
            "A malformed URL, DSN, email or number is accepted silently by most frameworks and "
            "breaks only when first used. Validating formats at deploy time turns a late outage "
            "into an early, named error."
        ),
        remediation=RemediationSpec(
            text="Fix the value so it matches the declared type (readyctl explain env.format "
            "lists the types); declare rules under env.rules in readyctl.yaml.",
            snippet="env:\n  rules:\n    WEB_APP_URL: {type: https_url}\n"
            "    PORT: {type: int, min: 1, max: 65535}",
            link="https://docs.pydantic.dev/latest/concepts/pydantic_settings/",
        ),
        category=Category.CONFIG,
        severity=Severity.HIGH,
        requires=(Capability.ENV,),
        tags=("env", "seed"),
        refs=("1",),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per variable that has a rule and a value."""
        src = ctx.env_source()
        checked = 0
        for name, rule in sorted(ctx.env_config().rules.items()):
            value = src.values.get(name)
            if value is None or not value.strip():
                continue  # absence is env.required's finding
            if rule.type == "str" and (is_secret(name, rule, value) or rule.min_length is None):
                continue  # a secret's length is env.secret_strength's finding
            checked += 1
            problem = type_problem(rule, value)
            # redacted before it is shortened: a cut URL password no longer matches its mask
            shown = "" if is_secret(name, rule, value) else f" ({ctx.redactor.clip(value, 60)!r})"
            if problem:
                yield self.failed(
                    name, f"{name} {problem}{shown}", threshold=rule.type, measured="invalid"
                )
            else:
                yield self.passed(name, f"{name} is a valid {rule.type}")
        if not checked:
            yield self.skipped("*", "no variable with a format rule has a value")
