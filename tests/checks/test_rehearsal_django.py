"""Django as a native migration tool: rehearsal, pending, lint and the sentinel, with a real
Django project (tests/data/migrations/django) migrated into the shared embedded PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from readyctl.checks.migrations._project import NOT_FOUND, find_migrator

from readyctl.config import Config, Environment
from readyctl.postgres import scratch
from readyctl.postgres.embedded import _pid_alive
from readyctl.rehearsal import RehearsalError
from readyctl.rehearsal.django import DjangoMigrator
from tests.helpers import make_context, results_of, run_checks, snapshot, statuses

pytest.importorskip("django")

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "migrations" / "django"
FIRST = "notes.0001_initial"
SOUND = "notes.0002_note_title_index"
BUGGY = "notes.0003_note_tags"
LEFTOVER_INDEX = "notes_note_created_idx"  # created by BUGGY's forward SQL, kept by its reverse
DEADLINE_S = 300  # a loaded 2-core machine: one Django process per step


# -- helpers --------------------------------------------------------------------------------------
def manage(url: str, *args: str, project: Path = FIXTURE) -> None:
    """Run the fixture's real manage.py against `url` (test setup only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["DATABASE_URL"] = scratch.libpq_url(url)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def django_db(shared_pg) -> Iterator[Callable[[str | None], str]]:  # type: ignore[no-untyped-def]
    """Factory: a database migrated by the fixture's manage.py up to a notes migration (None:
    all of them), with a few rows."""
    made: list[str] = []

    def make(upto: str | None) -> str:
        name = f"dj_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        url = shared_pg.create_database(name)
        made.append(name)
        manage(url, "migrate", "notes", *([upto] if upto else []))
        with psycopg.connect(scratch.libpq_url(url)) as conn:
            for i in range(5):
                conn.execute(
                    "INSERT INTO notes_note (title, body, created_at) VALUES (%s, %s, now())",
                    (f"note {i}", "body"),
                )
        return url

    yield make
    for name in made:
        shared_pg.drop_database(name)


