"""Fixtures for the demo tests: one embedded PostgreSQL per session, a fresh database per demo."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from readyctl.demo.managed import ManagedDemo, start
from readyctl.postgres.embedded import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """One embedded PostgreSQL server for the whole test session (no fsync: tests only)."""
    server = EmbeddedPostgres(settings={"fsync": "off", "synchronous_commit": "off"}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """The healthy demo shared by read-mostly tests."""
    d = start(pg=pg)
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def make_demo(pg: EmbeddedPostgres) -> Iterator[Callable[..., ManagedDemo]]:
    """Start demos with faults on the shared server; stop them after the test."""
    started: list[ManagedDemo] = []

    def factory(*faults: str, **kwargs: Any) -> ManagedDemo:
        kwargs.setdefault("pg", pg)
        d = start(faults, **kwargs)
        started.append(d)
        return d

    yield factory
    for d in started:
        d.stop()


@pytest.fixture
def scratch_db(pg: EmbeddedPostgres) -> Iterator[str]:
    """A fresh empty database on the shared server; dropped after the test."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    url = pg.create_database(name)
    try:
        yield url
    finally:
        pg.drop_database(name)
