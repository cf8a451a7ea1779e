"""backups.freshness: the newest backup is younger than the RPO and not suspiciously small."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.backups._location import (
    LocationError,
    configured_location,
    is_s3,
    list_backups,
    local_dir,
)

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
from readyctl.result import Result

FUTURE_SKEW_H = 0.25


class Settings(CheckSettings):
    """Settings of backups.freshness (its `location` is also the other backup checks' default)."""

    location: str | None = Field(
        None,
        min_length=1,
        description="file:///dir, a config-relative path or s3://bucket/prefix (default: the "
        "managed demo's backup directory; elsewhere the check skips)",
    )
    rpo_hours: float = Field(26.0, gt=0, description="the newest backup must be younger than this")
    pattern: str = Field(
        "*",
        min_length=1,
        description="file-name glob of backups (hidden and partial files never count)",
    )
    recursive: bool = Field(
        False, description="also look in sub-directories (S3: below the prefix)"
    )
    min_size_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the newest backup must be at least this share of the median earlier size",
    )
    size_window: int = Field(
        5, ge=1, description="how many earlier backups the median size is taken over"
    )


class BackupFreshness(Check):
    """The newest backup in the configured location is within the RPO and of a normal size.

    Settings (`checks: {backups.freshness: {...}}`):
    - `location`: `file:///var/backups/db`, a config-relative path, or `s3://bucket/prefix`
      (S3 through boto3 with the environment's `aws:` settings). Default on the managed demo:
      its backup directory; elsewhere the check skips until one is configured.
    - `rpo_hours` (26): the newest backup must be younger than this, by the run's clock.
    - `pattern` ("*"): file-name glob of backups; hidden and partial files (.tmp, .part) never
      count.
    - `recursive` (false): also look in sub-directories (for S3: below the prefix).
    - `min_size_ratio` (0.5) and `size_window` (5): the newest backup must not be under this
      share of the median size of the previous `size_window` backups.
    """

    meta = CheckMeta(
        id="backups.freshness",
        title="Newest backup is within the RPO",
        failure_title="Backups are missing, stale or truncated",
        description=(
            "A backup older than the recovery point objective means that much data is lost in a "
            "disaster, and a backup much smaller than the ones before it is usually truncated. "
            "See https://www.postgresql.org/docs/current/backup.html."
        ),
        remediation=RemediationSpec(
            text="Schedule a logical backup (pg_dump -Fc) at least daily into the backup location "
            "and alert when a run fails or its output shrinks.",
            snippet=(
                '0 2 * * * pg_dump -Fc "$DATABASE_URL" -f /var/backups/db/app-$(date +%F).dump'
            ),
            link="https://www.postgresql.org/docs/current/app-pgdump.html",
        ),
        category=Category.BACKUPS,
        severity=Severity.CRITICAL,
        safety=Safety.READ_ONLY,
        timeout_s=60,
        retryable=True,
        tags=("backups", "seed"),
        refs=("7",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the newest backup's age and one for its size."""
        s: Settings = ctx.settings()
        location, _origin = configured_location(ctx, s.location)
        if not location:
            yield self.skipped(
                "age",
                "no backup location configured (checks.backups.freshness.location: "
                "file:///path or s3://bucket/prefix)",
            )
            return
        rpo_h = s.rpo_hours
        ratio_min = s.min_size_ratio
        window = s.size_window
        try:
            backups = list_backups(ctx, location, pattern=s.pattern, recursive=s.recursive)
        except LocationError as e:
            yield self.errored("age", e.reason, e.detail)
            return
        if not backups:
            missing = ""
            if not is_s3(location) and not local_dir(ctx, location).exists():
                missing = " (the directory does not exist)"
            yield self.failed(
                "age",
                f"no backup found in {location}{missing}",
                threshold=rpo_h,
                unit=" h",
                evidence={"location": location},
            )
            return
        newest = backups[0]
        age_h = (ctx.now() - newest.modified).total_seconds() / 3600
        evidence = {
            "location": location,
            "newest": newest.name,
            "modified": newest.modified.isoformat(),
            "size_bytes": newest.size,
            "backups_found": len(backups),
        }
        shown = round(age_h, 2)
        if age_h < -FUTURE_SKEW_H:
            yield self.warned(
                "age",
                f"newest backup {newest.name} is dated {-shown:g} h in the future (clock skew?)",
                measured=shown,
                threshold=rpo_h,
                unit=" h",
                evidence=evidence,
            )
        elif age_h > rpo_h:
            yield self.failed(
                "age",
                f"newest backup {newest.name} is {shown:g} h old, older than the RPO of "
                f"{rpo_h:g} h",
                measured=shown,
                threshold=rpo_h,
                unit=" h",
                evidence=evidence,
            )
        else:
            yield self.passed(
                "age",
                f"newest backup {newest.name} is {max(shown, 0):g} h old (RPO {rpo_h:g} h)",
                measured=max(shown, 0),
                threshold=rpo_h,
                unit=" h",
                evidence=evidence,
            )
        previous = [b.size for b in backups[1 : 1 + window]]
        yield self._size(newest.name, newest.size, previous, ratio_min)

    def _size(self, name: str, size: int, previous: list[int], ratio_min: float) -> Result:
        """The newest backup's size against the median of the ones before it."""
        if size <= 0:
            return self.failed("size", f"newest backup {name} is empty (0 bytes)", measured=0)
        if not previous:
            return self.skipped("size", f"{name} is the only backup; no earlier size to compare")
        median = statistics.median(previous)
        if median <= 0:
            return self.skipped("size", "the earlier backups are empty; no size to compare with")
        ratio = round(size / median, 3)
        evidence = {"size_bytes": size, "median_previous_bytes": median, "previous": previous}
        if ratio < ratio_min:
            return self.failed(
                "size",
                f"newest backup {name} is {size} bytes, {ratio:.0%} of the median of the "
                f"previous {len(previous)} ({median:.0f} bytes)",
                measured=ratio,
                threshold=ratio_min,
                evidence=evidence,
            )
        return self.passed(
            "size",
            f"newest backup {name} is {size} bytes, {ratio:.0%} of the median of the previous "
            f"{len(previous)}",
            measured=ratio,
            threshold=ratio_min,
            evidence=evidence,
        )
