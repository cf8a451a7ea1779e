"""secrets.no_plain_env: production does not read its secrets from a plain .env file."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

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
from readyctl.result import ErrorReason, Result
from readyctl.secretnames import is_secret, settings_not_secrets

MAX_NAMES = 8


def _inside_git_checkout(path: Path) -> Path | None:
    """The work tree (a directory holding .git) that contains `path`, if any."""
    for parent in path.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None


class Settings(CheckSettings):
    """Settings of secrets.no_plain_env."""

    platform_rendered: bool | None = Field(
        None,
        description="the env file is rendered at deploy time from a secret manager (default: "
        "true against the managed demo, false elsewhere)",
    )
    allow: tuple[str, ...] = Field(
        (), description="variable names that look secret but are not, e.g. TOKEN_TTL_SECONDS"
    )


class NoPlainEnv(Check):
    """Secret-looking variables come from a manager or the platform, not a hand-kept .env file.

    An env file passes only when it is *platform-rendered*: written at deploy time by the
    platform or a secret-manager agent (Vault Agent, external-secrets, systemd credentials,
    readyctl's managed demo), kept outside any git work tree and readable by its owner only
    (mode 0600). Any other env file that holds secrets fails. Which variables are secrets is
    decided by readyctl.secretnames: an env rule's `secret:` wins, a well-known secret value
    (sk_live_..., a URL with a password) always counts, and settings about secrets such as
    AUTH_JWT_TOKEN_EXPIRES_IN=15m do not (the evidence lists them under `not_secret`).

    Settings (`checks: {secrets.no_plain_env: {...}}`):
    - `platform_rendered`: the env file is rendered at deploy time from a secret manager.
      Default: true against the managed demo (readyctl's launcher renders its env file from
      freshly generated secrets into a private 0600 file in a temporary directory), false
      elsewhere.
    - `allow`: variable names that look secret but are not (e.g. `TOKEN_TTL_SECONDS`).
    Environments with `production: false` skip.
    """

    meta = CheckMeta(
        id="secrets.no_plain_env",
        title="Production reads no secrets from a plain .env",
        failure_title="Production reads secrets from a plain .env",
        description=(
            "Secrets in a hand-kept .env file are copied into images, backups and laptops, are "
            "never rotated, and leave no audit trail of who read them. "
            "See https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html."
        ),
        remediation=RemediationSpec(
            text="Keep secrets in a secret manager (AWS Secrets Manager, SSM SecureString, Vault, "
            "Kubernetes/Docker secrets) and inject them at deploy time; if an agent renders the "
            "env file, keep it 0600 outside the repository and set platform_rendered: true.",
            snippet="checks:\n  secrets.no_plain_env: {platform_rendered: true}\n"
            "  secrets.manager: {provider: secretsmanager, prefix: counsel/prod/}",
            link="https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html",
        ),
        category=Category.SECRETS,
        severity=Severity.HIGH,
        requires=(Capability.ENV,),
        timeout_s=10,
        tags=("secrets", "env", "seed"),
        refs=("3",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the environment's env file."""
        env = ctx.environment
        if not env.production:
            yield self.skipped("env file", f"{ctx.env_name} is not a production environment")
            return
        settings: Settings = ctx.settings()
        if not env.env_file or env.env_source == "process":
            yield self.passed(
                "env file", "production reads its variables from the process environment"
            )
            return
        source = ctx.env_source()
        path = source.file
        if path is None or not path.is_file():
            yield self.errored("env file", ErrorReason.CONFIG, f"env file {path} does not exist")
            return
        rules = ctx.env_config().rules
        allowed = set(settings.allow)
        secret_names = sorted(
            name
            for name, value in source.values.items()
            if value and name not in allowed and is_secret(name, value, rules=rules)
        )
        # only names, never values, leave this check
        in_file = set(read_env_file(path))
        secret_names = [n for n in secret_names if n in in_file]
        # names that look secret but hold settings (AUTH_JWT_TOKEN_EXPIRES_IN=15m), with why
        not_secret = settings_not_secrets(
            {n: v for n, v in source.values.items() if n in in_file}, rules=rules
        )
        if not secret_names:
            yield self.passed(
                "env file",
                f"env file {path.name} holds no secret-looking variable",
                evidence={"file": str(path), "not_secret": not_secret} if not_secret else {},
            )
            return
        shown = ", ".join(secret_names[:MAX_NAMES]) + (
            f" and {len(secret_names) - MAX_NAMES} more" if len(secret_names) > MAX_NAMES else ""
        )
        evidence = {"file": str(path), "secret_variables": secret_names}
        if not_secret:
            evidence["not_secret"] = not_secret
        mode = stat.S_IMODE(path.stat().st_mode)
        evidence["mode"] = f"{mode:04o}"
        checkout = _inside_git_checkout(path)
        rendered = settings.platform_rendered
        if rendered is None:
            rendered = ctx.managed is not None
        if checkout is not None:
            yield self.failed(
                "env file",
                f"env file {path.name} inside the git work tree {checkout} holds "
                f"{len(secret_names)} secrets ({shown})",
                measured=len(secret_names),
                evidence=evidence,
            )
        elif not rendered:
            yield self.failed(
                "env file",
                f"production reads {len(secret_names)} secrets ({shown}) from the plain env file "
                f"{path}",
                measured=len(secret_names),
                evidence=evidence,
            )
        elif mode & 0o077:
            yield self.failed(
                "env file",
                f"platform-rendered env file {path} has mode {mode:04o}; other users can read its "
                f"{len(secret_names)} secrets",
                measured=f"{mode:04o}",
                threshold="0600",
                evidence=evidence,
            )
        else:
            yield self.passed(
                "env file",
                f"env file {path.name} is platform-rendered (mode {mode:04o}, outside any git "
                f"work tree) with {len(secret_names)} secrets",
                evidence=evidence,
            )
