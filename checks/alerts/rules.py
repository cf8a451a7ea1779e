"""alerts.rules: the team's alert rules fire on the seed's six conditions, and only on them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from readyctl import aws
from readyctl.alerts import cloudwatch, evaluate, series, tools
from readyctl.alerts.mapping import (
    CONDITIONS,
    SEEDS,
    CloudWatch,
    Condition,
    ConditionName,
    PrometheusCondition,
    format_duration,
    kind_problem,
    parse_duration,
    snippet,
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
from readyctl.result import ErrorReason, Result


def _duration(v: str) -> str:
    parse_duration(v)
    return v


Duration = Annotated[str, AfterValidator(_duration)]
SETTINGS_KEY = "checks.alerts.rules"


class Settings(CheckSettings):
    """Settings of alerts.rules (also read by alerts.routing): the rule files and the mapping
    of the seed's six conditions to the alerts that cover them."""

    rule_files: tuple[str, ...] = Field(
        (), description="Prometheus rule files (globs, relative to readyctl.yaml's directory)"
    )
    conditions: dict[ConditionName, Condition] = Field(
        default_factory=dict,
        description="each seed condition -> {alert, kind, metric, labels, ...} "
        "(`readyctl init --alerts` writes it)",
    )
    max_window: Duration = Field(
        "5m", description="the longest `for:` accepted: how long a condition may hold unpaged"
    )
    warmup: Duration = Field(
        "2m", description="extra time a rule's expression may need to see a new condition"
    )
    evaluation_interval: Duration = Field(
        "1m", description="rule evaluation and input series interval (as in Prometheus)"
    )

    @model_validator(mode="after")
    def _fits(self) -> Settings:
        for name, cond in self.conditions.items():
            problem = kind_problem(name, cond)
            if problem:
                raise ValueError(f"conditions.{name}: {problem}")
        prom = [n for n, c in self.conditions.items() if not isinstance(c, CloudWatch)]
        if prom and not self.rule_files:
            raise ValueError(
                f"conditions {', '.join(prom)} name Prometheus alerts but rule_files is empty"
            )
        if parse_duration(self.evaluation_interval) <= 0:
            raise ValueError("evaluation_interval must be more than 0s")
        return self

    def timing(self) -> evaluate.Timing:
        """The evaluation timing in seconds."""
        return evaluate.Timing(
            parse_duration(self.evaluation_interval),
            parse_duration(self.max_window),
            parse_duration(self.warmup),
        )


