"""alerts.rules and alerts.routing against real promtool and amtool (Debian's prometheus and
prometheus-alertmanager), CloudWatch alarms against moto, and `readyctl init --alerts`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from readyctl.alerts import series
from readyctl.alerts.mapping import CONDITIONS, Histogram
from readyctl.alerts.propose import propose
from readyctl.check import settings_problem
from readyctl.config import AwsConfig, Config, Environment
from readyctl.demo.profile import alert_settings
from readyctl.registry import load_catalog
from tests.conftest import aws_client
from tests.helpers import make_context, results_of, run_checks, statuses

DATA = Path(__file__).resolve().parent.parent / "data" / "alerts"
TOOLS = ("promtool", "amtool")
INSTALL = "apt-get install prometheus prometheus-alertmanager"
needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason=f"promtool/amtool missing: {INSTALL}",
)
PATH = {"PATH": os.environ.get("PATH", os.defpath)}


def _project(tmp_path: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """A copy of tests/data/alerts/NAME and its `checks:` mapping."""
    root = tmp_path / name
    shutil.copytree(DATA / name, root)
    return root, yaml.safe_load((root / "mapping.yaml").read_text())


def _run(root: Path, checks: dict[str, Any], only: str = "alerts.rules", **env: Any) -> Any:
    environ = env.pop("environ", None) or PATH
    ctx = make_context(
        config=Config(checks=checks),
        environment=Environment(**env),
        base_dir=root,
        environ=environ,
    )
    return run_checks(ctx, only=[only], deadline_s=120)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _drop_rule(path: Path, alert: str) -> None:
    data = yaml.safe_load(path.read_text())
    for group in data["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != alert]
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200))


# -- alerts.rules: the reference rules ----------------------------------------------------------
@needs_tools
def test_reference_rules_fire_over_and_stay_quiet_under(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    out = _run(root, checks)
    got = statuses(out, "alerts.rules")
    assert got == {"rules.yml": "pass", **dict.fromkeys(CONDITIONS, "pass")}, got
    res = results_of(out, "alerts.rules")["error_rate"]
    assert "fires at 6% errors" in res.summary and "quiet at 4% errors" in res.summary
    assert res.evidence["file"] == "rules.yml" and res.evidence["line"] > 0


@needs_tools
@pytest.mark.parametrize("condition", CONDITIONS)
def test_deleting_a_rule_fails_naming_its_condition(tmp_path: Path, condition: str) -> None:
    root, checks = _project(tmp_path, "reference")
    alert = checks["alerts.rules"]["conditions"][condition]["alert"]
    _drop_rule(root / "rules.yml", alert)
    got = statuses(_run(root, checks), "alerts.rules")
    assert got[condition] == "fail"
    assert [c for c, s in got.items() if s == "fail"] == [condition], got


@needs_tools
def test_loose_error_rate_fails_naming_the_condition(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    _edit(root / "rules.yml", "> 0.05", "> 0.20")
    res = results_of(_run(root, checks), "alerts.rules")
    assert res["error_rate"].status.value == "fail"
    assert "does not fire at 6% errors" in res["error_rate"].summary
    assert "looser than the seed's error rate > 5%" in res["error_rate"].summary
    assert all(res[c].status.value == "pass" for c in CONDITIONS if c != "error_rate")


@needs_tools
def test_rule_firing_under_the_threshold_fails(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    _edit(root / "rules.yml", "< 0.10", "< 0.15")
    res = results_of(_run(root, checks), "alerts.rules")["disk_space"]
    assert res.status.value == "fail" and "already fires at 11% disk free" in res.summary


@needs_tools
def test_for_longer_than_the_window_fails(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    _edit(root / "rules.yml", "for: 5m", "for: 15m")  # the latency rule's
    res = results_of(_run(root, checks), "alerts.rules")["response_time"]
    assert res.status.value == "fail"
    assert "for: 15m" in res.summary and "max_window 5m" in res.summary
    # a longer window accepts it
    checks["alerts.rules"]["max_window"] = "15m"
    assert statuses(_run(root, checks), "alerts.rules")["response_time"] == "pass"


@needs_tools
def test_loose_latency_rule_fails(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    _edit(root / "rules.yml", "[5m]))) > 2", "[5m]))) > 8")
    res = results_of(_run(root, checks), "alerts.rules")["response_time"]
    assert res.status.value == "fail" and "looser than the seed's" in res.summary, res.summary


@needs_tools
def test_other_metric_names_pass_with_their_own_mapping(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "nginx")
    out = _run(root, checks)
    got = statuses(out, "alerts.rules")
    assert got == {"rules.yml": "pass", **dict.fromkeys(CONDITIONS, "pass")}, got
    # and the same rules judged with the reference mapping fail: the mapping is what matters
    _, reference = _project(tmp_path, "reference")
    reference["alerts.rules"]["rule_files"] = ["rules.yml"]
    bad = statuses(_run(root, reference), "alerts.rules")
    assert all(bad[c] == "fail" for c in CONDITIONS), bad


@needs_tools
def test_promtool_check_errors_fail_with_file_and_line(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    _edit(root / "rules.yml", "expr: pg_up == 0", "expr: sum(rate(pg_up[5m]) == 0")
    res = results_of(_run(root, checks), "alerts.rules")
    file = res["rules.yml"]
    assert file.status.value == "fail"
    assert file.evidence["file"] == "rules.yml" and isinstance(file.evidence["line"], int)
    assert re.search(r"rules\.yml line \d+", file.summary), file.summary
    assert all(res[c].status.value == "blocked" for c in CONDITIONS)


@needs_tools
def test_unmapped_condition_fails_with_the_snippet(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "reference")
    del checks["alerts.rules"]["conditions"]["memory_usage"]
    res = results_of(_run(root, checks), "alerts.rules")["memory_usage"]
    assert res.status.value == "fail"
    assert "memory_usage (memory usage > 85%) is mapped to no alert" in res.summary
    assert "checks.alerts.rules.conditions" in res.summary and "kind: bytes" in res.summary


def test_nothing_configured_skips_with_the_setting(tmp_path: Path) -> None:
    out = _run(tmp_path, {})
    res = results_of(out, "alerts.rules")["*"]
    assert res.status.value == "skip" and "checks.alerts.rules.rule_files" in (res.reason or "")
    assert statuses(_run(tmp_path, {}, only="alerts.routing"), "alerts.routing") == {"*": "skip"}


def test_rule_files_matching_nothing_fail(tmp_path: Path) -> None:
    _, checks = _project(tmp_path, "reference")
    checks["alerts.rules"]["rule_files"] = ["missing/*.yml"]
    if shutil.which("promtool") is None:
        pytest.skip(f"promtool missing: {INSTALL}")
    got = statuses(_run(tmp_path, checks), "alerts.rules")
    assert got["rule files"] == "fail" and got["error_rate"] == "blocked"


def test_missing_tools_skip_with_the_install_command(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "nginx")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {"PATH": str(empty)}
    res = results_of(_run(root, checks, environ=env), "alerts.rules")
    assert {r.status.value for r in res.values()} == {"skip"}
    assert all("apt-get install prometheus" in (r.reason or "") for r in res.values())
    routed = results_of(_run(root, checks, only="alerts.routing", environ=env), "alerts.routing")
    assert {r.status.value for r in routed.values()} == {"skip"}
    assert all(
        "apt-get install prometheus-alertmanager" in (r.reason or "") for r in routed.values()
    )


# -- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {
                "conditions": {
                    "error_rate": {
                        "alert": "X",
                        "kind": "bytes",
                        "metric": "a",
                        "total_metric": "b",
                        "measures": "used",
                    }
                },
                "rule_files": ["r.yml"],
            },
            "does not fit error_rate",
        ),
        (
            {
                "conditions": {
                    "error_rate": {"alert": "X", "kind": "counter_ratio", "metric": "a"}
                },
                "rule_files": ["r.yml"],
            },
            "exactly one of error_labels",
        ),
        ({"conditions": {"disk": {"alert": "X", "kind": "up"}}, "rule_files": ["r.yml"]}, "disk"),
        (
            {"conditions": {"failed_health_checks": {"alert": "X", "kind": "up"}}},
            "rule_files is empty",
        ),
        ({"max_window": "five minutes"}, "not a duration"),
        (
            {
                "conditions": {
                    "response_time": {
                        "alert": "X",
                        "kind": "gauge",
                        "metric": "bad-name",
                        "unit": "seconds",
                    }
                },
                "rule_files": ["r.yml"],
            },
            "not a Prometheus metric name",
        ),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings: dict[str, Any], message: str) -> None:
    problem = settings_problem(load_catalog().get("alerts.rules"), settings)
    assert problem is not None and message in problem[1], problem


def test_reference_nginx_and_demo_mappings_validate() -> None:
    for name in ("reference", "nginx"):
        checks = yaml.safe_load((DATA / name / "mapping.yaml").read_text())
        for cid, raw in checks.items():
            assert settings_problem(load_catalog().get(cid), raw) is None, (name, cid)
    for faults in ((), ("alert-rules-loose", "alerts-unrouted")):
        for cid, raw in alert_settings(faults).items():
            assert settings_problem(load_catalog().get(cid), raw) is None, (faults, cid)


@pytest.mark.parametrize("statistic", ["p50", "p90", "p95", "p99"])
@pytest.mark.parametrize("target", [1.8, 2.2, 0.3, 7.0])
def test_histogram_layout_gives_the_wanted_quantile(statistic: str, target: float) -> None:
    """histogram_quantile's interpolation over the generated buckets lands on the target."""
    cond = Histogram(alert="X", kind="histogram", metric="h", statistic=statistic)
    q = series.QUANTILES[statistic]
    shares = series.histogram_fractions(cond.buckets, target, q)
    bounds = [0.0, *cond.buckets]
    cum = [0.0, *shares, 1.0]
    rank = q
    i = next(i for i in range(1, len(cum)) if cum[i] >= rank - 1e-12)
    got = bounds[i - 1] + (bounds[i] - bounds[i - 1]) * (rank - cum[i - 1]) / (cum[i] - cum[i - 1])
    assert got == pytest.approx(target, rel=1e-6)


