"""The deployment timeline of one run, for people: `deploy.md` and `deploy.html`.

Both are rendered from the run's state and audit log (which are already redacted) and pass
through the redactor again. The Markdown goes into a pull request or `$GITHUB_STEP_SUMMARY`;
the HTML page is self-contained (no external requests), with a bar per step on a time axis
and every event in a table, as a release manager reads it after the night.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from readyctl.redact import global_redactor
from readyctl.runbook.audit import read_events

MD_FILE = "deploy.md"
HTML_FILE = "deploy.html"
STATUS_WORDS = {
    "succeeded": "SUCCEEDED",
    "rolled_back": "ROLLED BACK",
    "rollback_failed": "ROLLBACK FAILED",
    "stopped": "STOPPED",
    "interrupted": "INTERRUPTED",
    "abandoned": "ABANDONED",
    "running": "RUNNING",
}
COLORS = {
    "succeeded": "#1a7f37",
    "done": "#1a7f37",
    "failed": "#cf222e",
    "skipped": "#8c959f",
    "running": "#9a6700",
}
# events that end a step (the bar ends there) and what each means
ENDS = {
    "step finished": "succeeded",
    "step failed": "failed",
    "step skipped": "skipped",
    "compensation done": "done",
    "compensation failed": "failed",
}


def _parse(ts: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def spans(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One span per step (and per compensation): where it started, how long, how it ended."""
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for e in events:
        t = _parse(e.get("ts"))
        step = str(e.get("step") or "")
        if t is None or not step:
            continue
        kind = "rollback" if str(e.get("event", "")).startswith("compensation") else "step"
        if e.get("event") in ("step started", "compensation started"):
            open_[(kind, step)] = {"step": step, "kind": kind, "start": t, "uses": e.get("uses")}
            continue
        outcome = ENDS.get(str(e.get("event")))
        if outcome is None:
            continue
        span = open_.pop((kind, step), None) or {"step": step, "kind": kind, "start": t}
        dur = e.get("duration_s")
        span["end"] = t
        if isinstance(dur, int | float) and span["start"] == t:
            span["start"] = t - dt.timedelta(seconds=float(dur))
        span["outcome"] = outcome
        span["summary"] = e.get("summary") or e.get("outcome") or ""
        out.append(span)
    for span in open_.values():  # started, never ended: the run stopped inside it
        span.update(end=span["start"], outcome="running", summary="did not finish")
        out.append(span)
    out.sort(key=lambda s: s["start"])
    return out


def _header(state: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    status = str(state.get("status") or "running")
    facts = [
        ("run", str(state.get("run_id", ""))),
        ("release", f"{state.get('previous_release') or '?'} -> {state.get('release') or '?'}"),
        ("environment", str(state.get("env") or state.get("env_name") or "")),
        ("runbook", str(state.get("runbook") or "")),
        ("who", str(state.get("who") or "")),
        ("started", str(state.get("started") or "")),
        ("ended", str(state.get("ended") or "")),
        ("exit code", str(state.get("exit_code"))),
    ]
    if state.get("reason"):
        facts.append(("reason", str(state["reason"])))
    return STATUS_WORDS.get(status, status.upper()), facts


def _seconds(span: Mapping[str, Any]) -> float:
    return max(0.0, (span["end"] - span["start"]).total_seconds())


def render_markdown(state: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """The timeline as Markdown: the outcome, the facts, one row per step and compensation."""
    red = global_redactor()
    word, facts = _header(state)
    lines = [f"## Deployment {state.get('run_id', '')}: {word}", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts if v and v != "None"]
    lines += [
        "",
        "| start | step | phase | outcome | duration | summary |",
        "|---|---|---|---|---|---|",
    ]
    for s in spans(events):
        summary = str(s.get("summary") or "").replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(
            f"| {s['start'].strftime('%H:%M:%S')} | {s['step']} | {s['kind']} | {s['outcome']} "
            f"| {_seconds(s):.1f} s | {summary} |"
        )
    return red.text("\n".join(lines) + "\n")


def render_html(state: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """The timeline as one self-contained HTML page (bars on a time axis, then every event)."""
    red = global_redactor()

    def esc(value: Any) -> str:
        return html.escape(red.text(str(value)))

    word, facts = _header(state)
    ss = spans(events)
    t0 = min((s["start"] for s in ss), default=None)
    t1 = max((s["end"] for s in ss), default=None)
    total = max(1e-3, (t1 - t0).total_seconds()) if t0 and t1 else 1.0
    bars = []
    for i, s in enumerate(ss):
        assert t0 is not None
        x = 160 + 600 * (s["start"] - t0).total_seconds() / total
        w = max(2.0, 600 * _seconds(s) / total)
        y = 10 + 22 * i
        color = COLORS.get(s["outcome"], "#8c959f")
        label = f"{s['step']}{' (rollback)' if s['kind'] == 'rollback' else ''}"
        bars.append(
            f'<text x="4" y="{y + 13}" font-size="12">{esc(label)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" fill="{color}">'
            f"<title>{esc(s['outcome'])}: {_seconds(s):.1f} s</title></rect>"
        )
    height = 20 + 22 * len(ss)
    rows = "".join(
        f"<tr><td>{esc(e.get('ts', ''))}</td><td>{esc(e.get('event', ''))}</td>"
        f"<td>{esc(e.get('step', ''))}</td><td>{esc(e.get('outcome', ''))}</td>"
        f"<td>{esc(e.get('duration_s', ''))}</td><td>{esc(e.get('summary', ''))}</td></tr>"
        for e in events
    )
    fact_rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts if v and v != "None"
    )
    status = str(state.get("status") or "running")
    color = COLORS.get("succeeded" if status == "succeeded" else "failed", "#8c959f")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Deployment {esc(state.get('run_id', ''))}: {esc(word)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;"
        "padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}"
        ".verdict{font-size:1.6em;font-weight:600}</style></head><body>"
        f"<h1>Deployment <code>{esc(state.get('run_id', ''))}</code></h1>"
        f'<p class="verdict" id="status" style="color:{color}">{esc(word)}</p>'
        f"<table>{fact_rows}</table>"
        f'<h2 id="timeline">Timeline</h2><svg role="img" aria-label="deployment timeline" '
        f'width="780" height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
        f'<h2 id="events">Audit log</h2><table><tr><th>time</th><th>event</th><th>step</th>'
        f"<th>outcome</th><th>seconds</th><th>summary</th></tr>{rows}</table>"
        "</body></html>\n"
    )


def write(run_dir: Path, state: Mapping[str, Any]) -> dict[str, Path]:
    """Write deploy.md and deploy.html into the run's directory (and append the Markdown to
    `$GITHUB_STEP_SUMMARY` when set); returns format -> path."""
    events = read_events(run_dir / "audit.jsonl")
    md = render_markdown(state, events)
    out = {"markdown": run_dir / MD_FILE, "html": run_dir / HTML_FILE}
    out["markdown"].write_text(md, encoding="utf-8")
    out["html"].write_text(render_html(state, events), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(md)
        except OSError:
            pass
    return out
