"""os.environ changes by the in-process alembic shim never race a thread that copies the
environment or builds an HTTP client (a fault-matrix run once saw `KeyError: 'DATABASE_URL'`
from httpx iterating os.environ for proxy variables while a rehearsal step changed it).

The race itself is too rare to reproduce in a bounded test; these tests pin the contract that
prevents it: every change, every copy and every client construction takes one lock."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from readyctl import _proc
from readyctl.rehearsal.environ import os_environ
from tests.helpers import make_context


def _blocks_while_the_lock_is_held(work: Callable[[], None]) -> None:
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    with _proc.ENV_LOCK:
        t = threading.Thread(target=run)
        t.start()
        assert not done.wait(0.3), "it ran without taking the environment lock"
    assert done.wait(10), "it never finished after the lock was released"
    t.join(10)


def _swap() -> None:
    with os_environ({**_proc.environ_copy(), "READYCTL_RACE_PROBE": "scratch"}):
        pass


@pytest.mark.parametrize(
    "work",
    [
        _swap,
        lambda: _proc.environ_copy(),
        lambda: make_context().http().close(),
    ],
    ids=["os_environ", "environ_copy", "http_client"],
)
def test_changes_copies_and_clients_take_the_environment_lock(work: Callable[[], None]) -> None:
    _blocks_while_the_lock_is_held(work)


def test_os_environ_restores_what_it_changed() -> None:
    before = _proc.environ_copy()
    with os_environ({**before, "READYCTL_RACE_PROBE": "scratch"}):
        assert _proc.environ_copy()["READYCTL_RACE_PROBE"] == "scratch"
    assert _proc.environ_copy() == before
