"""The terminal report: grouped table, score and grade, verdict, blockers with their fixes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from readyctl.redact import global_redactor
from readyctl.report import Report
from readyctl.reporters import api_rows, checklist_rows, compared_with, origin_line

STATUS_STYLE = {
    "pass": ("PASS", "green"),
    "warn": ("WARN", "yellow"),
    "fail": ("FAIL", "bold red"),
    "error": ("ERROR", "magenta"),
    "blocked": ("BLOCKED", "magenta"),
    "skip": ("SKIP", "dim"),
}
VERDICT_STYLE = {
    "ready": ("READY", "bold green"),
    "not_ready": ("NOT READY", "bold red"),
    "inconclusive": ("INCONCLUSIVE", "bold yellow"),
}


def make_console(*, no_color: bool = False, stderr: bool = False) -> Console:
    """A console that stays plain and readable when not a TTY."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 120
    return Console(
        stderr=stderr,
        no_color=no_color,
        highlight=False,
        width=width,
        soft_wrap=False,
        emoji=False,
    )


def _measured(r: dict[str, Any]) -> str:
    m, t, unit = r.get("measured"), r.get("threshold"), r.get("unit") or ""
    if m is None:
        return ""
    text = f"{m:g}{unit}" if isinstance(m, int | float) else str(m)
    if t is not None:
        text += f" / {t:g}{unit}" if isinstance(t, int | float) else f" / {t}"
    return text


def _rows(results: list[dict[str, Any]], verbose: bool) -> list[tuple[dict[str, Any], int]]:
    """Non-passing results one per row; a check's passing results collapse into one row."""
    rows: list[tuple[dict[str, Any], int]] = []
    passes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["status"] == "pass" and not verbose and not r.get("passed_on_retry"):
            passes[r["id"]].append(r)
        else:
            rows.append((r, 1))
    for group in passes.values():
        rows.append((group[0], len(group)))
    return rows


