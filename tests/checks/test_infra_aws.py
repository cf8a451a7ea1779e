"""infra.blue_green, infra.autoscaling and infra.waf against moto in server mode (real boto3
over HTTP on 127.0.0.1).

moto gaps met on the way: wafv2 ListResourcesForWebACL is not implemented in moto's server
(the check does not use it: it asks GetWebACLForResource per load balancer, which works).
"""

from __future__ import annotations

from typing import Any

import pytest

from readyctl.config import AwsConfig, Config, DeployConfig, Environment
from tests.conftest import aws_client
from tests.helpers import make_context, results_of, run_checks, statuses

ENV = "production"
TAG = [{"Key": "readyctl:target", "Value": ENV}]
VISIBILITY = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "m"}


def _ctx(moto: str | None, checks: dict[str, dict[str, Any]], **env: Any) -> Any:
    aws = AwsConfig(region="us-east-1", endpoint_url=moto) if moto else None
    return make_context(
        config=Config(checks=checks),
        environment=Environment(aws=aws, production=True, **env),
        env_name=ENV,
    )


def _run(ctx: Any, check_id: str) -> Any:
    from readyctl.registry import load_catalog

    return run_checks(ctx, [load_catalog().get(check_id)])


def _network(moto: str) -> tuple[str, list[str]]:
    ec2 = aws_client(moto, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


def _load_balancer(moto: str, name: str, *, weighted: bool, tagged: bool = True) -> str:
    """An ALB with one listener forwarding to one target group, or to blue and green."""
    elb = aws_client(moto, "elbv2")
    vpc, subnets = _network(moto)
    kw: dict[str, Any] = {"Tags": TAG} if tagged else {}
    arn = elb.create_load_balancer(Name=name, Subnets=subnets, **kw)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    groups = [
        elb.create_target_group(Name=f"{name}-{c}", Protocol="HTTP", Port=80, VpcId=vpc)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for c in (("blue", "green") if weighted else ("blue",))
    ]
    forward = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": g, "Weight": 100 if i == 0 else 0} for i, g in enumerate(groups)
            ]
        },
    }
    elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=[forward])
    return arn


# -- infra.blue_green -----------------------------------------------------------------------
def test_blue_green_weighted_listener_passes_single_group_fails(moto: str) -> None:
    good = _load_balancer(moto, "api-bg", weighted=True)
    _load_balancer(moto, "api-single", weighted=False, tagged=False)
    out = _run(_ctx(moto, {}), "infra.blue_green")  # discovered by tag
    r = results_of(out, "infra.blue_green")["api-bg"]
    assert r.status.value == "pass", r
    assert r.evidence["load_balancer"] == good and "api-bg-green" in r.summary
    out = _run(
        _ctx(moto, {"infra.blue_green": {"load_balancers": ["api-single"]}}), "infra.blue_green"
    )
    r = results_of(out, "infra.blue_green")["api-single"]
    assert r.status.value == "fail" and "arn:aws:elasticloadbalancing" in r.summary


def test_blue_green_declared_only_is_a_warn_never_a_pass(moto: str) -> None:
    # no AWS at all: the runbook's strategy variable
    ctx = _ctx(None, {}, deploy=DeployConfig(vars={"strategy": "blue_green"}))
    assert statuses(_run(ctx, "infra.blue_green"), "infra.blue_green") == {
        "deploy strategy": "warn"
    }
    # AWS, but the declared load balancer does not exist
    ctx = _ctx(moto, {"infra.blue_green": {"load_balancers": ["nope"], "strategy": "rolling"}})
    assert statuses(_run(ctx, "infra.blue_green"), "infra.blue_green") == {"load balancer": "warn"}
    # nothing declared, nothing tagged: not applicable
    out = _run(_ctx(moto, {}), "infra.blue_green")
    assert statuses(out, "infra.blue_green") == {"load balancer": "skip"}
    out = _run(_ctx(None, {}), "infra.blue_green")
    assert "no aws:" in (results_of(out, "infra.blue_green")["load balancer"].reason or "")


# -- infra.autoscaling ------------------------------------------------------------------------
def _asg(moto: str, name: str, min_size: int, *, policy: bool, tagged: bool = True) -> None:
    asg = aws_client(moto, "autoscaling")
    _vpc, subnets = _network(moto)
    asg.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12c6146b", InstanceType="t2.micro"
    )
    tags = [
        {
            "Key": "readyctl:target",
            "Value": ENV,
            "PropagateAtLaunch": False,
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
        }
    ]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=min_size,
        MaxSize=6,
        VPCZoneIdentifier=subnets[0],
        Tags=tags if tagged else [],
    )
    if policy:
        asg.put_scaling_policy(
            AutoScalingGroupName=name,
            PolicyName="cpu50",
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration={
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ASGAverageCPUUtilization"
                },
                "TargetValue": 50.0,
            },
        )


