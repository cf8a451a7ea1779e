"""`uses: backup`: a verified pg_dump of the target, kept where rollback can restore it."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

KEYS = ("location", "min_ratio", "prefix")
SUFFIX = ".dump"


@register
class Backup(Action):
    """`pg_dump -Fc` of the target database to the backup location, verified.

    `with:` keys:
    - `location`: a directory (relative to readyctl.yaml, or file:///path) or
      `s3://bucket/prefix` (boto3, with the environment's `aws:` settings: region,
      endpoint_url, profile); default: the run's directory (.readyctl/runs/<id>/).
    - `min_ratio` (0.5): the backup fails when it is smaller than this share of the previous
      backup of the same database at the same location (a dump of an emptied database).
    - `prefix` (`readyctl-<database name>`): the backup's file name starts with it; the
      previous backup is the newest `<prefix>-*.dump` at the location.

    Verified before it is stored: `pg_restore --list` must read it. Record: `backup_id`,
    `location` (no credentials), `uri` (the stored object), `local_path` (the copy in the run's
    directory), `size`, `sha256`, `server_version`, `pg_dump_version`, `toc_entries`,
    `previous`. No rollback: the backup stays.
    """

    name = "backup"
    touches = "target-read"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        where = params.get("location") or "the run's directory"
        ratio = params.get("min_ratio", 0.5)
        return (
            f"pg_dump -Fc of the target database to {where}; verified with pg_restore --list "
            f"and a size of at least {ratio}x the previous backup (reads the target)"
        )

    def run(self, sc: StepContext) -> ActionResult:
        """Dump, verify, compare with the previous backup, store."""
        from readyctl.postgres.dump import dump_database, pg_restore_path
        from readyctl.postgres.urls import ScratchError, url_parts

        _common.unknown_keys(sc, KEYS)
        t = _common.target(sc)
        url = t.env.database_url
        if not url:
            raise ActionFailed("backup: the target environment has no database_url")
        min_ratio = _common.number(sc.params, "min_ratio", 0.5)
        dbname = url_parts(url).get("dbname", "db")
        prefix = _safe(str(sc.params.get("prefix") or f"readyctl-{dbname}"))
        location = str(sc.params.get("location") or sc.workdir)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        # a run id already starting with its own timestamp adds only its random tail
        tag = re.sub(r"^\d{8}T\d{6}(\.\d{3})?Z-", "", sc.run_id)
        backup_id = f"{prefix}-{stamp}-{_safe(tag)[:24]}"
        sc.workdir.mkdir(parents=True, exist_ok=True)
        local = sc.workdir / f"{backup_id}{SUFFIX}"
        sc.log(f"dumping the target database to {local.name}")
        try:
            info = dump_database(url, local, timeout_s=max(10.0, sc.timeout_s))
        except ScratchError as e:
            raise ActionFailed(f"backup: {_common.redact(e)}") from None
        sc.check_deadline()
        try:
            restore_bin = pg_restore_path(info.pg_dump_major)
        except ScratchError as e:
            raise ActionFailed(f"backup: {_common.redact(e)}") from None
        toc = _toc_entries(restore_bin, local)
        digest = _sha256(local)
        record: dict[str, Any] = {
            "backup_id": backup_id,
            "location": _common.redact(_describe_location(location)),
            "local_path": str(local),
            "size": info.size_bytes,
            "sha256": digest,
            "server_version": _server_version(url) or str(info.server_major),
            "pg_dump_version": info.pg_dump_major,
            "toc_entries": toc,
            "dump_s": round(info.seconds, 3),
        }
        ctx = _common.context(sc, t)
        previous = _previous(ctx, location, prefix, exclude=f"{backup_id}{SUFFIX}")
        if previous is not None:
            record["previous"] = {"name": previous.name, "size": previous.size}
            if previous.size > 0 and info.size_bytes < min_ratio * previous.size:
                raise ActionFailed(
                    f"backup is {info.size_bytes} bytes, under {min_ratio:g}x the previous "
                    f"backup {previous.name} ({previous.size} bytes); not stored",
                    record=record,
                )
        sc.check_deadline()
        record["uri"] = _store(ctx, local, location, f"{backup_id}{SUFFIX}")
        sc.log(f"backup {backup_id} stored ({info.size_bytes} bytes, {toc} entries)")
        ratio = (
            f", {info.size_bytes / previous.size:.2f}x the previous"
            if previous is not None and previous.size
            else ", no previous backup to compare"
        )
        return ActionResult(
            f"backup {backup_id}: {info.size_bytes} bytes, {toc} entries, verified{ratio}",
            record=record,
            evidence={"pg_dump": info.pg_dump, "seconds": round(info.seconds, 3)},
        )


# -- helpers ---------------------------------------------------------------------------------
def _safe(text: str) -> str:
    """A file-name-safe form of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "backup"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def _toc_entries(pg_restore: str, path: Path) -> int:
    """`pg_restore --list`: the number of entries; ActionFailed when it cannot read the file."""
    try:
        proc = subprocess.run(
            [pg_restore, "--list", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise ActionFailed(f"backup: pg_restore --list could not run: {e}") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ActionFailed(f"backup: pg_restore --list cannot read the dump: {tail}")
    entries = [x for x in proc.stdout.splitlines() if x.strip() and not x.startswith(";")]
    return len(entries)


def _server_version(url: str) -> str | None:
    """The server's version text (e.g. 16.4), or None."""
    import psycopg

    from readyctl.postgres.urls import libpq_url

    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
            return str(conn.info.parameter_status("server_version") or "") or None
    except Exception:  # the version is a nicety of the record
        return None


def _describe_location(location: str) -> str:
    """The location without credentials (s3://bucket/prefix or a path)."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" in location:
        parts = urlsplit(location)
        netloc = parts.hostname or parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=netloc, query=""))
    return location


def _previous(ctx: Any, location: str, prefix: str, *, exclude: str) -> Any:
    """The newest earlier backup with this prefix at the location (None: there is none)."""
    from readyctl.checks.backups._location import LocationError, list_backups

    try:
        found = list_backups(ctx, location, pattern=f"{prefix}-*{SUFFIX}")
    except LocationError as e:
        raise ActionFailed(f"backup: {_common.redact(e.detail)}") from None
    return next((b for b in found if b.name != exclude), None)


def _store(ctx: Any, local: Path, location: str, name: str) -> str:
    """Copy the verified dump to the location; its address (no credentials)."""
    from readyctl import aws
    from readyctl.checks.backups._location import LocationError, is_s3, local_dir, parse_s3

    if is_s3(location):
        try:
            bucket, prefix = parse_s3(location)
        except LocationError as e:
            raise ActionFailed(f"backup: {e.detail}") from None
        key = f"{prefix.rstrip('/')}/{name}" if prefix else name
        try:
            aws.client(ctx, "s3", timeout=120).upload_file(str(local), bucket, key)
        except Exception as e:
            _, detail = aws.explain(e, f"uploading to s3://{bucket}/{key}")
            raise ActionFailed(f"backup: {_common.redact(detail)}") from None
        return f"s3://{bucket}/{key}"
    try:
        root = local_dir(ctx, location)
    except LocationError as e:
        raise ActionFailed(f"backup: {e.detail}") from None
    dest = root / name
    if dest.resolve() == local.resolve():
        return str(dest)
    try:
        root.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        shutil.copyfile(local, part)
        os.replace(part, dest)
    except OSError as e:
        raise ActionFailed(f"backup: cannot write {dest}: {e.strerror or e}") from None
    return str(dest)


# -- restoring a recorded backup (migrate's rollback) -----------------------------------------
def fetch(sc: StepContext, record: Mapping[str, Any]) -> Path:
    """A local copy of the recorded backup whose sha256 matches the record."""
    want = str(record.get("sha256") or "")
    local = Path(str(record.get("local_path") or ""))
    if record.get("local_path") and local.is_file() and _sha256(local) == want:
        return local
    uri = str(record.get("uri") or "")
    if not uri:
        raise ActionFailed(f"backup {record.get('backup_id')} has no stored copy to restore")
    if uri.lower().startswith("s3://"):
        from readyctl import aws

        bucket, _, key = uri[len("s3://") :].partition("/")
        dest = sc.workdir / f"{record.get('backup_id', 'backup')}.download{SUFFIX}"
        sc.workdir.mkdir(parents=True, exist_ok=True)
        try:
            aws.client(_common.context(sc), "s3", timeout=120).download_file(bucket, key, str(dest))
        except Exception as e:
            _, detail = aws.explain(e, f"downloading {uri}")
            raise ActionFailed(f"restore: {_common.redact(detail)}") from None
        path = dest
    else:
        path = Path(uri)
        if not path.is_file():
            raise ActionFailed(f"restore: backup file {uri} is gone")
    if _sha256(path) != want:
        raise ActionFailed(f"restore: backup {uri} does not match its recorded sha256")
    return path


def restore(
    sc: StepContext,
    url: str,
    dump: Path,
    *,
    drop_first: list[str] | None = None,
    lock_timeout_s: float = 60,
) -> float:
    """Restore `dump` into the database at `url` in one transaction; seconds it took.

    `pg_restore --clean --if-exists` renders the script (objects of the backup dropped and
    created again, its rows loaded); `drop_first` statements (objects that are not in the
    backup, such as a table a failed migration left) run before it, in the same transaction
    (psql --single-transaction, ON_ERROR_STOP): the restore happens whole or not at all.
    """
    import time

    from readyctl.postgres.dump import (
        pg_restore_path,
        psql_path,
        server_major_version,
        without_newer_settings,
    )
    from readyctl.postgres.urls import ScratchError, _client_env

    t0 = time.monotonic()
    try:
        major = server_major_version(url)
        restore_bin = pg_restore_path()
        psql = psql_path()
    except Exception as e:
        raise ActionFailed(f"restore: {_common.redact(e)}") from None
    script = sc.workdir / f"{dump.stem}.restore.sql"
    proc = subprocess.run(
        [restore_bin, "--clean", "--if-exists", "--file", str(script), str(dump)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ActionFailed(f"restore: pg_restore could not read the backup: {tail}")
    rendered = script
    script = without_newer_settings(rendered, sc.workdir, major)
    pre = sc.workdir / f"{dump.stem}.restore-pre.sql"
    pre.write_text("".join(f"{s};\n" for s in (drop_first or [])), encoding="utf-8")
    try:
        conninfo, env = _client_env(url)
    except ScratchError as e:
        raise ActionFailed(f"restore: {_common.redact(e)}") from None
    env["PGOPTIONS"] = f"-c lock_timeout={int(lock_timeout_s * 1000)}"
    env["PGCONNECT_TIMEOUT"] = "10"
    cmd = [
        psql,
        "-X",
        "--quiet",
        "--no-password",
        "--single-transaction",
        "-v",
        "ON_ERROR_STOP=1",
        "--dbname",
        conninfo,
        "-f",
        str(pre),
        "-f",
        str(script),
    ]
    try:
        done = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=max(60.0, sc.timeout_s),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ActionFailed("restore: psql did not finish in time (rolled back)") from None
    finally:
        for path in {rendered, script, pre}:
            with contextlib.suppress(OSError):
                path.unlink()
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if "error" in x.lower()] or [
            (done.stderr.strip().splitlines() or ["no output"])[-1]
        ]
        raise ActionFailed(f"restore failed and was rolled back: {_common.redact(lines[0])}")
    return time.monotonic() - t0
