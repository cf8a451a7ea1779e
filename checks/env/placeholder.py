"""env.placeholder: no variable holds a placeholder such as changeme or your-key-here."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.env._rules import is_secret, looks_placeholder, required_names

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
    """env.placeholder takes no settings (its rules come from the config's `env:` section)."""


class EnvPlaceholder(Check):
    """Placeholder values copied from .env.example never reach production."""

    meta = CheckMeta(
        id="env.placeholder",
        title="No placeholder values in the environment",
        failure_title="Placeholder values in the environment",
        description=(
            "Values like changeme or your-key-here are copied from examples and left behind; "
            "as secrets they are public knowledge, as settings they point nowhere."
        ),
        remediation=RemediationSpec(
            text="Replace the placeholder with the real value from your secret store; "
            "generate secrets with a CSPRNG.",
            snippet="python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            link="https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html",
        ),
        category=Category.SECRETS,
        severity=Severity.CRITICAL,
        requires=(Capability.ENV,),
        tags=("env", "seed", "secrets"),
        refs=("1", "3"),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Check the required and ruled variables; one result each."""
        env_cfg = ctx.env_config()
        src = ctx.env_source()
        names = list(dict.fromkeys([*required_names(env_cfg), *env_cfg.rules]))
        placeholders = list(env_cfg.placeholders)
        seen = 0
        for name in names:
            value = src.values.get(name)
            if not value or not value.strip():
                continue
            seen += 1
            rule = env_cfg.rules.get(name)
            extra = list(rule.forbidden) if rule else []
            hit = looks_placeholder(value, placeholders + extra)
            if hit is None and extra and value.strip() in extra:
                hit = value.strip()
            if hit:
                what = "a placeholder" if is_secret(name, rule, value) else f"placeholder {hit!r}"
                yield self.failed(name, f"{name} holds {what}", measured="placeholder")
            else:
                yield self.passed(name, f"{name} holds no placeholder")
        if not seen:
            yield self.skipped("*", "no variable to inspect has a value")
