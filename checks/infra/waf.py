"""infra.waf: a WAFv2 web ACL with a rate-based rule protects the API's load balancer.

Seed item 19. Evidence: GetWebACLForResource on the load balancer (named, else the one
infra.blue_green names, else tagged `readyctl:target=<environment>`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

BLUE_GREEN = "infra.blue_green"


class Settings(CheckSettings):
    """Settings of infra.waf."""

    load_balancers: tuple[str, ...] = Field(
        (),
        description="ELBv2 load balancers (ARN or name) the web ACL must protect (default: "
        "checks.infra.blue_green.load_balancers, else those tagged `tag_key`=<environment>)",
    )
    web_acl: str | None = Field(
        None,
        min_length=1,
        description="the web ACL's name, declared (without AWS evidence this is a warn)",
    )
    tag_key: str = Field(TAG_KEY, min_length=1, description="tag key used to discover them")


class Waf(Check):
    """The load balancer has a WAFv2 web ACL with a blocking rate-based rule.

    Settings: `load_balancers` (default: infra.blue_green's, else discovered by tag),
    `web_acl` (declared only: warn), `tag_key`. A rate-based rule that only counts is a warn.
    Needs wafv2:GetWebACLForResource and elasticloadbalancing:Describe*.
    """

    meta = CheckMeta(
        id="infra.waf",
        title="Web ACL with a rate-based rule guards the API",
        failure_title="No WAF rate-based rule in front of the API",
        description=(
            "A web application firewall drops floods and known exploit patterns before they "
            "reach the application; a rate-based rule caps what one client can send. See "
            "https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based.html."
        ),
        remediation=RemediationSpec(
            text="Create a regional WAFv2 web ACL with a rate-based rule (action Block) and "
            "associate it with the load balancer.",
            snippet=(
                "aws wafv2 associate-web-acl --web-acl-arn ACL_ARN --resource-arn LB_ARN\n"
                '# rule: {"Name":"rate","Statement":{"RateBasedStatement":{"Limit":2000,'
                '"AggregateKeyType":"IP"}},"Action":{"Block":{}}}'
            ),
            link="https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-associating-aws-resource.html",
        ),
        category=Category.HTTP,
        severity=Severity.LOW,
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("infra", "aws", "security", "seed"),
        refs=("19",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per load balancer."""
        s: Settings = ctx.settings()
        declared = s.load_balancers or ctx.settings(BLUE_GREEN).load_balancers
        if not aws_configured(ctx):
            if s.web_acl or declared:
                what = f"web ACL {s.web_acl}" if s.web_acl else f"load balancer {declared[0]}"
                yield self.warned(
                    s.web_acl or declared[0],
                    f"{what} is declared in readyctl.yaml but {no_aws_reason(ctx)}: readyctl "
                    "cannot read the association or its rules",
                )
            else:
                yield self.skipped("web ACL", no_aws_reason(ctx))
            return
        try:
            elb = aws.client(ctx, "elbv2")
            waf = aws.client(ctx, "wafv2")
            lbs = load_balancers(ctx, elb, declared, s.tag_key)
        except NotReadable as e:
            yield self.warned("load balancer", f"{e}: evidence is only the declaration")
            return
        except Exception as e:
            reason, detail = aws.explain(e, "listing load balancers")
            yield self.errored("load balancer", reason, detail)
            return
        if not lbs:
            if s.web_acl:
                yield self.warned(
                    s.web_acl,
                    f"web ACL {s.web_acl} is declared in readyctl.yaml only: no load balancer "
                    f"was named or tagged {s.tag_key}={ctx.env_name} to read its association",
                )
            else:
                yield self.skipped(
                    "web ACL",
                    f"no load balancer named (checks.{self.id}.load_balancers) or tagged "
                    f"{s.tag_key}={ctx.env_name}",
                )
            return
        for lb in lbs:
            yield self._judge(waf, lb)

    def _judge(self, waf: Any, lb: dict[str, Any]) -> Result:
        """A web ACL is associated, and it holds a rate-based rule that blocks."""
        arn = lb["LoadBalancerArn"]
        subject = lb.get("LoadBalancerName") or arn
        try:
            got = waf.get_web_acl_for_resource(ResourceArn=arn)
        except Exception as e:
            if aws.error_code(e) == "WAFNonexistentItemException":
                got = {}
            else:
                reason, detail = aws.explain(e, f"GetWebACLForResource on {arn}")
                if reason is ErrorReason.BUG:
                    reason = ErrorReason.CONNECTIVITY
                return self.errored(subject, reason, detail)
        acl = got.get("WebACL")
        if not acl:
            return self.failed(
                subject,
                f"no WAFv2 web ACL is associated with {lb_label(lb)}",
                measured="none",
                threshold="web ACL with a rate-based rule",
                evidence={"load_balancer": arn},
            )
        rules = acl.get("Rules") or []
        rate = [r for r in rules if _rate_based(r.get("Statement") or {})]
        ev = {
            "load_balancer": arn,
            "web_acl": acl.get("ARN") or acl.get("Name"),
            "rules": [r.get("Name") for r in rules],
        }
        label = f"web ACL {acl.get('Name', '?')} on {lb_label(lb)}"
        if not rate:
            return self.failed(
                subject,
                f"{label} has no rate-based rule ({len(rules)} rules): one client can flood "
                "the API",
                measured=0,
                threshold=1,
                evidence=ev,
            )
        blocking = [r for r in rate if "Count" not in (r.get("Action") or {})]
        limits = [
            str((r["Statement"].get("RateBasedStatement") or {}).get("Limit", "?")) for r in rate
        ]
        if not blocking:
            return self.warned(
                subject,
                f"{label} has a rate-based rule ({rate[0].get('Name')}) that only counts",
                measured="count",
                threshold="block",
                evidence=ev,
            )
        return self.passed(
            subject,
            f"{label} blocks by rate-based rule {blocking[0].get('Name')} "
            f"(limit {', '.join(limits)} per 5 min)",
            measured=len(rate),
            threshold=1,
            evidence=ev,
        )


def _rate_based(statement: dict[str, Any]) -> bool:
    """A rate-based statement (nested and/or/not statements are looked into)."""
    if "RateBasedStatement" in statement:
        return True
    for key in ("AndStatement", "OrStatement"):
        if any(_rate_based(x) for x in (statement.get(key) or {}).get("Statements") or []):
            return True
    inner = (statement.get("NotStatement") or {}).get("Statement")
    return bool(inner) and _rate_based(inner)
