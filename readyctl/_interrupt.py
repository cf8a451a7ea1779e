"""SIGINT and SIGTERM for the `readyctl` command: stop, clean up, report, exit 130.

CI cancelling a job and a container stopping send a signal to readyctl's pid alone. Both
signals mean the same as Ctrl-C, and the handler installed by `guarded()` never lets either
kill the process:

- The first signal is recorded. It raises KeyboardInterrupt only inside `raising()` blocks
  (starting the managed demo, which cleans up after itself on any exception); everywhere
  else the code polls `requested()`: the runner stops scheduling, cancels the checks, stops
  the run's child processes, runs the cleanups, and a report marked interrupted is written.
- A second signal while that happens is deferred (a note on stderr): the report comes first.
- A third signal, or `CLEANUP_BUDGET_S` after the first, ends the process anyway: the child
  process groups are killed, a fallback report is written if the real one is not, exit 130.
- Once the command is done (`guarded()` left), further signals are ignored, so the exit code
  always matches the report that was written.

The command exits 130 whenever a signal was received (2 stays 2: a usage or config error
means nothing ran).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

CLEANUP_BUDGET_S = 30.0
"""Upper bound from the first signal to the process exiting (READYCTL_INTERRUPT_BUDGET_S)."""
EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    def __init__(self) -> None:
        self.installed = False
        self.previous: dict[int, Any] = {}
        self.received: list[int] = []
        self.first_at: float | None = None
        self.raising = 0  # > 0: the first signal raises KeyboardInterrupt
        self.deferring = 0  # > 0: ... but not before the main thread leaves `deferred()`
        self.pending_raise = False
        self.done = False  # the command finished: signals are ignored
        self.writing = False  # the report is being written
        self.written = False  # the report was written
        self.fallback: Callable[[], None] | None = None
        self.lock = threading.RLock()
        self.watchdog: threading.Thread | None = None
        self.exit_code: int | None = None


_state = _State()


# -- queries --------------------------------------------------------------------------------
def requested() -> bool:
    """Whether SIGINT or SIGTERM was received since `install()`."""
    return bool(_state.received)


def signal_name() -> str:
    """The name of the first signal received ('SIGINT'), or 'Ctrl-C' when none was."""
    if not _state.received:
        return "Ctrl-C"
    return signal.Signals(_state.received[0]).name


def budget() -> float:
    """The cleanup budget in seconds (READYCTL_INTERRUPT_BUDGET_S overrides it, for tests)."""
    try:
        return max(1.0, float(os.environ.get("READYCTL_INTERRUPT_BUDGET_S") or CLEANUP_BUDGET_S))
    except ValueError:
        return CLEANUP_BUDGET_S


def remaining() -> float:
    """Seconds left of the cleanup budget (the full budget when no signal was received)."""
    if _state.first_at is None:
        return budget()
    return max(0.0, _state.first_at + budget() - time.monotonic())


# -- installation ---------------------------------------------------------------------------
def install() -> None:
    """Handle SIGINT and SIGTERM (main thread only; idempotent). Signals are only recorded."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        _state.previous[sig] = signal.signal(sig, _handler)
    _state.installed = True


