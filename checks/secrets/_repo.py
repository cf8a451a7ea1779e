"""The project's git repository (which one, and its tracked files) for the secrets checks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from readyctl import _proc
from readyctl.check import CheckSettings
from readyctl.redact import clip

if TYPE_CHECKING:
    from readyctl.context import Context

MAX_TRACKED = 200_000


class RepoSettings(CheckSettings):
    """The repository setting the repository-scanning secrets checks share."""

    repo_path: str | None = Field(
        None,
        description="the project's git repository (default: the config's directory; the "
        "managed demo has none)",
    )


class RepoError(Exception):
    """git could not list the repository's files; the message says why."""


def project_repo(ctx: Context, settings: RepoSettings) -> tuple[Path | None, str]:
    """(repository path, "") or (None, why the check does not apply).

    `repo_path` from the settings wins; otherwise the config's directory. Against the managed
    demo without an explicit `repo_path` the project under test is the bundled demo, which
    ships inside readyctl and is no git checkout of its own: nothing to scan.
    """
    explicit = settings.repo_path
    if explicit:
        path = ctx.resolve(explicit)
    elif ctx.managed is not None:
        return None, (
            "the managed demo ships inside readyctl and has no repository of its own; "
            "set repo_path to scan a project"
        )
    else:
        path = Path(ctx.base_dir)
    if not path.is_dir():
        return None, f"repo_path {path} is not a directory"
    return path, ""


def git_env() -> dict[str, str]:
    """An environment for read-only git calls: no prompts, no optional index locks."""
    env = _proc.environ_copy("GIT_")
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def tracked_files(ctx: Context, repo: Path) -> list[str]:
    """Paths (relative to `repo`) of every file git tracks there (`git ls-files -z`)."""
    cmd = [
        "git",
        "-c",
        f"safe.directory={repo}",
        "-c",
        "core.quotepath=off",
        "-C",
        str(repo),
        "ls-files",
        "-z",
        "--cached",
        "--",
        ".",
    ]
    try:
        proc = _proc.run(
            cmd,
            capture_output=True,
            timeout=ctx.timeout(30),
            env=git_env(),
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise RepoError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise RepoError(f"git ls-files in {repo} did not finish in time") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise RepoError(f"git ls-files in {repo} failed: {clip(lines[0], 200)}")
    names = [n for n in proc.stdout.decode("utf-8", errors="replace").split("\0") if n]
    return names[:MAX_TRACKED]
