"""How migration tools run: sealed environments, the scratch connection as URL and parts,
subprocesses and threads with timeouts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from readyctl import _proc
from readyctl.postgres import scratch
from readyctl.redact import clip
from readyctl.rehearsal.errors import RehearsalError, StepFailed


def with_session_options(url: str, options: dict[str, str]) -> str:
    """Add `-c name=value` session settings to a URL's libpq `options` parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    extra = " ".join(f"-c {k}={v}" for k, v in options.items())
    merged = []
    found = False
    for k, v in query:
        if k == "options":
            v = f"{v} {extra}".strip()
            found = True
        merged.append((k, v))
    if not found:
        merged.append(("options", extra))
    return urlunsplit(parts._replace(query=urlencode(merged)))


def run_process(
    cmd: Sequence[str] | str,
    *,
    env: dict[str, str],
    cwd: str | None,
    timeout_s: float,
    shell: bool = False,
) -> tuple[int, str, str]:
    """Run a command in its own process group; kill the group on timeout (StepFailed).

    The group is registered with readyctl._proc: Ctrl-C/SIGTERM to readyctl kills it too.
    """
    try:
        proc = _proc.run(
            cmd,
            env=env,
            cwd=cwd,
            shell=shell,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise StepFailed(f"did not finish within {timeout_s:g} s", timed_out=True) from None
    except _proc.ProcessesStopped as e:
        raise StepFailed(str(e)) from None
    return proc.returncode, proc.stdout, proc.stderr


SHIM_MARKER = "READYCTL-SHIM "


def run_shim(
    source: str,
    filename: str,
    cmd: Sequence[str],
    *,
    request: dict[str, Any],
    env: dict[str, str],
    cwd: str,
    timeout_s: float,
    tool: str,
    hint: Callable[[str], str] = lambda message: message,
    missing: str = "",
) -> dict[str, Any]:
    """Write a tool shim to a temporary file, run `cmd + [file]` with the request in
    READYCTL_SHIM_REQUEST, and return the JSON of its last `READYCTL-SHIM {json}` line.

    StepFailed (passed through `hint`) when the shim prints no such line or reports an
    `error`; RehearsalError (plus `missing`, the setting to fix) when `cmd` cannot start.
    """
    env = {**env, "READYCTL_SHIM_REQUEST": json.dumps(request)}
    with tempfile.TemporaryDirectory(prefix="readyctl-shim-") as tmp:
        shim = Path(tmp) / filename
        shim.write_text(source, encoding="utf-8")
        argv = [*cmd, str(shim)]
        try:
            code, out, err = run_process(argv, env=env, cwd=cwd, timeout_s=timeout_s)
        except FileNotFoundError as e:
            raise RehearsalError(f"cannot run {argv[0]}: {e.strerror}{missing}") from None
    marker = [x for x in out.splitlines() if x.startswith(SHIM_MARKER)]
    if not marker:
        raise StepFailed(hint(f"{tool} exited with {code}: {last_error_line(err or out)}"))
    data = json.loads(marker[-1][len(SHIM_MARKER) :])
    if "error" in data:
        raise StepFailed(hint(clip(str(data["error"]), 300)))
    return dict(data)


def last_error_line(text: str) -> str:
    """The most telling line of a tool's output."""
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    for x in reversed(lines):
        low = x.lower()
        if "error" in low or "exception" in low or "fatal" in low:
            return clip(x, 300)
    return clip(lines[-1] if lines else "no output", 300)


def in_thread(fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run `fn` in a daemon thread; StepFailed(timed_out) if it is not done in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True, name="readyctl-migration-step")
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise StepFailed(f"did not finish within {timeout_s:g} s", timed_out=True)
    if "error" in box:
        raise box["error"]
    return box.get("value")


_URL_LIKE = re.compile(r"^\s*postgres(?:ql)?(?:\+\w+)?://", re.IGNORECASE)
# libpq's connection variables: a tool must not find the target through them
PG_CONNECTION_VARS = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
)
DEFAULT_URL_VARS = ("DATABASE_URL",)
# what a sealed migration subprocess keeps of readyctl's own environment
SEALED_NAMES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV")
SEALED_PREFIXES = ("LC_", "NODE_")
CONNECTION_PARTS = ("host", "port", "user", "password", "dbname")


