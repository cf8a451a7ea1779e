"""secrets.git_tracked_env: no .env file other than examples is tracked in git."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.secrets._repo import RepoError, RepoSettings, project_repo, tracked_files

from readyctl.check import Capability, Category, Check, CheckMeta, RemediationSpec, Severity
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

EXAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist")


class Settings(RepoSettings):
    """Settings of secrets.git_tracked_env."""

    allow: tuple[str, ...] = Field(
        (), description="extra file-name globs that are examples, e.g. .env.test"
    )


class GitTrackedEnv(Check):
    """`git ls-files` lists no `.env*` file except the documented examples.

    Settings: `repo_path` (default: the config's directory; against the managed demo the check
    skips unless set), `allow` (extra file-name globs that are examples, e.g. `.env.test`).
    """

    meta = CheckMeta(
        id="secrets.git_tracked_env",
        title="No .env file is tracked in git",
        failure_title="A .env file is tracked in git",
        description=(
            "A committed .env file puts every secret in it into each clone, fork and CI cache, "
            "and git history keeps it after the file is deleted. "
            "See https://12factor.net/config."
        ),
        remediation=RemediationSpec(
            text="Untrack the file, ignore it, rotate every secret it ever held, and commit a "
            ".env.example with placeholders instead.",
            snippet="git rm --cached .env\necho '.env*' >> .gitignore\n"
            "echo '!.env.example' >> .gitignore",
            link="https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/"
            "removing-sensitive-data-from-a-repository",
        ),
        category=Category.SECRETS,
        severity=Severity.HIGH,
        requires=(Capability.REPO,),
        timeout_s=30,
        tags=("secrets", "git", "seed"),
        refs=("3",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One failing result per tracked env file, or one pass for the repository."""
        settings: Settings = ctx.settings()
        repo, why = project_repo(ctx, settings)
        if repo is None:
            yield self.skipped("repository", why)
            return
        allowed = [*EXAMPLES, *settings.allow]
        try:
            files = tracked_files(ctx, repo)
        except RepoError as e:
            yield self.errored("repository", ErrorReason.CONFIG, str(e))
            return
        bad = []
        for name in files:
            base = name.rsplit("/", 1)[-1]
            if not fnmatch.fnmatchcase(base, ".env*"):
                continue
            if any(fnmatch.fnmatchcase(base, a) or fnmatch.fnmatchcase(name, a) for a in allowed):
                continue
            bad.append(name)
        for name in bad:
            yield self.failed(
                name,
                f"{name} is tracked in git; secrets in it reach every clone",
                evidence={"repository": str(repo)},
            )
        if not bad:
            yield self.passed(
                "repository",
                f"no .env file other than examples is tracked among {len(files)} files in {repo}",
                measured=len(files),
            )
