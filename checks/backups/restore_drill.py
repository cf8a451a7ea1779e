"""backups.restore_drill: a backup restores into a scratch database, complete and within the RTO."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import gzip
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from readyctl.checks.backups._location import (
    BackupObject,
    LocationError,
    configured_location,
    fetch,
    list_backups,
)
from readyctl.checks.backups._verify import MAX_SHOWN, TableFacts, collect, compare

from readyctl import _proc
from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.postgres import scratch
from readyctl.redact import clip
from readyctl.result import Curve, ErrorReason, Result

BIG_DUMP = 8 * 1024 * 1024
CLEANUP_RESERVE_S = 10.0
BACKUP_TIME_SLACK = dt.timedelta(minutes=5)


class _Drill:
    """What one drill learned, filled in step by step."""

    def __init__(self) -> None:
        self.origin = ""
        self.path: Path | None = None
        self.size = 0
        self.fetch_s = 0.0
        self.dump_s = 0.0
        self.backup: BackupObject | None = None
        self.source: dict[str, TableFacts] = {}


class Settings(CheckSettings):
    """Settings of backups.restore_drill."""

    source: Literal["auto", "dump", "backup"] = Field(
        "auto",
        description="what to restore: auto (the newest backup when a location is known, else a "
        "fresh pg_dump), dump (always pg_dump the target) or backup",
    )
    location: str | None = Field(
        None,
        min_length=1,
        description="where backups are (default: checks.backups.freshness.location, or the "
        "managed demo's backup directory)",
    )
    pattern: str = Field("*", min_length=1, description="file-name glob of backups")
    rto_seconds: float = Field(
        3600.0, gt=0, description="restore time (download + pg_restore) must stay under this"
    )
    row_tolerance: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a stored backup's table of 20+ rows fails when it restored more than this "
        "share fewer rows than live",
    )
    jobs: int | None = Field(
        None,
        ge=1,
        description="pg_restore --jobs for custom-format archives (default: 1 under 8 MiB, "
        "else the CPU count up to 4)",
    )

    @field_validator("source", mode="before")
    @classmethod
    def _source_any_case(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class RestoreDrill(Check):
    """Restore a backup into a scratch PostgreSQL, compare every table with the source, time it.

    Nothing is written to the target: its database is read in one read-only
    REPEATABLE READ transaction (pg_dump imports the same snapshot, so the counts compared are
    exactly the dump's), and the restore happens on a scratch server readyctl starts and
    removes; the scratch database is always dropped.

    Settings (`checks: {backups.restore_drill: {...}}`):
    - `source`: `auto` (default: the newest backup of the backup location when one is known,
      else a fresh pg_dump), `dump` (always pg_dump the target) or `backup`.
    - `location`, `pattern`: where backups are (default: `checks.backups.freshness`'s
      settings, or the managed demo's backup directory).
    - `rto_seconds` (3600): restore time (download + pg_restore) must stay under this; the
      score follows a curve with 10% of the RTO scoring 0.9 and half of it 0.5.
    - `row_tolerance` (0.5): for a stored backup (older than the live source) a table of at
      least 20 rows fails when it restored more than this share fewer rows than live; newest
      timestamps may lag by the backup's age. A fresh dump must match exactly.
    - `jobs`: pg_restore --jobs for custom-format archives (default: 1 for archives under
      8 MiB, else the CPU count up to 4, as a real recovery would).
    """

    meta = CheckMeta(
        id="backups.restore_drill",
        title="Backup restores completely within the RTO",
        failure_title="Backup does not restore completely in time",
        description=(
            "A backup that was never restored is a hope, not a backup: the drill restores it "
            "into a scratch database, checks every table against the source and measures the "
            "restore against the recovery time objective. "
            "See https://www.postgresql.org/docs/current/app-pgrestore.html."
        ),
        remediation=RemediationSpec(
            text="Fix what broke the restore (the error names it), make sure the backup job "
            "dumps every schema and table, and restore-test backups on a schedule.",
            snippet="readyctl db restore-drill --env production",
            link="https://www.postgresql.org/docs/current/backup-dump.html",
        ),
        category=Category.BACKUPS,
        severity=Severity.CRITICAL,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=1800,
        tags=("backups", "database", "seed"),
        refs=("7",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Results `restore` (time against the RTO) and `tables` (row counts, timestamps)."""
        settings: Settings = ctx.settings()
        url = scratch.libpq_url(ctx.environment.database_url or "")
        ctx.redactor.add(ctx.environment.database_url)
        for secret in scratch.config_secrets(ctx.config):
            ctx.redactor.add(secret)
        mode = settings.source
        location = None
        if mode != "dump":
            location, _ = configured_location(ctx, settings.location)
            if mode == "backup" and not location:
                yield self.errored(
                    "restore",
                    ErrorReason.CONFIG,
                    "source is backup but no backup location is configured "
                    "(checks.backups.freshness.location)",
                )
                return
        rto = settings.rto_seconds
        tmp = Path(tempfile.mkdtemp(prefix="readyctl-drill-"))
        server = scratch.select(target_url=url, config=ctx.config, base_dir=ctx.base_dir)
        ctx.add_cleanup(server.close)
        ctx.add_cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scratch-start")
        starting = pool.submit(server.start)
        try:
            yield from self._drill(ctx, settings, url, location, rto, tmp, server, starting)
        finally:
            with contextlib.suppress(Exception):
                starting.result(timeout=60)
            pool.shutdown(wait=False)
            server.close()
            shutil.rmtree(tmp, ignore_errors=True)

    # -- steps ---------------------------------------------------------------------------------
    def _drill(
        self,
        ctx: Context,
        settings: Settings,
        url: str,
        location: str | None,
        rto: float,
        tmp: Path,
        server: scratch.ScratchServer,
        starting: concurrent.futures.Future[Any],
    ) -> Iterator[Result]:
        drill = _Drill()
        got = self._obtain(ctx, settings, url, location, tmp, drill)
        if isinstance(got, Result):
            yield got
            yield self.blocked("tables", "no backup could be restored")
            return
        try:
            starting.result(timeout=max(1.0, ctx.remaining()))
        except scratch.ScratchError as e:
            evidence = {"scratch_server": server.describe()}
            if server.target is not None:
                evidence["target_server"] = server.target_description()
            yield self.errored("restore", ErrorReason.CONFIG, str(e), evidence=evidence)
            yield self.blocked("tables", "the scratch server did not start")
            return
        assert drill.path is not None
        path = self._prepare(drill.path, tmp)
        auto_jobs = min(4, os.cpu_count() or 1) if drill.size > BIG_DUMP else 1
        jobs = settings.jobs or auto_jobs
        t0 = time.monotonic()
        try:
            db = server.create_database("drill")
        except scratch.ScratchError as e:
            yield self.errored("restore", ErrorReason.CONFIG, str(e))
            yield self.blocked("tables", "no scratch database could be created")
            return
        try:
            try:
                self._restore(ctx, server, db, path, jobs, tmp)
            except scratch.ScratchError as e:
                yield self.failed(
                    "restore",
                    f"restoring {drill.origin} failed: {e}",
                    evidence=self._evidence(drill, None, server),
                )
                yield self.blocked("tables", "the restore failed")
                return
            restore_s = time.monotonic() - t0
            restored = self._facts(ctx, db.url)
        finally:
            with contextlib.suppress(Exception):  # close() retries the drop and stops the server
                server.drop_database(db.name)
        total = round(drill.fetch_s + restore_s, 3)
        yield self.measure(
            "restore",
            total,
            curve=Curve(good=rto * 0.1, poor=rto * 0.5),
            fail_at=rto,
            warn_at=rto * 0.75,
            unit=" s",
            summary=f"{drill.origin} restored in {total:g} s (RTO {rto:g} s)",
            evidence=self._evidence(drill, restore_s, server),
        )
        yield self._tables(ctx, settings, drill, restored)

    def _obtain(
        self,
        ctx: Context,
        settings: Settings,
        url: str,
        location: str | None,
        tmp: Path,
        drill: _Drill,
    ) -> Result | None:
        """Fill drill.path and drill.source from the newest backup or a snapshot dump."""
        if location:
            try:
                backups = list_backups(ctx, location, pattern=settings.pattern)
            except LocationError as e:
                return self.errored("restore", e.reason, e.detail)
            if not backups:
                return self.failed("restore", f"no backup found in {location} to restore")
            drill.backup = backups[0]
            drill.origin = f"backup {drill.backup.name}"
            t0 = time.monotonic()
            try:
                drill.path = fetch(ctx, drill.backup, tmp)
            except LocationError as e:
                return self.errored("restore", e.reason, e.detail)
            drill.fetch_s = time.monotonic() - t0
            drill.size = drill.path.stat().st_size
            cutoff = drill.backup.modified - BACKUP_TIME_SLACK
            try:
                drill.source = self._source_facts(ctx, url, None, tmp, cutoff=cutoff)
            except _SourceError as e:
                return self.errored("restore", e.reason, e.detail)
            return None
        drill.origin = "a pg_dump of the target"
        try:
            drill.source = self._source_facts(ctx, url, drill, tmp)
        except _SourceError as e:
            return self.errored("restore", e.reason, e.detail)
        return None

    def _source_facts(
        self,
        ctx: Context,
        url: str,
        drill: _Drill | None,
        tmp: Path,
        cutoff: dt.datetime | None = None,
    ) -> dict[str, TableFacts]:
        """Read the target in one read-only snapshot; with `drill`, pg_dump that snapshot."""
        import psycopg

        try:
            conn = psycopg.connect(
                url,
                connect_timeout=max(1, int(ctx.timeout(10))),
                application_name="readyctl-restore-drill",
                options="-c default_transaction_read_only=on",
            )
        except psycopg.Error as e:
            raise _SourceError(
                ErrorReason.CONNECTIVITY, f"could not connect to the target database: {_first(e)}"
            ) from None
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                budget = max(1, int((ctx.remaining() - CLEANUP_RESERVE_S) * 1000))
                conn.execute(f"SET LOCAL statement_timeout = {budget}")
                conn.execute("SET LOCAL TIME ZONE 'UTC'")
                if drill is not None:
                    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
                    snapshot = str(row[0]) if row else ""
                    try:
                        dump = scratch.dump_database(
                            url,
                            tmp / "target.dump",
                            timeout_s=max(1.0, ctx.remaining() - CLEANUP_RESERVE_S),
                            extra_args=(f"--snapshot={snapshot}",),
                        )
                    except scratch.ScratchError as e:  # e.g. permission denied for a table
                        raise _SourceError(ErrorReason.CONFIG, str(e)) from None
                    drill.path, drill.size, drill.dump_s = dump.path, dump.size_bytes, dump.seconds
                return collect(conn, ctx.check_deadline, cutoff=cutoff)
        except psycopg.errors.InsufficientPrivilege as e:
            raise _SourceError(
                ErrorReason.CONFIG,
                f"readyctl's database user cannot read the target: {_first(e)}",
            ) from None
        except psycopg.Error as e:
            raise _SourceError(
                ErrorReason.CONNECTIVITY, f"reading the target database failed: {_first(e)}"
            ) from None
        finally:
            conn.close()

    def _prepare(self, path: Path, tmp: Path) -> Path:
        """A gzip-compressed backup is unpacked into tmp; anything else is used as it is."""
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            return path
        out = tmp / "backup.unpacked"
        with gzip.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return out

    def _restore(
        self,
        ctx: Context,
        server: scratch.ScratchServer,
        db: scratch.ScratchDatabase,
        path: Path,
        jobs: int,
        tmp: Path,
    ) -> None:
        """pg_restore an archive (custom or tar), or psql a plain SQL dump, into `db`.

        A newer pg_dump's plain SQL SETs settings an older scratch server does not know
        (transaction_timeout): a copy without them, in `tmp`, is restored instead.
        """
        timeout = max(1.0, ctx.remaining() - CLEANUP_RESERVE_S)
        with open(path, "rb") as fh:
            head = fh.read(512)
        if head.startswith(b"PGDMP"):
            server.restore_into(db, path, jobs=max(1, jobs), timeout_s=timeout)
            return
        if head[257:262] == b"ustar":
            server.restore_into(db, path, timeout_s=timeout)
            return
        path = scratch.without_newer_settings(path, tmp, server.major_version)
        _psql_file(server, db, path, timeout)

    def _facts(self, ctx: Context, url: str) -> dict[str, TableFacts]:
        """Facts of the restored scratch database."""
        import psycopg

        with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            return collect(conn, ctx.check_deadline)

    def _tables(
        self,
        ctx: Context,
        settings: Settings,
        drill: _Drill,
        restored: dict[str, TableFacts],
    ) -> Result:
        """Every source table's row count and newest timestamps, restored."""
        exact = drill.backup is None
        max_lag = None
        if drill.backup is not None:
            age = max(dt.timedelta(), ctx.now() - drill.backup.modified)
            max_lag = age + BACKUP_TIME_SLACK
        problems = compare(
            drill.source,
            restored,
            exact=exact,
            row_tolerance=settings.row_tolerance,
            max_lag=max_lag,
        )
        rows = sum(t.rows for t in drill.source.values())
        evidence: dict[str, Any] = {
            "tables": len(drill.source),
            "rows_in_source": rows,
            "compared_with": "the same snapshot" if exact else "the live source",
        }
        if problems:
            evidence["differences"] = problems[:MAX_SHOWN]
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            return self.failed(
                "tables",
                f"{len(problems)} difference(s) between {drill.origin} and the source: "
                f"{problems[0]}{more}",
                measured=len(problems),
                threshold=0,
                evidence=evidence,
            )
        if not drill.source:
            return self.failed(
                "tables", "the source has no tables, so the restore proves nothing", measured=0
            )
        return self.passed(
            "tables",
            f"all {len(drill.source)} tables ({rows} rows) match the source in row count and "
            "newest timestamps",
            measured=len(drill.source),
            evidence=evidence,
        )

    def _evidence(
        self, drill: _Drill, restore_s: float | None, server: scratch.ScratchServer
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"source": drill.origin, "size_bytes": drill.size}
        out["scratch_server"] = server.describe()  # kind, version, where (no credentials)
        out["target_server"] = server.target_description()
        if drill.backup is not None:
            out["backup"] = drill.backup.uri
            out["backup_modified"] = drill.backup.modified.isoformat()
            out["download_s"] = round(drill.fetch_s, 3)
        else:
            out["dump_s"] = round(drill.dump_s, 3)
        if restore_s is not None:
            out["restore_s"] = round(restore_s, 3)
        return out


class _SourceError(Exception):
    def __init__(self, reason: ErrorReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _first(exc: BaseException) -> str:
    """The first line of a driver error."""
    text = str(exc).strip().splitlines()
    return clip(text[0] if text else type(exc).__name__, 200)


def _psql_file(
    server: scratch.ScratchServer, db: scratch.ScratchDatabase, path: Path, timeout: float
) -> None:
    """Run a plain SQL dump with psql, stopping at the first error."""
    binary = scratch.psql_path()
    parts = scratch.url_parts(db.url)
    env = _proc.environ_copy("PG")
    env["PGPASSWORD"] = parts.pop("password", "")
    conninfo = " ".join(f"{k}='{v}'" for k, v in parts.items())
    cmd = [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(path)]
    try:
        proc = _proc.run(
            cmd, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise scratch.ScratchError(f"psql did not finish within {timeout:.0f} s") from None
    except _proc.ProcessesStopped as e:
        raise scratch.ScratchError(str(e)) from None
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.decode(errors="replace").splitlines() if x.strip()]
        raise scratch.ScratchError(f"psql failed: {clip((lines or ['no output'])[0], 300)}")
