"""promtool and amtool: finding them, running them, reading their answers, and the rule files.

The tools come from Debian's `prometheus` and `prometheus-alertmanager` packages; a missing
tool is named with its install command. Every run goes through readyctl._proc (own process
group, killed on timeout or interrupt) with a minimal environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from readyctl import _proc

INSTALL = {
    "promtool": "apt-get install prometheus",
    "amtool": "apt-get install prometheus-alertmanager",
}
_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_FILE_LINE = re.compile(r":\s*(\d+):(\d+):")
_LINE_WORD = re.compile(r"\bline (\d+)\b")


class ToolError(Exception):
    """A tool answered something readyctl cannot read (the message says what)."""


def which(tool: str, environ: Mapping[str, str]) -> str | None:
    """The tool's path on the environment's PATH, or None."""
    return shutil.which(tool, path=environ.get("PATH", os.defpath))


def missing_reason(tool: str) -> str:
    """`promtool is not installed (apt-get install prometheus)`."""
    how = INSTALL.get(tool)
    return f"{tool} is not installed ({how})" if how else f"{tool} is not installed"


def missing_tools(tools: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The reasons for each of `tools` that is not on PATH (for `check --plan`)."""
    return [missing_reason(t) for t in tools if which(t, environ) is None]


def _run(
    args: Sequence[str], timeout: float, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": tempfile.gettempdir(), "LC_ALL": "C"}
    return _proc.run(
        list(args),
        timeout=max(1.0, timeout),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        name=Path(args[0]).name,
    )


# -- rule files ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """One alerting rule as written in a rule file."""

    alert: str
    expr: str
    for_s: float
    labels: dict[str, str]
    file: str
    line: int


@dataclasses.dataclass(frozen=True)
class FileProblem:
    """`promtool check rules` refused a file."""

    file: str
    line: int | None
    message: str


def read_rules(path: Path, shown: str) -> list[Rule]:
    """The alerting rules of a rule file, with their lines (best effort: promtool judges)."""
    from readyctl.alerts.mapping import parse_duration

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    out: list[Rule] = []
    for group in _seq(_get(root, "groups")):
        for node in _seq(_get(group, "rules")):
            alert = _scalar(_get(node, "alert"))
            if not alert:
                continue
            try:
                for_s = parse_duration(_scalar(_get(node, "for")) or "0s")
            except ValueError:
                for_s = 0.0
            labels_node = _get(node, "labels")
            labels = {}
            if isinstance(labels_node, yaml.MappingNode):
                labels = {_scalar(k) or "": _scalar(v) or "" for k, v in labels_node.value}
            out.append(
                Rule(
                    alert=alert,
                    expr=_scalar(_get(node, "expr")) or "",
                    for_s=for_s,
                    labels=labels,
                    file=shown,
                    line=node.start_mark.line + 1,
                )
            )
    return out


def _get(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _seq(node: Any) -> list[Any]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _scalar(node: Any) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def check_rules(promtool: str, path: Path, shown: str, timeout: float) -> FileProblem | None:
    """`promtool check rules FILE`: None when it loads, else the first problem and its line."""
    done = _run([promtool, "check", "rules", str(path)], timeout)
    if done.returncode == 0:
        return None
    lines = [
        ln.strip()
        for ln in (done.stderr + "\n" + done.stdout).splitlines()
        if ln.strip() and not ln.strip().startswith(("FAILED", "Checking", "SUCCESS"))
    ]
    text = " ".join(ln.replace(str(path), shown) for ln in lines) or f"exit {done.returncode}"
    m = _FILE_LINE.search(text) or _LINE_WORD.search(text)
    line = int(m.group(1)) if m else None
    prefix = f"{shown}: "
    message = text[len(prefix) :] if text.startswith(prefix) else text
    return FileProblem(shown, line, message[:400])


def fired(
    promtool: str,
    rule_files: Sequence[Path],
    alertname: str,
    input_series: list[dict[str, Any]],
    interval: str,
    eval_time: str,
    timeout: float,
) -> list[dict[str, str]]:
    """Run `promtool test rules` with `input_series`: the label sets of `alertname`'s alerts
    firing at `eval_time` (empty when it is quiet). Raises ToolError on anything else."""
    test = {
        "rule_files": [str(p) for p in rule_files],
        "evaluation_interval": interval,
        "tests": [
            {
                "interval": interval,
                "input_series": input_series,
                "alert_rule_test": [
                    {"eval_time": eval_time, "alertname": alertname, "exp_alerts": []}
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="readyctl-promtool-") as tmp:
        path = Path(tmp) / "readyctl-test.yml"
        path.write_text(json.dumps(test, indent=1), encoding="utf-8")
        done = _run([promtool, "test", "rules", str(path)], timeout, cwd=tmp)
    if done.returncode == 0:
        return []
    text = done.stderr + "\n" + done.stdout
    at = text.find("got:[")
    if at < 0:
        detail = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())[:300]
        raise ToolError(f"promtool test rules failed: {detail}")
    return [dict(_LABELS.findall(m)) for m in re.findall(r"Labels:\{([^}]*)\}", text[at:])]


# -- Alertmanager --------------------------------------------------------------------------
def check_config(amtool: str, path: Path, shown: str, timeout: float) -> FileProblem | None:
    """`amtool check-config FILE`: None when it loads, else what it said."""
    done = _run([amtool, "check-config", str(path)], timeout)
    if done.returncode == 0:
        return None
    text = " ".join(
        ln.strip() for ln in (done.stdout + "\n" + done.stderr).splitlines() if ln.strip()
    ).replace(str(path), shown)
    m = re.search(r"FAILED:\s*(.*?)(?:\s*amtool: error:.*)?$", text)
    message = (m.group(1) if m else text) or f"exit {done.returncode}"
    line = _LINE_WORD.search(message)
    return FileProblem(shown, int(line.group(1)) if line else None, message[:400])


def routes(amtool: str, path: Path, labels: Mapping[str, str], timeout: float) -> list[str]:
    """The receivers `amtool config routes test` sends an alert with `labels` to."""
    args = [amtool, "config", "routes", "test", "--config.file", str(path)]
    args += [f"{k}={v}" for k, v in sorted(labels.items())]
    done = _run(args, timeout)
    if done.returncode != 0:
        detail = " ".join(ln.strip() for ln in done.stderr.splitlines() if "Warning" not in ln)
        raise ToolError(f"amtool config routes test failed: {detail[:300]}")
    out = done.stdout.strip()
    return [r.strip() for r in out.split(",") if r.strip()]


def notifiers(path: Path) -> dict[str, list[str]]:
    """Receiver name -> its integrations (`webhook`, `pagerduty`, ...); [] is a null receiver."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    out: dict[str, list[str]] = {}
    for rec in data.get("receivers") or [] if isinstance(data, dict) else []:
        if not isinstance(rec, dict) or not isinstance(rec.get("name"), str):
            continue
        kinds = [
            k.removesuffix("_configs")
            for k, v in rec.items()
            if k.endswith("_configs") and isinstance(v, list) and v
        ]
        out[rec["name"]] = kinds
    return out