# -- alerts.routing ------------------------------------------------------------------------------
@needs_tools
def test_routing_to_real_receivers_passes(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "nginx")
    out = _run(root, checks, only="alerts.routing")
    res = results_of(out, "alerts.routing")
    assert {s: r.status.value for s, r in res.items()} == {
        "alertmanager.yaml": "pass",
        **dict.fromkeys(CONDITIONS, "pass"),
    }
    assert "edge-pager (pagerduty)" in res["error_rate"].summary
    assert "data-pager (opsgenie)" in res["disk_space"].summary
    # the labels tested are those the alert fires with (series labels included)
    assert res["memory_usage"].evidence["labels_from"] == "the alert as promtool fires it"
    labels = res["memory_usage"].evidence["routes"][0]["labels"]
    assert labels["container"] == "api" and labels["team"] == "edge"


@needs_tools
def test_routing_to_a_null_receiver_fails(tmp_path: Path) -> None:
    checks = alert_settings(["alerts-unrouted"])  # the demo's shipped files, absolute paths
    res = results_of(_run(tmp_path, checks, only="alerts.routing"), "alerts.routing")
    assert all(res[c].status.value == "fail" for c in CONDITIONS)
    assert "goes to blackhole, which notifies nobody" in res["error_rate"].summary


@needs_tools
def test_unmatched_alert_goes_to_the_null_default(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "nginx")
    _edit(root / "alertmanager.yaml", "receiver: fallback", "receiver: nobody")
    text = (root / "alertmanager.yaml").read_text() + "  - name: nobody\n"
    (root / "alertmanager.yaml").write_text(text)
    rules = root / "rules.yml"
    rules.write_text(rules.read_text().replace("team: data}", "owner: data}"))
    got = statuses(_run(root, checks, only="alerts.routing"), "alerts.routing")
    assert got["db_connection_failures"] == "fail" and got["disk_space"] == "fail"
    assert got["error_rate"] == "pass"


