"""Pytest plugin: proof that every registered check can fail and can pass.

Every check run in the suite (in-process or in a readyctl subprocess) appends its statuses to
$READYCTL_STATUS_LOG. When the whole suite ran, the session fails if a registered check never
produced both a `fail` and a `pass`.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

_LOG: Path | None = None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Point READYCTL_STATUS_LOG at a fresh file (xdist workers append to the controller's)."""
    global _LOG
    if _is_worker(config) and os.environ.get("READYCTL_STATUS_LOG"):
        _LOG = Path(os.environ["READYCTL_STATUS_LOG"])
        return
    fd, name = tempfile.mkstemp(prefix="readyctl-statuses-", suffix=".log")
    os.close(fd)
    _LOG = Path(name)
    os.environ["READYCTL_STATUS_LOG"] = name


def recorded() -> dict[str, set[str]]:
    """check id -> statuses seen so far in this session."""
    seen: dict[str, set[str]] = defaultdict(set)
    if _LOG is None or not _LOG.exists():
        return seen
    for line in _LOG.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            seen[parts[0]].add(parts[1])
    return seen


def _whole_suite(session: pytest.Session) -> bool:
    cfg = session.config
    opt = cfg.option
    if any(getattr(opt, name, None) for name in ("keyword", "markexpr", "lf", "deselect")):
        return False
    args = [a for a in cfg.args if not a.startswith("-")]
    root = Path(str(cfg.rootpath))
    return not args or all(Path(a).resolve() in (root, root / "tests") for a in args)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when a registered check never both failed and passed."""
    if _LOG is None or _is_worker(session.config):
        return
    try:
        if not _whole_suite(session) or session.testsfailed:
            return
        from readyctl.registry import load_catalog

        seen = recorded()
        missing = []
        ids = load_catalog().ids()
        for check_id in ids:
            got = seen.get(check_id, set())
            lacks = [s for s in ("fail", "pass") if s not in got]
            if lacks:
                missing.append(f"{check_id} (never {' nor '.join(lacks)})")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if missing:
            if reporter:
                reporter.write_line(
                    "checks that never produced both a fail and a pass against real inputs: "
                    + ", ".join(missing),
                    red=True,
                )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif reporter:
            reporter.write_line(
                f"status proof: all {len(ids)} registered checks produced both a fail and a pass"
            )
    finally:
        _LOG.unlink(missing_ok=True)
