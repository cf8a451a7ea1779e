"""Backup checks: the demo's backup faults, file and S3 locations (moto), RDS, restore drills."""

from __future__ import annotations

import datetime as dt
import glob
import gzip
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from readyctl.config import AwsConfig, Config, Environment
from readyctl.postgres import scratch
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

NOW = dt.datetime.now(dt.UTC)
CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "counsel-backups"


# -- fixtures and helpers --------------------------------------------------------------------
from tests.conftest import aws_client as _boto  # noqa: E402


def _ctx(
    checks: dict[str, dict[str, Any]],
    *,
    aws_url: str | None = None,
    now: dt.datetime | None = None,
    database_url: str | None = None,
    base_dir: Path | None = None,
) -> Any:
    env = Environment(
        aws=AwsConfig(region="us-east-1", endpoint_url=aws_url) if aws_url else None,
        database_url=database_url,
    )
    kw: dict[str, Any] = {"clock": (lambda: now)} if now is not None else {}
    return make_context(config=Config(checks=checks), environment=env, base_dir=base_dir, **kw)


def _pid_gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie awaiting its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _drill_dirs() -> set[str]:
    """The restore drill's temporary directories (dumps, downloads)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "readyctl-drill-*")))


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's drills write temp dirs where no other test (or xdist worker) does."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))


@pytest.fixture
def scratch_servers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int, Path]]:
    """Record every scratch server the checks start: (server, postmaster pid, instance dir)."""
    made: list[tuple[Any, int, Path]] = []
    real = scratch.ScratchServer

    class Recording(real):  # type: ignore[misc, valid-type]
        def start(self) -> Any:
            out = super().start()
            made.append((self, int(self.pid or 0), Path(str(self.data_dir))))
            return out

    monkeypatch.setattr(scratch, "ScratchServer", Recording)
    return made


def _assert_no_scratch_left(made: list[tuple[Any, int, Path]], expected: int) -> None:
    """Each recorded scratch server dropped its databases, stopped and deleted its files."""
    assert len(made) == expected
    for server, pid, data_dir in made:
        assert server.created() == []  # every scratch database was dropped
        assert not server.running
        assert pid and _pid_gone(pid)
        assert not data_dir.exists()


def _fingerprint(url: str) -> dict[str, Any]:
    """Schema, every table's rows (count and hash) and the server's database list."""
    with psycopg.connect(scratch.libpq_url(url), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        rows = {}
        for schema, table in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                "FROM {}.{} x"
            ).format(sql.Identifier(schema), sql.Identifier(table))
            rows[f"{schema}.{table}"] = tuple(conn.execute(query).fetchone() or ())
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, coalesce(column_default, ''), is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        databases = [
            r[0] for r in conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()
        ]
    return {"rows": rows, "columns": columns, "databases": databases}


def _texts(outcome: Any) -> str:
    return json.dumps(
        [[r.subject, r.summary, r.reason, dict(r.evidence)] for r in outcome.results], default=str
    )


# -- the demo: healthy, no-backup, stale-backup ----------------------------------------------
def test_healthy_demo_backups_green_and_drill_leaves_target_untouched(
    healthy_demo,  # type: ignore[no-untyped-def]
    scratch_servers: list[tuple[Any, int, Path]],
) -> None:
    before = _fingerprint(healthy_demo.database_url)
    dirs = _drill_dirs()
    out = run_checks(demo_context(healthy_demo), only=["backups.*"])
    assert statuses(out, "backups.freshness") == {"age": "pass", "size": "skip"}
    assert statuses(out, "backups.restore_drill") == {"restore": "pass", "tables": "pass"}
    assert statuses(out, "backups.s3_bucket") == {"bucket": "skip"}
    assert statuses(out, "backups.rds") == {"*": "skip"}
    drill = results_of(out, "backups.restore_drill")
    assert drill["restore"].evidence["backup"].startswith("file://")
    assert drill["restore"].score == 1.0  # far inside the 1 h RTO curve
    assert "all 10 tables" in drill["tables"].summary

    # the same drill from a fresh snapshot dump of the target
    cfg = Config(checks={"backups.restore_drill": {"source": "dump"}})
    out = run_checks(demo_context(healthy_demo, config=cfg), only=["backups.restore_drill"])
    drill = results_of(out, "backups.restore_drill")
    assert {s: r.status.value for s, r in drill.items()} == {"restore": "pass", "tables": "pass"}
    assert drill["restore"].evidence["source"] == "a pg_dump of the target"
    assert drill["tables"].evidence["compared_with"] == "the same snapshot"

    assert _fingerprint(healthy_demo.database_url) == before  # rows, schema, database list
    _assert_no_scratch_left(scratch_servers, expected=2)  # no scratch database or server left
    assert _drill_dirs() == dirs  # nor the dump


def test_backup_faults_turn_freshness_and_drill_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    none = faulty_demo("no-backup")
    stale = faulty_demo("stale-backup")
    only = ["backups.freshness", "backups.restore_drill"]
    out = run_checks(demo_context(none), only=only)
    assert statuses(out, "backups.freshness") == {"age": "fail"}
    assert "no backup found" in results_of(out, "backups.freshness")["age"].summary
    assert statuses(out, "backups.restore_drill") == {"restore": "fail", "tables": "blocked"}

    out = run_checks(demo_context(stale), only=only)
    age = results_of(out, "backups.freshness")["age"]
    assert age.status.value == "fail" and 71 < float(age.measured or 0) < 73
    assert age.threshold == 26
    # the 3-day-old backup still restores completely: the drill stays green
    assert statuses(out, "backups.restore_drill") == {"restore": "pass", "tables": "pass"}


# -- backups.freshness on file:// and s3:// --------------------------------------------------
def _write(path: Path, size: int, when: dt.datetime) -> None:
    path.write_bytes(b"x" * size)
    ts = when.timestamp()
    os.utime(path, (ts, ts))


def test_freshness_file_location_size_and_age(tmp_path: Path) -> None:
    loc = tmp_path / "backups"
    loc.mkdir()
    for i in range(5):
        _write(loc / f"app-{i}.dump", 10_000 + i, NOW - dt.timedelta(days=6 - i))
    _write(loc / "app-5.dump", 9_000, NOW - dt.timedelta(hours=2))
    _write(loc / "app-6.dump.tmp", 1, NOW)  # an unfinished upload never counts
    checks = {"backups.freshness": {"location": loc.as_uri()}}
    out = run_checks(_ctx(checks, now=NOW), only=["backups.freshness"])
    assert statuses(out, "backups.freshness") == {"age": "pass", "size": "pass"}

    _write(loc / "app-7.dump", 3_000, NOW - dt.timedelta(hours=1))  # truncated: 30% of median
    out = run_checks(_ctx(checks, now=NOW), only=["backups.freshness"])
    assert statuses(out, "backups.freshness") == {"age": "pass", "size": "fail"}
    assert "30%" in results_of(out, "backups.freshness")["size"].summary

    out = run_checks(_ctx(checks, now=NOW + dt.timedelta(hours=30)), only=["backups.freshness"])
    assert statuses(out, "backups.freshness")["age"] == "fail"
    gone = {"backups.freshness": {"location": (tmp_path / "nowhere").as_uri()}}
    out = run_checks(_ctx(gone, now=NOW), only=["backups.freshness"])
    res = results_of(out, "backups.freshness")["age"]
    assert res.status.value == "fail" and "does not exist" in res.summary
    relaxed = {"backups.freshness": {"location": str(loc), "rpo_hours": 48}}
    out = run_checks(_ctx(relaxed, now=NOW + dt.timedelta(hours=30)), only=["backups.freshness"])
    assert statuses(out, "backups.freshness")["age"] == "pass"


def test_freshness_s3_location(moto: str) -> None:
    s3 = _boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="other/ignored.dump", Body=b"x" * 10)
    for i in range(6):
        s3.put_object(Bucket=BUCKET, Key=f"db/app-{i}.dump", Body=b"x" * (1000 if i < 5 else 990))
    checks = {"backups.freshness": {"location": f"s3://{BUCKET}/db"}}
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.freshness"])
    assert statuses(out, "backups.freshness") == {"age": "pass", "size": "pass"}
    assert results_of(out, "backups.freshness")["age"].evidence["newest"] == "app-5.dump"

    later = _ctx(checks, aws_url=moto, now=NOW + dt.timedelta(days=3))
    out = run_checks(later, only=["backups.freshness"])
    assert statuses(out, "backups.freshness")["age"] == "fail"

    s3.put_object(Bucket=BUCKET, Key="db/app-6.dump", Body=b"")
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.freshness"])
    assert statuses(out, "backups.freshness")["size"] == "fail"

    missing = {"backups.freshness": {"location": "s3://no-such-bucket-here/db"}}
    out = run_checks(_ctx(missing, aws_url=moto), only=["backups.freshness"])
    res = results_of(out, "backups.freshness")["age"]
    assert res.status.value == "error" and "does not exist" in (res.reason or "")


def _denied_app() -> Any:
    """S3 that answers 403 AccessDenied to everything."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/xml")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def test_s3_403_is_an_error_with_a_reason_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    loc = {"location": f"s3://{BUCKET}/db"}
    checks = {"backups.freshness": loc, "backups.s3_bucket": loc}
    with serve(_denied_app()) as srv:
        out = run_checks(
            _ctx(checks, aws_url=srv.url), only=["backups.freshness", "backups.s3_bucket"]
        )
    age = results_of(out, "backups.freshness")["age"]
    assert age.status.value == "error" and "403" in (age.reason or "")
    assert "AccessDenied" in (age.reason or "")
    bucket = results_of(out, "backups.s3_bucket")
    assert {s: r.status.value for s, r in bucket.items()} == {
        f"s3://{BUCKET} versioning": "error",
        f"s3://{BUCKET} encryption": "error",
    }
    assert all("permission" in (r.reason or "") for r in bucket.values())


