"""`readyctl init` on four real-shaped projects: the right stack, migration tool and env rules,
and a config `readyctl check --plan` accepts unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from readyctl.dotenv import read as read_dotenv


def _init(readyctl: Any, root: Path) -> tuple[Any, dict[str, Any]]:
    run = readyctl("init", cwd=root)
    assert run.code == 0, run.both
    assert "Traceback" not in run.both
    return run, yaml.safe_load((root / "readyctl.yaml").read_text())


def _rules(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfg["env"]["rules"]


def _assert_env_from_example(cfg: dict[str, Any], root: Path) -> None:
    documented = list(read_dotenv(root / ".env.example", environ={}))
    assert cfg["env"]["example_file"] == ".env.example"
    assert cfg["env"]["required"] == documented


def _assert_plan_accepts(readyctl: Any, config: Path, tmp_path: Path, *env: str) -> None:
    for name in env or ("",):
        args = ["check", "--plan", "--config", str(config)]
        if name:
            args += ["--env", name]
        run = readyctl(*args, cwd=tmp_path)
        assert run.code == 0, (name, run.both)
        assert "nothing was contacted" in run.out


def test_fastapi_alembic(readyctl, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project("fastapi_alembic")
    venv_python = root / ".venv" / "bin" / "python"  # the project's own interpreter
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/sh\n")
    run, cfg = _init(readyctl, root)
    assert "FastAPI, SQLAlchemy, alembic (pyproject.toml)" in run.out
    assert "alembic: alembic.ini -> alembic/versions (2 migrations)" in run.out
    # env.py builds its URL from POSTGRES_* parts: said, with what to do
    text = " ".join(run.out.split())
    assert "builds its database URL from POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_SERVER" in text
    project_settings = cfg["checks"]["migrations.rehearsal"]
    assert project_settings["alembic_config"] == "alembic.ini"
    assert project_settings["python"] == ".venv/bin/python"
    assert "commands" not in project_settings
    # ... and the scratch copy reaches it through those same parts, never the target's
    assert project_settings["connection_env"] == {
        "user": "POSTGRES_USER",
        "password": "POSTGRES_PASSWORD",
        "host": "POSTGRES_SERVER",
        "port": "POSTGRES_PORT",
        "dbname": "POSTGRES_DB",
    }
    _assert_env_from_example(cfg, root)
    rules = _rules(cfg)
    assert rules["SECRET_KEY"] == {"secret": True}
    assert rules["POSTGRES_PASSWORD"] == {"secret": True}
    assert rules["POSTGRES_PORT"] == {"type": "int", "min": 1, "max": 65535}
    assert rules["EMAILS_FROM_EMAIL"] == {"type": "email"}
    assert rules["FRONTEND_URL"] == {"type": "url"}
    assert "POSTGRES_SERVER" not in rules
    assert cfg["env"]["production_vars"] == ["ENVIRONMENT"]
    assert cfg["env"]["public_url_vars"] == ["FRONTEND_URL"]
    # the pieces every project gets
    envs = cfg["environments"]
    assert cfg["version"] == 2 and cfg["default_environment"] == "staging"
    assert envs["staging"]["base_url"].startswith("${STAGING_BASE_URL:-")
    assert envs["staging"]["database_url"] == "${STAGING_DATABASE_URL:-}"
    assert envs["production"] == {
        **envs["production"],
        "extends": "staging",
        "production": True,
        "allow": ["smoke.*"],
    }
    assert envs["production"]["base_url"].startswith("${PRODUCTION_BASE_URL:-")
    # the workflow installs the project into the interpreter the config names
    workflow = (root / ".github" / "workflows" / "readyctl.yml").read_text()
    assert "uv venv .venv" in workflow and "--python .venv/bin/python -r pyproject.toml" in workflow
    _assert_plan_accepts(
        readyctl, root / "readyctl.yaml", tmp_path, "", "staging", "production", "ci"
    )


def test_nest_typeorm(readyctl, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project("nest_typeorm")
    run, cfg = _init(readyctl, root)
    assert "NestJS, TypeORM (package.json)" in run.out
    assert "typeorm: src/data-source.ts -> src/migrations (2 migrations)" in run.out
    assert "not needed (not a Python project)" in run.out
    # readyctl drives TypeORM itself, one migration per step, through the data source
    settings = cfg["checks"]["migrations.rehearsal"]
    assert settings["tool"] == "typeorm" and settings["data_source"] == "src/data-source.ts"
    assert "commands" not in settings
    assert "rehearses typeorm natively" in run.out
    _assert_env_from_example(cfg, root)
    rules = _rules(cfg)
    assert rules["DATABASE_URL"] == {"type": "postgres_dsn", "secret": True}
    assert rules["PORT"]["type"] == "int"
    assert rules["JWT_SECRET"]["secret"] is True
    assert rules["STRIPE_WEBHOOK_SECRET"]["secret"] is True
    assert rules["SUPPORT_EMAIL"] == {"type": "email"}
    assert cfg["env"]["production_vars"] == ["NODE_ENV"]
    workflow = (root / ".github" / "workflows" / "readyctl.yml").read_text()
    assert "actions/setup-node" in workflow and "run: npm install" in workflow
    _assert_plan_accepts(readyctl, root / "readyctl.yaml", tmp_path)


def test_django(readyctl, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project("django_app")
    run, cfg = _init(readyctl, root)
    assert "Django (requirements.txt)" in run.out
    assert "django: manage.py -> app/migrations (1 migration)" in run.out
    # no venv in the project and none active: said, and `python` from PATH is used
    assert "no .venv/ or venv/ in the project and no active venv" in " ".join(run.out.split())
    settings = cfg["checks"]["migrations.rehearsal"]
    assert settings["tool"] == "django" and settings["manage_py"] == "manage.py"
    assert "commands" not in settings and "python" not in settings
    # rows Django's post_migrate signals rewrite are not compared; settings.py demands a key
    assert settings["exclude_tables"] == ["django_content_type", "auth_permission"]
    assert settings["env"] == {"DJANGO_SECRET_KEY": "readyctl-rehearsal"}
    _assert_env_from_example(cfg, root)
    rules = _rules(cfg)
    assert rules["DATABASE_URL"] == {"type": "postgres_dsn", "secret": True}
    assert rules["DJANGO_SECRET_KEY"]["secret"] is True
    assert rules["DEFAULT_FROM_EMAIL"] == {"type": "email"}
    workflow = (root / ".github" / "workflows" / "readyctl.yml").read_text()
    assert "uv pip install --system -r requirements.txt" in workflow
    _assert_plan_accepts(readyctl, root / "readyctl.yaml", tmp_path)


def test_node_prisma(readyctl, project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project("node_prisma")
    run, cfg = _init(readyctl, root)
    assert "Express, Prisma (package.json)" in run.out
    assert "prisma: prisma/schema.prisma -> prisma/migrations (2 migrations)" in run.out
    assert "rehearses prisma natively" in " ".join(run.out.split())
    settings = cfg["checks"]["migrations.rehearsal"]
    # readyctl applies migration.sql and down.sql itself (the Prisma CLI needs a download)
    assert settings == {"tool": "prisma", "migrations_dir": "prisma/migrations"}
    text = (root / "readyctl.yaml").read_text()
    assert "down.sql" in text and "npx prisma" not in text
    _assert_env_from_example(cfg, root)
    rules = _rules(cfg)
    assert rules["DATABASE_URL"] == {"type": "postgres_dsn", "secret": True}
    assert rules["DIRECT_DATABASE_URL"] == {"type": "postgres_dsn", "secret": True}
    assert rules["WEB_APP_URL"] == {"type": "url"}
    assert rules["ADMIN_EMAIL"] == {"type": "email"}
    assert cfg["env"]["public_url_vars"] == ["WEB_APP_URL"]
    _assert_plan_accepts(readyctl, root / "readyctl.yaml", tmp_path)


@pytest.mark.parametrize("name", ["fastapi_alembic", "node_prisma"])
def test_written_config_says_where_secrets_come_from(readyctl, project, name: str) -> None:  # type: ignore[no-untyped-def]
    """Nothing secret or environment-specific is written literally: example values never are."""
    root = project(name)
    _init(readyctl, root)
    text = (root / "readyctl.yaml").read_text()
    secret = {n for n, r in yaml.safe_load(text)["env"]["rules"].items() if r.get("secret")}
    for name, value in read_dotenv(root / ".env.example", environ={}).items():
        if name in secret and value:
            assert value not in text, name
    assert "${STAGING_DATABASE_URL:-}" in text and "${PRODUCTION_DATABASE_URL:-}" in text
    assert "username_var: READYCTL_AUTH_USERNAME" in text
