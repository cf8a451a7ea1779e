"""secrets.manager: every required secret is in the manager, not being deleted, and rotated."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from readyctl import aws
from readyctl.check import (
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result
from readyctl.secretnames import is_secret

PROVIDERS = ("secretsmanager", "ssm", "files")


class Settings(CheckSettings):
    """Settings of secrets.manager."""

    provider: Literal["secretsmanager", "ssm", "files"] | None = Field(
        None,
        description="where the secrets live (default: files with secret_dir, else "
        "secretsmanager when the environment has aws:)",
    )
    secret_dir: str | None = Field(
        None, description="the mounted secrets directory, e.g. /run/secrets"
    )
    secrets: str | tuple[str, ...] | dict[str, str] | None = Field(
        None,
        description="required secrets: names, or a variable -> secret id map (default: the "
        "required env variables that are secret)",
    )
    prefix: str = Field("", description="prepended to each secret name, e.g. counsel/prod/")
    max_age_days: float = Field(
        90.0, gt=0, description="the value must have changed within this many days"
    )

    @field_validator("provider", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class SecretsManager(Check):
    """Existence, deletion state and rotation age of each secret, from metadata only.

    Values are never read: Secrets Manager through DescribeSecret and ListSecretVersionIds
    (the AWSCURRENT version's creation date is when the value last changed), SSM through
    DescribeParameters (type must be SecureString; age is LastModifiedDate), mounted files
    (Docker `/run/secrets`, Kubernetes secret volumes) through stat (size and mtime).

    Settings (`checks: {secrets.manager: {...}}`):
    - `provider`: `secretsmanager`, `ssm` or `files`. Default: `files` when `secret_dir` is
      set, else `secretsmanager` when the environment has `aws:` settings; otherwise skip.
    - `secret_dir`: the mounted secrets directory (e.g. /run/secrets).
    - `secrets`: required secrets, a list of names or a mapping variable -> secret id.
      Default: the required env variables (env.required) that are secret.
    - `prefix`: prepended to each name (`counsel/prod/`, `/counsel/prod/`).
    - `max_age_days` (90): the value must have changed within this many days.
    """

    meta = CheckMeta(
        id="secrets.manager",
        title="Secrets are managed and rotated",
        failure_title="Secrets are missing, deleted or not rotated",
        description=(
            "A secret manager gives access control, an audit trail and rotation; a secret that "
            "is missing, scheduled for deletion or years old breaks deploys or outlives the "
            "people who saw it. See https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html."
        ),
        remediation=RemediationSpec(
            text="Create each required secret in the manager, cancel scheduled deletions, and "
            "rotate values at least every max_age_days (enable automatic rotation).",
            snippet="aws secretsmanager rotate-secret --secret-id counsel/prod/JWT_SECRET",
            link="https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html",
        ),
        category=Category.SECRETS,
        severity=Severity.CRITICAL,
        safety=Safety.READ_ONLY,
        timeout_s=60,
        retryable=True,
        tags=("secrets", "aws", "seed"),
        refs=("3",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per required secret."""
        settings: Settings = ctx.settings()
        provider = settings.provider
        if provider is None:
            if settings.secret_dir:
                provider = "files"
            elif ctx.environment.aws is not None:
                provider = "secretsmanager"
            else:
                yield self.skipped(
                    "*",
                    "no secret manager configured (aws: settings, or "
                    "checks.secrets.manager.secret_dir for mounted secrets)",
                )
                return
        wanted = self._wanted(ctx, settings)
        if not wanted:
            yield self.skipped(
                "*", "no required secret configured (checks.secrets.manager.secrets)"
            )
            return
        max_days = settings.max_age_days
        if provider == "files":
            directory = settings.secret_dir
            if not directory:
                yield self.errored(
                    "*", ErrorReason.CONFIG, "provider files needs secret_dir (e.g. /run/secrets)"
                )
                return
            root = ctx.resolve(directory)
            for ident in wanted:
                yield self._file(ctx, root, ident, max_days)
            return
        try:
            client = aws.client(ctx, provider)
        except Exception as e:
            reason, detail = aws.explain(e, f"building the {provider} client")
            yield self.errored("*", reason, detail)
            return
        for ident in wanted:
            ctx.check_deadline()
            if provider == "ssm":
                yield self._ssm(ctx, client, ident, max_days)
            else:
                yield self._secretsmanager(ctx, client, ident, max_days)

    def _wanted(self, ctx: Context, settings: Settings) -> list[str]:
        """Secret ids to look up, with the prefix applied."""
        prefix = settings.prefix
        named = settings.secrets
        if isinstance(named, dict):
            ids = list(named.values())
        elif isinstance(named, tuple):
            ids = list(named)
        elif isinstance(named, str):
            ids = [named]
        else:
            env = ctx.env_config()
            ids = [name for name in env.required if is_secret(name, rules=env.rules)]
        return list(dict.fromkeys(prefix + i for i in ids))

    def _age(
        self, ctx: Context, ident: str, changed: dt.datetime, max_days: float, where: str, **kw: Any
    ) -> Result:
        """Pass or fail on the age of the current value."""
        if changed.tzinfo is None:
            changed = changed.replace(tzinfo=dt.UTC)
        days = round(max(0.0, (ctx.now() - changed).total_seconds() / 86400), 1)
        evidence = {"changed": changed.astimezone(dt.UTC).isoformat(), **kw}
        if days > max_days:
            return self.failed(
                ident,
                f"{where} {ident} was last rotated {days:g} days ago, more than {max_days:g}",
                measured=days,
                threshold=max_days,
                unit=" days",
                evidence=evidence,
            )
        return self.passed(
            ident,
            f"{where} {ident} exists and was rotated {days:g} days ago",
            measured=days,
            threshold=max_days,
            unit=" days",
            evidence=evidence,
        )

    def _secretsmanager(self, ctx: Context, sm: Any, ident: str, max_days: float) -> Result:
        """DescribeSecret + ListSecretVersionIds: existence, DeletedDate, current version age."""
        where = "secret"
        try:
            desc = sm.describe_secret(SecretId=ident)
        except Exception as e:
            if aws.error_code(e) == "ResourceNotFoundException":
                return self.failed(ident, f"secret {ident} does not exist in Secrets Manager")
            reason, detail = aws.explain(e, f"DescribeSecret {ident}")
            return self.errored(ident, reason, detail)
        deleted = desc.get("DeletedDate")
        if deleted is not None:
            when = deleted.isoformat() if isinstance(deleted, dt.datetime) else str(deleted)
            return self.failed(
                ident,
                f"secret {ident} is scheduled for deletion (deleted date {when})",
                evidence={"deleted_date": when},
            )
        changed = self._current_version_date(sm, ident, desc)
        if changed is None:
            return self.failed(ident, f"secret {ident} has no current version (no value)")
        evidence: dict[str, Any] = {"rotation_enabled": bool(desc.get("RotationEnabled"))}
        if isinstance(desc.get("LastRotatedDate"), dt.datetime):
            evidence["last_rotated"] = desc["LastRotatedDate"].isoformat()
        return self._age(ctx, ident, changed, max_days, where, **evidence)

    def _current_version_date(self, sm: Any, ident: str, desc: dict[str, Any]) -> Any:
        """When the AWSCURRENT value was created (falls back to LastRotatedDate/CreatedDate)."""
        stages = desc.get("VersionIdsToStages") or {}
        current = next((v for v, s in stages.items() if "AWSCURRENT" in (s or [])), None)
        if current is None and stages:
            return None
        dates = [d for d in (desc.get("LastRotatedDate"),) if isinstance(d, dt.datetime)]
        try:
            versions = sm.list_secret_version_ids(SecretId=ident, IncludeDeprecated=False)
            for v in versions.get("Versions") or []:
                if v.get("VersionId") == current and isinstance(v.get("CreatedDate"), dt.datetime):
                    dates.append(v["CreatedDate"])
        except Exception:  # denied or unsupported: fall back to the secret's own dates
            pass
        if not dates and isinstance(desc.get("CreatedDate"), dt.datetime):
            dates.append(desc["CreatedDate"])
        return max(dates) if dates else None

    def _ssm(self, ctx: Context, ssm: Any, ident: str, max_days: float) -> Result:
        """DescribeParameters (no value): existence, SecureString type, LastModifiedDate."""
        try:
            got = (
                ssm.describe_parameters(
                    ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [ident]}]
                ).get("Parameters")
                or []
            )
        except Exception as e:
            reason, detail = aws.explain(e, f"DescribeParameters {ident}")
            return self.errored(ident, reason, detail)
        if not got:
            return self.failed(ident, f"parameter {ident} does not exist in SSM Parameter Store")
        param = got[0]
        kind = str(param.get("Type"))
        if kind != "SecureString":
            return self.failed(
                ident,
                f"parameter {ident} is stored as {kind}, not SecureString (unencrypted)",
                measured=kind,
                threshold="SecureString",
            )
        changed = param.get("LastModifiedDate")
        if not isinstance(changed, dt.datetime):
            return self.errored(
                ident, ErrorReason.INCONCLUSIVE, f"parameter {ident} reports no modification date"
            )
        return self._age(ctx, ident, changed, max_days, "parameter", version=param.get("Version"))

    def _file(self, ctx: Context, root: Path, ident: str, max_days: float) -> Result:
        """A mounted secret file: exists, non-empty, mtime within the age (never opened)."""
        path = root / ident.lstrip("/")
        try:
            st = os.stat(path)  # follows Kubernetes' ..data symlinks
        except FileNotFoundError:
            return self.failed(ident, f"secret file {path} does not exist")
        except OSError as e:
            return self.errored(ident, ErrorReason.CONFIG, f"cannot stat {path}: {e.strerror}")
        if not path.is_file():
            return self.failed(ident, f"secret {path} is not a regular file")
        if st.st_size == 0:
            return self.failed(ident, f"secret file {path} is empty")
        changed = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
        return self._age(ctx, ident, changed, max_days, "secret file", path=str(path))
