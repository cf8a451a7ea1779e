"""backups.s3_bucket: the S3 bucket holding backups has versioning and default encryption."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field
from readyctl.checks.backups._location import (
    LocationError,
    configured_location,
    is_s3,
    parse_s3,
)

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


class Settings(CheckSettings):
    """Settings of backups.s3_bucket."""

    location: str | None = Field(
        None,
        min_length=1,
        description="s3://bucket/prefix of the backups (default: "
        "checks.backups.freshness.location)",
    )


class S3BackupBucket(Check):
    """Versioning (a deleted or overwritten backup can be recovered) and default encryption.

    Settings: `location` (`s3://bucket/prefix`; default: `checks.backups.freshness.location`).
    Skips when the backup location is not on S3. Needs s3:GetBucketVersioning and
    s3:GetEncryptionConfiguration; a 403 is an error naming the missing permission.
    """

    meta = CheckMeta(
        id="backups.s3_bucket",
        title="Backup bucket is versioned and encrypted",
        failure_title="Backup bucket lacks versioning or encryption",
        description=(
            "Without versioning a mistaken or malicious delete or overwrite destroys the backups "
            "too; without default encryption a leaked object exposes the whole database. "
            "See https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html."
        ),
        remediation=RemediationSpec(
            text="Enable versioning and default encryption (SSE-KMS or SSE-S3) on the bucket.",
            snippet=(
                "aws s3api put-bucket-versioning --bucket BUCKET "
                "--versioning-configuration Status=Enabled\n"
                "aws s3api put-bucket-encryption --bucket BUCKET --server-side-encryption-"
                'configuration \'{"Rules":[{"ApplyServerSideEncryptionByDefault":'
                '{"SSEAlgorithm":"aws:kms"}}]}\''
            ),
            link="https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html",
        ),
        category=Category.BACKUPS,
        severity=Severity.HIGH,
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("backups", "aws", "seed"),
        refs=("7",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for versioning and one for default encryption."""
        s: Settings = ctx.settings()
        location, _ = configured_location(ctx, s.location)
        if not location or not is_s3(location):
            why = (
                f"backup location {location} is not on S3"
                if location
                else "no backup location is configured"
            )
            yield self.skipped("bucket", why)
            return
        try:
            bucket, _prefix = parse_s3(location)
            s3 = aws.client(ctx, "s3")
        except LocationError as e:
            yield self.errored("bucket", e.reason, e.detail)
            return
        except Exception as e:
            reason, detail = aws.explain(e, "building the S3 client")
            yield self.errored("bucket", reason, detail)
            return
        yield self._versioning(s3, bucket)
        yield self._encryption(s3, bucket)

    def _versioning(self, s3: Any, bucket: str) -> Result:
        """Versioning must be Enabled (Suspended or never set fails)."""
        subject = f"s3://{bucket} versioning"
        try:
            got = s3.get_bucket_versioning(Bucket=bucket)
        except Exception as e:
            return self._problem(subject, e, f"GetBucketVersioning on {bucket}")
        status = got.get("Status")
        if status == "Enabled":
            mfa = got.get("MFADelete")
            extra = f", MFA delete {mfa.lower()}" if mfa else ""
            return self.passed(subject, f"bucket {bucket} has versioning enabled{extra}")
        said = "suspended" if status == "Suspended" else "never enabled"
        return self.failed(
            subject, f"bucket {bucket} has versioning {said}", measured=status or "off"
        )

    def _encryption(self, s3: Any, bucket: str) -> Result:
        """A default server-side encryption rule must exist."""
        subject = f"s3://{bucket} encryption"
        try:
            got = s3.get_bucket_encryption(Bucket=bucket)
        except Exception as e:
            if aws.error_code(e) == "ServerSideEncryptionConfigurationNotFoundError":
                return self.failed(subject, f"bucket {bucket} has no default encryption")
            return self._problem(subject, e, f"GetBucketEncryption on {bucket}")
        rules = (got.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        algorithms = [
            str((r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm"))
            for r in rules
            if r.get("ApplyServerSideEncryptionByDefault")
        ]
        if not algorithms:
            return self.failed(subject, f"bucket {bucket} has no default encryption rule")
        return self.passed(
            subject,
            f"bucket {bucket} encrypts new objects by default ({', '.join(algorithms)})",
            measured=algorithms[0],
        )

    def _problem(self, subject: str, exc: Exception, action: str) -> Result:
        """A failed S3 call: a missing bucket fails, anything else is an error with a reason."""
        if aws.error_code(exc) == "NoSuchBucket":
            return self.failed(subject, f"{action}: the bucket does not exist")
        reason, detail = aws.explain(exc, action)
        if reason is ErrorReason.BUG:
            reason = ErrorReason.CONNECTIVITY
        return self.errored(subject, reason, detail)
