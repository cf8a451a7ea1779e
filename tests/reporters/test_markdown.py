"""readiness.md: content, escaping checked through a real Markdown renderer, step summary."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from readyctl.report import Report
from readyctl.reporters import file_writer
from readyctl.reporters.markdown import render, write
from tests.reporters.conftest import GLOBAL_SECRET, PLANTED, RUN_SECRET, make_report


class _Tables(HTMLParser):
    """Collects tables as lists of rows of cell texts, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open tables, rows and cells."""
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        """Close a cell."""
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self.cells.append(self.tables[-1][-1][-1])
            self._cell = None

    def handle_data(self, data: str) -> None:
        """Text inside a cell."""
        if self._cell is not None:
            self._cell.append(data)


def _html(markdown: str) -> _Tables:
    """Render like GitHub would (tables on, raw HTML allowed) and parse the result."""
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parser = _Tables()
    parser.feed(html)
    return parser


def _table(parsed: _Tables, first_header: str, second: str | None = None) -> list[list[str]]:
    """The table whose header starts with the given cells."""
    for table in parsed.tables:
        if table[0][0] == first_header and (second is None or table[0][1] == second):
            return table
    raise AssertionError(f"no table headed {first_header!r}")


def test_registered(report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """file_writer('markdown') writes readiness.md."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = file_writer("markdown")(report, tmp_path)
    assert path == tmp_path / "readiness.md"
    assert path.read_text(encoding="utf-8") == render(report)


def test_headline_and_reasons(report: Report) -> None:
    """Verdict with score and grade first, then the gate's reasons."""
    md = render(report)
    first = md.splitlines()[0]
    assert "NOT READY" in first and "29.7/100" in first and "grade F" in first
    assert "score 29.7 is under fail\\_under 80" in md
    assert "expired 3 days ago" in md
    assert "environment **staging**" in md


def test_tables_survive_untrusted_values(report: Report) -> None:
    """Pipes, backticks, newlines and a planted <script> stay inside their cells, as text."""
    r = next(r for r in report.results if r["id"] == "migrations.pending")
    r["subject"] = "alembic `head`\n| forged | row |\n"
    parsed = _html(render(report))
    assert "script" not in parsed.tags
    for table in parsed.tables:
        assert len({len(row) for row in table}) == 1, table  # every row as wide as the header
    blockers = _table(parsed, "Check", "Subject")
    assert blockers[0] == ["Check", "Subject", "Severity", "Status", "Summary", "Fix", "Owner"]
    banner = next(row for row in blockers if row[0] == "http.server_banner")
    assert f"{PLANTED} | x-powered-by" in banner[4]
    assert banner[5].startswith("Fix server banner on the server")
    waivers = next(t for t in parsed.tables if "Owner" in t[0] and "Days left" in t[0])
    row = next(row for row in waivers if row[0] == "migrations.pending")
    assert row[1] == "alembic `head` | forged | row |"
    assert row[4] == f"Migration window on Friday | ops {PLANTED}"


def test_waivers_baseline_categories_counts(report: Report) -> None:
    """Owner, reason and days left; change against the baseline; per-category scores; counts."""
    parsed = _html(render(report))
    waivers = next(t for t in parsed.tables if "Days left" in t[0])
    by_id = {row[0]: row for row in waivers[1:]}
    assert by_id["migrations.pending"][3] == "dana@example.org"
    assert by_id["migrations.pending"][6] == "12"
    assert by_id["secrets.rotation"][6] == "expired"
    changes = next(t for t in parsed.tables if t[0] == ["Check", "Subject", "From", "To"])
    assert ["http.server_banner", "GET /", "pass", "fail"] in changes
    categories = _table(parsed, "Category")
    scores = {row[0]: row[1] for row in categories[1:]}
    assert scores["transport"] == "81.2" and scores["backups"] == "-"
    md = render(report)
    assert "▼ -51.3 points" in md
    assert "**10 results:** pass 3 · warn 1 · fail 3 · error 1 · blocked 1 · skip 1" in md
    assert "waived 2" in md
    assert "http.compression [GET /api/items] after 2 attempts" in md


def test_no_secrets_and_no_live_links(report: Report) -> None:
    """Secrets are masked; target values cannot mention people or become links."""
    r = report.results[0]
    r["summary"] = f"see http://evil.example/x, www.evil.example and @admin, token {GLOBAL_SECRET}"
    md = render(report)
    assert GLOBAL_SECRET not in md and RUN_SECRET not in md
    line = next(ln for ln in md.splitlines() if "evil.example" in ln)
    # GFM would autolink these and notify @admin; the escaped forms render as the same text
    assert "http://evil" not in line and "www.evil" not in line and "@admin" not in line
    parsed = _html(md)
    assert any("see http://evil.example/x, www.evil.example and @admin" in c for c in parsed.cells)


def test_interrupted_and_ready() -> None:
    """A partial report says so; a ready one says the gate passed."""
    assert "(partial: interrupted)" in render(make_report(interrupted=True)).splitlines()[0]
    data = make_report().data
    data["verdict"], data["gate"]["reasons"] = "ready", []
    md = render(Report(data))
    assert "READY" in md.splitlines()[0] and "nothing blocks this deploy" in md
    assert "### Blockers" not in md


def test_step_summary_appended(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With $GITHUB_STEP_SUMMARY set, the same Markdown is appended (earlier steps kept)."""
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "out"
    out.mkdir()
    path = write(report, out)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")
    assert path.read_text(encoding="utf-8") in text
    write(report, out)
    assert summary.read_text(encoding="utf-8").count("### Blockers") == 2


def test_no_step_summary_without_env(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the variable only readiness.md is written."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write(report, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["readiness.md"]


def test_long_lists_are_capped(report_factory: Any) -> None:
    """Hundreds of waivers still give a compact summary."""
    report = report_factory()
    template = next(r for r in report.results if r.get("waiver"))
    report.data["results"] += [dict(template, subject=f"subject {i}") for i in range(120)]
    md = render(report)
    assert "more in the full report" in md
    assert len(md) < 40_000