def test_autoscaling_group_min2_with_policy_passes_min1_fails(moto: str) -> None:
    _asg(moto, "api-asg", 2, policy=True)
    _asg(moto, "worker-asg", 1, policy=False, tagged=False)
    out = _run(_ctx(moto, {}), "infra.autoscaling")
    r = results_of(out, "infra.autoscaling")["api-asg"]
    assert r.status.value == "pass", r
    assert r.evidence["arn"].startswith("arn:aws:autoscaling") and r.evidence["policies"] == [
        "cpu50"
    ]
    out = _run(
        _ctx(moto, {"infra.autoscaling": {"asg_names": ["worker-asg"]}}), "infra.autoscaling"
    )
    r = results_of(out, "infra.autoscaling")["worker-asg"]
    assert r.status.value == "fail" and r.measured == 1
    assert "no scaling policy" in r.summary and "minimum is 1" in r.summary


def _ecs(moto: str, desired: int, *, scalable: bool, tagged: bool = False) -> None:
    ecs = aws_client(moto, "ecs")
    ecs.create_cluster(clusterName="api")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "api:1", "memory": 128}]
    )
    tags = [{"key": "readyctl:target", "value": ENV}] if tagged else []
    ecs.create_service(
        cluster="api", serviceName="web", taskDefinition="web", desiredCount=desired, tags=tags
    )
    ecs.create_service(cluster="api", serviceName="batch", taskDefinition="web", desiredCount=1)
    if scalable:
        aas = aws_client(moto, "application-autoscaling")
        dim = {
            "ServiceNamespace": "ecs",
            "ResourceId": "service/api/web",
            "ScalableDimension": "ecs:service:DesiredCount",
        }
        aas.register_scalable_target(**dim, MinCapacity=2, MaxCapacity=8)
        aas.put_scaling_policy(
            PolicyName="cpu50",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 50.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                },
            },
            **dim,
        )


@pytest.mark.parametrize(("desired", "scalable", "want"), [(2, True, "pass"), (1, False, "fail")])
def test_autoscaling_ecs_service(moto: str, desired: int, scalable: bool, want: str) -> None:
    _ecs(moto, desired, scalable=scalable)
    out = _run(
        _ctx(moto, {"infra.autoscaling": {"ecs_services": ["api/web"]}}), "infra.autoscaling"
    )
    r = results_of(out, "infra.autoscaling")["api/web"]
    assert r.status.value == want, r
    assert "arn:aws:ecs:us-east-1:" in r.summary


@pytest.mark.parametrize(("desired", "scalable", "want"), [(2, True, "pass"), (1, False, "fail")])
def test_autoscaling_finds_ecs_services_by_tag(
    moto: str, desired: int, scalable: bool, want: str
) -> None:
    """Nothing named: the service tagged readyctl:target=<environment> is judged, the
    untagged one (api/batch, one task) is not looked at."""
    _ecs(moto, desired, scalable=scalable, tagged=True)
    out = _run(_ctx(moto, {}), "infra.autoscaling")
    assert statuses(out, "infra.autoscaling") == {"api/web": want}


def test_autoscaling_declared_only_warns(moto: str) -> None:
    out = _run(_ctx(None, {"infra.autoscaling": {"asg_names": ["api-asg"]}}), "infra.autoscaling")
    assert statuses(out, "infra.autoscaling") == {"api-asg": "warn"}
    out = _run(_ctx(moto, {"infra.autoscaling": {"asg_names": ["ghost"]}}), "infra.autoscaling")
    assert statuses(out, "infra.autoscaling") == {"ghost": "warn"}
    out = _run(
        _ctx(moto, {"infra.autoscaling": {"ecs_services": ["api/ghost"]}}), "infra.autoscaling"
    )
    assert statuses(out, "infra.autoscaling") == {"api/ghost": "warn"}
    assert statuses(_run(_ctx(moto, {}), "infra.autoscaling"), "infra.autoscaling") == {
        "auto scaling": "skip"
    }


