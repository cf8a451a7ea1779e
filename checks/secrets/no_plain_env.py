"""secrets.no_plain_env: production does not read its secrets from a plain .env file."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

from readyctl.check import Capability, Category, Check, CheckMeta, RemediationSpec, Severity
from readyctl.context import Context, read_env_file
from readyctl.redact import is_secret_name
from readyctl.result import ErrorReason, Result

MAX_NAMES = 8


def _inside_git_checkout(path: Path) -> Path | None:
    """The work tree (a directory holding .git) that contains `path`, if any."""
    for parent in path.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None


class NoPlainEnv(Check):
    """Secret-looking variables come from a manager or the platform, not a hand-kept .env file.

    An env file passes only when it is *platform-rendered*: written at deploy time by the
    platform or a secret-manager agent (Vault Agent, external-secrets, systemd credentials,
    readyctl's managed demo), kept outside any git work tree and readable by its owner only
    (mode 0600). Any other env file that holds secret-looking variables (names matching
    readyctl's secret pattern, or rules marked `secret: true`) fails.

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

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the environment's env file."""
        env = ctx.environment
        if not env.production:
            yield self.skipped("env file", f"{ctx.env_name} is not a production environment")
            return
        settings = ctx.settings()
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
        rules = ctx.config.env.rules
        allowed = {str(a) for a in settings.get("allow", []) or []}
        secret_names = sorted(
            name
            for name, value in source.values.items()
            if value
            and name not in allowed
            and (
                rules[name].secret
                if name in rules and rules[name].secret is not None
                else is_secret_name(name)
            )
        )
        # only names, never values, leave this check
        in_file = set(read_env_file(path))
        secret_names = [n for n in secret_names if n in in_file]
        if not secret_names:
            yield self.passed("env file", f"env file {path.name} holds no secret-looking variable")
            return
        shown = ", ".join(secret_names[:MAX_NAMES]) + (
            f" and {len(secret_names) - MAX_NAMES} more" if len(secret_names) > MAX_NAMES else ""
        )
        evidence = {"file": str(path), "secret_variables": secret_names}
        mode = stat.S_IMODE(path.stat().st_mode)
        evidence["mode"] = f"{mode:04o}"
        checkout = _inside_git_checkout(path)
        rendered = settings.get("platform_rendered")
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
