"""infra.autoscaling: the API scales out under load and never runs on a single instance.

Seed item 18. Evidence: an Auto Scaling group with MinSize >= 2 and a scaling policy, or an
ECS service with desiredCount >= 2 and an Application Auto Scaling target with a policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field
from readyctl.checks.infra._aws import TAG_KEY, aws_configured, no_aws_reason, unreadable

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

ECS_DIMENSION = "ecs:service:DesiredCount"
MAX_LISTED = 500  # ECS services looked at for tags


class Settings(CheckSettings):
    """Settings of infra.autoscaling."""

    asg_names: tuple[str, ...] = Field(
        (),
        description="Auto Scaling group names (default: groups tagged `tag_key`=<environment>)",
    )
    ecs_services: tuple[str, ...] = Field(
        (),
        description="ECS services as cluster/service (e.g. api/web); default: services tagged "
        "`tag_key`=<environment> when no group is named either",
    )
    min_capacity: int = Field(2, ge=1, description="the fewest instances or tasks allowed")
    tag_key: str = Field(
        TAG_KEY, min_length=1, description="tag key used to discover groups and services"
    )


class AutoScaling(Check):
    """MinSize (or desiredCount and the scalable target's MinCapacity) >= 2, and a policy.

    Settings: `asg_names`, `ecs_services` (`cluster/service`), `min_capacity` (2), `tag_key`.
    Without names, Auto Scaling groups and ECS services tagged `readyctl:target=<environment>`
    are judged. Needs autoscaling:Describe*, ecs:List*/DescribeServices and
    application-autoscaling:Describe*.
    """

    meta = CheckMeta(
        id="infra.autoscaling",
        title="API scales out and keeps two instances",
        failure_title="API cannot scale or runs on one instance",
        description=(
            "One instance is an outage waiting for a deploy or a host failure, and a fixed "
            "count cannot absorb a traffic spike. See "
            "https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scale-based-on-demand.html."
        ),
        remediation=RemediationSpec(
            text="Set the group's (or service's) minimum to 2 or more and attach a target "
            "tracking policy (CPU or requests per target).",
            snippet=(
                "aws autoscaling update-auto-scaling-group --auto-scaling-group-name api "
                "--min-size 2\n"
                "aws autoscaling put-scaling-policy --auto-scaling-group-name api --policy-name "
                "cpu50 --policy-type TargetTrackingScaling --target-tracking-configuration "
                '\'{"PredefinedMetricSpecification":{"PredefinedMetricType":'
                '"ASGAverageCPUUtilization"},"TargetValue":50}\''
            ),
            link="https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scale-based-on-demand.html",
        ),
        category=Category.OPERATIONS,
        severity=Severity.LOW,
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("infra", "aws", "seed"),
        refs=("18",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per Auto Scaling group and per ECS service."""
        s: Settings = ctx.settings()
        declared = [*s.asg_names, *s.ecs_services]
        if not aws_configured(ctx):
            for ref in declared:
                yield self.warned(
                    ref,
                    f"{ref} is declared in readyctl.yaml but {no_aws_reason(ctx)}: readyctl "
                    "cannot read its capacity or policies",
                )
            if not declared:
                yield self.skipped("auto scaling", no_aws_reason(ctx))
            return
        try:
            asg = aws.client(ctx, "autoscaling")
            names = list(s.asg_names) or self._tagged(ctx, asg, s.tag_key)
        except Exception as e:
            reason, detail = aws.explain(e, "listing Auto Scaling groups")
            yield self.errored("auto scaling", reason, detail)
            return
        services = list(s.ecs_services)
        unlisted = ""
        if not services and not s.asg_names:
            try:
                services = self._tagged_services(ctx, s.tag_key)
            except Exception as e:  # an account without ECS: the groups still count
                unlisted = f" (ECS services could not be listed: {aws.explain(e, 'ECS')[1]})"
        if not names and not services:
            yield self.skipped(
                "auto scaling",
                f"no Auto Scaling group or ECS service named (checks.{self.id}.asg_names, "
                f"checks.{self.id}.ecs_services) or tagged {s.tag_key}={ctx.env_name}" + unlisted,
            )
            return
        for name in names:
            yield self._guard(name, lambda n=name: self._group(asg, n, s))
        for ref in services:
            yield self._guard(ref, lambda r=ref: self._service(ctx, r, s))

    def _guard(self, subject: str, judge: Any) -> Result:
        """Run one judgement; a declared resource that cannot be read is a warn."""
        try:
            return judge()
        except LookupError as e:
            return self.warned(subject, f"{e}: evidence is only the declaration")
        except Exception as e:
            try:
                return self.warned(
                    subject, f"{unreadable(e, subject)}: evidence is only the declaration"
                )
            except Exception:
                reason, detail = aws.explain(e, f"reading {subject}")
                if reason is ErrorReason.BUG:
                    reason = ErrorReason.CONNECTIVITY
                return self.errored(subject, reason, detail)

    @staticmethod
    def _tagged(ctx: Context, asg: Any, tag_key: str) -> list[str]:
        """Names of the groups tagged tag_key=<environment>."""
        filters = [
            {"Name": "key", "Values": [tag_key]},
            {"Name": "value", "Values": [ctx.env_name]},
        ]
        tags = asg.describe_tags(Filters=filters).get("Tags") or []
        return sorted(
            {t["ResourceId"] for t in tags if t.get("ResourceType") == "auto-scaling-group"}
        )

    @staticmethod
    def _tagged_services(ctx: Context, tag_key: str) -> list[str]:
        """`cluster/service` of the ECS services tagged tag_key=<environment> (at most
        MAX_LISTED services looked at)."""
        ecs = aws.client(ctx, "ecs")
        found: list[str] = []
        seen = 0
        for cluster_arn in ecs.list_clusters().get("clusterArns") or []:
            arns = ecs.list_services(cluster=cluster_arn, maxResults=100).get("serviceArns") or []
            for i in range(0, len(arns), 10):
                if seen >= MAX_LISTED:
                    return sorted(found)
                chunk = arns[i : i + 10]
                seen += len(chunk)
                described = (
                    ecs.describe_services(
                        cluster=cluster_arn, services=chunk, include=["TAGS"]
                    ).get("services")
                    or []
                )
                for svc in described:
                    tags = {t.get("key"): t.get("value") for t in svc.get("tags") or []}
                    if tags.get(tag_key) == ctx.env_name and svc.get("status") != "INACTIVE":
                        cluster = cluster_arn.rsplit("/", 1)[-1]
                        found.append(f"{cluster}/{svc['serviceName']}")
        return sorted(found)

    def _group(self, asg: Any, name: str, s: Settings) -> Result:
        """MinSize >= min_capacity and at least one scaling policy."""
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"Auto Scaling group {name} was not found in AWS")
        g = groups[0]
        arn = g.get("AutoScalingGroupARN", name)
        policies = asg.describe_policies(AutoScalingGroupName=name).get("ScalingPolicies") or []
        return self._verdict(
            name,
            f"Auto Scaling group {name}",
            int(g.get("MinSize", 0)),
            int(g.get("MaxSize", 0)),
            [p.get("PolicyName", "?") for p in policies],
            s,
            {"arn": arn},
        )

    def _service(self, ctx: Context, ref: str, s: Settings) -> Result:
        """desiredCount >= min_capacity, a scalable target (MinCapacity too) and a policy."""
        cluster, _, service = ref.partition("/")
        if not service:
            raise LookupError(f"ECS service {ref!r} is not written as cluster/service")
        ecs = aws.client(ctx, "ecs")
        found = ecs.describe_services(cluster=cluster, services=[service]).get("services") or []
        found = [x for x in found if x.get("status") != "INACTIVE"]
        if not found:
            raise LookupError(f"ECS service {ref} was not found in AWS")
        svc = found[0]
        arn = svc.get("serviceArn", ref)
        aas = aws.client(ctx, "application-autoscaling")
        resource = f"service/{cluster}/{service}"
        targets = (
            aas.describe_scalable_targets(
                ServiceNamespace="ecs", ResourceIds=[resource], ScalableDimension=ECS_DIMENSION
            ).get("ScalableTargets")
            or []
        )
        policies = (
            aas.describe_scaling_policies(
                ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=ECS_DIMENSION
            ).get("ScalingPolicies")
            or []
        )
        desired = int(svc.get("desiredCount", 0))
        if not targets:
            return self.failed(
                ref,
                f"ECS service {arn} has no Application Auto Scaling target: its "
                f"{desired} tasks never change with load",
                measured=desired,
                threshold=s.min_capacity,
                evidence={"arn": arn},
            )
        t = targets[0]
        low = min(desired, int(t.get("MinCapacity", 0)))
        return self._verdict(
            ref,
            f"ECS service {arn}",
            low,
            int(t.get("MaxCapacity", 0)),
            [p.get("PolicyName", "?") for p in policies],
            s,
            {"arn": arn, "scalable_target": t.get("ScalableTargetARN")},
        )

    def _verdict(
        self,
        subject: str,
        label: str,
        minimum: int,
        maximum: int,
        policies: list[str],
        s: Settings,
        evidence: dict[str, Any],
    ) -> Result:
        """Judge a minimum and the policies."""
        ev = {**evidence, "min": minimum, "max": maximum, "policies": policies}
        problems = []
        if minimum < s.min_capacity:
            problems.append(f"its minimum is {minimum} (at least {s.min_capacity} wanted)")
        if not policies:
            problems.append("it has no scaling policy")
        if problems:
            return self.failed(
                subject,
                f"{label}: {' and '.join(problems)}",
                measured=minimum,
                threshold=s.min_capacity,
                evidence=ev,
            )
        return self.passed(
            subject,
            f"{label} keeps {minimum}-{maximum} and scales by {', '.join(policies)}",
            measured=minimum,
            threshold=s.min_capacity,
            evidence=ev,
        )
