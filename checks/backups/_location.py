"""Backup locations: `file://` directories and `s3://bucket/prefix`, listed newest first."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from readyctl import aws
from readyctl.errors import DeadlineExceeded
from readyctl.result import ErrorReason

if TYPE_CHECKING:
    from readyctl.context import Context

FRESHNESS_ID = "backups.freshness"
MAX_OBJECTS = 100_000
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".inprogress", ".lock")
CHUNK = 1024 * 1024


class LocationError(Exception):
    """The location could not be listed or read; carries the error reason."""

    def __init__(self, reason: ErrorReason, detail: str) -> None:
        """Keep the reason beside the one-sentence detail."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class BackupObject:
    """One backup in a location: its name, size, modification time and full address."""

    name: str
    size: int
    modified: dt.datetime
    uri: str
    key: str | None = None  # S3 key
    path: Path | None = None  # local file


def configured_location(ctx: Context, own: str | None) -> tuple[str | None, str]:
    """The location from the check's own `location` setting, backups.freshness's, or the demo."""
    for source, value in (
        ("settings", own),
        (f"checks.{FRESHNESS_ID}.location", ctx.settings(FRESHNESS_ID).location),
    ):
        if value:
            return str(value), source
    managed = getattr(ctx.managed, "backup_location", None)
    if managed:
        return str(managed), "the managed demo"
    return None, ""


def is_s3(location: str) -> bool:
    """Whether the location is an S3 URL."""
    return location.lower().startswith("s3://")


def parse_s3(location: str) -> tuple[str, str]:
    """(bucket, prefix) of an s3://bucket/prefix URL."""
    parts = urlsplit(location)
    bucket = parts.netloc
    if not bucket:
        raise LocationError(ErrorReason.CONFIG, f"{location} names no bucket (s3://bucket/prefix)")
    return bucket, parts.path.lstrip("/")


def local_dir(ctx: Context, location: str) -> Path:
    """The directory of a file:// URL or a plain (config-relative) path."""
    if "://" in location:
        parts = urlsplit(location)
        if parts.scheme.lower() != "file":
            raise LocationError(
                ErrorReason.CONFIG,
                f"backup location {location} has an unsupported scheme {parts.scheme}:// "
                "(use file:// or s3://)",
            )
        if parts.netloc not in ("", "localhost"):
            raise LocationError(
                ErrorReason.CONFIG, f"file URL {location} names a remote host; use file:///path"
            )
        return Path(unquote(parts.path))
    return ctx.resolve(location)


def _wanted(name: str, pattern: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith(".") or base.lower().endswith(PARTIAL_SUFFIXES):
        return False
    return fnmatch.fnmatchcase(base, pattern)


def list_backups(
    ctx: Context, location: str, *, pattern: str = "*", recursive: bool = False
) -> list[BackupObject]:
    """Every backup in `location` matching `pattern`, newest first."""
    if is_s3(location):
        found = _list_s3(ctx, location, pattern, recursive)
    else:
        found = _list_dir(ctx, location, pattern, recursive)
    return sorted(found, key=lambda b: (b.modified, b.name), reverse=True)


def _list_dir(ctx: Context, location: str, pattern: str, recursive: bool) -> list[BackupObject]:
    root = local_dir(ctx, location)
    if not root.exists():
        return []
    if not root.is_dir():
        raise LocationError(ErrorReason.CONFIG, f"backup location {root} is not a directory")
    out: list[BackupObject] = []
    try:
        walker = root.rglob("*") if recursive else root.iterdir()
        for path in walker:
            if len(out) >= MAX_OBJECTS:
                break
            rel = path.relative_to(root).as_posix()
            if not _wanted(rel, pattern) or any(p.startswith(".") for p in rel.split("/")[:-1]):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file():
                continue
            when = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
            out.append(BackupObject(rel, st.st_size, when, path.as_uri(), path=path))
    except PermissionError:
        raise LocationError(
            ErrorReason.CONFIG, f"backup location {root} is not readable by readyctl"
        ) from None
    return out


def _list_s3(ctx: Context, location: str, pattern: str, recursive: bool) -> list[BackupObject]:
    bucket, prefix = parse_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        s3 = aws.client(ctx, "s3")
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if not recursive:
            kwargs["Delimiter"] = "/"
        out: list[BackupObject] = []
        token: str | None = None
        while len(out) < MAX_OBJECTS:
            ctx.check_deadline()
            page = s3.list_objects_v2(**kwargs, **({"ContinuationToken": token} if token else {}))
            for obj in page.get("Contents") or []:
                key = str(obj["Key"])
                if key.endswith("/") or not _wanted(key[len(prefix) :], pattern):
                    continue
                when = obj["LastModified"]
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                out.append(
                    BackupObject(
                        key[len(prefix) :],
                        int(obj.get("Size") or 0),
                        when.astimezone(dt.UTC),
                        f"s3://{bucket}/{key}",
                        key=key,
                    )
                )
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
            if not token:
                break
        return out
    except (LocationError, DeadlineExceeded):
        raise
    except Exception as e:
        if aws.error_code(e) == "NoSuchBucket":
            raise LocationError(
                ErrorReason.CONFIG, f"bucket {bucket} does not exist (NoSuchBucket)"
            ) from None
        reason, detail = aws.explain(e, f"listing s3://{bucket}/{prefix}")
        raise LocationError(reason, detail) from None


def fetch(ctx: Context, backup: BackupObject, dest_dir: Path) -> Path:
    """A local path of the backup: the file itself, or an S3 object streamed into dest_dir."""
    if backup.path is not None:
        return backup.path
    if backup.key is None:
        raise LocationError(ErrorReason.BUG, f"{backup.uri} has neither a path nor a key")
    bucket, _ = parse_s3(backup.uri)
    dest = dest_dir / "backup.download"
    try:
        s3 = aws.client(ctx, "s3", timeout=60)
        body = s3.get_object(Bucket=bucket, Key=backup.key)["Body"]
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh, contextlib.closing(body):
            for chunk in body.iter_chunks(CHUNK):
                ctx.check_deadline()
                fh.write(chunk)
    except (LocationError, DeadlineExceeded):
        raise
    except Exception as e:
        reason, detail = aws.explain(e, f"downloading {backup.uri}")
        raise LocationError(reason, detail) from None
    return dest
