"""readiness.md: a compact summary for a pull request or a CI step ($GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from readyctl.redact import global_redactor
from readyctl.report import Report
from readyctl.reporters import api_rows, checklist_rows, compared_with, origin_line

FILE_NAME = "readiness.md"
MAX_CELL = 300  # characters of one value in a table cell
MAX_ROWS = 50  # rows per table; GitHub caps a step summary at 1 MiB
VERDICT_WORDS = {
    "ready": ("✅", "READY"),
    "not_ready": ("❌", "NOT READY"),
    "inconclusive": ("⚠️", "INCONCLUSIVE"),
}
STATUSES = ("pass", "warn", "fail", "error", "blocked", "skip")
_BACKSLASHED = re.compile(r"([\\`*_\[\]|~#])")
_SAFE_LINK = re.compile(r"^https?://[^\s<>()\[\]|`\\\"']+$")
_WWW = re.compile(r"www\.", re.IGNORECASE)
_NEWLINES = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")


def esc(value: Any, limit: int = MAX_CELL) -> str:
    """Untrusted text redacted and made inert in Markdown and a table cell (one line, no HTML)."""
    text = global_redactor().text("" if value is None else str(value))
    text = _NEWLINES.sub(" ", text).replace("\t", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _BACKSLASHED.sub(r"\\\1", text)
    # keep @mentions and autolinks from pinging or linking in PR comments
    text = text.replace("@", "&#64;").replace("://", ":&#47;&#47;")
    return _WWW.sub(lambda m: m.group()[:3] + "&#46;", text)


def _num(value: Any) -> str:
    """A score or number, '-' when absent."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return esc(value)