class AlertRules(Check):
    """For each seed condition, generated series just over the threshold make its alert fire
    within `max_window` (+ `warmup`) and series just under it keep the alert quiet, through
    `promtool test rules` on the team's own rule files; CloudWatch alarms are judged by metric,
    comparison, threshold and window. Skips when nothing is configured, and conditions
    needing promtool when it is not installed.
    """

    meta = CheckMeta(
        id="alerts.rules",
        title="Alert rules fire on the six seed conditions",
        failure_title="Alert rules miss seed conditions",
        description=(
            "An alert rule that never fires, or fires only at 20% errors, pages nobody during "
            "the outage it was written for; only running the rules on data just over and "
            "just under each threshold proves it. See "
            "https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/."
        ),
        remediation=RemediationSpec(
            text="Write one alerting rule per seed condition at the seed's threshold with a "
            "`for:` within max_window, and map each under checks.alerts.rules.conditions "
            "(`readyctl init --alerts` writes both).",
            snippet=(
                "- alert: HighErrorRate\n"
                '  expr: sum(rate(http_requests_total{status=~"5.."}[5m]))'
                " / sum(rate(http_requests_total[5m])) > 0.05\n"
                "  for: 2m\n"
                "  labels: {severity: page}"
            ),
            link="https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/",
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
    system_tools = ("promtool",)

    @staticmethod
    def needed_tools(s: Any) -> tuple[str, ...]:
        """promtool, unless every mapped condition is a CloudWatch alarm and no rule file is
        named (then boto3 is all it needs)."""
        conditions = getattr(s, "conditions", {}) or {}
        cloud_only = conditions and all(isinstance(c, CloudWatch) for c in conditions.values())
        return () if cloud_only and not getattr(s, "rule_files", ()) else ("promtool",)

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per rule file (it loads) and one per seed condition."""
        s: Settings = ctx.settings()
        if not s.rule_files and not s.conditions:
            yield self.skipped(
                "*",
                f"no alert rules configured: set {SETTINGS_KEY}.rule_files and conditions "
                "(`readyctl init --alerts` writes both)",
            )
            return
        prom = {n: c for n, c in s.conditions.items() if not isinstance(c, CloudWatch)}
        watch = {n: c for n, c in s.conditions.items() if isinstance(c, CloudWatch)}
        for name in CONDITIONS:
            if name not in s.conditions:
                yield self._unmapped(name)
        if watch:
            yield from self._cloudwatch(ctx, s, watch)
        if not s.rule_files:
            return
        promtool = tools.which("promtool", ctx.environ)
        if promtool is None:
            reason = tools.missing_reason("promtool")
            for name in prom:
                yield self.skipped(name, reason)
            return
        rs = evaluate.rule_set(ctx, s.rule_files, promtool)
        if not rs.files:
            patterns = ", ".join(s.rule_files)
            yield self.failed(
                "rule files",
                f"{SETTINGS_KEY}.rule_files ({patterns}) match no file: no alert rules",
            )
            for name in prom:
                yield self.blocked(name, f"rule_files ({patterns}) match no file")
            return
        bad = {p.file: p for p in rs.problems}
        for _, shown in rs.files:
            problem = bad.get(shown)
            if problem is None:
                count = sum(1 for rules in rs.rules.values() for r in rules if r.file == shown)
                yield self.passed(
                    shown,
                    f"{shown} loads in promtool ({count} alerting rules)",
                    evidence={"file": shown},
                )
                continue
            where = f"{shown} line {problem.line}" if problem.line else shown
            yield self.failed(
                shown,
                f"promtool check rules refuses {where}: {problem.message}",
                evidence={"file": shown, "line": problem.line, "message": problem.message},
            )
        if rs.problems:
            first = rs.problems[0]
            cause = f"promtool check rules refuses {first.file}" + (
                f" line {first.line}" if first.line else ""
            )
            for name in prom:
                yield self.blocked(name, cause)
            return
        timing = s.timing()
        for name, cond in prom.items():
            ctx.check_deadline()
            yield self._judge(ctx, promtool, rs, name, cond, timing)

    # -- one condition --------------------------------------------------------------------
    def _unmapped(self, name: str) -> Result:
        seed = SEEDS[name]
        add = snippet(name)
        return self.failed(
            name,
            f"{name} ({seed.words}) is mapped to no alert: add `{add}` under "
            f"{SETTINGS_KEY}.conditions (with a rule for it)",
            evidence={"add": f"{SETTINGS_KEY}.conditions.{add}"},
        )

    def _judge(
        self,
        ctx: Context,
        promtool: str,
        rs: evaluate.RuleSet,
        name: str,
        cond: PrometheusCondition,
        timing: evaluate.Timing,
    ) -> Result:
        seed = SEEDS[name]
        rules = rs.rules.get(cond.alert, [])
        if not rules:
            return self.failed(
                name,
                f"{name} ({seed.words}): no rule in {rs.shown()} alerts as {cond.alert}",
                evidence={"alert": cond.alert, "files": [s for _, s in rs.files]},
            )
        rule = max(rules, key=lambda r: r.for_s)
        ev: dict[str, Any] = {
            "alert": cond.alert,
            "file": rule.file,
            "line": rule.line,
            "expr": rule.expr,
            "for": format_duration(rule.for_s),
            "over": seed.show(seed.over),
            "under": seed.show(seed.under),
        }
        over_at = timing.over_at()
        under_at = timing.under_at(rule.for_s)
        within = format_duration(over_at)
        head = f"{name}: {cond.alert} ({rule.file}:{rule.line})"
        try:
            fired_over = evaluate.fire(ctx, promtool, rs, name, cond, seed.over, over_at, timing)
            quiet = not evaluate.fire(ctx, promtool, rs, name, cond, seed.under, under_at, timing)
        except series.NotMeasurable as e:
            return self.failed(
                name,
                f"{head}: the mapped series cannot tell {seed.show(seed.over)} from "
                f"{seed.show(seed.under)}: {e}",
                evidence=ev,
            )
        except tools.ToolError as e:
            return self.errored(name, ErrorReason.INCONCLUSIVE, f"{head}: {e}", evidence=ev)
        ev["series_over"] = evaluate.input_preview(name, cond, seed.over)
        if fired_over:
            ev["fired_labels"] = fired_over[:5]
        if not quiet:
            return self.failed(
                name,
                f"{head} already fires at {seed.show(seed.under)}, short of the seed's "
                f"{seed.words}: it would page for a healthy service",
                evidence=ev,
            )
        max_window = timing.max_window_s
        if rule.for_s > max_window:
            return self.failed(
                name,
                f"{head} waits for: {format_duration(rule.for_s)} before firing, longer than "
                f"max_window {format_duration(max_window)}",
                measured=rule.for_s,
                threshold=max_window,
                unit=" s",
                evidence=ev,
            )
        if fired_over:
            return self.passed(
                name,
                f"{head} fires at {seed.show(seed.over)} within {within} and stays quiet at "
                f"{seed.show(seed.under)} ({seed.words})",
                evidence=ev,
            )
        return self._never(ctx, promtool, rs, name, cond, timing, head, within, ev)

    def _never(
        self,
        ctx: Context,
        promtool: str,
        rs: evaluate.RuleSet,
        name: str,
        cond: PrometheusCondition,
        timing: evaluate.Timing,
        head: str,
        within: str,
        ev: dict[str, Any],
    ) -> Result:
        """The alert did not fire just over the threshold: loose threshold, or never?"""
        seed = SEEDS[name]
        extreme = series.reachable(cond, seed.extreme)
        try:
            at_extreme = extreme != seed.over and evaluate.fire(
                ctx, promtool, rs, name, cond, extreme, timing.over_at(), timing
            )
        except (series.NotMeasurable, tools.ToolError):
            at_extreme = False
        if at_extreme:
            return self.failed(
                name,
                f"{head} does not fire at {seed.show(seed.over)} within {within}, only at "
                f"{seed.show(extreme)}: its threshold is looser than the seed's {seed.words}",
                evidence=ev,
            )
        return self.failed(
            name,
            f"{head} never fires on {seed.words}: not at {seed.show(seed.over)} nor at "
            f"{seed.show(extreme)} within {within} (does its expression read the mapped "
            "series?)",
            evidence=ev,
        )

    # -- CloudWatch ------------------------------------------------------------------------
    def _cloudwatch(
        self, ctx: Context, s: Settings, watch: dict[str, CloudWatch]
    ) -> Iterator[Result]:
        try:
            client = aws.client(ctx, "cloudwatch")
            alarms = cloudwatch.describe(client, sorted({c.alarm for c in watch.values()}))
        except Exception as e:
            reason, detail = aws.explain(e, "describing CloudWatch alarms")
            for name in watch:
                yield self.errored(name, reason, detail)
            return
        max_window = parse_duration(s.max_window)
        for name, cond in watch.items():
            alarm = alarms.get(cond.alarm)
            if alarm is None:
                yield self.failed(
                    name,
                    f"{name} ({SEEDS[name].words}): no CloudWatch metric alarm {cond.alarm}",
                    evidence={"alarm": cond.alarm},
                )
                continue
            verdict = cloudwatch.judge(name, cond, alarm, max_window)
            make = self.passed if verdict.ok else self.failed
            yield make(name, verdict.summary, evidence=verdict.evidence)
