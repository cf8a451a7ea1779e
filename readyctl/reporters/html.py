"""readiness.html: one self-contained, autoescaped page for release managers (no network)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, Template
from markupsafe import Markup

from readyctl import resource_dir
from readyctl.redact import MASK, global_redactor, is_secret_name
from readyctl.report import Report
from readyctl.reporters import api_rows, checklist_rows, compared_with, origin_line

FILE_NAME = "readiness.html"
TEMPLATE = "report.html.j2"
VERDICTS = {
    "ready": ("READY", "ready"),
    "not_ready": ("NOT READY", "notready"),
    "inconclusive": ("INCONCLUSIVE", "inconclusive"),
}
STATUS_WORDS = {
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "error": "ERROR",
    "blocked": "BLOCKED",
    "skip": "SKIP",
}
STATUSES = ("fail", "error", "blocked", "warn", "pass", "skip")
LOAD_KEYS = ("percentiles", "timeline")
MAX_EVIDENCE_CHARS = 4000  # per evidence value; the full value stays in readiness.json
MAX_TIMELINE_POINTS = 300
# Opens every <details> before printing in browsers without ::details-content (the CSS does it
# in current ones). A code constant, never data; the page's CSP allows exactly this script.
PRINT_SCRIPT = (
    "(function(){var o=[];addEventListener('beforeprint',function(){"
    "document.querySelectorAll('details:not([open])').forEach(function(d){d.open=true;o.push(d);});"
    "});addEventListener('afterprint',function(){o.forEach(function(d){d.open=false;});o=[];});"
    "})();"
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(PRINT_SCRIPT.encode()).digest()).decode()
_SAFE_LINK = re.compile(r"^https?://[^\s\"'<>`]+$", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _secret_key(name: str) -> bool:
    """Whether a key names a secret (keys repeat across results, so cached)."""
    return is_secret_name(name)


class _Redact:
    """Redactor.value with each distinct string redacted once per document (titles repeat)."""

    def __init__(self) -> None:
        self._redactor = global_redactor()
        self._seen: dict[str, str] = {}

    def __call__(self, obj: Any, key: str | None = None) -> Any:
        """A copy of `obj` with secrets masked; secret-named keys lose their string values."""
        if isinstance(obj, str):
            if key is not None and obj and _secret_key(key):
                return MASK
            done = self._seen.get(obj)
            if done is None:
                done = self._seen[obj] = self._redactor.text(obj)
            return done
        if isinstance(obj, Mapping):
            return {str(k): self(v, str(k)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self(v) for v in obj]
        return obj


@functools.lru_cache(maxsize=1)
def _template() -> Template:
    """The compiled report template (autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(resource_dir("templates")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)


def _float(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(value: Any) -> str:
    """A number compactly (12, 12.5, 1,234), anything else as text."""
    f = _float(value)
    if f is None or isinstance(value, str):
        return "-" if value is None else str(value)
    if abs(f) >= 1000:
        return f"{f:,.0f}"
    return f"{round(f, 2):g}"


def _band(score: Any) -> str:
    """good | fair | poor for a 0-100 score (css class)."""
    f = _float(score)
    if f is None:
        return "none"
    return "good" if f >= 90 else "fair" if f >= 70 else "poor"


def _link(url: Any) -> str | None:
    """An http(s) link, or None (javascript: and friends never become hrefs)."""
    return url if isinstance(url, str) and _SAFE_LINK.match(url) else None


def _measured(r: dict[str, Any]) -> str:
    """'measured / threshold unit' or ''."""
    m, t, unit = r.get("measured"), r.get("threshold"), r.get("unit") or ""
    if m is None:
        return ""
    text = f"{_fmt(m)}{unit}"
    if t is not None:
        text += f" / {_fmt(t)}{unit}"
    return text


def _waiver(w: Any) -> dict[str, Any] | None:
    """A waiver with its days-left wording and urgency class."""
    if not isinstance(w, dict):
        return None
    days = w.get("days_left")
    expired = bool(w.get("expired")) or (isinstance(days, int | float) and days < 0)
    if expired:
        left, cls = "expired", "poor"
    elif days is None:
        left, cls = "-", "none"
    elif days == 0:
        left, cls = "expires today", "poor"
    else:
        left = f"{_fmt(days)} day{'s' if days != 1 else ''} left"
        cls = "fair" if days <= 14 else "good"
    return {**w, "expired": expired, "left": left, "cls": cls}


def _evidence(evidence: Any) -> list[dict[str, Any]]:
    """Evidence as key/value rows; structures as indented JSON, long values truncated."""
    if not isinstance(evidence, dict):
        evidence = {"value": evidence} if evidence else {}
    rows = []
    for key, value in evidence.items():
        if key in LOAD_KEYS:
            continue
        block = isinstance(value, dict | list)
        if block:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        else:
            text = "null" if value is None else str(value)
            block = "\n" in text
        if len(text) > MAX_EVIDENCE_CHARS:
            cut = len(text) - MAX_EVIDENCE_CHARS
            text = text[:MAX_EVIDENCE_CHARS] + f"\n… {cut} more characters in readiness.json"
            block = True
        rows.append({"key": str(key), "text": text, "block": block})
    return rows


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    """A linear map from [lo, hi] to [a, b]."""
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _chart(
    series: Sequence[tuple[str, str, list[tuple[float, float, str]]]],
    *,
    y_min: float | None = 0.0,
    y_max: float | None = None,
    x_labels: tuple[str, str] | None = None,
    guide: tuple[float, str] | None = None,
    dots: bool = False,
    width: int = 560,
    height: int = 180,
) -> dict[str, Any] | None:
    """An inline-SVG line chart's geometry: (name, css class, [(x, y, tooltip)]) per series."""
    pts = [p for _, _, s in series for p in s]
    if not pts:
        return None
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts] + ([guide[0]] if guide else [])
    lo_y = min(ys) if y_min is None else y_min
    hi_y = max(ys) if y_max is None else y_max
    if y_max is None:
        ticks = _ticks(lo_y, hi_y if hi_y > lo_y else lo_y + 1.0)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        hi_y = ticks[-1] if ticks[-1] >= hi_y else ticks[-1] + step
    left, right, top, bottom = 46, width - 10, 10, height - 24
    if max(xs) > min(xs):
        sx = _scale(min(xs), max(xs), left, right)
    else:
        sx = lambda v: (left + right) / 2  # noqa: E731 - one point: centred
    sy = _scale(lo_y, hi_y, bottom, top)
    out_series = []
    for name, cls, s in series:
        coords = [(sx(x), sy(y), tip) for x, y, tip in s]
        out_series.append(
            {
                "name": name,
                "cls": cls,
                "points": " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords),
                "dots": [{"x": f"{x:.1f}", "y": f"{y:.1f}", "tip": t} for x, y, t in coords]
                if dots or len(coords) == 1
                else [],
            }
        )
    yticks = [{"y": f"{sy(v):.1f}", "label": _fmt(v)} for v in _ticks(lo_y, hi_y)]
    return {
        "w": width,
        "h": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "series": out_series,
        "yticks": yticks,
        "x_labels": x_labels,
        "guide": {"y": f"{sy(guide[0]):.1f}", "label": guide[1]} if guide else None,
    }


def _history_chart(data: dict[str, Any]) -> dict[str, Any] | None:
    """The score trend over `history` (oldest first) plus this run."""
    history = data.get("history")
    if not isinstance(history, list) or not history:
        return None
    runs = [h for h in history if isinstance(h, dict)]
    if data.get("score") is not None and (
        not runs or runs[-1].get("started_at") != data.get("started_at")
    ):
        runs.append(
            {
                "started_at": data.get("started_at"),
                "score": data["score"],
                "verdict": data.get("verdict"),
            }
        )
    points = []
    for i, h in enumerate(runs):
        score = _float(h.get("score"))
        if score is None:
            continue
        verdict = VERDICTS.get(str(h.get("verdict")), (str(h.get("verdict") or "-"), ""))[0]
        points.append((float(i), score, f"{h.get('started_at') or '-'}: {_fmt(score)} ({verdict})"))
    if not points:
        return None
    first, last = runs[0].get("started_at") or "", runs[-1].get("started_at") or ""
    fail_under = _float((data.get("gate") or {}).get("fail_under"))
    chart = _chart(
        [("score", "s-score", points)],
        y_min=0.0,
        y_max=100.0,
        x_labels=(str(first)[:10], str(last)[:10]),
        guide=(fail_under, f"fail_under {_fmt(fail_under)}") if fail_under is not None else None,
        dots=True,
        width=420,
        height=150,
    )
    if chart is not None:
        chart["runs"] = len(points)
    return chart


def _timeline_chart(timeline: Any) -> dict[str, Any] | None:
    """p50/p95 response time over the run, from evidence['timeline']."""
    if not isinstance(timeline, list):
        return None
    rows = [t for t in timeline if isinstance(t, dict) and _float(t.get("t_s")) is not None]
    if len(rows) > MAX_TIMELINE_POINTS:
        step = len(rows) / MAX_TIMELINE_POINTS
        rows = [rows[int(i * step)] for i in range(MAX_TIMELINE_POINTS)] + [rows[-1]]
    series = []
    for key, name, cls in (("p50_ms", "p50", "s-p50"), ("p95_ms", "p95", "s-p95")):
        pts = []
        for t in rows:
            y = _float(t.get(key))
            if y is not None:
                x = _float(t["t_s"]) or 0.0
                pts.append((x, y, f"{_fmt(x)} s: {name} {_fmt(y)} ms"))
        if pts:
            series.append((name, cls, pts))
    if not series:
        return None
    xs = [p[0] for _, _, s in series for p in s]
    return _chart(series, x_labels=(f"{_fmt(min(xs))} s", f"{_fmt(max(xs))} s"))


def _percentiles(table: Any) -> dict[str, Any] | None:
    """evidence['percentiles'] as columns and rows, whatever its shape (dict or list of rows)."""
    if isinstance(table, dict) and table and all(isinstance(v, dict) for v in table.values()):
        columns = ["name"]
        for row in table.values():
            columns += [k for k in row if k not in columns]
        rows = [
            [str(name)] + [_fmt(row.get(c)) for c in columns[1:]] for name, row in table.items()
        ]
    elif isinstance(table, dict) and table:
        columns = [str(k) for k in table]
        rows = [[_fmt(v) for v in table.values()]]
    elif isinstance(table, list) and table and all(isinstance(v, dict) for v in table):
        columns = []
        for row in table:
            columns += [k for k in row if k not in columns]
        rows = [[_fmt(row.get(c)) for c in columns] for row in table]
    else:
        return None
    return {"columns": [str(c) for c in columns], "rows": rows}


def _blockers(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Results the gate's reasons name, in the order of the reasons."""
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for g in (data.get("gate") or {}).get("reasons") or []:
        cid, subject = g.get("check_id"), g.get("subject")
        if not cid:
            continue
        for r in data["results"]:
            if r.get("id") != cid or (subject is not None and r.get("subject") != subject):
                continue
            if subject is None and r.get("status") == "pass":
                continue
            if id(r) not in seen:
                seen.add(id(r))
                out.append(r)
    return out


def _losses(results: list[dict[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The unwaived results costing the most score points."""
    scored = []
    for r in results:
        w, s = _float(r.get("weight")), _float(r.get("score"))
        if w and s is not None and s < 1 and not r.get("waiver"):
            scored.append((w * (1 - s), r))
    scored.sort(key=lambda p: -p[0])
    return [r for _, r in scored[:n]]


def _result(r: dict[str, Any], n: int) -> dict[str, Any]:
    """A result's view for the template."""
    status = str(r.get("status") or "")
    rem = r.get("remediation") or {}
    waiver = _waiver(r.get("waiver"))
    evidence = r.get("evidence") if isinstance(r.get("evidence"), dict) else {}
    needs_fix = status not in ("pass", "skip") or waiver is not None
    return {
        "n": n,
        "id": r.get("id") or "",
        "subject": r.get("subject") or "",
        "title": r.get("title") or "",
        "category": r.get("category") or "uncategorized",
        "severity": r.get("severity") or "",
        "status": status,
        "word": STATUS_WORDS.get(status, status.upper()),
        "summary": r.get("summary") or "",
        "measured": _measured(r),
        "reason": r.get("reason") if status in ("skip", "blocked", "error") else None,
        "error_reason": r.get("error_reason"),
        "score": _fmt(r.get("score")) if r.get("score") is not None else None,
        "weight": _fmt(r.get("weight")) if r.get("weight") is not None else None,
        "duration": _fmt(r.get("duration_ms")),
        "attempts": r.get("attempts") or 1,
        "retry": bool(r.get("passed_on_retry")),
        "trace": r.get("trace"),
        "evidence": _evidence(evidence),
        "load": any(k in evidence for k in LOAD_KEYS),
        "fix": (
            {
                "text": rem.get("text") or "",
                "snippet": rem.get("snippet"),
                "link": _link(rem.get("link")),
                "raw_link": None if _link(rem.get("link")) else rem.get("link"),
            }
            if needs_fix
            else None
        ),
        "why": r.get("description") if needs_fix else None,
        "waiver": waiver,
        "raw": r,
    }


def context(report: Report) -> dict[str, Any]:
    """Everything the template shows, redacted and precomputed (geometry, wording, classes)."""
    data: dict[str, Any] = _Redact()(report.data)
    data.setdefault("results", [])
    views = [_result(r, n) for n, r in enumerate(data["results"])]
    by_raw = {id(v["raw"]): v for v in views}
    word, vcls = VERDICTS.get(str(data.get("verdict")), (str(data.get("verdict")).upper(), "none"))
    score = _float(data.get("score"))
    circumference = 2 * math.pi * 52
    fail_under = _float((data.get("gate") or {}).get("fail_under"))
    gauge = {
        "dash": f"{(score or 0) / 100 * circumference:.1f}",
        "circ": f"{circumference:.1f}",
        "band": _band(score),
        "score": _fmt(score) if score is not None else "\u2013",
    }
    if fail_under is not None:
        angle = math.radians(fail_under / 100 * 360 - 90)
        gauge["tick"] = {
            "x1": f"{60 + 44 * math.cos(angle):.1f}",
            "y1": f"{60 + 44 * math.sin(angle):.1f}",
            "x2": f"{60 + 60 * math.cos(angle):.1f}",
            "y2": f"{60 + 60 * math.sin(angle):.1f}",
        }
    cat_order = [c.get("name") for c in data.get("categories") or []]
    cat_order += sorted({v["category"] for v in views} - set(cat_order))
    cat_info = {c.get("name"): c for c in data.get("categories") or []}
    categories = []
    for name in cat_order:
        members = [v for v in views if v["category"] == name]
        info = cat_info.get(name) or {}
        counts = info.get("counts") or {}
        if not counts:
            for v in members:
                counts[v["status"]] = counts.get(v["status"], 0) + 1
        cscore = _float(info.get("score"))
        categories.append(
            {
                "name": str(name),
                "score": _fmt(cscore) if cscore is not None else "\u2013",
                "width": f"{max(min(cscore or 0, 100), 0):.1f}",
                "band": _band(cscore),
                "counts": [(s, counts.get(s, 0)) for s in STATUSES if counts.get(s)],
                "open": any(v["status"] not in ("pass", "skip") for v in members),
                "results": members,
            }
        )
    blockers = [by_raw[id(r)] for r in _blockers(data)]
    losses = (
        [by_raw[id(r)] for r in _losses(data["results"])]
        if not blockers and data.get("verdict") != "ready"
        else []
    )
    baseline = data.get("baseline") if isinstance(data.get("baseline"), dict) else None
    if baseline is not None:
        delta = _float(baseline.get("score_delta"))
        baseline = {
            **baseline,
            "compared": "C" + compared_with(baseline)[1:],
            "delta": f"{delta:+g}" if delta is not None else "\u2013",
            "trend": "up" if (delta or 0) > 0 else "down" if (delta or 0) < 0 else "flat",
            "changes": [
                {
                    **c,
                    "worse": STATUSES.index(c["to"]) < STATUSES.index(c["from"])
                    if c.get("to") in STATUSES and c.get("from") in STATUSES
                    else False,
                }
                for c in baseline.get("changes") or []
                if isinstance(c, dict)
            ],
        }
    loads = []
    for v in views:
        if not v["load"]:
            continue
        ev = v["raw"].get("evidence") or {}
        loads.append(
            {
                "result": v,
                "table": _percentiles(ev.get("percentiles")),
                "chart": _timeline_chart(ev.get("timeline")),
            }
        )
    env = data.get("environment") or {}
    target = data.get("target") or {}
    counts = data.get("counts") or {}
    return {
        "d": data,
        "verdict": {"word": word, "cls": vcls},
        "partial": bool(data.get("interrupted")),
        "env": env,
        "target": target.get("base_url") or target.get("managed") or target.get("env_file"),
        "gauge": gauge,
        "grade": data.get("grade") or "-",
        "reasons": (data.get("gate") or {}).get("reasons") or [],
        "gate": data.get("gate") or {},
        "blockers": blockers,
        "losses": losses,
        "categories": categories,
        "waivers": [v for v in views if v["waiver"]],
        "baseline": baseline,
        "trend": _history_chart(data),
        "loads": loads,
        "counts": [(s, counts.get(s, 0)) for s in STATUSES],
        "total": len(views),
        "retried": [v for v in views if v["retry"]],
        "cleanup": data.get("cleanup_problems") or [],
        "tool": data.get("tool") or {"name": "readyctl", "version": ""},
        "checklist": checklist_rows(data),
        "api_map": api_rows(data),
        "checklist_summary": (data.get("checklist") or {}).get("summary") or {},
        "origin": origin_line(data),
        "script": Markup(PRINT_SCRIPT),  # a code constant above, not report data
        "script_hash": SCRIPT_HASH,
    }


def render(report: Report) -> str:
    """The HTML page as text."""
    return _template().render(**context(report))


def write(report: Report, out_dir: Path) -> Path:
    """Write readiness.html atomically."""
    path = out_dir / FILE_NAME
    text = render(report)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".readiness.", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