# -- backups.s3_bucket -----------------------------------------------------------------------
def test_s3_bucket_versioning_and_encryption(moto: str) -> None:
    s3 = _boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    checks = {"backups.freshness": {"location": f"s3://{BUCKET}/db/"}}
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.s3_bucket"])
    assert statuses(out, "backups.s3_bucket") == {
        f"s3://{BUCKET} versioning": "fail",
        f"s3://{BUCKET} encryption": "fail",
    }
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.s3_bucket"])
    assert statuses(out, "backups.s3_bucket") == {
        f"s3://{BUCKET} versioning": "pass",
        f"s3://{BUCKET} encryption": "pass",
    }
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.s3_bucket"])
    res = results_of(out, "backups.s3_bucket")[f"s3://{BUCKET} versioning"]
    assert res.status.value == "fail" and "suspended" in res.summary


# -- backups.rds -----------------------------------------------------------------------------
def _rds_instance(url: str, ident: str, retention: int, protected: bool) -> None:
    _boto(url, "rds").create_db_instance(
        DBInstanceIdentifier=ident,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="counsel",
        MasterUserPassword="Pw-" + "x9" * 8,
        AllocatedStorage=20,
        BackupRetentionPeriod=retention,
        DeletionProtection=protected,
    )


def test_rds_backups(moto: str) -> None:
    _rds_instance(moto, "counsel-prod", 14, True)
    _rds_instance(moto, "counsel-weak", 1, False)
    checks = {"backups.rds": {"instances": ["counsel-prod", "counsel-weak", "counsel-gone"]}}
    out = run_checks(_ctx(checks, aws_url=moto), only=["backups.rds"])
    assert statuses(out, "backups.rds") == {
        "counsel-prod retention": "pass",
        "counsel-prod restorable time": "pass",
        "counsel-prod deletion protection": "pass",
        "counsel-weak retention": "fail",
        "counsel-weak restorable time": "pass",
        "counsel-weak deletion protection": "fail",
        "counsel-gone": "fail",
    }
    later = _ctx(
        {"backups.rds": {"instance": "counsel-prod"}},
        aws_url=moto,
        now=NOW + dt.timedelta(minutes=45),
    )
    out = run_checks(later, only=["backups.rds"])
    res = results_of(out, "backups.rds")["counsel-prod restorable time"]
    assert res.status.value == "fail" and res.threshold == 10