@needs_tools
def test_broken_alertmanager_config_fails_and_blocks(tmp_path: Path) -> None:
    root, checks = _project(tmp_path, "nginx")
    _edit(root / "alertmanager.yaml", "receiver: data-pager", "receiver: data-pagr")
    res = results_of(_run(root, checks, only="alerts.routing"), "alerts.routing")
    assert res["alertmanager.yaml"].status.value == "fail"
    assert 'undefined receiver "data-pagr"' in res["alertmanager.yaml"].summary
    assert all(res[c].status.value == "blocked" for c in CONDITIONS)


@needs_tools
def test_demo_rules_and_the_loose_variant(tmp_path: Path) -> None:
    """The files the demo ships: healthy passes, rules-loose fails error_rate only (the base
    directory plays no part: the demo's settings name them by absolute path)."""
    checks = alert_settings()
    assert set(statuses(_run(tmp_path, checks), "alerts.rules").values()) == {"pass"}
    got = statuses(_run(tmp_path, checks, only="alerts.routing"), "alerts.routing")
    assert set(got.values()) == {"pass"}, got
    got = statuses(_run(tmp_path, alert_settings(["alert-rules-loose"])), "alerts.rules")
    assert [c for c, s in got.items() if s != "pass"] == ["error_rate"], got


