"""Writing safely (--force, --dry-run, never overwriting), usage errors, and `init --check`."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(".github") / "workflows" / "readyctl.yml"


def _one_line_error(run: Any, *words: str) -> None:
    assert run.code == 2, run.both
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert "Traceback" not in run.both
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_refuses_to_overwrite_without_force(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("nest_typeorm")
    assert readyctl("init", cwd=root).code == 0
    (root / "readyctl.yaml").write_text("# mine\nversion: 2\n")
    before = (root / WORKFLOW).read_text()
    run = readyctl("init", cwd=root)
    _one_line_error(run, "readyctl.yaml", "--force")
    assert (root / "readyctl.yaml").read_text() == "# mine\nversion: 2\n"
    assert (root / WORKFLOW).read_text() == before


def test_refuses_when_only_the_workflow_exists(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("django_app")
    (root / WORKFLOW).parent.mkdir(parents=True)
    (root / WORKFLOW).write_text("name: ours\n")
    run = readyctl("init", cwd=root)
    _one_line_error(run, "readyctl.yml", "--force")
    assert not (root / "readyctl.yaml").exists()  # nothing half-written
    assert (root / WORKFLOW).read_text() == "name: ours\n"


def test_force_replaces_and_keeps_the_old_files(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("django_app")
    (root / "readyctl.yaml").write_text("# mine\nversion: 2\n")
    (root / WORKFLOW).parent.mkdir(parents=True)
    (root / WORKFLOW).write_text("name: ours\n")
    run = readyctl("init", "--force", cwd=root)
    assert run.code == 0, run.both
    assert yaml.safe_load((root / "readyctl.yaml").read_text())["version"] == 2
    assert (root / "readyctl.yaml.bak").read_text() == "# mine\nversion: 2\n"
    assert (root / WORKFLOW.with_name("readyctl.yml.bak")).read_text() == "name: ours\n"
    assert "readyctl.yaml.bak" in run.out
    # the deploy runbook is a copy of the packaged one; a team's own is never replaced
    book = yaml.safe_load((root / "runbooks" / "deploy.yaml").read_text())
    assert book["name"] == "deploy" and "deploy_command" in book["required_vars"]
    (root / "runbooks" / "deploy.yaml").write_text("name: ours\n")
    assert readyctl("init", "--force", cwd=root).code == 0
    assert (root / "runbooks" / "deploy.yaml").read_text() == "name: ours\n"
    assert not (root / "runbooks" / "deploy.yaml.bak").exists()


def test_dry_run_prints_and_writes_nothing(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("node_prisma")
    run = readyctl("init", "--dry-run", cwd=root)
    assert run.code == 0, run.both
    assert not (root / "readyctl.yaml").exists() and not (root / ".github").exists()
    assert "--- readyctl.yaml ---" in run.out and "version: 2" in run.out
    assert f"--- {WORKFLOW} ---" in run.out and "name: readyctl" in run.out
    assert "dry run: nothing written" in run.out
    # the printed config is the one init would write
    printed = run.out.split("--- readyctl.yaml ---\n", 1)[1].split("\n--- ", 1)[0]
    assert readyctl("init", cwd=root).code == 0
    assert (root / "readyctl.yaml").read_text().rstrip("\n") == printed.rstrip("\n")
    # with the files there, a dry run still writes nothing and says what --force would do
    again = readyctl("init", "--dry-run", cwd=root)
    assert again.code == 0 and "writing it needs --force" in again.out
    assert not (root / "readyctl.yaml.bak").exists()


def test_directory_argument(readyctl, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project("fastapi_alembic")
    run = readyctl("init", str(root), cwd=tmp_path)
    assert run.code == 0, run.both
    assert (root / "readyctl.yaml").is_file() and (root / WORKFLOW).is_file()
    assert not (tmp_path / "readyctl.yaml").exists()


def test_usage_errors_are_one_line_exit_2(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _one_line_error(readyctl("init", str(tmp_path / "nope")), "no such directory")
    _one_line_error(
        readyctl("init", "--base-url", "https://x.invalid", "--ca-bundle", "missing.pem"),
        "--ca-bundle",
    )
    _one_line_error(readyctl("init", "--base-url", "ftp://example.org"), "--base-url")
    _one_line_error(readyctl("init", "--check"), "readyctl.yaml", "readyctl init")
    _one_line_error(readyctl("init", "--check", "--force"), "--check")
    assert list(tmp_path.iterdir()) == []


def test_base_url_that_does_not_answer(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    run = readyctl("init", "--base-url", url)
    assert run.code == 0, run.both
    assert f"{url} did not answer" in run.out
    cfg = yaml.safe_load((tmp_path / "readyctl.yaml").read_text())
    api = cfg["environments"]["staging"]["api"]
    assert api == {
        "openapi": "auto",
        "login": {
            "username_var": "READYCTL_AUTH_USERNAME",
            "password_var": "READYCTL_AUTH_PASSWORD",
        },
    }
    assert "rerun with --base-url" in run.out
    assert readyctl("check", "--plan").code == 0


# -- init --check -------------------------------------------------------------------------------
def test_check_agrees_then_names_a_new_variable(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("fastapi_alembic")
    assert readyctl("init", cwd=root).code == 0
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 0, run.both
    assert "agrees with the project" in run.out
    with (root / ".env.example").open("a") as f:
        f.write("REDIS_URL=redis://localhost:6379/0\n")
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 1, run.both
    assert "REDIS_URL is in .env.example but not in env.required" in run.out
    assert "1 disagreement" in run.out
    # removing a documented variable is a disagreement too
    text = (root / ".env.example").read_text().replace("SENTRY_DSN=\n", "")
    (root / ".env.example").write_text(text)
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 1 and "env.required lists SENTRY_DSN" in run.out


def test_check_names_an_unconfigured_migration_tool(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    root = project("nest_typeorm")
    assert readyctl("init", cwd=root).code == 0
    assert readyctl("init", "--check", cwd=root).code == 0
    cfg = yaml.safe_load((root / "readyctl.yaml").read_text())
    del cfg["checks"]
    (root / "readyctl.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 1, run.both
    assert "found typeorm: src/data-source.ts" in run.out
    assert "does not configure" in run.out
    # a second tool appearing later (knex) is named as well
    assert readyctl("init", "--force", cwd=root).code == 0
    (root / "knexfile.js").write_text("module.exports = { client: 'pg' };\n")
    (root / "migrations").mkdir()
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 1 and "found knex: knexfile.js" in run.out


def test_check_reads_a_config_whose_variables_are_unset(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    """A hand-written config with `${VAR}`s that have no default still gets compared."""
    root = project("django_app")
    (root / "readyctl.yaml").write_text(
        "version: 2\n"
        "environments:\n"
        "  staging: {base_url: '${MY_URL}', database_url: '${MY_DB}'}\n"
        "env:\n"
        "  required: [DJANGO_SECRET_KEY, DATABASE_URL]\n"
    )
    run = readyctl("init", "--check", cwd=root)
    assert run.code == 1, run.both
    assert "DJANGO_DEBUG is in .env.example but not in env.required" in run.out
    assert "found django: manage.py" in run.out
    assert "not compared" in run.out