def test_rds_skips_without_an_instance(moto: str) -> None:
    out = run_checks(_ctx({}, aws_url=moto), only=["backups.rds"])
    assert statuses(out, "backups.rds") == {"*": "skip"}


# -- backups.restore_drill on a target of our own --------------------------------------------
@pytest.fixture
def own_target(shared_pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A small database on the shared server with timestamps, a partitioned table, a view."""
    name = "drill_target_" + os.urandom(3).hex()
    url = shared_pg.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE note (id serial PRIMARY KEY, body text, "
            "created_at timestamptz NOT NULL, due date)"
        )
        conn.execute(
            "INSERT INTO note (body, created_at, due) SELECT 'n' || g, "
            "'2026-01-01T00:00:00Z'::timestamptz + g * interval '1 minute', "
            "'2026-02-01'::date + g FROM generate_series(1, 400) g"
        )
        conn.execute('CREATE SCHEMA "Audit"')
        conn.execute('CREATE TABLE "Audit"."Event Log" (id bigint, at timestamp)')
        conn.execute(
            """INSERT INTO "Audit"."Event Log" SELECT g, '2026-01-01'::timestamp + g * """
            """interval '1 hour' FROM generate_series(1, 50) g"""
        )
        conn.execute("CREATE VIEW recent AS SELECT * FROM note WHERE id > 300")
    try:
        yield url
    finally:
        shared_pg.drop_database(name)


def test_restore_drill_catches_incomplete_corrupt_and_slow_restores(
    own_target: str, tmp_path: Path, scratch_servers: list[tuple[Any, int, Path]]
) -> None:
    loc = tmp_path / "backups"
    loc.mkdir()
    scratch.dump_database(own_target, loc / "app-1.dump")
    before = _fingerprint(own_target)

    def drill(**settings: Any) -> dict[str, Any]:
        checks = {"backups.restore_drill": {"location": loc.as_uri(), **settings}}
        ctx = _ctx(checks, database_url=own_target, base_dir=tmp_path)
        return results_of(run_checks(ctx, only=["backups.restore_drill"]), "backups.restore_drill")

    got = drill()
    assert {s: r.status.value for s, r in got.items()} == {"restore": "pass", "tables": "pass"}
    assert "all 2 tables (450 rows)" in got["tables"].summary

    # the restore time is measured against the RTO
    got = drill(rto_seconds=0.001)
    assert got["restore"].status.value == "fail" and got["restore"].threshold == 0.001

    # rows written after the backup was taken are not a loss...
    with psycopg.connect(own_target, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO note (body, created_at) SELECT 'late', now() FROM generate_series(1, 200)"
        )
    got = drill()
    assert got["tables"].status.value == "pass", got["tables"].summary
    # ...but a backup that claims a later time and still lacks them lost data
    later = time.time() + 3600
    os.utime(loc / "app-1.dump", (later, later))
    got = drill()
    assert got["tables"].status.value == "fail"
    assert "public.note.created_at newest is" in got["tables"].summary
    assert "before the backup was taken" in got["tables"].summary
    # ...but a fresh snapshot dump of the same target matches exactly
    got = drill(source="dump")
    assert {s: r.status.value for s, r in got.items()} == {"restore": "pass", "tables": "pass"}

    # a truncated backup does not restore
    data = (loc / "app-1.dump").read_bytes()
    (loc / "app-2.dump").write_bytes(data[: len(data) // 2])
    _newer(loc / "app-2.dump", loc / "app-1.dump", 60)
    got = drill()
    assert got["restore"].status.value == "fail" and "pg_restore failed" in got["restore"].summary
    assert got["tables"].status.value == "blocked"

    # a gzip-compressed plain SQL backup restores through psql
    plain = subprocess.run(
        [scratch.pg_dump_path(18), "--format=plain", "--no-owner", "--dbname", own_target],
        capture_output=True,
        check=True,
    ).stdout
    with gzip.open(loc / "app-3.sql.gz", "wb") as fh:
        fh.write(plain)
    _newer(loc / "app-3.sql.gz", loc / "app-1.dump", 120)
    got = drill()
    assert {s: r.status.value for s, r in got.items()} == {"restore": "pass", "tables": "pass"}

    after = _fingerprint(own_target)
    assert after["columns"] == before["columns"]
    assert after["databases"] == before["databases"]  # nothing created on the target's server
    assert after["rows"]["Audit.Event Log"] == before["rows"]["Audit.Event Log"]
    assert after["rows"]["public.note"][0] == 600  # only the test's own insert changed it
    _assert_no_scratch_left(scratch_servers, expected=7)


def _newer(path: Path, than: Path, seconds: float) -> None:
    """Date `path` some seconds after `than`, so it is the newest backup."""
    later = than.stat().st_mtime + seconds
    os.utime(path, (later, later))


def test_restore_drill_reports_an_unreachable_source(
    tmp_path: Path, scratch_servers: list[tuple[Any, int, Path]]
) -> None:
    from readyctl.registry import load_catalog
    from tests.servers import free_port

    url = f"postgresql://u:pw-{os.urandom(4).hex()}@127.0.0.1:{free_port()}/x"
    ctx = _ctx({"backups.restore_drill": {"source": "dump"}}, database_url=url, base_dir=tmp_path)
    dirs = _drill_dirs()
    # through the runner, the database probe blocks the drill with one root cause
    out = run_checks(ctx, only=["backups.restore_drill"])
    res = results_of(out, "backups.restore_drill")["*"]
    assert res.status.value == "blocked" and "database.reachable" in (res.reason or "")
    assert scratch_servers == []
    # run on its own, the drill itself ends as an error with the reason, and cleans up
    check = load_catalog().checks["backups.restore_drill"]()
    results = list(check.run(ctx.for_check("backups.restore_drill", 60, None)))
    got = {r.subject: r for r in results}
    assert got["restore"].status.value == "error"
    assert "could not connect" in (got["restore"].reason or "")
    assert got["tables"].status.value == "blocked"
    assert "pw-" not in _texts_of(results)
    assert _drill_dirs() == dirs
    for server, pid, data_dir in scratch_servers:  # started alongside the dump, then removed
        assert not server.running and _pid_gone(pid) and not data_dir.exists()
    ctx.run_cleanups()


def test_restore_drill_without_read_rights_is_an_error_with_the_reason(
    own_target: str,
    shared_pg,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    role, password = "drill_reader_" + os.urandom(3).hex(), "Pw-" + os.urandom(6).hex()
    shared_pg.create_role(role, password)
    try:
        parts = scratch.url_parts(own_target)
        url = f"postgresql://{role}:{password}@{parts['host']}:{parts['port']}/{parts['dbname']}"
        for source in ("dump", "backup"):
            loc = tmp_path / source
            loc.mkdir()
            if source == "backup":
                scratch.dump_database(own_target, loc / "app.dump")
            checks = {"backups.restore_drill": {"source": source, "location": loc.as_uri()}}
            out = run_checks(
                _ctx(checks, database_url=url, base_dir=tmp_path), only=["backups.restore_drill"]
            )
            res = results_of(out, "backups.restore_drill")["restore"]
            assert res.status.value == "error", (source, res.summary)
            assert res.error_reason is not None and res.error_reason.value == "config"
            assert "permission denied" in (res.reason or ""), res.reason
            assert password not in _texts(out)
    finally:
        shared_pg.drop_role(role)


def _texts_of(results: list[Any]) -> str:
    return json.dumps([[r.subject, r.summary, r.reason, dict(r.evidence)] for r in results])


def test_stored_backup_row_rule() -> None:
    from readyctl.checks.backups._verify import TableFacts, compare

    src = {"t.big": TableFacts(100, {}), "t.small": TableFacts(10, {})}
    lost = compare(
        src,
        {"t.big": TableFacts(10, {}), "t.small": TableFacts(0, {})},
        exact=False,
        row_tolerance=0.5,
    )
    assert lost == ["t.big has 10 rows restored, 100 in the source (more than 50% fewer)"]
    fine = compare(
        src,
        {"t.big": TableFacts(60, {}), "t.small": TableFacts(0, {})},
        exact=False,
        row_tolerance=0.5,
    )
    assert fine == []
    assert compare(src, {"t.big": TableFacts(100, {})}, exact=True) == [
        "t.small is missing from the restore"
    ]