def _blockers(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Results the gate's reasons name, in the order of the reasons."""
    results = data.get("results") or []
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    for g in (data.get("gate") or {}).get("reasons") or []:
        cid, subject = g.get("check_id"), g.get("subject")
        if not cid:
            continue
        for r in results:
            if r.get("id") != cid or (subject is not None and r.get("subject") != subject):
                continue
            if subject is None and r.get("status") == "pass":
                continue
            key = (r.get("id"), r.get("subject"))
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _days_left(w: dict[str, Any]) -> str:
    """'12', 'today', or 'expired' for a waiver."""
    days = w.get("days_left")
    if w.get("expired") or (isinstance(days, int | float) and days < 0):
        return "**expired**"
    if days is None:
        return "-"
    return "today" if days == 0 else _num(days)


def _table(head: list[str], rows: list[list[str]], more: int = 0) -> list[str]:
    """A GFM table (cells already escaped)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if more > 0:
        lines.append("")
        lines.append(f"_…and {more} more in the full report._")
    return lines


def render(report: Report) -> str:
    """The Markdown summary as text (every value redacted and escaped)."""
    data: dict[str, Any] = report.data  # every value is redacted where it is output (esc)
    results: list[dict[str, Any]] = data.get("results") or []
    gate = data.get("gate") or {}
    icon, word = VERDICT_WORDS.get(data.get("verdict", ""), ("❔", "UNKNOWN"))
    env = data.get("environment") or {}
    lines: list[str] = []
    partial = " (partial: interrupted)" if data.get("interrupted") else ""
    lines.append(
        f"## {icon} readyctl: {word}{partial} · score {_num(data.get('score'))}/100 · "
        f"grade {esc(data.get('grade') or '-')}"
    )
    lines.append("")
    target = (data.get("target") or {}).get("base_url") or (data.get("target") or {}).get("managed")
    meta = [f"environment **{esc(env.get('name') or '-')}**"]
    if env.get("production"):
        meta.append("production")
    if target:
        meta.append(f"target {esc(target)}")
    meta.append(f"started {esc(data.get('started_at') or '-')}")
    if data.get("duration_s") is not None:
        meta.append(f"took {_num(data['duration_s'])} s")
    lines.append(" · ".join(meta))
    origin = origin_line(data)
    if origin:
        lines.append("")
        lines.append(f"Target from: {esc(origin, 500)}")
    if data.get("interrupted"):
        lines += [
            "",
            "> [!WARNING]",
            "> The run was interrupted: this report is partial and some checks did not run.",
        ]
    lines.append("")

    reasons = gate.get("reasons") or []
    if reasons:
        lines.append("### Why")
        lines.append("")
        lines += [f"- {esc(g.get('message'), 500)}" for g in reasons]
        lines.append("")
    elif data.get("verdict") == "ready":
        lines += ["The gate passed: nothing blocks this deploy.", ""]

    blockers = _blockers(data)
    if blockers:
        lines.append("### Blockers")
        lines.append("")
        rows = []
        for r in blockers[:MAX_ROWS]:
            rem = r.get("remediation") or {}
            fix = esc(rem.get("text") or "-")
            link = global_redactor().text(str(rem.get("link") or ""))
            if _SAFE_LINK.match(link):
                fix += f" ([docs]({link}))"
            owner = (r.get("waiver") or {}).get("owner")
            rows.append(
                [
                    esc(r.get("id")),
                    esc(r.get("subject")),
                    esc(r.get("severity")),
                    esc(r.get("status")),
                    esc(r.get("summary")),
                    fix,
                    esc(owner) if owner else "-",
                ]
            )
        head = ["Check", "Subject", "Severity", "Status", "Summary", "Fix", "Owner"]
        lines += _table(head, rows, len(blockers) - MAX_ROWS)
        lines.append("")

    waived = [r for r in results if r.get("waiver")]
    if waived:
        lines.append("### Waivers")
        lines.append("")
        rows = []
        for r in waived[:MAX_ROWS]:
            w = r["waiver"]
            rows.append(
                [
                    esc(r.get("id")),
                    esc(r.get("subject")),
                    esc(r.get("status")),
                    esc(w.get("owner") or "-"),
                    esc(w.get("reason") or "-"),
                    esc(w.get("expires") or "-"),
                    _days_left(w),
                    esc(w.get("ticket") or "-"),
                ]
            )
        head = ["Check", "Subject", "Status", "Owner", "Reason", "Expires", "Days left", "Ticket"]
        lines += _table(head, rows, len(waived) - MAX_ROWS)
        lines.append("")

    baseline = data.get("baseline")
    if baseline:
        lines.append("### Change against the baseline")
        lines.append("")
        delta = baseline.get("score_delta")
        if isinstance(delta, int | float):
            arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
            delta_text = f"{arrow} {delta:+g}"
        else:
            delta_text = "-"
        lines.append(
            f"Score {_num(data.get('score'))} against {_num(baseline.get('score'))} "
            f"({delta_text} points) in {esc(baseline.get('path') or '-')}."
        )
        label = compared_with(baseline)
        lines += ["", esc(label[:1].upper() + label[1:], 400) + "."]
        changes = baseline.get("changes") or []
        if changes:
            lines.append("")
            rows = [
                [
                    esc(c.get("id")),
                    esc(c.get("subject")),
                    esc(c.get("from") or "-"),
                    esc(c.get("to") or "-"),
                ]
                for c in changes[:MAX_ROWS]
            ]
            lines += _table(["Check", "Subject", "From", "To"], rows, len(changes) - MAX_ROWS)
        else:
            lines += ["", "No result changed status."]
        lines.append("")

    retried = [r for r in results if r.get("passed_on_retry")]
    if retried:
        lines.append("### Passed on retry")
        lines.append("")
        lines += [
            f"- {esc(r.get('id'))} [{esc(r.get('subject'))}] after {_num(r.get('attempts'))}"
            " attempts"
            for r in retried[:MAX_ROWS]
        ]
        lines.append("")

    api = api_rows(data)
    if api:
        lines.append("### API map")
        lines.append("")
        rows = [[esc(r["key"]), esc(r["value"], 200), esc(r["source"])] for r in api]
        lines += _table(["Key", "Value", "Source"], rows)
        lines.append("")
    checklist = checklist_rows(data)
    if checklist:
        summary = (data.get("checklist") or {}).get("summary") or {}
        lines.append("### Checklist")
        lines.append("")
        lines.append(
            f"{_num(summary.get('verified', 0))} of {len(checklist)} items verified"
            + (f", {_num(summary['attested'])} attested" if summary.get("attested") else "")
            + "; required: "
            f"{esc((data.get('checklist') or {}).get('require') or '-')} and above."
        )
        lines.append("")
        rows = [
            [esc(r["item"]), esc(r["priority"]), esc(r["state"]), esc(r["detail"], 300)]
            for r in checklist
        ]
        lines += _table(["Item", "Priority", "State", "Detail"], rows)
        lines.append("")
    categories = data.get("categories") or []
    if categories:
        lines.append("### Categories")
        lines.append("")
        rows = []
        for c in categories:
            cc = c.get("counts") or {}
            rows.append(
                [esc(c.get("name")), _num(c.get("score"))] + [_num(cc.get(s, 0)) for s in STATUSES]
            )
        lines += _table(["Category", "Score", *STATUSES], rows)
        lines.append("")

    counts = data.get("counts") or {}
    count_text = " · ".join(f"{s} {_num(counts.get(s, 0))}" for s in STATUSES)
    lines.append(f"**{len(results)} results:** {count_text} · waived {len(waived)}")
    if data.get("cleanup_problems"):
        lines.append("")
        lines.append("**Cleanup problems:**")
        lines += [f"- {esc(p, 500)}" for p in data["cleanup_problems"]]
    tool = data.get("tool") or {}
    lines.append("")
    name, version = esc(tool.get("name") or "readyctl"), esc(tool.get("version") or "")
    lines.append(f"<sub>{name} {version}</sub>")
    return "\n".join(lines) + "\n"


def write(report: Report, out_dir: Path) -> Path:
    """Write readiness.md atomically and append it to $GITHUB_STEP_SUMMARY when that is set."""
    path = out_dir / FILE_NAME
    text = render(report)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".readiness.", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return path
