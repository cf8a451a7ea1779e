"""backups.rds: RDS automated backups are kept long enough, current, and deletion-protected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

from readyctl import aws
from readyctl.check import (
    Capability,
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


def _one_or_many(value: Any) -> Any:
    """One identifier may be given as a plain string."""
    return (value,) if isinstance(value, str) else value


# one identifier or a list of them
_Name = Annotated[str, StringConstraints(min_length=1)]
Names = Annotated[
    tuple[_Name, ...],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}},
            ]
        }
    ),
]


class Settings(CheckSettings):
    """Settings of backups.rds (the check skips when no instance or cluster is named)."""

    instance: Names = Field((), description="DB instance identifier(s)")
    instances: Names = Field((), description="DB instance identifiers (same as `instance`)")
    cluster: Names = Field((), description="Aurora DB cluster identifier(s)")
    clusters: Names = Field((), description="Aurora DB cluster identifiers (same as `cluster`)")
    min_retention_days: int = Field(
        7, ge=1, description="automated backups must be kept at least this many days"
    )
    max_restore_lag_minutes: float = Field(
        10.0, gt=0, description="the latest restorable time may lag now by at most this"
    )


class RdsBackups(Check):
    """Retention >= 7 days, latest restorable time within 10 minutes, deletion protection.

    Settings (`checks: {backups.rds: {...}}`): `instance` (a DB instance identifier, or a list
    `instances`), `cluster` / `clusters` (Aurora cluster identifiers), `min_retention_days` (7),
    `max_restore_lag_minutes` (10). Skips when no instance or cluster is configured.
    """

    meta = CheckMeta(
        id="backups.rds",
        title="RDS automated backups are healthy",
        failure_title="RDS automated backups are at risk",
        description=(
            "Point-in-time recovery needs automated backups kept long enough to notice a problem "
            "and a restorable time close to now; deletion protection stops one call from "
            "destroying the database and its automated backups. "
            "See https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.html."
        ),
        remediation=RemediationSpec(
            text="Keep automated backups for at least 7 days and turn on deletion protection.",
            snippet=(
                "aws rds modify-db-instance --db-instance-identifier DB "
                "--backup-retention-period 14 --deletion-protection --apply-immediately"
            ),
            link="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.html",
        ),
        category=Category.BACKUPS,
        severity=Severity.HIGH,
        requires=(Capability.AWS,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("backups", "aws", "seed"),
        refs=("7",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Three results per configured instance or cluster."""
        s: Settings = ctx.settings()
        instances = [*s.instances, *s.instance]
        clusters = [*s.clusters, *s.cluster]
        if not instances and not clusters:
            yield self.skipped(
                "*", "no RDS instance configured (checks.backups.rds.instance: IDENTIFIER)"
            )
            return
        min_days = s.min_retention_days
        max_lag = s.max_restore_lag_minutes
        try:
            rds = aws.client(ctx, "rds")
        except Exception as e:
            reason, detail = aws.explain(e, "building the RDS client")
            yield self.errored("*", reason, detail)
            return
        for kind, ids in (("instance", instances), ("cluster", clusters)):
            for ident in dict.fromkeys(ids):
                ctx.check_deadline()
                found = self._describe(rds, kind, ident)
                if isinstance(found, Result):
                    yield found
                    continue
                yield from self._judge(ctx, kind, ident, found, min_days, max_lag)

    def _describe(self, rds: Any, kind: str, ident: str) -> dict[str, Any] | Result:
        """The instance's or cluster's description, or a result saying why there is none."""
        try:
            if kind == "instance":
                got = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
            else:
                got = rds.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"]
        except Exception as e:
            if aws.error_code(e) in ("DBInstanceNotFound", "DBClusterNotFoundFault"):
                return self.failed(ident, f"RDS {kind} {ident} does not exist")
            reason, detail = aws.explain(e, f"describing RDS {kind} {ident}")
            return self.errored(ident, reason, detail)
        if not got:
            return self.failed(ident, f"RDS {kind} {ident} does not exist")
        return dict(got[0])

    def _judge(
        self,
        ctx: Context,
        kind: str,
        ident: str,
        desc: dict[str, Any],
        min_days: int,
        max_lag: float,
    ) -> Iterator[Result]:
        """Retention, restorable time and deletion protection of one description."""
        retention = int(desc.get("BackupRetentionPeriod") or 0)
        subject = f"{ident} retention"
        if retention < min_days:
            off = " (automated backups are off)" if retention == 0 else ""
            yield self.failed(
                subject,
                f"RDS {kind} {ident} keeps automated backups {retention} days, under "
                f"{min_days}{off}",
                measured=retention,
                threshold=min_days,
                unit=" days",
            )
        else:
            yield self.passed(
                subject,
                f"RDS {kind} {ident} keeps automated backups {retention} days",
                measured=retention,
                threshold=min_days,
                unit=" days",
            )
        subject = f"{ident} restorable time"
        latest = desc.get("LatestRestorableTime")
        if not isinstance(latest, dt.datetime):
            yield self.failed(
                subject, f"RDS {kind} {ident} reports no latest restorable time", threshold=max_lag
            )
        else:
            if latest.tzinfo is None:
                latest = latest.replace(tzinfo=dt.UTC)
            lag = round(max(0.0, (ctx.now() - latest).total_seconds() / 60), 1)
            evidence = {"latest_restorable_time": latest.astimezone(dt.UTC).isoformat()}
            if lag > max_lag:
                yield self.failed(
                    subject,
                    f"RDS {kind} {ident} can be restored only to {lag:g} min ago, more than "
                    f"{max_lag:g} min",
                    measured=lag,
                    threshold=max_lag,
                    unit=" min",
                    evidence=evidence,
                )
            else:
                yield self.passed(
                    subject,
                    f"RDS {kind} {ident} can be restored to {lag:g} min ago",
                    measured=lag,
                    threshold=max_lag,
                    unit=" min",
                    evidence=evidence,
                )
        subject = f"{ident} deletion protection"
        if desc.get("DeletionProtection"):
            yield self.passed(subject, f"RDS {kind} {ident} has deletion protection on")
        else:
            yield self.failed(subject, f"RDS {kind} {ident} has deletion protection off")
