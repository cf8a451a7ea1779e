"""Shared fixtures: a CLI runner in a subprocess, env files, synthetic checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GOOD_ENV = """\
NODE_ENV=production
DATABASE_URL=postgresql://app:Qx7rT2mVb9kLp4wZ@db.internal:5432/counsel?connection_limit=20&pool_timeout=10
JWT_SECRET=9fK2vQ7xLm4ZpR8tW1yB6nC3hJ5sD0gE-aU_kX
OPENAI_API_KEY=sk-proj-7Hq2Lx9Vw4Bn6Mc1Zr8Ts3Yp5Kd0Gf
POSTMARK_API_TOKEN=3f6a9c2e-71d4-4b8a-9e05-c8d2f1a7b6e3
FROM_EMAIL=care@counsel.example.org
WEB_APP_URL=https://counsel.example.org
"""


@dataclass
class Run:
    """A finished readyctl subprocess."""

    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


@pytest.fixture
def readyctl(tmp_path: Path) -> Callable[..., Run]:
    """Run `python -m readyctl ARGS` in a subprocess (real exit codes, real stderr)."""

    def run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Run:
        full_env = dict(os.environ)
        full_env.update({"COLUMNS": "160", "NO_COLOR": "1"})
        full_env.update(env or {})
        p = subprocess.run(
            [sys.executable, "-m", "readyctl", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture
def env_file(tmp_path: Path) -> Callable[..., Path]:
    """Write an env file (and optionally a .env.example) into tmp_path."""

    def make(
        text: str = GOOD_ENV, name: str = ".env.production", example: str | None = None
    ) -> Path:
        path = tmp_path / name
        path.write_text(text)
        if example is not None:
            (tmp_path / ".env.example").write_text(example)
        return path

    return make
