"""secrets.committed_literals: detect-secrets finds no secret-looking literal in tracked files."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field
from readyctl.checks.secrets._repo import (
    RepoError,
    RepoSettings,
    git_env,
    project_repo,
    tracked_files,
)

from readyctl import _proc
from readyctl.check import Capability, Category, Check, CheckMeta, RemediationSpec, Severity
from readyctl.context import Context
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

MAX_FILE_BYTES = 1024 * 1024
MAX_SHOWN = 10
# Runs in a child interpreter: detect-secrets keeps global settings and may fork a pool, so it
# stays out of the runner's threads, and a deadline can kill it. Only hashes leave the child.
_SCAN = r"""
import json, sys
req = json.load(sys.stdin)
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings, transient_settings
if req.get("baseline_settings"):
    manager = transient_settings(req["baseline_settings"])
else:
    manager = default_settings()
findings, errors = [], []
with manager:
    collection = SecretsCollection(root=req["root"])
    for name in req["files"]:
        try:
            collection.scan_file(name)
        except Exception as e:
            errors.append([name, type(e).__name__])
    for filename, secret in collection:
        findings.append({
            "filename": filename,
            "line": secret.line_number,
            "type": secret.type,
            "hashed_secret": secret.secret_hash,
        })
json.dump({"findings": findings, "errors": errors}, sys.stdout)
"""


class Settings(RepoSettings):
    """Settings of secrets.committed_literals."""

    exclude: tuple[str, ...] = Field(
        (), description="path globs left out of the scan, e.g. tests/**"
    )
    baseline: str | None = Field(
        None,
        description="detect-secrets baseline whose findings are accepted (default: "
        ".secrets.baseline in the repository when present)",
    )
    allow_hashes: tuple[str, ...] = Field(
        (), description="detect-secrets hashed_secret values (sha1) accepted anywhere"
    )
    max_file_bytes: int = Field(
        MAX_FILE_BYTES, gt=0, description="larger files are skipped (bytes)"
    )


class CommittedLiterals(Check):
    """detect-secrets over the tracked files finds nothing outside the baseline and allow-list.

    Settings (`checks: {secrets.committed_literals: {...}}`):
    - `repo_path`: the project's repository (default: the config's directory). Against the
      managed demo the check skips unless set: the demo ships inside readyctl, whose own tests
      carry fake secrets on purpose.
    - `exclude`: path globs left out (test data, examples), e.g. `["tests/**", "examples/**"]`.
    - `baseline`: a detect-secrets baseline (default `.secrets.baseline` in the repository when
      present); findings listed there are accepted and its plugin settings are used.
    - `allow_hashes`: detect-secrets `hashed_secret` values (the SHA-1 shown as `sha1` in each
      finding's evidence) accepted anywhere.
    - `max_file_bytes` (1 MiB): larger files are skipped.
    Lines marked `pragma: allowlist secret` are accepted, as detect-secrets does.
    """

    meta = CheckMeta(
        id="secrets.committed_literals",
        title="No secret-looking literal is committed",
        failure_title="Secret-looking literals are committed",
        description=(
            "A key, token or password committed to git is readable by everyone with the "
            "repository and stays in its history. "
            "See https://github.com/Yelp/detect-secrets."
        ),
        remediation=RemediationSpec(
            text="Move the value to the secret manager, rotate it, and purge it from history; "
            "for a known false positive, add it to the baseline or mark the line.",
            snippet="detect-secrets scan > .secrets.baseline\n"
            "detect-secrets audit .secrets.baseline\n"
            'API_URL = "https://..."  # pragma: allowlist secret',
            link="https://github.com/Yelp/detect-secrets#quickstart",
        ),
        category=Category.SECRETS,
        severity=Severity.HIGH,
        requires=(Capability.REPO,),
        timeout_s=180,
        tags=("secrets", "git", "seed"),
        refs=("3",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One failing result per file with findings, or one pass for the repository."""
        settings: Settings = ctx.settings()
        repo, why = project_repo(ctx, settings)
        if repo is None:
            yield self.skipped("repository", why)
            return
        try:
            tracked = tracked_files(ctx, repo)
        except RepoError as e:
            yield self.errored("repository", ErrorReason.CONFIG, str(e))
            return
        baseline_path = self._baseline_path(ctx, repo, settings)
        accepted: set[tuple[str, str]] = set()
        baseline_settings: dict[str, Any] | None = None
        if baseline_path is not None:
            try:
                data = json.loads(baseline_path.read_text(encoding="utf-8"))
                for filename, items in (data.get("results") or {}).items():
                    for item in items:
                        accepted.add((str(filename), str(item.get("hashed_secret"))))
                baseline_settings = {
                    k: data[k] for k in ("plugins_used", "filters_used") if k in data
                } or None
            except (OSError, ValueError, AttributeError, TypeError) as e:
                yield self.errored(
                    "repository",
                    ErrorReason.CONFIG,
                    f"baseline {baseline_path} is not a detect-secrets baseline "
                    f"({type(e).__name__})",
                )
                return
        excludes = list(settings.exclude)
        if baseline_path is not None:
            excludes.append(baseline_path.name)
        limit = settings.max_file_bytes
        files = [f for f in tracked if self._scannable(repo, f, excludes, limit)]
        try:
            report = self._scan(ctx, repo, files, baseline_settings)
        except _ScanError as e:
            yield self.errored("repository", e.reason, str(e))
            return
        allow_hashes = set(settings.allow_hashes)
        by_file: dict[str, list[dict[str, Any]]] = {}
        allowed = 0
        for f in report["findings"]:
            key = (str(f["filename"]), str(f["hashed_secret"]))
            if key in accepted or key[1] in allow_hashes:
                allowed += 1
                continue
            by_file.setdefault(key[0], []).append(f)
        for name in sorted(by_file):
            found = sorted(by_file[name], key=lambda f: f.get("line") or 0)
            where = ", ".join(f"line {f.get('line')} ({f['type']})" for f in found[:MAX_SHOWN])
            more = f" and {len(found) - MAX_SHOWN} more" if len(found) > MAX_SHOWN else ""
            yield self.failed(
                name,
                f"{name} has {len(found)} secret-looking literal(s): {where}{more}",
                measured=len(found),
                threshold=0,
                evidence={
                    "findings": [
                        {
                            "line": f.get("line"),
                            "type": f["type"],
                            "sha1": f["hashed_secret"],
                        }
                        for f in found[:50]
                    ],
                    "repository": str(repo),
                },
            )
        if not by_file:
            extra = f"; {allowed} accepted by the baseline or allow-list" if allowed else ""
            yield self.passed(
                "repository",
                f"detect-secrets found no secret-looking literal in {len(files)} tracked files "
                f"of {repo}{extra}",
                measured=len(files),
                evidence={"skipped_or_excluded": len(tracked) - len(files)},
            )

    def _baseline_path(self, ctx: Context, repo: Path, settings: Settings) -> Path | None:
        """The configured baseline, or `.secrets.baseline` in the repository when present."""
        named = settings.baseline
        if named:
            path = Path(named).expanduser()
            return path if path.is_absolute() else repo / path
        default = repo / ".secrets.baseline"
        return default if default.is_file() else None

    def _scannable(self, repo: Path, name: str, excludes: list[str], limit: int) -> bool:
        """A tracked regular file, not excluded, not too big."""
        if any(
            fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(name, g + "/*") for g in excludes
        ):
            return False
        path = repo / name
        try:
            if path.is_symlink() or not path.is_file():
                return False
            return path.stat().st_size <= limit
        except OSError:
            return False

    def _scan(
        self,
        ctx: Context,
        repo: Path,
        files: list[str],
        baseline_settings: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Run detect-secrets in a child interpreter; returns findings (hashes only)."""
        request = json.dumps(
            {"root": str(repo), "files": files, "baseline_settings": baseline_settings}
        )
        try:
            proc = _proc.run(
                [sys.executable, "-c", _SCAN],
                input=request.encode(),
                capture_output=True,
                timeout=max(1.0, ctx.remaining() - 2),
                cwd=str(repo),
                env=git_env(),
            )
        except subprocess.TimeoutExpired:
            raise _ScanError(ErrorReason.TIMEOUT, "detect-secrets did not finish in time") from None
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
            if "No module named 'detect_secrets'" in "\n".join(err):
                raise _ScanError(
                    ErrorReason.CONFIG,
                    "detect-secrets is not installed (pip install detect-secrets)",
                )
            raise _ScanError(ErrorReason.BUG, f"detect-secrets failed: {clip(err[-1], 200)}")
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise _ScanError(ErrorReason.BUG, "detect-secrets printed no JSON report") from None
        return dict(report)


class _ScanError(Exception):
    def __init__(self, reason: ErrorReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
