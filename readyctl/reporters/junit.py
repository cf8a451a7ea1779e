"""readiness.xml: JUnit XML for CI test UIs, one testsuite per category, one testcase per result."""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

from readyctl.redact import global_redactor
from readyctl.report import Report

FILE_NAME = "readiness.xml"
# XML 1.0 cannot carry most control characters, even escaped; a target can still send them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Clean:
    """Redacts text and makes it safe for XML 1.0 (control characters shown as \\xNN)."""

    def __init__(self) -> None:
        self._redactor = global_redactor()
        self._seen: dict[str, str] = {}  # titles and fixes repeat: redact each once per document

    def __call__(self, value: Any) -> str:
        """The cleaned text of `value`."""
        text = "" if value is None else str(value)
        done = self._seen.get(text)
        if done is None:
            done = _NOT_XML.sub(_hex, self._redactor.text(text))
            self._seen[text] = done
        return done


def _hex(m: re.Match[str]) -> str:
    """A control character as \\xNN."""
    return f"\\x{ord(m.group()):02x}"


def _seconds(ms: Any) -> str:
    """Milliseconds as JUnit's seconds string."""
    try:
        return f"{max(float(ms), 0.0) / 1000:.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _remediation_text(r: dict[str, Any]) -> str:
    """The fix as plain text: text, snippet, link."""
    rem = r.get("remediation") or {}
    parts = [f"Remediation: {rem.get('text') or '-'}"]
    if rem.get("snippet"):
        parts.append(str(rem["snippet"]))
    if rem.get("link"):
        parts.append(f"See {rem['link']}")
    return "\n".join(parts)


def _measured(r: dict[str, Any]) -> str | None:
    """'measured / threshold unit' when there is a number."""
    m, t, unit = r.get("measured"), r.get("threshold"), r.get("unit") or ""
    if m is None:
        return None
    text = f"measured {m}{unit}"
    if t is not None:
        text += f", threshold {t}{unit}"
    return text


def _waiver_text(w: dict[str, Any]) -> str:
    """One line describing a waiver."""
    text = f"waived by {w.get('owner') or '?'}: {w.get('reason') or '-'}"
    if w.get("expires"):
        state = "expired" if w.get("expired") else "expires"
        text += f" ({state} {w['expires']}"
        if w.get("days_left") is not None:
            text += f", {w['days_left']} days left"
        text += ")"
    if w.get("ticket"):
        text += f" [{w['ticket']}]"
    return text


def _testcase(r: dict[str, Any], _clean: _Clean) -> tuple[ET.Element, str]:
    """One result as a <testcase>; also returns the outcome counted on the suite."""
    case = ET.Element(
        "testcase",
        {
            "classname": _clean(f"readyctl.{r.get('category') or 'uncategorized'}"),
            "name": _clean(f"{r.get('id')} [{r.get('subject')}]"),
            "time": _seconds(r.get("duration_ms")),
        },
    )
    status = r.get("status")
    waiver = r.get("waiver") or None
    summary = r.get("summary") or ""
    notes: list[str] = []
    outcome = "pass"
    if waiver and not waiver.get("expired"):
        outcome = "skipped"
        message = f"{status}, {_waiver_text(waiver)}"
        ET.SubElement(case, "skipped", {"message": _clean(message)}).text = _clean(summary)
    elif status == "fail":
        outcome = "failure"
        body = [summary]
        if _measured(r):
            body.append(_measured(r) or "")
        body.append(_remediation_text(r))
        el = ET.SubElement(
            case, "failure", {"message": _clean(summary), "type": _clean(r.get("severity"))}
        )
        el.text = _clean("\n\n".join(body))
    elif status == "error":
        outcome = "error"
        body = [summary]
        if r.get("trace"):
            body.append(str(r["trace"]))
        body.append(_remediation_text(r))
        el = ET.SubElement(
            case,
            "error",
            {"message": _clean(summary), "type": _clean(r.get("error_reason") or "error")},
        )
        el.text = _clean("\n\n".join(body))
    elif status in ("skip", "blocked"):
        outcome = "skipped"
        reason = r.get("reason") or summary
        message = f"blocked: {reason}" if status == "blocked" else reason
        ET.SubElement(case, "skipped", {"message": _clean(message)})
    elif status == "warn":
        notes.append(f"WARNING: {summary}")
        if _measured(r):
            notes.append(_measured(r) or "")
        notes.append(_remediation_text(r))
    if waiver and waiver.get("expired"):
        notes.append(f"EXPIRED WAIVER: {_waiver_text(waiver)}")
    if r.get("passed_on_retry"):
        notes.append(f"passed on retry ({r.get('attempts')} attempts)")
    if notes:
        ET.SubElement(case, "system-out").text = _clean("\n".join(notes))
    return case, outcome


def build(report: Report) -> ET.Element:
    """The <testsuites> element for a report."""
    data: dict[str, Any] = report.data  # every string is redacted where it is output (_Clean)
    _clean = _Clean()
    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in data.get("results", []):
        by_cat[r.get("category") or "uncategorized"].append(r)
    if not by_cat:  # e.g. interrupted before the first check: the properties still say so
        by_cat["readyctl"] = []
    cat_scores = {c.get("name"): c.get("score") for c in data.get("categories") or []}
    root = ET.Element("testsuites", {"name": "readyctl"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_ms = 0.0
    for cat, results in by_cat.items():
        suite = ET.SubElement(root, "testsuite", {"name": _clean(cat)})
        props = ET.SubElement(suite, "properties")
        score = cat_scores.get(cat)
        for name, value in (
            ("category_score", "-" if score is None else score),
            ("overall_score", "-" if data.get("score") is None else data.get("score")),
            ("grade", data.get("grade")),
            ("verdict", data.get("verdict")),
            ("environment", (data.get("environment") or {}).get("name")),
            ("interrupted", str(bool(data.get("interrupted"))).lower()),
        ):
            ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_ms = 0.0
        for r in results:
            case, outcome = _testcase(r, _clean)
            suite.append(case)
            counts["tests"] += 1
            if outcome == "failure":
                counts["failures"] += 1
            elif outcome == "error":
                counts["errors"] += 1
            elif outcome == "skipped":
                counts["skipped"] += 1
            suite_ms += float(_seconds(r.get("duration_ms"))) * 1000
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", _seconds(suite_ms))
        if data.get("started_at"):
            suite.set("timestamp", _clean(data["started_at"]))
        total_ms += suite_ms
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_ms))
    return root


def render(report: Report) -> str:
    """The JUnit XML document as text."""
    root = build(report)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write(report: Report, out_dir: Path) -> Path:
    """Write readiness.xml atomically."""
    path = out_dir / FILE_NAME
    text = render(report)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".readiness.", suffix=".xml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
