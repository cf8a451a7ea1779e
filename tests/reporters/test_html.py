"""readiness.html: content and escaping, then headless Chromium with the network blocked."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from readyctl import resource_dir
from readyctl.report import Report
from readyctl.reporters import file_writer
from readyctl.reporters.html import render, write
from tests.reporters.conftest import GLOBAL_SECRET, PLANTED, RUN_SECRET, make_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    # the network is blocked twice: no name resolves, and every proxied request hits a closed port
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
]


class _Tags(HTMLParser):
    """Collects start tags with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record one tag."""
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag of a document."""
    parser = _Tags()
    parser.feed(html)
    return parser.tags


# -- rendering, without a browser -----------------------------------------------------------


def test_registered_and_written(report: Report, tmp_path: Path) -> None:
    """file_writer('html') writes readiness.html from templates/report.html.j2."""
    assert (Path(resource_dir("templates")) / "report.html.j2").is_file()
    path = file_writer("html")(report, tmp_path)
    assert path == tmp_path / "readiness.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".readiness.*")), "temp file left behind"


def test_self_contained(report: Report) -> None:
    """No tag, style or attribute makes the page fetch anything."""
    html = render(report)
    tags = _tags(html)
    for tag, attrs in tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base", "audio", "video")
        assert "src" not in attrs, (tag, attrs)
        if tag == "a":
            href = attrs.get("href") or ""
            assert href.startswith(("#", "https://", "http://")), href
    assert "@import" not in html
    assert "url(" not in html
    assert "@font-face" not in html
    csp = [a["content"] for t, a in tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in (csp[0] or "")


def test_untrusted_values_are_text(report: Report) -> None:
    """A planted <script>, pipes and a javascript: link come out inert."""
    html = render(report)
    tags = _tags(html)
    scripts = [a for t, a in tags if t == "script"]
    assert len(scripts) == 1, "only the page's own print helper"
    assert "alert(1)" not in html.split("<script>")[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert PLANTED not in html
    assert "javascript:" not in [a.get("href") for t, a in tags if t == "a"]
    assert "javascript:alert(2)" in html  # shown as text, never a link
    assert "| x-powered-by" in html


def test_no_secrets(report: Report) -> None:
    """Secrets known to the run or only to the process-wide redactor never appear."""
    html = render(report)
    assert RUN_SECRET not in html
    assert GLOBAL_SECRET not in html
    assert "****" in html


def test_sections(report: Report) -> None:
    """Verdict, gauge, reasons, blockers with owners, waivers, baseline, trend and load."""
    html = render(report)
    assert '<div id="verdict">NOT READY</div>' in html
    assert "grade F" in html
    assert "score 29.7 is under fail_under 80" in html
    blockers = html.split('id="blockers"')[1].split("</section>")[0]
    for cid in ("http.server_banner", "auth.jwt_forgery", "secrets.rotation"):
        assert cid in blockers
    assert "sam" in blockers and "unassigned" in blockers
    assert "Fix server banner on the server" in blockers
    waivers = html.split('id="waivers"')[1].split("</section>")[0]
    assert "dana@example.org" in waivers and "12 days left" in waivers
    assert "expired" in waivers and "OPS-142" in waivers and "approved by lee" in waivers
    baseline = html.split('id="baseline"')[1].split("</section>")[0]
    assert 'class="worse"' in baseline and "transport.tls_versions" in baseline
    assert "-51.3" in html
    trend = html.split('id="trend"')[1].split("</section>")[0]
    assert trend.count('<circle class="dot s-score"') == 5  # 4 earlier runs and this one
    assert "fail_under 80" in trend
    load = html.split('id="load"')[1].split("</section>")[0]
    assert "p99_ms" in load and "24,372" in load
    assert 'class="line s-p50"' in load and 'class="line s-p95"' in load
    assert "passed on retry (2 attempts)" in html
    assert html.count('<details class="r"') == len(report.results)
    assert 'id="partial"' not in html


def test_interrupted_marked(report_factory: Any) -> None:
    """A partial report says so above the fold and in the title."""
    html = render(report_factory(interrupted=True))
    assert 'id="partial"' in html and "PARTIAL" in html
    assert "(partial)" in html.split("<title>")[1].split("</title>")[0]


def test_minimal_report_renders() -> None:
    """Absent optional fields (waiver, baseline, history, evidence) leave their sections out."""
    data = make_report().data
    data.pop("history")
    data["baseline"] = None
    data["gate"] = {"passed": True, "reasons": [], "fail_under": 80, "block_on": "critical"}
    data["verdict"] = "ready"
    data["results"] = [dict(r, waiver=None, evidence={}) for r in data["results"][:2]]
    html = render(Report(data))
    assert '<div id="verdict">READY</div>' in html
    for section in ('id="waivers"', 'id="baseline"', 'id="load"', 'id="blockers"'):
        assert section not in html
    assert "No earlier runs" in html


# -- headless Chromium over the DevTools protocol (--remote-debugging-pipe, no dependency) ----


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer."""


class Browser:
    """Headless Chromium driven over its DevTools pipe (NUL-separated JSON on fds 3 and 4)."""

    def __init__(self, profile: Path, log: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # move the child's ends above 10 so dup2 onto 3 and 4 cannot clobber them
        child_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def wire() -> None:
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            close_fds=False,  # fds 3 and 4 come from dup2 and are inheritable; others are CLOEXEC
            preexec_fn=wire,
        )
        os.close(child_r)
        os.close(child_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise CDPError(f"browser closed the pipe (exit {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait for its answer; events that arrive meanwhile are kept."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for an event of a session."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev["method"] == method and ev.get("sessionId") == session:
                    return ev
            seen = len(self.events)
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)

    def open(self, url: str, width: int = 1280, height: int = 800) -> Page:
        """A new tab with logging on, navigated to `url` and loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session)
        page = Page(self, session, url, start)
        page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)))")
        return page

    def close(self) -> None:
        """Close the browser and reap the process."""
        with contextlib.suppress(CDPError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        self._log.close()


class Page:
    """One tab of a Browser."""

    def __init__(self, browser: Browser, session: str, url: str, start: int) -> None:
        self.browser, self.session, self.url, self._start = browser, session, url, start

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command in this tab's session."""
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CDPError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events of this tab since it started loading."""
        return [e for e in self.browser.events[self._start :] if e.get("sessionId") == self.session]

    def requests(self) -> list[str]:
        """URLs requested, other than the page itself."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
            and e["params"]["request"]["url"] != self.url
        ]

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations included)."""
        out = []
        for e in self.events:
            p = e["params"]
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:500])
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"]["text"])
        return out

    def dialogs(self) -> list[str]:
        """alert()/confirm() dialogs that opened."""
        return [
            e["params"].get("message", "")
            for e in self.events
            if e["method"] == "Page.javascriptDialogOpening"
        ]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for this module, network blocked."""
    if not CHROMIUM.exists():
        pytest.skip(
            "headless Chromium is not installed at /usr/bin/chromium (apt install chromium)"
        )
    base = tmp_path_factory.mktemp("chromium")
    b = Browser(base / "profile", base / "chromium.log")
    try:
        b.send("Browser.getVersion")
    except CDPError:
        b.close()
        raise
    yield b
    b.close()
    shutil.rmtree(base / "profile", ignore_errors=True)