# -- CloudWatch through moto -----------------------------------------------------------------------
def _alarm(cw: Any, name: str, **kw: Any) -> None:
    args: dict[str, Any] = {
        "AlarmName": name,
        "MetricName": "5XXErrorRate",
        "Namespace": "Counsel/API",
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:oncall"],
    }
    args.update(kw)
    cw.put_metric_alarm(**{k: v for k, v in args.items() if v is not None})


def _cw_checks() -> dict[str, Any]:
    def cond(alarm: str, unit: str, **kw: Any) -> dict[str, Any]:
        return {"kind": "cloudwatch", "alarm": alarm, "unit": unit, **kw}

    return {
        "alerts.rules": {
            "conditions": {
                "error_rate": cond("api-5xx", "percent", metric="5XXErrorRate"),
                "response_time": cond("api-p95", "milliseconds"),
                "db_connection_failures": cond("db-conn", "count"),
                "disk_space": cond("db-disk", "percent", measures="free"),
                "memory_usage": cond("api-mem", "percent"),
                "failed_health_checks": cond("api-health", "count"),
            }
        }
    }


def _cw_alarms(cw: Any, **override: dict[str, Any]) -> None:
    specs = {
        "api-5xx": {},
        "api-p95": {
            "MetricName": "Latency",
            "Statistic": None,
            "ExtendedStatistic": "p95",
            "Threshold": 2000.0,
        },
        "db-conn": {"MetricName": "ConnectionErrors", "Statistic": "Sum", "Threshold": 0.0},
        "db-disk": {
            "MetricName": "FreeStoragePercent",
            "Threshold": 10.0,
            "ComparisonOperator": "LessThanThreshold",
            "EvaluationPeriods": 5,
        },
        "api-mem": {"MetricName": "MemoryUtilization", "Threshold": 85.0},
        "api-health": {
            "MetricName": "HealthyHostCount",
            "Statistic": "Minimum",
            "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold",
        },
    }
    for name, kw in specs.items():
        _alarm(cw, name, **{**kw, **override.get(name, {})})


