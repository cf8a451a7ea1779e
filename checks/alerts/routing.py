"""alerts.routing: every mapped alert reaches a receiver that notifies someone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from readyctl import aws
from readyctl.alerts import cloudwatch, evaluate, series, tools
from readyctl.alerts.mapping import SEEDS, CloudWatch, PrometheusCondition
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

MAX_LABEL_SETS = 5
SETTINGS_KEY = "checks.alerts.routing"


class Settings(CheckSettings):
    """Settings of alerts.routing (the alerts themselves are mapped under alerts.rules)."""

    alertmanager_config: str | None = Field(
        None, description="the Alertmanager configuration file (relative to readyctl.yaml)"
    )


class AlertRouting(Check):
    """Each alert mapped under checks.alerts.rules.conditions is routed, by
    `amtool config routes test` on the Alertmanager config, to a receiver with at least one
    notifier (a receiver without one is a null receiver); the label sets tested are those the
    alert fires with in promtool (else the rule's static labels). Each mapped CloudWatch alarm
    must have an enabled alarm action.
    """

    meta = CheckMeta(
        id="alerts.routing",
        title="Alerts are routed to a real receiver",
        failure_title="Alerts are routed to nobody",
        description=(
            "An alert that fires into a null receiver or matches no route wakes nobody up; "
            "Alertmanager's own routing test shows where each alert would go. See "
            "https://prometheus.io/docs/alerting/latest/configuration/#route."
        ),
        remediation=RemediationSpec(
            text="Route the alerts (for example by severity: page) to a receiver with a "
            "notifier (PagerDuty, Opsgenie, a webhook, e-mail); give each CloudWatch alarm an "
            "AlarmActions SNS topic.",
            snippet=(
                "route:\n  receiver: default\n  routes:\n"
                '  - matchers: [severity="page"]\n    receiver: oncall\n'
                "receivers:\n- name: default\n  email_configs: [{to: team@example.org}]\n"
                "- name: oncall\n  pagerduty_configs: [{routing_key: <secret>}]"
            ),
            link="https://prometheus.io/docs/alerting/latest/configuration/",
        ),
        category=Category.OBSERVABILITY,
        severity=Severity.HIGH,
        requires=(),
        safety=Safety.READ_ONLY,
        timeout_s=120,
        tags=("observability", "alerts", "seed"),
        refs=("8",),
    )
    Settings = Settings
    # system tools it runs (readyctl.alerts.tools.missing_tools names the absent ones)
    system_tools = ("amtool", "promtool")

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per mapped condition (and one for the Alertmanager config)."""
        s: Settings = ctx.settings()
        rules_s: Any = ctx.settings("alerts.rules")
        prom = {n: c for n, c in rules_s.conditions.items() if not isinstance(c, CloudWatch)}
        watch = {n: c for n, c in rules_s.conditions.items() if isinstance(c, CloudWatch)}
        if not prom and not watch:
            yield self.skipped(
                "*",
                "no alerts mapped: set checks.alerts.rules.conditions "
                "(`readyctl init --alerts` writes it)",
            )
            return
        if watch:
            yield from self._alarm_actions(ctx, watch)
        if prom:
            yield from self._alertmanager(ctx, s, rules_s, prom)

    # -- CloudWatch ------------------------------------------------------------------------
    def _alarm_actions(self, ctx: Context, watch: dict[str, CloudWatch]) -> Iterator[Result]:
        try:
            client = aws.client(ctx, "cloudwatch")
            alarms = cloudwatch.describe(client, sorted({c.alarm for c in watch.values()}))
        except Exception as e:
            reason, detail = aws.explain(e, "describing CloudWatch alarms")
            for name in watch:
                yield self.errored(name, reason, detail)
            return
        for name, cond in watch.items():
            alarm = alarms.get(cond.alarm)
            if alarm is None:
                yield self.failed(name, f"{name}: no CloudWatch metric alarm {cond.alarm}")
                continue
            actions = list(alarm.get("AlarmActions") or [])
            ev = {"alarm": cond.alarm, "alarm_actions": actions}
            if not actions:
                yield self.failed(
                    name,
                    f"{name}: CloudWatch alarm {cond.alarm} has no alarm action: it changes "
                    "state and notifies nobody",
                    evidence=ev,
                )
            elif alarm.get("ActionsEnabled") is False:
                yield self.failed(
                    name,
                    f"{name}: CloudWatch alarm {cond.alarm} has its actions disabled",
                    evidence=ev,
                )
            else:
                yield self.passed(
                    name,
                    f"{name}: CloudWatch alarm {cond.alarm} notifies {', '.join(actions[:2])}",
                    evidence=ev,
                )

    # -- Alertmanager ----------------------------------------------------------------------
    def _alertmanager(
        self, ctx: Context, s: Settings, rules_s: Any, prom: dict[str, PrometheusCondition]
    ) -> Iterator[Result]:
        if not s.alertmanager_config:
            for name in prom:
                yield self.skipped(
                    name,
                    f"no Alertmanager config: set {SETTINGS_KEY}.alertmanager_config",
                )
            return
        amtool = tools.which("amtool", ctx.environ)
        if amtool is None:
            for name in prom:
                yield self.skipped(name, tools.missing_reason("amtool"))
            return
        path = ctx.resolve(s.alertmanager_config)
        shown = s.alertmanager_config
        if not path.is_file():
            yield self.failed(shown, f"{SETTINGS_KEY}.alertmanager_config: {shown}: no such file")
            for name in prom:
                yield self.blocked(name, f"{shown} does not exist")
            return
        problem = tools.check_config(amtool, path, shown, ctx.timeout(30))
        if problem is not None:
            yield self.failed(
                shown,
                f"amtool check-config refuses {shown}: {problem.message}",
                evidence={"file": shown, "line": problem.line, "message": problem.message},
            )
            for name in prom:
                yield self.blocked(name, f"amtool check-config refuses {shown}")
            return
        receivers = tools.notifiers(path)
        yield self.passed(
            shown,
            f"{shown} loads in amtool ({len(receivers)} receivers)",
            evidence={"file": shown, "receivers": receivers},
        )
        for name, cond in prom.items():
            ctx.check_deadline()
            yield self._route(ctx, amtool, path, receivers, rules_s, name, cond)

    def _label_sets(
        self, ctx: Context, rules_s: Any, name: str, cond: PrometheusCondition
    ) -> tuple[list[dict[str, str]], str]:
        """The label sets the alert fires with (promtool), else its rules' static labels."""
        promtool = tools.which("promtool", ctx.environ)
        static: list[dict[str, str]] = []
        if rules_s.rule_files:
            rs = evaluate.rule_set(ctx, rules_s.rule_files, promtool)
            for rule in rs.rules.get(cond.alert, []):
                static.append({**cond.labels, **rule.labels, "alertname": cond.alert})
            if promtool is not None and not rs.problems and static:
                timing = rules_s.timing()
                try:
                    got = evaluate.fire(
                        ctx, promtool, rs, name, cond, SEEDS[name].over, timing.over_at(), timing
                    )
                except (series.NotMeasurable, tools.ToolError):
                    got = []
                if got:
                    return _unique(got), "the alert as promtool fires it"
        if not static:
            static = [{**cond.labels, "alertname": cond.alert}]
        return _unique(static), "the rule's static labels"

    def _route(
        self,
        ctx: Context,
        amtool: str,
        path: Path,
        receivers: dict[str, list[str]],
        rules_s: Any,
        name: str,
        cond: PrometheusCondition,
    ) -> Result:
        label_sets, origin = self._label_sets(ctx, rules_s, name, cond)
        routed: list[dict[str, Any]] = []
        for labels in label_sets[:MAX_LABEL_SETS]:
            try:
                got = tools.routes(amtool, path, labels, ctx.timeout(30))
            except tools.ToolError as e:
                return self.errored(name, ErrorReason.INCONCLUSIVE, f"{name}: {e}")
            routed.append({"labels": labels, "receivers": got})
        ev = {"alert": cond.alert, "labels_from": origin, "routes": routed}
        for entry in routed:
            got = entry["receivers"]
            real = [r for r in got if receivers.get(r)]
            if not real:
                shown = ", ".join(f"{k}={v}" for k, v in sorted(entry["labels"].items()))
                where = ", ".join(got) or "no receiver"
                return self.failed(
                    name,
                    f"{name}: {cond.alert} ({shown}) goes to {where}, which notifies nobody "
                    "(a receiver without any *_configs)",
                    evidence=ev,
                )
        names = sorted({r for e in routed for r in e["receivers"] if receivers.get(r)})
        kinds = sorted({k for r in names for k in receivers[r]})
        return self.passed(
            name,
            f"{name}: {cond.alert} goes to {', '.join(names)} ({', '.join(kinds)})",
            evidence=ev,
        )


def _unique(sets: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for s in sets:
        seen.setdefault(tuple(sorted(s.items())), s)
    return list(seen.values())