@pytest.mark.slow
def test_harness_sees_requests_and_errors(browser: Browser, tmp_path: Path) -> None:
    """Positive control: a page that fetches and logs an error is caught by the same checks."""
    page_path = tmp_path / "control.html"
    page_path.write_text(
        '<!DOCTYPE html><html><body><img src="http://example.invalid/pixel.png">'
        '<script>console.error("control error")</script><p>control</p></body></html>',
        encoding="utf-8",
    )
    page = browser.open(page_path.as_uri())
    assert any("example.invalid" in u for u in page.requests())
    assert any("control error" in e for e in page.errors())


@pytest.mark.slow
def test_report_in_chromium(browser: Browser, report: Report, tmp_path: Path) -> None:
    """No console errors, no network, the verdict visible, the planted script inert; screenshot."""
    path = write(report, tmp_path)
    page = browser.open(path.as_uri())

    assert page.errors() == []
    assert page.requests() == []
    assert page.dialogs() == []

    verdict = page.evaluate(
        """(() => { const v = document.getElementById('verdict');
        const r = v.getBoundingClientRect();
        return {text: v.innerText, visible: v.checkVisibility(), top: r.top, bottom: r.bottom,
                height: innerHeight}; })()"""
    )
    assert verdict["text"] == "NOT READY"
    assert verdict["visible"] and verdict["top"] >= 0 and verdict["bottom"] <= verdict["height"]

    dom = page.evaluate("document.documentElement.outerHTML")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    scripts = page.evaluate("[...document.querySelectorAll('script')].map(s => s.textContent)")
    assert len(scripts) == 1 and "alert" not in scripts[0]
    assert PLANTED in page.evaluate("document.body.innerText")
    assert RUN_SECRET not in dom and GLOBAL_SECRET not in dom

    # above the fold at 1280 x 800: verdict, gauge, reasons, and the blockers' heading
    fold = page.evaluate(
        """['.gauge svg', '.reasons li', '#blockers h2'].map(s =>
           document.querySelector(s).getBoundingClientRect().top < innerHeight)"""
    )
    assert all(fold), fold
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    shot = base64.b64decode(page.send("Page.captureScreenshot", {"format": "png"})["data"])
    png = tmp_path / "shots" / "readiness-1280.png"
    png.parent.mkdir()
    png.write_bytes(shot)
    assert png.is_file() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_prints_on_a4_with_details_expanded(
    browser: Browser, report: Report, tmp_path: Path
) -> None:
    """In print media every result's evidence and fix show; the PDF is A4."""
    page = browser.open(write(report, tmp_path).as_uri())
    hidden = "document.querySelector('details.catd:not([open]) .facts').checkVisibility()"
    assert page.evaluate(hidden) is False
    page.send("Emulation.setEmulatedMedia", {"media": "print"})
    assert page.evaluate(hidden) is True
    assert page.evaluate(
        "[...document.querySelectorAll('details.r .facts')].every(e => e.checkVisibility())"
    )
    assert page.evaluate(
        "[...document.querySelectorAll('.card')]"
        ".every(e => getComputedStyle(e).boxShadow === 'none')"
    )
    pdf = base64.b64decode(
        page.send("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})["data"]
    )
    assert pdf.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes, "no page boxes in the PDF"
    width, height = (float(v) for v in boxes[0])
    assert abs(width - 595) < 2 and abs(height - 842) < 2  # A4 in points
    assert page.errors() == [] and page.requests() == []


@pytest.mark.slow
def test_interrupted_banner_visible(browser: Browser, report_factory: Any, tmp_path: Path) -> None:
    """A partial report's banner is on screen first thing."""
    page = browser.open(write(report_factory(interrupted=True), tmp_path).as_uri())
    banner = page.evaluate(
        "(() => { const b = document.getElementById('partial');"
        " return b && b.checkVisibility() && b.getBoundingClientRect().top < innerHeight"
        " && b.innerText; })()"
    )
    assert banner and "interrupted" in banner
    assert page.errors() == [] and page.requests() == []


def _crowded() -> Report:
    """A report whose gate names sixty failing subjects."""
    report = make_report()
    banner = next(r for r in report.results if r["id"] == "http.server_banner")
    for i in range(60):
        subject = f"GET /api/v1/resource_{i:03d}/items"
        report.data["results"].append(dict(banner, subject=subject))
        report.data["gate"]["reasons"].append(
            {
                "code": "blocking_fail",
                "message": f"critical check http.server_banner failed: {subject} leaks",
                "check_id": "http.server_banner",
                "subject": subject,
            }
        )
    return report


def test_long_reason_and_blocker_lists_fold() -> None:
    """Five reasons and ten blockers show; the rest sit in <details>."""
    report = _crowded()
    html = render(report)
    named = {
        (g["check_id"], g["subject"]) for g in report.data["gate"]["reasons"] if g.get("check_id")
    }
    why = html.split('aria-label="gate"')[1].split("</section>")[0]
    assert why.split('<details class="more">')[0].count("<li>") == 5
    assert "more reasons" in why
    blockers = html.split('id="blockers"')[1].split("</section>")[0]
    assert blockers.split('<details class="more">')[0].count("<tr>") == 11  # header + 10
    assert len(named) > 60 and f"What blocks ({len(named)})" in blockers


@pytest.mark.slow
def test_crowded_report_keeps_blockers_above_the_fold(browser: Browser, tmp_path: Path) -> None:
    """Even with sixty blockers, the verdict and the blockers' heading fit 1280 x 800."""
    page = browser.open(write(_crowded(), tmp_path).as_uri())
    tops = page.evaluate(
        "['#verdict', '#blockers h2'].map(s => document.querySelector(s)"
        ".getBoundingClientRect().bottom <= innerHeight)"
    )
    assert tops == [True, True]
    assert page.errors() == [] and page.requests() == []


def test_load_evidence_shapes_and_junk() -> None:
    """Percentiles as a list of rows or a flat dict, and a timeline with junk points, render."""
    report = make_report()
    load = next(r for r in report.results if r["id"] == "load.latency")
    load["evidence"]["percentiles"] = [
        {"name": "GET /a", "p50": 10, "p95": 20.5},
        {"name": "GET /b", "p50": "n/a", "p99": 1234567},
    ]
    load["evidence"]["timeline"] = [
        {"t_s": 0, "p50_ms": 10, "p95_ms": 30},
        {"t_s": "x", "p50_ms": 11},
        {"t_s": 2, "p50_ms": float("nan"), "p95_ms": None},
        {"t_s": 3, "p50_ms": "12", "p95_ms": 33},
        "junk",
    ]
    html = render(report)
    section = html.split('id="load"')[1].split("</section>")[0]
    assert "<th>name</th>" in section and "1,234,567" in section and "n/a" in section
    points = re.search(r'class="line s-p50" points="([^"]+)"', section)
    assert points and len(points.group(1).split()) == 2  # t=0 and t=3; junk skipped
    for attr in re.findall(r'(?:points|cx|cy|y1|y2)="([^"]*)"', section):
        assert re.fullmatch(r"[\d.,\s-]+", attr), attr  # geometry is numbers only
    load["evidence"]["percentiles"] = {"p50_ms": 12, "p95_ms": 49}
    load["evidence"]["timeline"] = "not a list"
    section = render(report).split('id="load"')[1].split("</section>")[0]
    assert "<th>p50_ms</th>" in section and "No response-time timeline." in section
