"""typeorm: being built (issue 15)."""

from __future__ import annotations

from typing import Any

from readyctl.rehearsal.errors import RehearsalError


def detect(ctx: Any, settings: Any) -> bool:
    """Whether the project at ctx.base_dir uses typeorm (no tool setting needed)."""
    return False


def from_project(ctx: Any, settings: Any, **kw: Any) -> Any:
    """The project's typeorm migrator."""
    raise RehearsalError("typeorm rehearsal is not available yet")
