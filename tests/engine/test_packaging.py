"""The wheel carries checks, templates and runbooks inside the package; it works anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_in_fresh_venv_lists_checks_outside_source_tree(tmp_path: Path) -> None:
    whl_dir = tmp_path / "whl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(whl_dir),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = whl_dir.glob("readyctl-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # dependencies come from this environment; readyctl itself only from the wheel
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import readyctl;print(readyctl.resource_dir('checks'))"],
        cwd=outside,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    r = subprocess.run(
        [str(venv / "bin" / "readyctl"), "list", "--format", "json"],
        cwd=outside,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    ids = {row["id"] for row in json.loads(r.stdout)}
    source_ids = {f"{p.parent.name}.{p.stem}" for p in (ROOT / "checks").glob("*/[!_]*.py")}
    assert source_ids <= ids
    r = subprocess.run(
        [str(py), "-m", "readyctl", "--version"], cwd=outside, capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("readyctl")