@pytest.fixture
def scratch_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record every scratch server started during the test; assert each is gone afterwards."""
    made: list[Any] = []
    original = scratch.ScratchServer.start

    def start(self: scratch.ScratchServer) -> scratch.ScratchServer:
        out = original(self)
        made.append((self, self.pid, self.data_dir))
        return out

    monkeypatch.setattr(scratch.ScratchServer, "start", start)
    yield made
    for srv, pid, data_dir in made:
        assert not srv.running
        assert pid is not None and not _pid_alive(pid), "a scratch postmaster is left running"
        assert data_dir is not None and not Path(data_dir).exists(), "a scratch data dir is left"


def ctx_for(url: str | None, base_dir: Path, **settings: Any) -> Any:
    """A production context on `url` with migrations.rehearsal settings."""
    cfg = Config(checks={"migrations.rehearsal": settings}) if settings else Config()
    return make_context(
        config=cfg,
        environment=Environment(database_url=url, production=True),
        base_dir=base_dir,
    )


def django_settings(project: Path = FIXTURE, **more: Any) -> dict[str, Any]:
    """Settings naming the fixture project explicitly."""
    return {"tool": "django", "manage_py": str(project / "manage.py"), **more}


def applied_on(url: str) -> list[str]:
    """django_migrations of `url`, as app.name."""
    with psycopg.connect(scratch.libpq_url(url)) as conn:
        rows = conn.execute("SELECT app, name FROM django_migrations").fetchall()
    return sorted(f"{a}.{n}" for a, n in rows)


def assert_untouched(before: tuple[Any, ...], url: str) -> None:
    """Schema, every row (django_migrations' too) and the server's databases are unchanged."""
    after = snapshot(url)
    assert after[0] == before[0], "the target's schema changed"
    assert after[1] == before[1], "the target's rows changed (django_migrations included)"
    assert after[3] == before[3], "databases were created or dropped on the target's server"


# -- rehearsal -------------------------------------------------------------------------------------
def test_pending_sound_migration_passes_and_the_forgetful_reverse_sql_fails(
    django_db, tmp_path: Path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url = django_db("0001_initial")
    before = snapshot(url)
    out = run_checks(
        ctx_for(url, tmp_path, **django_settings()),
        only=["migrations.rehearsal"],
        deadline_s=DEADLINE_S,
    )
    res = results_of(out, "migrations.rehearsal")
    assert statuses(out, "migrations.rehearsal") == {SOUND: "pass", BUGGY: "fail"}, {
        k: r.summary for k, r in res.items()
    }
    bad = res[BUGGY]
    assert "the downgrade does not restore the schema" in bad.summary
    assert LEFTOVER_INDEX in bad.summary
    assert bad.evidence["failed_step"] == "down"
    assert bad.evidence["tool"] == "django"
    assert bad.evidence["mode"] == "pending revisions"
    assert bad.evidence["source_revision"] == [FIRST]
    assert "restored the schema exactly" in res[SOUND].summary
    assert len(scratch_servers) == 1
    assert_untouched(before, url)
    assert applied_on(url) == [FIRST]


def test_all_applied_last_mode_finds_the_forgetful_reverse_sql(
    django_db, tmp_path: Path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url = django_db(None)
    before = snapshot(url)
    out = run_checks(
        ctx_for(url, tmp_path, **django_settings(last=2)),
        only=["migrations.rehearsal"],
        deadline_s=DEADLINE_S,
    )
    res = results_of(out, "migrations.rehearsal")
    assert statuses(out, "migrations.rehearsal") == {SOUND: "pass", BUGGY: "fail"}, {
        k: r.summary for k, r in res.items()
    }
    # walked down, the leftover index makes the buggy migration's upgrade fail again
    assert LEFTOVER_INDEX in res[BUGGY].summary
    assert res[BUGGY].evidence["mode"] == "last 2 revisions"
    assert_untouched(before, url)
    assert applied_on(url) == [FIRST, SOUND, BUGGY]


def test_settings_with_a_hard_coded_target_still_rehearse_on_scratch(
    django_db, tmp_path: Path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    """The shim points DATABASES at the URL readyctl passes, whatever the settings say."""
    url = django_db("0002_note_title_index")
    other = django_db(None)  # another database, at a different state than the target
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "notesite" / "settings_fixed.py").write_text(
        "from notesite.settings import *  # noqa: F403\n"
        "from notesite.settings import database_from_url\n\n"
        f"DATABASES = {{'default': database_from_url({scratch.libpq_url(url)!r})}}\n"
    )
    migrator = find_migrator(
        ctx_for(
            url, tmp_path, **django_settings(project, settings_module="notesite.settings_fixed")
        )
    )
    assert isinstance(migrator, DjangoMigrator)
    # Django's own connection reads the database it is handed, not the hard-coded target
    reading = migrator.tool_current(other, 120)
    assert reading.ok and reading.said.split() == [FIRST, SOUND, BUGGY], reading
    before = snapshot(url)
    out = run_checks(
        ctx_for(
            url, tmp_path, **django_settings(project, settings_module="notesite.settings_fixed")
        ),
        only=["migrations.rehearsal"],
        deadline_s=DEADLINE_S,
    )
    assert statuses(out, "migrations.rehearsal") == {BUGGY: "fail"}
    assert_untouched(before, url)
    assert applied_on(url) == [FIRST, SOUND]


# -- pending, auto-detection, lint -----------------------------------------------------------------
def test_pending_names_the_migration_behind_and_passes_at_head(django_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    behind = django_db("0002_note_title_index")
    out = run_checks(ctx_for(behind, tmp_path, **django_settings()), only=["migrations.pending"])
    res = results_of(out, "migrations.pending")
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "fail"}
    assert BUGGY in res["revision"].summary and "1 revision(s) pending" in res["revision"].summary
    assert res["revision"].evidence["pending"] == [BUGGY]
    head = django_db(None)
    out = run_checks(ctx_for(head, tmp_path, **django_settings()), only=["migrations.pending"])
    assert statuses(out, "migrations.pending") == {"heads": "pass", "revision": "pass"}
    assert BUGGY in results_of(out, "migrations.pending")["heads"].summary


def test_manage_py_is_detected_without_settings(django_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = django_db("0001_initial")
    ctx = ctx_for(url, FIXTURE)  # no checks settings at all: manage.py at the base directory
    migrator = find_migrator(ctx)
    assert isinstance(migrator, DjangoMigrator)
    assert migrator.settings_module == "notesite.settings"  # read from manage.py
    out = run_checks(ctx, only=["migrations.pending"])
    res = results_of(out, "migrations.pending")["revision"]
    assert res.status.value == "fail"
    assert res.evidence["pending"] == [SOUND, BUGGY]
    # a manage.py that is not Django's is not taken for one
    (tmp_path / "manage.py").write_text("print('hello')\n")
    assert find_migrator(ctx_for(url, tmp_path)) == NOT_FOUND


def test_missing_manage_py_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(RehearsalError, match=r"manage\.py .* does not exist") as e:
        find_migrator(ctx_for(None, tmp_path, tool="django", manage_py="nowhere/manage.py"))
    assert "\n" not in str(e.value)


def test_lint_renders_pending_migrations_offline_and_flags_blocking_indexes(
    django_db, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = django_db("0001_initial")
    before = snapshot(url)
    out = run_checks(ctx_for(url, tmp_path, **django_settings()), only=["migrations.lint"])
    res = results_of(out, "migrations.lint")
    assert statuses(out, "migrations.lint") == {SOUND: "fail", BUGGY: "fail"}, {
        k: r.summary for k, r in res.items()
    }
    rules = {f["rule"] for f in res[SOUND].evidence["findings"]}
    assert "index-not-concurrent" in rules
    assert any(
        f["rule"] == "index-not-concurrent" and LEFTOVER_INDEX in f["statement"]
        for f in res[BUGGY].evidence["findings"]
    )
    assert "notes_note" in res[SOUND].summary
    assert_untouched(before, url)


def test_an_interpreter_without_django_is_an_error_naming_the_python_setting(
    tmp_path: Path,
) -> None:
    bare = shutil.which("python3", path="/usr/bin")
    if (
        bare is None
        or subprocess.run([bare, "-c", "import django"], capture_output=True).returncode == 0
    ):
        pytest.skip("needs a python3 without Django")
    ctx = ctx_for(None, tmp_path, **django_settings(python=bare))
    migrator = find_migrator(ctx)
    assert isinstance(migrator, DjangoMigrator)
    with pytest.raises(RehearsalError) as e:
        migrator.plan(())
    message = str(e.value)
    assert "No module named 'django'" in message
    assert "set checks.migrations.rehearsal.python" in message
    assert "\n" not in message


def test_settings_needing_a_variable_name_the_env_setting(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "notesite" / "settings_strict.py").write_text(
        "import os\n\nfrom notesite.settings import *  # noqa: F403\n\n"
        "SECRET_KEY = os.environ['NOTES_SECRET_KEY']\n"
    )
    settings = django_settings(project, settings_module="notesite.settings_strict")
    with pytest.raises(RehearsalError, match=r"KeyError: 'NOTES_SECRET_KEY'.*\.env"):
        find_migrator(ctx_for(None, tmp_path, **settings)).plan(())
    # given through env:, the sealed environment passes it
    settings["env"] = {"NOTES_SECRET_KEY": "x" * 8}
    plan = find_migrator(ctx_for(None, tmp_path, **settings)).plan(())
    assert plan["pending"] == [FIRST, SOUND, BUGGY]


def test_a_step_that_does_not_move_django_migrations_stops_the_rehearsal(
    django_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A step whose migration ran elsewhere (here: nowhere) is caught by reading the URL's
    django_migrations afterwards, whatever the engine checks."""
    url = django_db("0001_initial")
    migrator = find_migrator(ctx_for(url, tmp_path, **django_settings()))
    assert isinstance(migrator, DjangoMigrator)
    monkeypatch.setattr(migrator, "_call", lambda *a, **k: {})
    with pytest.raises(RehearsalError, match=r"upgrade of notes\.0002_note_title_index did not"):
        migrator.upgrade(url, SOUND, 60)
    with pytest.raises(RehearsalError, match=r"downgrade of notes\.0001_initial did not"):
        migrator.downgrade(url, FIRST, 60)
    assert migrator.current(url) == (FIRST,)


BACKFILL = '''"""A data migration without reverse_code: Django cannot unapply it."""

from django.db import migrations


def backfill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:  # readyctl's session options reach Django
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "4s", "lock_timeout_s did not reach the connection"
    apps.get_model("notes", "Note").objects.filter(body="").update(body="(empty)")


class Migration(migrations.Migration):
    dependencies = [("notes", "0003_note_tags")]
    operations = [migrations.RunPython(backfill)]
'''


def test_a_migration_without_reverse_code_is_irreversible_with_a_remedy(
    django_db, tmp_path: Path, scratch_servers
) -> None:  # type: ignore[no-untyped-def]
    url = django_db(None)
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "notes" / "migrations" / "0004_backfill.py").write_text(BACKFILL)
    ctx = ctx_for(url, tmp_path, **django_settings(project, lock_timeout_s=4))
    migrator = find_migrator(ctx)
    assert isinstance(migrator, DjangoMigrator)
    assert migrator.reversible(BUGGY) and not migrator.reversible("notes.0004_backfill")
    before = snapshot(url)
    out = run_checks(ctx, only=["migrations.rehearsal"], deadline_s=DEADLINE_S)
    res = results_of(out, "migrations.rehearsal")["notes.0004_backfill"]
    assert res.status.value == "warn", res.summary
    assert "irreversible" in res.summary
    assert "reverse_code" in res.evidence["remedy"]
    assert_untouched(before, url)
