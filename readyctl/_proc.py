"""Child processes: each in its own process group, registered while alive, never left behind.

Every subprocess readyctl or a built-in check starts (pg_dump, pg_restore, psql, postgres,
alembic in a project's interpreter, migration commands, locust, the demo server, git) goes
through `popen` or `run` here:

- it starts in a new session (`start_new_session=True`), so it and everything it forks form
  one process group that can be signalled as a whole, and a signal sent to readyctl's pid
  alone (CI cancelling a job, a container stopping) never reaches it by accident;
- it is registered while alive, in the innermost open `scope()` (a `readyctl check` run)
  or globally;
- its group is killed on every exit path: `run` on timeout and on any exception
  (KeyboardInterrupt included), `stop_scope` when a run is interrupted or ends, `kill_all`
  on a hard exit and at interpreter exit (atexit), as the last resort.

A closed scope refuses new children (`ProcessesStopped`), so a check thread that is still
winding down after an interrupt cannot start a pg_dump after the cleanup ran.

Only the standard library (and readyctl._interrupt, which is stdlib-only too) is imported:
`readyctl --help` stays fast, and the demo may use it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

DEFAULT_GRACE_S = 3.0
"""How long a group gets after its stop signal before SIGKILL."""


class ProcessesStopped(RuntimeError):
    """No new child process: the run owning it was interrupted or readyctl is exiting."""


@dataclasses.dataclass(eq=False)
class _Child:
    proc: subprocess.Popen[Any]
    name: str
    stop_signal: int
    scope: Scope | None


class Scope:
    """The children started while this scope is the innermost open one (one run)."""

    def __init__(self) -> None:
        """An open scope with no children."""
        self.children: dict[int, _Child] = {}
        self.closed = False


_lock = threading.RLock()
_children: dict[int, _Child] = {}
_scopes: list[Scope] = []
_stopping = False  # kill_all ran: nothing new may start in this process


# -- starting --------------------------------------------------------------------------------
def popen(
    args: Sequence[str] | str,
    *,
    name: str | None = None,
    stop_signal: int = signal.SIGTERM,
    **kwargs: Any,
) -> subprocess.Popen[Any]:
    """`subprocess.Popen` in a new process group, registered until it is stopped or reaped.

    `stop_signal` is what `stop`/`stop_scope`/`kill_all` send to the group first (postgres
    wants SIGQUIT); SIGKILL follows after a grace period. Raises ProcessesStopped when the
    current scope is closed or readyctl is exiting.
    """
    if kwargs.pop("start_new_session", True) is not True:
        raise ValueError("children always start in their own session")
    if kwargs.get("process_group") is not None or kwargs.get("preexec_fn") is not None:
        raise ValueError("process_group/preexec_fn would defeat the process-group registry")
    from readyctl import _interrupt

    label = name or _label(args)
    # no KeyboardInterrupt between the fork and the registration: the child would be lost
    with _interrupt.deferred(), _lock:
        scope = _scopes[-1] if _scopes else None
        if _stopping or (scope is not None and scope.closed):
            raise ProcessesStopped(f"not starting {label}: readyctl is stopping")
        _prune()
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        child = _Child(proc, label, stop_signal, scope)
        _children[proc.pid] = child
        if scope is not None:
            scope.children[proc.pid] = child
    return proc


def run(
    args: Sequence[str] | str,
    *,
    timeout: float | None = None,
    input: bytes | str | None = None,
    capture_output: bool = False,
    check: bool = False,
    name: str | None = None,
    stop_signal: int = signal.SIGTERM,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` through `popen`: the whole group is killed on timeout or any exception.

    Raises subprocess.TimeoutExpired / CalledProcessError like subprocess.run.
    """
    if capture_output:
        kwargs["stdout"] = subprocess.PIPE
        kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    proc = popen(args, name=name, stop_signal=stop_signal, **kwargs)
    try:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            stop(proc, grace=0)
            with contextlib.suppress(Exception):  # what it wrote before it was killed
                exc.output, exc.stderr = proc.communicate(timeout=2)
            raise
        except BaseException:  # KeyboardInterrupt, SystemExit, ...: the group must not outlive us
            stop(proc, grace=0)
            raise
        # it is done: what it left running in its group (`cmd &` in a shell) goes with it
        signal_group(proc, signal.SIGKILL)
    finally:
        _release(proc)
    code = proc.returncode if proc.returncode is not None else proc.wait()
    if check and code != 0:
        raise subprocess.CalledProcessError(code, args, out, err)
    return subprocess.CompletedProcess(args, code, out, err)


