"""`readyctl check` on a fresh clone: the managed demo, READY, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, TEST_LOAD


def _leftovers(tmp: Path) -> tuple[list[str], list[str]]:
    """Processes whose command line mentions `tmp`, and entries left in it."""
    procs = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(tmp) in cmd and p.pid != os.getpid():
            procs.append(f"{p.pid}: {cmd[:120]}")
    return procs, sorted(x.name for x in tmp.iterdir())


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, TMPDIR=str(tmp), COLUMNS="160", NO_COLOR="1")


HANG = """
import pathlib, time
from readyctl.check import Check, CheckMeta, RemediationSpec, Category, Severity

class Hang(Check):
    meta = CheckMeta(id="hang_plugin.ops.hang", title="Hangs politely", failure_title="Hangs",
                     description="A plugin check that waits, for interrupt tests.",
                     remediation=RemediationSpec(text="None."), category=Category.OPERATIONS,
                     severity=Severity.LOW, timeout_s=120)

    def run(self, ctx):
        assert ctx.managed is not None
        pathlib.Path(ctx.environ["HANG_MARKER"]).write_text(ctx.managed.workdir)
        while True:
            ctx.check_deadline()
            time.sleep(0.05)
        yield
"""


def _plugin(site: Path) -> Path:
    pkg = site / "hang_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(HANG)
    dist = site / "hang_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hang-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[readyctl.checks]\nhang = hang_plugin\n")
    return site


@pytest.mark.slow
def test_sigint_during_managed_run_cleans_up_and_exits_130(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    marker = tmp_path / "marker"
    site = _plugin(tmp_path / "site")
    env = _env(tmp)
    env.update(PYTHONPATH=f"{site}{os.pathsep}{ROOT}", HANG_MARKER=str(marker))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "readyctl",
            "check",
            "--only",
            "hang_plugin.*",
            "--out",
            str(out),
            "--no-history",
            "--format",
            "json,junit,markdown,html",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()
    workdir = Path(marker.read_text())
    assert workdir.is_dir() and str(workdir).startswith(str(tmp))
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    procs, entries = _leftovers(tmp)
    assert procs == [] and entries == []
    assert not workdir.exists()
    data = json.loads((out / "readiness.json").read_text())
    assert data["interrupted"] is True
    for name in ("readiness.xml", "readiness.md", "readiness.html"):
        assert (out / name).exists()
    assert "INTERRUPTED" in stdout or "interrupted" in (out / "readiness.md").read_text().lower()


def _readme_skips() -> set[str]:
    """Check ids the README lists as skipped on the healthy demo (section 'Skipped on the demo')."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Skipped on the demo", 1)[1].split("\n#", 1)[0]
    ids: set[str] = set()
    for line in section.splitlines():
        if line.startswith("- `"):
            ids.update(re.findall(r"`([a-z0-9_]+\.[a-z0-9_]+)`", line.split(":", 1)[0]))
    return ids


@pytest.mark.slow
def test_fresh_clone_check_is_ready_against_the_demo(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    # the repository's readyctl.yaml, with the load checks at the test suite's user count
    # (tests/conftest.py TEST_LOAD_USERS: 100 users on a busy 2-core CI box measure the box)
    config = tmp_path / "readyctl.yaml"
    config.write_text(
        (ROOT / "readyctl.yaml").read_text()
        + "\nchecks:\n  load.thresholds: "
        + ", ".join(f"{k}: {v}" for k, v in TEST_LOAD.items()).join("{}")
        + "\n"
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "readyctl",
            "check",
            "--config",
            str(config),
            "--out",
            str(out),
            "--no-history",
            "--format",
            "terminal,json,junit,markdown,html",
        ],
        cwd=ROOT,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    data = json.loads((out / "readiness.json").read_text())
    bad = [
        (r["id"], r["subject"], r["status"], r["summary"])
        for r in data["results"]
        if r["status"] in ("fail", "error", "blocked")
    ]
    assert bad == []
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert data["verdict"] == "ready" and data["score"] >= 95
    skipped = {r["id"] for r in data["results"] if r["status"] == "skip"}
    assert skipped <= _readme_skips(), f"undocumented skips: {skipped - _readme_skips()}"
    assert "READY" in p.stdout
    procs, entries = _leftovers(tmp)
    assert procs == [] and entries == []
