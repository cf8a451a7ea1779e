"""infra.blue_green: deploys switch traffic between two target groups (blue-green / canary).

Seed item 17. Evidence: an ELBv2 listener whose default action forwards to two target groups
(weighted). A strategy only declared in readyctl.yaml is a warn: readyctl cannot see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field
from readyctl.checks.infra._aws import (
    TAG_KEY,
    NotReadable,
    aws_configured,
    lb_label,
    load_balancers,
    no_aws_reason,
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
    """Settings of infra.blue_green."""

    load_balancers: tuple[str, ...] = Field(
        (),
        description="ELBv2 load balancers (ARN or name) in front of the API (default: those "
        "tagged `tag_key`=<environment name>)",
    )
    tag_key: str = Field(TAG_KEY, min_length=1, description="tag key used to discover them")
    strategy: Literal["blue_green", "canary", "rolling"] | None = Field(
        None,
        description="the deploy strategy your runbook uses, declared (a warn: not evidence); "
        "default: environments.<env>.deploy.vars.strategy",
    )


class BlueGreen(Check):
    """A listener of the API's load balancer forwards to two weighted target groups.

    Settings: `load_balancers` (ARN or name; default: discovered by the tag
    `readyctl:target=<environment>`), `tag_key`, `strategy` (declared only: warn). Needs
    elasticloadbalancing:DescribeLoadBalancers, DescribeTags and DescribeListeners.
    """

    meta = CheckMeta(
        id="infra.blue_green",
        title="Listener switches between two target groups",
        failure_title="No blue-green switch on the load balancer",
        description=(
            "With two target groups behind one listener a release goes to the idle group and "
            "traffic moves by weight, so a bad release is undone by moving it back. See "
            "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
            "load-balancer-listeners.html#forward-actions."
        ),
        remediation=RemediationSpec(
            text="Give the listener's default action a weighted forward to a blue and a green "
            "target group, and let the deploy move the weights.",
            snippet=(
                "aws elbv2 modify-listener --listener-arn LISTENER --default-actions "
                "'Type=forward,ForwardConfig={TargetGroups=[{TargetGroupArn=BLUE,Weight=100},"
                "{TargetGroupArn=GREEN,Weight=0}]}'"
            ),
            link="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
            "load-balancer-listeners.html#forward-actions",
        ),
        category=Category.OPERATIONS,
        severity=Severity.LOW,
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("infra", "aws", "deploy", "seed"),
        refs=("17",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per load balancer (or for the declared strategy)."""
        s: Settings = ctx.settings()
        strategy = self._strategy(ctx, s)
        if not aws_configured(ctx):
            if s.load_balancers:
                for ref in s.load_balancers:
                    yield self.warned(
                        ref,
                        f"load balancer {ref} is declared in readyctl.yaml but {no_aws_reason(ctx)}"
                        ": readyctl cannot read its listeners",
                    )
            elif strategy:
                yield self._declared(strategy)
            else:
                yield self.skipped("load balancer", no_aws_reason(ctx))
            return
        try:
            elb = aws.client(ctx, "elbv2")
            lbs = load_balancers(ctx, elb, s.load_balancers, s.tag_key)
        except NotReadable as e:
            yield self.warned("load balancer", f"{e}: evidence is only the declaration")
            return
        except Exception as e:
            reason, detail = aws.explain(e, "listing load balancers")
            yield self.errored("load balancer", reason, detail)
            return
        if not lbs:
            if strategy:
                yield self._declared(strategy)
            else:
                yield self.skipped(
                    "load balancer",
                    f"no load balancer named (checks.{self.id}.load_balancers) or tagged "
                    f"{s.tag_key}={ctx.env_name}",
                )
            return
        for lb in lbs:
            yield self._judge(elb, lb)

    @staticmethod
    def _strategy(ctx: Context, s: Settings) -> str | None:
        """The declared strategy: the setting, else the deploy runbook's `strategy` variable."""
        if s.strategy:
            return s.strategy
        deploy = ctx.environment.deploy
        value = deploy.vars.get("strategy") if deploy else None
        return str(value) if value else None

    def _declared(self, strategy: str) -> Result:
        """A strategy declared in readyctl.yaml: a warn, never a pass."""
        return self.warned(
            "deploy strategy",
            f"deploy strategy {strategy} is declared in readyctl.yaml only: no load balancer "
            "evidence was read (set environments.<env>.aws and checks.infra.blue_green."
            "load_balancers)",
            measured=strategy,
        )

    def _judge(self, elb: Any, lb: dict[str, Any]) -> Result:
        """Pass when a listener's default action forwards to two or more target groups."""
        arn = lb["LoadBalancerArn"]
        subject = lb.get("LoadBalancerName") or arn
        try:
            listeners = elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        except Exception as e:
            reason, detail = aws.explain(e, f"DescribeListeners on {arn}")
            if reason is ErrorReason.BUG:
                reason = ErrorReason.CONNECTIVITY
            return self.errored(subject, reason, detail)
        seen = []
        for li in listeners:
            for action in li.get("DefaultActions") or []:
                if action.get("Type") != "forward":
                    continue
                groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
                if not groups and action.get("TargetGroupArn"):
                    groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
                seen.append(len(groups))
                if len(groups) >= 2:
                    names = [g["TargetGroupArn"].split("/")[-2] for g in groups]
                    weights = "/".join(str(g.get("Weight", "?")) for g in groups)
                    return self.passed(
                        subject,
                        f"listener {li.get('Protocol', '')}:{li.get('Port', '')} of "
                        f"{lb_label(lb)} forwards to {', '.join(names)} (weights {weights})",
                        measured=len(groups),
                        threshold=2,
                        evidence={
                            "load_balancer": arn,
                            "listener": li.get("ListenerArn"),
                            "target_groups": [g["TargetGroupArn"] for g in groups],
                        },
                    )
        return self.failed(
            subject,
            f"no listener of {lb_label(lb)} forwards to two target groups "
            f"({len(listeners)} listeners; target groups per forward: {seen or 'none'})",
            measured=max(seen, default=0),
            threshold=2,
            evidence={"load_balancer": arn, "listeners": [x.get("ListenerArn") for x in listeners]},
        )
