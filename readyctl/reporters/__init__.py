"""Reporters: each renders one Report (the JSON contract) into one format."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from readyctl.report import Report

FILE_NAMES = {
    "json": "readiness.json",
    "html": "readiness.html",
    "junit": "readiness.xml",
    "markdown": "readiness.md",
    "sarif": "readiness.sarif",
}
FORMATS = ("terminal", *FILE_NAMES)


def parse_formats(value: str | list[str]) -> list[str]:
    """Split and validate a --format list; raises ValueError naming the bad one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name == "md":
            name = "markdown"
        if name == "xml":
            name = "junit"
        if name not in FORMATS:
            raise ValueError(f"unknown format {raw!r}; choose from {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    return out


def file_writer(name: str) -> Callable[[Report, Path], Path]:
    """The function writing format `name` into a directory."""
    if name == "json":
        from readyctl.reporters.jsonfile import write

        return write
    if name == "junit":
        from readyctl.reporters.junit import write

        return write
    if name == "markdown":
        from readyctl.reporters.markdown import write

        return write
    if name == "html":
        from readyctl.reporters.html import write

        return write
    if name == "sarif":
        from readyctl.reporters.sarif import write

        return write
    raise ValueError(f"format {name!r} is not available in this version")


def write_files(report: Report, out_dir: Path, formats: list[str]) -> dict[str, Path]:
    """Write every file format asked for; returns format -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in formats:
        if name == "terminal":
            continue
        written[name] = file_writer(name)(report, out_dir)
    return written


STATUS_WORDS = {
    "verified": "verified",
    "unverified": "UNVERIFIED",
    "not_applicable": "not applicable",
    "waived": "waived",
    "attested": "attested",
}


def api_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    """The report's API map as display rows: key, value, source (all formats)."""
    api = data.get("api") or {}
    rows = [
        {"key": str(k), "value": str(v.get("value", "")), "source": str(v.get("source", ""))}
        for k, v in (api.get("values") or {}).items()
        if isinstance(v, dict)
    ]
    if api.get("openapi"):
        rows.append({"key": "openapi", "value": str(api["openapi"]), "source": "discovery"})
    return rows


def checklist_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    """The report's checklist as display rows: item, priority, state, detail (all formats)."""
    out = []
    for it in (data.get("checklist") or {}).get("items", []):
        named = it["item"] == "critical_paths" or not str(it["item"]).isdigit()
        title = it["title"] if named else f"{it['item']}. {it['title']}"
        state = STATUS_WORDS.get(it["status"], it["status"])
        if it["status"] == "verified":
            state += {"pass": ", held", "warn": ", held with warnings", "fail": ", FAILED"}.get(
                it.get("outcome") or "", ""
            )
            detail = "by " + ", ".join(it.get("verified_by") or [])
            paths = it.get("paths") or []
            if paths:
                bits = [
                    p["path"] + ("" if p["status"] == "verified" else " (unverified)")
                    for p in paths
                ]
                detail += "; paths: " + ", ".join(bits)
        elif it["status"] in ("not_applicable",) or it.get("declaration"):
            d = it.get("declaration") or {}
            until = f" until {d['expires']}" if d.get("expires") else ""
            expired = " (declaration EXPIRED)" if d.get("expired") else ""
            detail = f"{d.get('reason', '')} (owner {d.get('owner', '?')}{until}){expired}"
            if it["status"] == "unverified":
                detail += "; needs: " + _needs(it)
        elif it["status"] == "waived":
            detail = "every result of its checks is waived"
        elif it["status"] == "attested":
            detail = _attestation_text(it.get("attestation") or {})
        else:
            detail = "needs: " + _needs(it)
            att = it.get("attestation")
            if att and not att.get("valid"):
                why = "EXPIRED" if att.get("expired") else "invalid"
                detail = f"{_attestation_text(att)} ({why}); " + detail
        if it.get("required") and it["status"] == "unverified":
            state += " (required)"
        out.append(
            {
                "item": title,
                "priority": it["priority"],
                "status": it["status"],
                "state": state,
                "detail": detail,
            }
        )
    return out


def _attestation_text(a: dict[str, Any]) -> str:
    """`signed by X on D (evidence URL), until E` for a checklist row."""
    text = f"signed by {a.get('by') or '?'} on {a.get('at') or '?'}"
    if a.get("evidence"):
        text += f" ({a['evidence']})"
    if a.get("expires"):
        text += f", until {a['expires']}"
    if a.get("expiring_soon"):
        text += f" (expires in {a.get('days_left')} days)"
    return text


def _needs(it: dict[str, Any]) -> str:
    missing = it.get("missing") or []
    settings = [m["setting"] or m["reason"] for m in missing]
    return "; ".join(dict.fromkeys(settings)) or "-"


def origin_line(data: dict[str, Any]) -> str:
    """Where the target came from, e.g. `base_url: command line --base-url; ...`."""
    origin = (data.get("target") or {}).get("origin") or {}
    grouped: dict[str, list[str]] = {}
    for key, where in origin.items():
        grouped.setdefault(str(where), []).append(str(key))
    return "; ".join(f"{', '.join(keys)}: {where}" for where, keys in grouped.items())


def compared_with(baseline: Mapping[str, Any]) -> str:
    """'compared with run X (started_at, score S, pinned|newest passing)' for a baseline block.

    Reports written before the block named its run show the path alone.
    """
    run = baseline.get("run") or baseline.get("path") or "-"
    parts = []
    if baseline.get("started_at"):
        parts.append(str(baseline["started_at"]))
    score = baseline.get("score")
    parts.append(f"score {score:g}" if isinstance(score, int | float) else "score -")
    if baseline.get("pinned"):
        parts.append("pinned")
    elif baseline.get("selected_by") == "given":
        parts.append("given")
    elif "pinned" in baseline:
        parts.append("newest passing")
    return f"compared with run {run} ({', '.join(parts)})"
