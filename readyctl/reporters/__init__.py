"""Reporters: each renders one Report (the JSON contract) into one format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from readyctl.report import Report

FILE_NAMES = {
    "json": "readiness.json",
    "html": "readiness.html",
    "junit": "readiness.xml",
    "markdown": "readiness.md",
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
