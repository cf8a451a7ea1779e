"""env.production: the environment says production, has no debug flags, serves its app on https."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.env._rules import TRUE

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
    """env.production takes no settings (its rules come from the config's `env:` section)."""


class EnvProduction(Check):
    """Production sanity: NODE_ENV/APP_ENV, debug flags, public URLs over https."""

    meta = CheckMeta(
        id="env.production",
        title="Environment is configured for production",
        failure_title="Environment is not configured for production",
        description=(
            "Frameworks switch on verbose errors, auto-reload and permissive defaults unless "
            "told they run in production; a debug flag left on leaks stack traces and secrets. "
            "See https://docs.djangoproject.com/en/stable/howto/deployment/checklist/."
        ),
        remediation=RemediationSpec(
            text="Set NODE_ENV/APP_ENV=production, remove DEBUG-style flags and serve public "
            "URLs over https.",
            snippet="NODE_ENV=production\nAPP_ENV=production\nWEB_APP_URL=https://app.example.org",
            link="https://docs.djangoproject.com/en/stable/howto/deployment/checklist/",
        ),
        category=Category.CONFIG,
        severity=Severity.HIGH,
        requires=(Capability.ENV,),
        tags=("env", "seed"),
        refs=("1", "5"),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Results for the environment name, each debug flag, and each public URL."""
        cfg = ctx.env_config()
        if not ctx.environment.production and ctx.env_name != "default":
            yield self.skipped(
                "*", f"{ctx.env_name} is not a production environment (production: false)"
            )
            return
        values = ctx.env_source().values
        wanted = {v.lower() for v in cfg.production_values}
        named = [n for n in cfg.production_vars if values.get(n)]
        if not named:
            yield self.failed(
                "app_env",
                f"none of {', '.join(cfg.production_vars)} is set; the app cannot tell it is "
                "in production",
            )
        for name in named:
            value = values[name].strip()
            if value.lower() in wanted:
                yield self.passed(name, f"{name} is {value!r}")
            else:
                yield self.failed(name, f"{name} is {value!r}, not production", measured=value)
        for name in cfg.debug_vars:
            value = values.get(name)
            if value is not None and value.strip().lower() in TRUE:
                yield self.failed(name, f"debug flag {name} is on ({value.strip()!r})")
        for name in cfg.public_url_vars:
            value = (values.get(name) or "").strip()
            if not value:
                continue
            if value.lower().startswith("https://"):
                yield self.passed(name, f"{name} uses https")
            else:
                scheme = value.split("://", 1)[0] if "://" in value else "no scheme"
                yield self.failed(name, f"{name} uses {scheme}, not https", measured=scheme)
