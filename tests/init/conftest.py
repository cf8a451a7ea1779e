"""Fixtures for `readyctl init`: fixture project copies, a shell without target variables."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECTS = Path(__file__).resolve().parents[1] / "data" / "projects"
# what the written config reads: unset here, as in a fresh shell (the `:-default`s must do)
TARGET_VARS = (
    "STAGING_BASE_URL",
    "STAGING_DATABASE_URL",
    "STAGING_ENV_FILE",
    "STAGING_CA_BUNDLE",
    "PRODUCTION_BASE_URL",
    "PRODUCTION_DATABASE_URL",
    "PRODUCTION_ENV_FILE",
    "PRODUCTION_CA_BUNDLE",
    "CI_DATABASE_URL",
    "CI_ENV_FILE",
    "GATE_REQUIRE",
    "READYCTL_AUTH_USERNAME",
    "READYCTL_AUTH_PASSWORD",
    "READYCTL_CONFIG",
    "READYCTL_ENV",
    "READYCTL_BASE_URL",
    "READYCTL_ENV_FILE",
    "READYCTL_DATABASE_URL",
    "VIRTUAL_ENV",
)


@pytest.fixture(autouse=True)
def clean_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `readyctl` fixture copies os.environ at each call: none of the target's variables."""
    for name in TARGET_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture project (tests/data/projects/NAME) into a temporary directory."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(PROJECTS / name, dest)
        return dest

    return copy
