"""npm packages for test fixtures: one install per package.json (+ lock) per machine.

`node_modules_for(project)` installs a fixture project's dependencies once into a cache
directory keyed by the hash of its package.json and package-lock.json
(`$READYCTL_TEST_CACHE/npm/<hash>`, default `~/.cache/readyctl-tests/npm/<hash>`), under a file
lock so concurrent pytest-xdist workers wait for one install instead of racing. `npm_project`
copies the fixture project into a test's directory with `node_modules` linked to the cache.
When npm is missing or the install fails the test is skipped with the command to run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_TIMEOUT_S = 600
MANIFESTS = ("package.json", "package-lock.json")
_DONE = ".readyctl-installed"


def cache_root() -> Path:
    """Where installs are kept: $READYCTL_TEST_CACHE/npm, else ~/.cache/readyctl-tests/npm."""
    base = os.environ.get("READYCTL_TEST_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "readyctl-tests"
    return root / "npm"


def manifest_hash(project: Path) -> str:
    """A short hash of the project's package.json and package-lock.json (when present)."""
    h = hashlib.sha256()
    for name in MANIFESTS:
        path = project / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def install_command(project: Path) -> list[str]:
    """`npm ci` when the project has a lock file, else `npm install` (no scripts, no audit)."""
    verb = "ci" if (project / "package-lock.json").is_file() else "install"
    return ["npm", verb, "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created when missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def node_modules_for(project: Path) -> Path:
    """The cached node_modules of `project`'s dependencies, installing them on first use.

    Skips the calling test (with the exact command) when npm is missing or the install fails.
    """
    project = Path(project)
    key = manifest_hash(project)
    target = cache_root() / key
    if (target / _DONE).is_file():
        return target / "node_modules"
    cmd = install_command(project)
    shown = f"cd {target} && {' '.join(cmd)}"
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed; install Node.js and npm, then run: {shown}")
    with _locked(cache_root() / f"{key}.lock"):
        if (target / _DONE).is_file():  # another worker installed it meanwhile
            return target / "node_modules"
        work = cache_root() / f"{key}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in MANIFESTS:
            if (project / name).is_file():
                shutil.copy2(project / name, work / name)
        try:
            proc = subprocess.run(
                [npm, *cmd[1:]],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                env={**os.environ, "npm_config_update_notifier": "false"},
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(work, ignore_errors=True)
            pytest.skip(f"npm install took over {INSTALL_TIMEOUT_S} s; run: {shown}")
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            lines = [x for x in (proc.stderr or proc.stdout).splitlines() if x.strip()]
            why = lines[-1] if lines else f"exit {proc.returncode}"
            pytest.skip(f"npm install failed ({why}); run: {shown}")
        (work / _DONE).write_text(" ".join(cmd) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    return target / "node_modules"


def npm_project(source: Path, dest: Path) -> Path:
    """Copy the fixture project `source` to `dest` with node_modules linked to the cache."""
    modules = node_modules_for(source)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("node_modules"))
    (dest / "node_modules").symlink_to(modules, target_is_directory=True)
    return dest