def uninstall() -> None:
    """Give SIGINT/SIGTERM back to Python's defaults (for `readyctl demo up`, which waits for
    Ctrl-C itself); a signal received already still makes the command exit 130."""
    if not _state.installed:
        return
    for sig, previous in _state.previous.items():
        with contextlib.suppress(TypeError, ValueError):
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _state.installed = False


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run the command: exit 130 if it was interrupted; ignore signals once it is done."""
    install()
    try:
        yield  # a signal received while importing is seen by the command (and reported)
    except KeyboardInterrupt:
        _finish(EXIT_INTERRUPTED)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as e:
        code = e.code
        if requested() and code != 2:
            code = EXIT_INTERRUPTED
        _finish(code)
        raise SystemExit(code) from None
    else:
        code = EXIT_INTERRUPTED if requested() else 0
        _finish(code)
        if code:
            raise SystemExit(code)


def _finish(code: Any) -> None:
    _state.exit_code = code if isinstance(code, int) else (0 if code is None else 1)
    _state.done = True
    if _state.installed and threading.current_thread() is threading.main_thread():
        # ignored at the OS level, not by a Python handler: the interpreter's finalization
        # puts SIG_DFL back where it finds a Python handler, and a late signal would then
        # kill the process (exit -2/-15) after the report and the exit code were settled
        for sig in SIGNALS:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Inside, the first signal raises KeyboardInterrupt (and one already received does)."""
    with _state.lock:
        _state.raising += 1
    try:
        if requested() and not _state.done:
            raise KeyboardInterrupt
        yield
    finally:
        with _state.lock:
            _state.raising -= 1


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A critical section of the main thread (starting and registering a child process):
    the KeyboardInterrupt of a `raising()` block waits until it is over."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if _state.deferring == 0 and _state.pending_raise:
        _state.pending_raise = False
        if _state.raising > 0:
            raise KeyboardInterrupt


# -- the report --------------------------------------------------------------------------------
def set_fallback(fn: Callable[[], None] | None) -> None:
    """What writes a report (marked interrupted) when the process must end before the real one."""
    _state.fallback = fn


@contextlib.contextmanager
def writing_report() -> Iterator[None]:
    """The real report is being written: a hard exit waits for it instead of writing its own."""
    _state.writing = True
    try:
        yield
        _state.written = True
    finally:
        _state.writing = False


# -- the handler ------------------------------------------------------------------------------
def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.done:
        return
    _state.received.append(signum)
    count = len(_state.received)
    name = signal.Signals(signum).name
    if count == 1:
        _state.first_at = time.monotonic()
        _start_watchdog()
        _note(
            f"readyctl: {name} received: stopping the checks, cleaning up and writing the "
            f"report (exit 130); signal twice more to exit at once\n"
        )
        if _state.raising > 0:
            if _state.deferring > 0:
                _state.pending_raise = True
                return
            raise KeyboardInterrupt
        return
    if count == 2:
        _note(
            f"readyctl: {name} received again: still cleaning up and writing the report; "
            "once more to exit at once\n"
        )
        return
    if _state.writing:
        return  # the report is almost out: exiting now would leave it half-written
    _hard_exit(f"{name} received a third time")


def _note(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


def _start_watchdog() -> None:
    if _state.watchdog is not None:
        return
    t = threading.Thread(target=_watchdog, name="readyctl-interrupt-watchdog", daemon=True)
    _state.watchdog = t
    t.start()


def _watchdog() -> None:
    while remaining() > 0:
        time.sleep(min(0.25, max(0.01, remaining())))
    deadline = time.monotonic() + 10
    while _state.writing and time.monotonic() < deadline:
        time.sleep(0.05)
    _hard_exit(f"cleanup did not finish within {budget():g} s of the interrupt")


def _hard_exit(why: str) -> None:
    """Kill every child process group, make sure a report exists, exit 130 now."""
    code = _state.exit_code if _state.done else None
    _note(f"readyctl: {why}; exiting now\n")
    from readyctl import _proc

    # in a thread of its own, bounded: the main thread may hold a lock either would need
    killer = threading.Thread(target=_proc.kill_all, kwargs={"grace": 0.0}, daemon=True)
    killer.start()
    killer.join(6.0)
    fallback = _state.fallback
    if not _state.written and not _state.writing and fallback is not None:
        writer = threading.Thread(target=_quietly, args=(fallback,), daemon=True)
        writer.start()
        writer.join(10.0)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) and code else EXIT_INTERRUPTED)


def _quietly(fn: Callable[[], None]) -> None:
    with contextlib.suppress(BaseException):
        fn()


def reset_for_tests() -> None:
    """Forget every signal (in-process tests only)."""
    uninstall()
    global _state
    _state = _State()