def render(
    report: Report, console: Console, *, json_path: Path | None = None, verbose: bool = False
) -> None:
    """Print the report."""
    red = global_redactor()
    data = report.data
    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in data["results"]:
        by_cat[r["category"]].append(r)
    cat_scores = {c["name"]: c["score"] for c in data["categories"]}
    table = Table(
        title="Readiness checks",
        show_lines=False,
        expand=False,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("Status", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Subject", overflow="fold", max_width=28)
    table.add_column("Sev", no_wrap=True)
    table.add_column("Summary", overflow="fold")
    table.add_column("Value", overflow="fold", max_width=22)
    for cat in sorted(by_cat):
        score = cat_scores.get(cat)
        label = f"{cat}  {score:g}" if score is not None else f"{cat}  -"
        table.add_row("", Text(label, style="bold cyan"), "", "", "", "", end_section=False)
        for r, collapsed in _rows(by_cat[cat], verbose):
            word, style = STATUS_STYLE[r["status"]]
            if r.get("waiver"):
                word += "*"
            summary = r["summary"]
            subject = r["subject"]
            if collapsed > 1:
                summary, subject = f"{collapsed} subjects pass", "*"
            if r.get("passed_on_retry"):
                summary += f" (passed on retry, {r['attempts']} attempts)"
            table.add_row(
                Text(word, style=style),
                Text(red.text(r["id"])),
                Text(red.text(subject)),
                Text(r["severity"]),
                Text(red.text(summary)),
                Text(red.text(_measured(r)) if collapsed <= 1 else ""),
            )
        table.add_section()
    console.print(table)
    _render_api(data, console)
    _render_checklist(data, console)

    counts = data["counts"]
    count_line = "  ".join(f"{k} {v}" for k, v in counts.items() if v)
    score = data["score"]
    word, style = VERDICT_STYLE[data["verdict"]]
    if data.get("interrupted"):
        word = f"{word} (INTERRUPTED)"
    head = Text.assemble(
        ("Score ", "bold"),
        (f"{score:g}" if score is not None else "-", "bold"),
        ("/100  grade ", ""),
        (data["grade"], "bold"),
        ("   verdict ", ""),
        (word, style),
    )
    lines: list[Any] = [head, Text(count_line, style="dim")]
    reasons = data["gate"]["reasons"]
    if reasons:
        lines.append(Text(""))
        lines.append(Text("Why:", style="bold"))
        for g in reasons:
            lines.append(Text(f"  - {red.text(g['message'])}"))
    blockers = [
        r
        for r in data["results"]
        if any(g.get("check_id") == r["id"] and g.get("subject") == r["subject"] for g in reasons)
    ]
    if blockers:
        lines.append(Text(""))
        lines.append(Text("Fix first:", style="bold"))
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in blockers:
            grouped[r["id"]].append(r)
        for cid, rs in grouped.items():
            rem = rs[0]["remediation"] or {}
            subjects = ", ".join(red.text(r["subject"]) for r in rs)
            lines.append(Text(f"  {cid} [{subjects}]", style="bold"))
            lines.append(Text(f"    {red.text(rem.get('text') or '')}"))
            if rem.get("snippet"):
                for snippet_line in red.text(rem["snippet"]).splitlines():
                    lines.append(Text(f"      {snippet_line}", style="cyan"))
            if rem.get("link"):
                lines.append(Text(f"    {rem['link']}", style="blue"))
    waivers = data.get("waivers") or []
    if waivers:
        lines.append(Text(""))
        lines.append(Text("Waivers:", style="bold"))
        for w in waivers:
            target = w["check"] + (f" [{w['subject']}]" if w.get("subject") else "")
            left = "no expiry" if w.get("days_left") is None else f"{w['days_left']} days left"
            if w.get("expired"):
                left = f"EXPIRED on {w['expires']}"
            note = "" if w.get("matched") else "  (matches no result)"
            lines.append(
                Text(f"  {red.text(target)}: {red.text(w['reason'])} - {w['owner']}, {left}{note}")
            )
    base = data.get("baseline")
    if base:
        lines.append(Text(""))
        delta = base.get("score_delta")
        shown = "-" if delta is None else f"{delta:+g}"
        lines.append(
            Text(
                f"Against baseline: score {shown} ({base.get('score')} before), "
                f"{len(base.get('changes') or [])} results changed status"
            )
        )
        lines.append(Text(f"  {red.text(compared_with(base))}", style="dim"))
        for c in (base.get("changes") or [])[:10]:
            lines.append(Text(f"  {c['id']} [{red.text(c['subject'])}] {c['from']} -> {c['to']}"))
    origin = origin_line(data)
    if origin:
        lines.append(Text(""))
        lines.append(Text(f"Target: {red.text(origin)}", style="dim"))
    if json_path is not None:
        lines.append(Text(""))
        lines.append(Text(f"JSON report: {json_path}"))
    console.print(Panel(Group(*lines), title="readyctl", expand=False))


CHECKLIST_STYLE = {
    "verified": "green",
    "unverified": "yellow",
    "not_applicable": "dim",
    "waived": "magenta",
    "attested": "cyan",
}


def _render_api(data: dict[str, Any], console: Console) -> None:
    """The API map the checks used: each value and where it came from."""
    rows = api_rows(data)
    if not rows:
        return
    red = global_redactor()
    table = Table(title="API map", title_justify="left", pad_edge=False)
    table.add_column("Key", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_column("Source", no_wrap=True)
    for row in rows:
        table.add_row(row["key"], Text(red.text(row["value"])), row["source"])
    console.print(table)


def _render_checklist(data: dict[str, Any], console: Console) -> None:
    """The seed checklist: every item verified, unverified (and what it needs), n/a, waived."""
    rows = checklist_rows(data)
    if not rows:
        return
    red = global_redactor()
    summary = (data.get("checklist") or {}).get("summary") or {}
    table = Table(
        title=f"Checklist ({summary.get('verified', 0)} of {len(rows)} items verified; "
        + (f"{summary['attested']} attested; " if summary.get("attested") else "")
        + f"required: {data['checklist'].get('require')} and above)",
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("Item", overflow="fold", max_width=34)
    table.add_column("Priority", no_wrap=True)
    table.add_column("State", overflow="fold", max_width=24)
    table.add_column("Detail", overflow="fold")
    for row in rows:
        style = CHECKLIST_STYLE.get(row["status"], "")
        if "FAILED" in row["state"]:
            style = "red"
        table.add_row(
            row["item"],
            row["priority"],
            Text(row["state"], style=style),
            Text(red.text(row["detail"])),
        )
    console.print(table)


def render_quiet(report: Report, console: Console, *, json_path: Path | None = None) -> None:
    """One line: verdict, score, grade (for --quiet)."""
    data = report.data
    word, style = VERDICT_STYLE[data["verdict"]]
    score = data["score"]
    where = f"  {json_path}" if json_path else ""
    console.print(
        f"[{style}]{escape(word)}[/] score {score if score is not None else '-'} "
        f"grade {data['grade']}{escape(where)}"
    )