# -- infra.waf ----------------------------------------------------------------------------------
def _web_acl(moto: str, lb: str, *, rate: bool, action: str = "Block") -> str:
    waf = aws_client(moto, "wafv2")
    statement = (
        {"RateBasedStatement": {"Limit": 1000, "AggregateKeyType": "IP"}}
        if rate
        else {"GeoMatchStatement": {"CountryCodes": ["AQ"]}}
    )
    rule = {
        "Name": "rate" if rate else "geo",
        "Priority": 0,
        "Statement": statement,
        "Action": {action: {}},
        "VisibilityConfig": VISIBILITY,
    }
    acl = waf.create_web_acl(
        Name=f"acl-{rate}-{action}",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig=VISIBILITY,
        Rules=[rule],
    )["Summary"]["ARN"]
    waf.associate_web_acl(WebACLArn=acl, ResourceArn=lb)
    return acl


def test_waf_rate_based_rule_passes_missing_acl_or_rule_fails(moto: str) -> None:
    lb = _load_balancer(moto, "api-waf", weighted=False)
    out = _run(_ctx(moto, {}), "infra.waf")
    r = results_of(out, "infra.waf")["api-waf"]
    assert r.status.value == "fail" and "no WAFv2 web ACL" in r.summary and lb in r.summary
    acl = _web_acl(moto, lb, rate=True)
    out = _run(_ctx(moto, {}), "infra.waf")
    r = results_of(out, "infra.waf")["api-waf"]
    assert r.status.value == "pass", r
    assert r.evidence["web_acl"] == acl and r.evidence["load_balancer"] == lb


def test_waf_without_rate_rule_fails_and_count_only_warns(moto: str) -> None:
    lb = _load_balancer(moto, "api-geo", weighted=False, tagged=False)
    _web_acl(moto, lb, rate=False)
    # the load balancer comes from infra.blue_green's settings
    ctx = _ctx(moto, {"infra.blue_green": {"load_balancers": [lb]}})
    assert statuses(_run(ctx, "infra.waf"), "infra.waf") == {"api-geo": "fail"}
    lb2 = _load_balancer(moto, "api-count", weighted=False, tagged=False)
    _web_acl(moto, lb2, rate=True, action="Count")
    ctx = _ctx(moto, {"infra.waf": {"load_balancers": ["api-count"]}})
    assert statuses(_run(ctx, "infra.waf"), "infra.waf") == {"api-count": "warn"}


def test_waf_declared_only_warns() -> None:
    out = _run(_ctx(None, {"infra.waf": {"web_acl": "api-acl"}}), "infra.waf")
    assert statuses(out, "infra.waf") == {"api-acl": "warn"}
    out = _run(_ctx(None, {}), "infra.waf")
    assert statuses(out, "infra.waf") == {"web ACL": "skip"}


# -- items 16-19 in the checklist -------------------------------------------------------------
def test_items_16_to_19_are_verified_by_the_infra_checks_own_results(
    moto: str, tmp_path: Any
) -> None:
    """A healthy AWS setup (weighted blue/green listener, ASG min 2 with a policy, a WAF rate
    rule on the load balancer) plus an Unleash server: the checklist shows items 16-19
    verified by these checks, passing; with nothing declared they stay unverified."""
    from tests.checks.test_infra_feature_flags import TOKEN, unleash
    from tests.helpers import report_of
    from tests.servers import serve

    lb = _load_balancer(moto, "shop", weighted=True)
    _asg(moto, "shop-asg", 2, policy=True)
    _web_acl(moto, lb, rate=True)
    only = ["infra.*"]
    with serve(unleash(["crisis-detection-v2"])) as flags:
        (tmp_path / ".env.production").write_text(
            f"UNLEASH_URL={flags.url}/api\nUNLEASH_API_TOKEN={TOKEN}\n"
        )
        ctx = make_context(
            config=Config(),
            environment=Environment(
                aws=AwsConfig(region="us-east-1", endpoint_url=moto),
                production=True,
                env_file=".env.production",
            ),
            env_name=ENV,
            base_dir=tmp_path,
        )
        out = run_checks(ctx, only=only)
    items = {i["item"]: i for i in report_of(ctx, out).data["checklist"]["items"]}
    for item, check in (
        ("16", "infra.feature_flags"),
        ("17", "infra.blue_green"),
        ("18", "infra.autoscaling"),
        ("19", "infra.waf"),
    ):
        assert items[item]["status"] == "verified", items[item]
        assert items[item]["verified_by"] == [check] and items[item]["outcome"] == "pass"
    # nothing to look at: skips, and the items stay unverified, never passed
    bare = make_context(config=Config(), environment=Environment(production=True), env_name=ENV)
    out = run_checks(bare, only=only)
    items = {i["item"]: i for i in report_of(bare, out).data["checklist"]["items"]}
    assert {items[i]["status"] for i in ("16", "17", "18", "19")} == {"unverified"}
