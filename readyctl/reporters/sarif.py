"""readiness.sarif: SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps).

Only results that point at a file go in: a committed secret-looking literal (file and line), a
tracked env file, a migration lint finding (the migration file; the statement's line when the
file holds its text), an alert rule file. Each check that has such a result becomes a rule
(id, title, description, remediation, severity); fail is `error`, warn is `warning`. Paths are
relative to the repository root (`%SRCROOT%`) when the file is inside a git checkout. Every
string passes through the redactor; a snippet of the secret itself is never included.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from readyctl.redact import global_redactor
from readyctl.report import Report

FILE_NAME = "readiness.sarif"
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"fail": "error", "warn": "warning"}
SEVERITY_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
# checks whose subject is a file path relative to evidence.repository
SUBJECT_IS_FILE = ("secrets.committed_literals", "secrets.git_tracked_env")
MAX_FILE_BYTES = 2 * 1024 * 1024  # a statement's line is looked up only in files this small


def _git_root(path: Path) -> Path | None:
    """The nearest directory above `path` holding `.git`."""
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def _statement_line(path: Path, statement: str) -> int | None:
    """The 1-based line where `statement` starts in `path` (None when not found)."""
    first = next((x.strip() for x in statement.splitlines() if x.strip()), "")
    if len(first) < 8:
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    probe = first[:60]
    for n, line in enumerate(text.splitlines(), 1):
        if probe in line or (len(line.strip()) >= 8 and line.strip() in first):
            return n
    return None


def _locations(r: dict[str, Any]) -> Iterator[tuple[Path, int | None, str | None]]:
    """(file, line, message detail) for each place a result points at."""
    ev = r.get("evidence") or {}
    repo = ev.get("repository")
    if r["id"] in SUBJECT_IS_FILE and repo:
        path = Path(repo) / str(r["subject"])
        findings = ev.get("findings") or []
        lines = [(f.get("line"), f.get("type")) for f in findings if isinstance(f, dict)]
        if lines:
            for line, kind in lines:
                yield path, line if isinstance(line, int) else None, kind
        else:
            yield path, None, None
        return
    file = ev.get("file")
    if not file:
        return
    path = Path(str(file))
    if not path.is_absolute() and repo:
        path = Path(repo) / path
    findings = [f for f in ev.get("findings") or [] if isinstance(f, dict)]
    if findings:
        for f in findings:
            line = f.get("line")
            if not isinstance(line, int) and f.get("statement"):
                line = _statement_line(path, str(f["statement"]))
            yield path, line if isinstance(line, int) else None, f.get("message")
    else:
        line = ev.get("line")
        yield path, line if isinstance(line, int) else None, None


def _uri(path: Path) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative to the repository root when inside one."""
    resolved = path.resolve() if path.is_absolute() else path
    root = _git_root(resolved.parent) if resolved.is_absolute() else None
    if root is not None:
        return resolved.relative_to(root).as_posix(), "%SRCROOT%"
    return resolved.as_posix(), None


def render(report: Report) -> str:
    """The SARIF document as JSON text."""
    red = global_redactor()
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    roots: set[str] = set()
    for r in report.results:
        level = LEVEL.get(r["status"])
        if level is None or (r.get("waiver") and not r["waiver"].get("expired")):
            continue
        places = list(_locations(r))
        if not places:
            continue
        rid = r["id"]
        if rid not in rules:
            rem = r.get("remediation") or {}
            help_text = "\n".join(
                x for x in (rem.get("text"), rem.get("snippet"), rem.get("link")) if x
            )
            rule: dict[str, Any] = {
                "id": rid,
                "name": rid.replace(".", "_"),
                "shortDescription": {"text": red.text(r.get("title") or rid)},
                "fullDescription": {
                    "text": red.text(r.get("description") or r.get("title") or rid)
                },
                "help": {"text": red.text(help_text or "see readyctl explain " + rid)},
                "properties": {
                    "security-severity": SEVERITY_SCORE.get(str(r.get("severity")), "5.5"),
                    "tags": ["readyctl", str(r.get("category") or "")],
                },
            }
            if rem.get("link"):
                rule["helpUri"] = str(rem["link"])
            rules[rid] = rule
        for path, line, detail in places:
            uri, base = _uri(path)
            if base is not None:
                root = _git_root(path.resolve().parent)
                if root is not None:
                    roots.add(root.as_uri() + "/")
            loc: dict[str, Any] = {"artifactLocation": {"uri": red.text(uri)}}
            if base:
                loc["artifactLocation"]["uriBaseId"] = base
            if line:
                loc["region"] = {"startLine": max(1, int(line))}
            text = r["summary"] if not detail else f"{r['summary']} ({detail})"
            results.append(
                {
                    "ruleId": rid,
                    "level": level,
                    "message": {"text": red.text(text)},
                    "locations": [{"physicalLocation": loc}],
                    "partialFingerprints": {
                        "readyctl/v1": red.text(f"{rid}:{r['subject']}:{uri}:{line or 0}")
                    },
                }
            )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "readyctl",
                "version": str((report.data.get("tool") or {}).get("version") or ""),
                "informationUri": "https://github.com/readyctl/readyctl",
                "rules": list(rules.values()),
            }
        },
        "results": results,
        "columnKind": "utf16CodeUnits",
    }
    if len(roots) == 1:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": roots.pop()}}
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(report: Report, out_dir: Path) -> Path:
    """Write readiness.sarif atomically."""
    path = out_dir / FILE_NAME
    text = render(report)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".readiness.", suffix=".sarif")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