def test_cloudwatch_alarms_pass_and_fail(moto: str) -> None:
    cw = aws_client(moto, "cloudwatch")
    _cw_alarms(cw)
    env = {"aws": AwsConfig(region="us-east-1", endpoint_url=moto)}
    environ = {**PATH, **{k: os.environ[k] for k in os.environ if k.startswith("AWS_")}}
    checks = _cw_checks()
    out = _run(Path.cwd(), checks, environ=environ, **env)
    assert statuses(out, "alerts.rules") == dict.fromkeys(CONDITIONS, "pass")
    routed = _run(Path.cwd(), checks, only="alerts.routing", environ=environ, **env)
    assert statuses(routed, "alerts.routing") == dict.fromkeys(CONDITIONS, "pass")
    # loosened, wrong direction, too slow, another metric, no action
    _cw_alarms(
        cw,
        **{
            "api-5xx": {"Threshold": 20.0, "AlarmActions": []},
            "api-p95": {"ComparisonOperator": "LessThanThreshold"},
            "api-mem": {"EvaluationPeriods": 30},
            "db-disk": {"MetricName": "FreeableMemory"},
        },
    )
    checks["alerts.rules"]["conditions"]["disk_space"]["metric"] = "FreeStoragePercent"
    res = results_of(_run(Path.cwd(), checks, environ=environ, **env), "alerts.rules")
    assert "fires only above 20%, looser than the seed's 5%" in res["error_rate"].summary
    assert res["response_time"].status.value == "fail"
    assert "more than max_window 5m" in res["memory_usage"].summary
    assert "watches FreeableMemory, not FreeStoragePercent" in res["disk_space"].summary
    assert res["db_connection_failures"].status.value == "pass"
    routed = results_of(
        _run(Path.cwd(), checks, only="alerts.routing", environ=environ, **env), "alerts.routing"
    )
    assert routed["error_rate"].status.value == "fail"
    assert "has no alarm action" in routed["error_rate"].summary
    cw.delete_alarms(AlarmNames=["api-health"])
    res = results_of(_run(Path.cwd(), checks, environ=environ, **env), "alerts.rules")
    assert "no CloudWatch metric alarm api-health" in res["failed_health_checks"].summary


# -- readyctl init --alerts ------------------------------------------------------------------------
def _metrics_app(text: str) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        status = 200 if scope["path"] == "/metrics" else 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; version=0.0.4")],
            }
        )
        await send({"type": "http.response.body", "body": text.encode()})

    return app


