"""Shared by the infra checks: finding AWS resources by name or by tag, and the
"declared in readyctl.yaml only" rule (evidence readyctl cannot read is a warn, never a pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from readyctl import aws

if TYPE_CHECKING:
    from readyctl.context import Context

TAG_KEY = "readyctl:target"
MAX_DISCOVERED = 20


class NotReadable(Exception):
    """A declared resource was not found or AWS refused to show it (the reason is the text)."""


def aws_configured(ctx: Context) -> bool:
    """The environment has `aws:` settings."""
    return ctx.environment.aws is not None


def no_aws_reason(ctx: Context) -> str:
    """The skip reason when nothing is declared and there is no `aws:` (coverage hint)."""
    return f"no aws: settings configured for this environment (environments.{ctx.env_name}.aws)"


def tag_value(ctx: Context) -> str:
    """The value of the discovery tag: the environment's name."""
    return ctx.env_name


def _pages(client: Any, op: str, key: str, **kw: Any) -> Iterator[Any]:
    """Items of a paginated AWS list call."""
    for page in client.get_paginator(op).paginate(**kw):
        yield from page.get(key) or []


def load_balancers(ctx: Context, elb: Any, declared: Sequence[str], tag_key: str) -> list[dict]:
    """The ELBv2 load balancers named (ARN or name), else the ones tagged tag_key=<env>.

    A declared one that cannot be read raises NotReadable.
    """
    if declared:
        out = []
        for ref in declared:
            kw = {"LoadBalancerArns": [ref]} if ref.startswith("arn:") else {"Names": [ref]}
            try:
                out += elb.describe_load_balancers(**kw)["LoadBalancers"]
            except Exception as e:
                raise NotReadable(_unreadable(e, f"load balancer {ref}")) from e
        return out
    found = []
    everything = list(_pages(elb, "describe_load_balancers", "LoadBalancers"))
    for i in range(0, len(everything), 20):
        chunk = everything[i : i + 20]
        arns = [lb["LoadBalancerArn"] for lb in chunk]
        tags = elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
        wanted = {
            t["ResourceArn"]
            for t in tags
            if any(
                x["Key"] == tag_key and x["Value"] == tag_value(ctx) for x in t.get("Tags") or []
            )
        }
        found += [lb for lb in chunk if lb["LoadBalancerArn"] in wanted]
    return found[:MAX_DISCOVERED]


def _unreadable(exc: BaseException, what: str) -> str:
    """Why a declared resource is not evidence: not found, denied; other errors re-raise."""
    code = aws.error_code(exc) or ""
    if aws.is_denied(exc):
        return f"{what} is declared but readyctl may not read it ({code})"
    if "NotFound" in code or code in ("ValidationError", "InvalidParameterException"):
        return f"{what} is declared but was not found in AWS ({code})"
    raise exc


def unreadable(exc: BaseException, what: str) -> str:
    """Public form of the not-found / denied rule (other errors re-raise)."""
    return _unreadable(exc, what)


def lb_label(lb: dict) -> str:
    """`name (ARN)` of a load balancer."""
    return f"{lb.get('LoadBalancerName', '?')} ({lb['LoadBalancerArn']})"