def connection_parts(url: str) -> dict[str, str]:
    """host, port, user, password and dbname of a URL (port 5432, password "" by default)."""
    parts = scratch.url_parts(url)
    out = {k: parts[k] for k in CONNECTION_PARTS if k in parts}
    out.setdefault("port", "5432")
    out.setdefault("password", "")
    return out


def _point_at_scratch(
    env: dict[str, str],
    url: str,
    url_env: Sequence[str],
    connection_env: dict[str, str] | None,
    options: dict[str, str] | None,
) -> dict[str, str]:
    """Drop PG* variables, point every PostgreSQL URL and the named variables at `url`."""
    target = scratch.libpq_url(url)
    env = {k: v for k, v in env.items() if k not in PG_CONNECTION_VARS}
    for k, v in list(env.items()):
        if _URL_LIKE.match(v or ""):
            env[k] = target
    for var in (*DEFAULT_URL_VARS, *url_env):
        env[var] = target
    if connection_env:
        parts = connection_parts(url)
        for part, var in connection_env.items():
            if part not in CONNECTION_PARTS:
                raise RehearsalError(
                    f"connection_env: {part!r} is not one of {', '.join(CONNECTION_PARTS)}"
                )
            if part in parts:
                env[var] = parts[part]
    if options:
        env["PGOPTIONS"] = " ".join(f"-c {k}={v}" for k, v in options.items())
    return env


def isolated_environ(
    base: dict[str, str],
    url: str,
    url_env: Sequence[str] = (),
    options: dict[str, str] | None = None,
    connection_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """`base` made safe for a migration tool: every database URL in it points at `url`.

    libpq's PG* connection variables are dropped and every variable whose value is a
    PostgreSQL URL (the target's DATABASE_URL, say) is replaced, so a tool that ignores the
    URL it is given still cannot reach the target through them. Used for alembic in this
    process, which shares readyctl's environment; subprocesses get `sealed_environ`.
    """
    return _point_at_scratch(dict(base), url, url_env, connection_env, options)


def sealed_environ(
    url: str,
    *,
    url_env: Sequence[str] = (),
    connection_env: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a migration subprocess: allow-listed, pointing at `url`.

    From `base` (default: readyctl's os.environ) only PATH, HOME, the locale (LANG, LANGUAGE,
    LC_*), TZ, TMPDIR, VIRTUAL_ENV and NODE_* are kept; then `extra` (the settings' `env:`
    map; PYTHONPATH only from there), then the scratch connection: `url` in DATABASE_URL and
    `url_env`, its parts in the variables `connection_env` names ({host: POSTGRES_SERVER,
    ...}). PG* variables are dropped and any PostgreSQL URL left is pointed at `url`.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in SEALED_NAMES or k.startswith(SEALED_PREFIXES)}
    env.update(extra or {})
    return _point_at_scratch(env, url, url_env, connection_env, options)


@contextlib.contextmanager
def os_environ(env: dict[str, str]) -> Iterator[None]:
    """Set os.environ to `env` for the block (changed keys only), then restore it."""
    with _proc.ENV_LOCK:  # other threads copy os.environ: never mid-change
        saved = {k: os.environ.get(k) for k in set(os.environ) | set(env)}
        changed = [k for k, v in saved.items() if env.get(k) != v]
        for k in changed:
            if k in env:
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
    try:
        yield
    finally:
        with _proc.ENV_LOCK:
            for k in changed:
                if saved[k] is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = saved[k]  # type: ignore[assignment]


def error_words(e: BaseException) -> str:
    """`Type: first line` of an exception, without SQLAlchemy's background links."""
    orig = getattr(e, "orig", None)
    if orig is not None:
        e = orig
    lines = [x for x in str(e).strip().splitlines() if x.strip()]
    first = lines[0] if lines else ""
    return clip(f"{type(e).__name__}: {first}", 300)


NO_MODULE = re.compile(r"No module named '?([\w.]+)'?")
SEALED_HINT = (
    "migration commands run with a sealed environment: pass what they need, PYTHONPATH say, "
    "in checks.migrations.rehearsal.env"
)
