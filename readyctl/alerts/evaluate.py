"""Running the team's rules on generated series, once per run (shared by alerts.rules and
alerts.routing through the run's cache: the routing check tests the label sets the alerts
really fire with)."""

from __future__ import annotations

import dataclasses
import glob
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readyctl.alerts import series, tools
from readyctl.alerts.mapping import PrometheusCondition, format_duration

if TYPE_CHECKING:
    from readyctl.context import Context


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The configured rule files, what promtool said about them, and their alerting rules."""

    files: list[tuple[Path, str]]  # (absolute path, as shown)
    problems: list[tools.FileProblem]
    rules: dict[str, list[tools.Rule]]  # alertname -> its rules

    def shown(self) -> str:
        """The files as one phrase."""
        return ", ".join(s for _, s in self.files[:4]) + (" ..." if len(self.files) > 4 else "")


def _lock(ctx: Context, key: str) -> threading.Lock:
    with ctx.state.lock:
        return ctx.state.cache.setdefault(f"{key}:lock", threading.Lock())  # type: ignore[no-any-return]


def _shown(ctx: Context, path: Path) -> str:
    try:
        return path.resolve().relative_to(Path(ctx.base_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def resolve_files(ctx: Context, patterns: tuple[str, ...]) -> list[tuple[Path, str]]:
    """The files the `rule_files` globs match (relative to readyctl.yaml's directory)."""
    found: dict[Path, str] = {}
    for pattern in patterns:
        for name in sorted(glob.glob(str(ctx.resolve(pattern)), recursive=True)):
            path = Path(name)
            if path.is_file():
                found.setdefault(path.resolve(), _shown(ctx, path))
    return list(found.items())


def rule_set(ctx: Context, patterns: tuple[str, ...], promtool: str | None) -> RuleSet:
    """The rule files checked by promtool (when present) and read, once per run."""
    key = f"alerts.rules:{patterns}"
    with _lock(ctx, key):
        with ctx.state.lock:
            cached = ctx.state.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        files = resolve_files(ctx, patterns)
        problems = []
        rules: dict[str, list[tools.Rule]] = {}
        for path, shown in files:
            if promtool is not None:
                ctx.check_deadline()
                problem = tools.check_rules(promtool, path, shown, ctx.timeout(30))
                if problem is not None:
                    problems.append(problem)
            for rule in tools.read_rules(path, shown):
                rules.setdefault(rule.alert, []).append(rule)
        out = RuleSet(files, problems, rules)
        with ctx.state.lock:
            ctx.state.cache[key] = out
        return out


@dataclasses.dataclass(frozen=True)
class Timing:
    """When the generated series are judged."""

    interval_s: float
    max_window_s: float
    warmup_s: float

    def over_at(self) -> float:
        """The alert must be firing by then (max_window plus the warm-up)."""
        return self._round(self.max_window_s + self.warmup_s)

    def under_at(self, for_s: float) -> float:
        """The alert must still be quiet then (its own `for:` elapsed too)."""
        return self._round(max(for_s, self.max_window_s) + self.warmup_s)

    def _round(self, t: float) -> float:
        steps = -(-t // self.interval_s)
        return steps * self.interval_s


def fire(
    ctx: Context,
    promtool: str,
    rs: RuleSet,
    name: str,
    cond: PrometheusCondition,
    value: float,
    at_s: float,
    timing: Timing,
) -> list[dict[str, str]]:
    """The label sets of `cond.alert` firing at `at_s` when condition `name` is at `value`.

    Raises series.NotMeasurable (the mapping cannot express `value`) or tools.ToolError.
    """
    key = f"alerts.fire:{name}:{cond!r}:{value}:{at_s}:{timing}:{[s for _, s in rs.files]}"
    with _lock(ctx, key):
        with ctx.state.lock:
            cached = ctx.state.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        steps = int(at_s // timing.interval_s) + 2
        input_series = series.generate(name, cond, value, steps, timing.interval_s)
        ctx.check_deadline()
        got = tools.fired(
            promtool,
            [p for p, _ in rs.files],
            cond.alert,
            input_series,
            format_duration(timing.interval_s),
            format_duration(at_s),
            ctx.timeout(30),
        )
        with ctx.state.lock:
            ctx.state.cache[key] = got
        return got


def input_preview(name: str, cond: PrometheusCondition, value: float) -> list[str]:
    """The generated series (first values) for evidence."""
    out: list[Any] = series.generate(name, cond, value, 3, 60.0)
    return [f"{s['series']} {s['values']}" for s in out[:6]]