# -- stopping --------------------------------------------------------------------------------
def signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Send `sig` to the child's process group (ignoring a group that is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop(
    proc: subprocess.Popen[Any], *, grace: float = DEFAULT_GRACE_S, sig: int | None = None
) -> int | None:
    """Stop a child's group: `sig` (default: its stop signal), `grace` s, SIGKILL; reap it.

    Returns the exit code (None if it could not be reaped). Idempotent.
    """
    stop_many([proc], grace=grace, sig=sig)
    return proc.returncode


def stop_many(
    procs: Iterable[subprocess.Popen[Any]],
    *,
    grace: float = DEFAULT_GRACE_S,
    sig: int | None = None,
) -> None:
    """Stop several children at once (one shared grace period), then release them."""
    procs = list(procs)
    if not procs:
        return
    with _lock:
        signals = {
            p.pid: (sig if sig is not None else _stop_signal_of(p)) for p in procs if grace > 0
        }
    for p in procs:
        if p.returncode is None:
            signal_group(p, signals.get(p.pid, signal.SIGKILL))
    until = time.monotonic() + max(0.0, grace)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.01, until - time.monotonic()))
    for p in procs:
        # SIGKILL the group even when its leader is gone: what it forked may still run
        signal_group(p, signal.SIGKILL)
    until = time.monotonic() + 5.0
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.01, until - time.monotonic()))
        _release(p)


def _stop_signal_of(proc: subprocess.Popen[Any]) -> int:
    child = _children.get(proc.pid)
    return child.stop_signal if child is not None and child.proc is proc else signal.SIGTERM


def release(proc: subprocess.Popen[Any]) -> None:
    """Forget a child that has exited and been reaped (stop() and run() do this themselves)."""
    _release(proc)


def _release(proc: subprocess.Popen[Any]) -> None:
    with _lock:
        child = _children.get(proc.pid)
        if child is not None and child.proc is proc:
            del _children[proc.pid]
            if child.scope is not None:
                child.scope.children.pop(proc.pid, None)


def _prune() -> None:
    """Forget children that exited on their own (reaping them: no zombies)."""
    for child in list(_children.values()):
        if child.proc.poll() is not None:
            _release(child.proc)


def live(scope: Scope | None = None) -> list[subprocess.Popen[Any]]:
    """The registered children still running (of one scope, or all)."""
    with _lock:
        source = scope.children if scope is not None else _children
        return [c.proc for c in list(source.values()) if c.proc.poll() is None]


# -- scopes ----------------------------------------------------------------------------------
@contextlib.contextmanager
def scope() -> Iterator[Scope]:
    """Children started inside belong to this scope; on leaving, it is closed and they stop."""
    s = Scope()
    with _lock:
        _scopes.append(s)
    try:
        yield s
    finally:
        try:
            close_scope(s)
        finally:
            with _lock:
                if s in _scopes:
                    _scopes.remove(s)


def current_scope() -> Scope | None:
    """The innermost open scope, if any."""
    with _lock:
        return _scopes[-1] if _scopes else None


def close_scope(s: Scope | None = None, *, grace: float = DEFAULT_GRACE_S) -> None:
    """Refuse new children in the scope (default: the innermost) and stop the live ones.

    Without an open scope this does nothing (library use: the caller owns its processes).
    """
    with _lock:
        target = s if s is not None else (_scopes[-1] if _scopes else None)
        if target is None:
            return
        target.closed = True
        procs = [c.proc for c in target.children.values()]
    stop_many(procs, grace=grace)


def kill_all(*, grace: float = 0.0) -> None:
    """Stop every registered child, in every scope, and refuse new ones (exiting)."""
    global _stopping
    with _lock:
        _stopping = True
        for s in _scopes:
            s.closed = True
        procs = [c.proc for c in _children.values()]
    stop_many(procs, grace=grace)


def _label(args: Sequence[str] | str) -> str:
    if isinstance(args, str):
        return args.split()[0] if args.split() else args
    return os.path.basename(str(args[0])) if args else "?"


def _at_exit() -> None:
    """The last resort: nothing readyctl started outlives the interpreter."""
    with contextlib.suppress(Exception):
        kill_all(grace=1.0)


atexit.register(_at_exit)


# -- the process environment ------------------------------------------------------------------
# The in-process alembic shim points os.environ at the scratch copy for the length of a step
# (readyctl.rehearsal.environ.os_environ) while other checks run in threads. Iterating
# os.environ while a key is added or removed raises KeyError (it walks a snapshot of the keys
# and looks each one up), so every mutation and every full copy takes this lock; so does
# building an HTTP client, which reads the proxy variables by iterating os.environ.
ENV_LOCK = threading.RLock()


def environ_copy(drop_prefix: str | None = None) -> dict[str, str]:
    """A consistent copy of os.environ (without the variables starting with `drop_prefix`)."""
    with ENV_LOCK:
        env = dict(os.environ)
    if drop_prefix:
        env = {k: v for k, v in env.items() if not k.startswith(drop_prefix)}
    return env