@needs_tools
def test_init_alerts_reads_metrics_and_writes_rules_that_pass(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.servers import serve

    text = (DATA / "demo-metrics.txt").read_text()  # a capture of the demo's /metrics
    text = (
        text.replace("http_requests_total", "api_requests_total").replace('status="', 'code="')
        + "# TYPE db_connect_failures_total counter\ndb_connect_failures_total 0\n"
    )
    project = tmp_path / "project"
    project.mkdir()
    with serve(_metrics_app(text)) as srv:
        run = readyctl("init", str(project), "--alerts", "--base-url", srv.url)
    assert run.code == 0, run.err
    assert "found api_requests_total by code" in run.out
    assert "found db_connect_failures_total" in run.out
    rules = project / "alerts" / "readyctl-rules.yml"
    assert rules.is_file()
    pasted = run.out.split("Add under `checks:` in readyctl.yaml (paths are relative to it):")[1]
    pasted = pasted.split("\nThen:")[0]
    checks = yaml.safe_load(pasted)
    assert checks["alerts.rules"]["conditions"]["error_rate"]["error_labels"] == {"code": "500"}
    out = _run(project, checks)
    got = statuses(out, "alerts.rules")
    assert set(got.values()) == {"pass"} and len(got) == 7, got
    # a second run refuses to overwrite without --force; --dry-run writes nothing
    again = readyctl("init", str(project), "--alerts")
    assert again.code == 2 and "exists; pass --force" in again.err
    dry = readyctl("init", str(project), "--alerts", "--dry-run", "--force")
    assert dry.code == 0 and "(dry run: nothing written)" in dry.out


def test_init_alerts_unreachable_target_is_one_line_exit_2(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.servers import free_port

    run = readyctl(
        "init", str(tmp_path), "--alerts", "--base-url", f"http://127.0.0.1:{free_port()}"
    )
    assert run.code == 2
    assert run.err.strip().startswith("error: GET http://127.0.0.1:")
    assert len(run.err.strip().splitlines()) == 1


def test_reference_proposal_round_trips() -> None:
    p = propose(None)
    assert set(p.conditions) == set(CONDITIONS) and len(p.rules) == 6
    assert (
        settings_problem(load_catalog().get("alerts.rules"), p.settings()["alerts.rules"]) is None
    )


def test_plan_names_the_tools_missing_on_this_machine(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sys

    (tmp_path / "readyctl.yaml").write_text("environments:\n  ci: {}\n")
    bare = {"PATH": str(Path(sys.executable).parent)}  # python, but no promtool or amtool
    r = readyctl("check", "--plan", "--only", "alerts.*", env=bare)
    assert r.code == 0, r.both
    text = " ".join(r.out.split())
    assert "not on this machine: promtool" in text and "amtool" in text


@needs_tools
@pytest.mark.parametrize("tools_here", [True, False], ids=["tools", "no-tools"])
def test_item_8_is_verified_by_the_alert_rules_only(healthy_demo, tools_here: bool) -> None:  # type: ignore[no-untyped-def]
    """/metrics and Sentry measure; only alerts.rules proves someone is paged. Without
    promtool the alert checks skip naming the install, and item 8 is unverified even though
    observability.metrics passes (issue 17)."""
    from readyctl.coverage import UNVERIFIED, VERIFIED
    from tests.conftest import demo_context
    from tests.helpers import report_of

    ctx = demo_context(healthy_demo, config=Config())
    if not tools_here:
        import sys

        ctx.environ = {**ctx.environ, "PATH": str(Path(sys.executable).parent)}
    out = run_checks(ctx, only=["alerts.*", "observability.*"], deadline_s=120)
    assert statuses(out, "observability.metrics") and all(
        s == "pass" for s in statuses(out, "observability.metrics").values()
    ), statuses(out, "observability.metrics")
    items = report_of(ctx, out).data["checklist"]["items"]
    item = next(i for i in items if i["item"] == "8")
    rules = set(statuses(out, "alerts.rules").values())
    if tools_here:
        assert rules == {"pass"}
        assert item["status"] == VERIFIED and "alerts.rules" in item["verified_by"]
    else:
        assert rules == {"skip"}
        assert item["status"] == UNVERIFIED, item
        text = " ".join(f"{m['check']} {m['reason']} {m['setting']}" for m in item["missing"])
        assert "observability.metrics" in text and "verified only by alerts.rules" in text
        assert "apt-get install prometheus" in text, text


def test_plan_foresees_item_8_unverifiable_without_promtool(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`check --plan` on a machine without promtool: the alert checks would run but skip, so
    item 8 is named as not verifiable here, with the install command; with promtool on PATH
    (or CloudWatch alarms only) it is not."""
    import sys

    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  ci: {}\n"
        "checks:\n  alerts.rules: {rule_files: [rules.yml], conditions: {}}\n"
    )
    bare = {"PATH": str(Path(sys.executable).parent)}
    r = readyctl("check", "--plan", env=bare)
    assert r.code == 0, r.both
    text = " ".join(r.out.split())
    assert "item 8. Monitoring & alerting: needs apt-get install prometheus" in text, text[-2000:]
    if shutil.which("promtool"):
        r = readyctl("check", "--plan")
        assert "item 8. Monitoring" not in " ".join(r.out.split())


def test_cloudwatch_only_rules_need_no_promtool() -> None:
    cls = load_catalog().get("alerts.rules")
    s = cls.Settings.model_validate(  # type: ignore[union-attr]
        {
            "conditions": {
                "error_rate": {"alarm": "api-5xx", "kind": "cloudwatch", "unit": "percent"}
            }
        }
    )
    assert cls.needed_tools(s) == ()  # type: ignore[attr-defined]
    assert cls.needed_tools(cls.Settings()) == ("promtool",)  # type: ignore[attr-defined,union-attr]
