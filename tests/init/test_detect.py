"""Repository detection on small hand-made layouts (in process: files only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readyctl.init.detect import detect, detect_interpreter, split_vars


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_requirements_pins_extras_and_a_gemfile(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "requirements/base.txt": "Flask[async]==3.0.3  # web\nSQLAlchemy>=2\n-r other.txt\n",
            "Gemfile": "source 'https://rubygems.org'\ngem 'rails', '~> 7.1'\ngem \"pg\"\n",
            "db/migrate/20240101000000_create_users.rb": "class CreateUsers; end\n",
        },
    )
    p = detect(root, environ={})
    assert p.stack.frameworks == ("Flask", "Rails")
    assert p.stack.libraries == ("SQLAlchemy",)
    assert p.stack.sources == ("requirements/base.txt", "Gemfile")
    assert [t.tool for t in p.migrations] == ["rails"]
    assert p.migrations[0].count == 1


def test_typeorm_glob_relative_to_the_data_source_and_env_parts(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "package.json": json.dumps(
                {"name": "svc", "type": "module", "dependencies": {"typeorm": "0.3"}}
            ),
            "src/db/ormconfig.ts": (
                "export default new DataSource({ type: 'postgres',\n"
                "  host: process.env.DB_HOST, port: Number(process.env.DB_PORT),\n"
                "  username: process.env['DB_USER'], password: process.env.DB_PASSWORD,\n"
                "  migrations: [__dirname + '/migrations/*{.ts,.js}'] });\n"
            ),
            "src/db/migrations/1-a.ts": "",
            "src/db/migrations/2-b.ts": "",
            "src/db/migrations/index.d.ts": "",
        },
    )
    (t,) = detect(root, environ={}).migrations
    assert (t.tool, t.config_file, t.location, t.count) == (
        "typeorm",
        "src/db/ormconfig.ts",
        "src/db/migrations",
        2,
    )
    assert t.part_vars == ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD") and not t.url_vars
    assert any("builds its database URL from DB_HOST" in n for n in t.notes)
    assert t.module_type == "module"


def test_knex_and_flyway(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "package.json": json.dumps({"dependencies": {"knex": "3", "express": "4"}}),
            "knexfile.js": "module.exports = { client: 'pg', connection: process.env.DATABASE_URL,"
            " migrations: { directory: './db/migrations' } };\n",
            "db/migrations/20240101_init.js": "",
            "conf/flyway.conf": "flyway.url=jdbc:postgresql://localhost/app\n"
            "flyway.locations=filesystem:../sql\n",
            "sql/V1__init.sql": "create table t (id int);\n",
            "sql/V2__more.sql": "alter table t add column x int;\n",
        },
    )
    p = detect(root, environ={})
    knex, flyway = p.migrations
    assert (knex.tool, knex.location, knex.count, knex.url_vars) == (
        "knex",
        "db/migrations",
        1,
        ("DATABASE_URL",),
    )
    assert (flyway.tool, flyway.location, flyway.count, flyway.sql_glob) == (
        "flyway",
        "sql",
        2,
        "sql/V*.sql",
    )
    assert p.stack.frameworks == ("Express",) and p.stack.libraries == ("Knex",)


def test_alembic_in_a_subdirectory_reading_a_url_variable(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pyproject.toml": "[tool.poetry]\nname = 'svc'\n[tool.poetry.dependencies]\n"
            "python = '^3.11'\nfastapi = '*'\nalembic = '*'\n",
            "backend/alembic.ini": "[alembic]\nscript_location = migrations\n",
            "backend/migrations/env.py": "import os\nurl = os.environ['SQLALCHEMY_DATABASE_URI']\n",
            "backend/migrations/versions/a1_init.py": "",
        },
    )
    p = detect(root, environ={})
    (t,) = p.migrations
    assert (t.config_file, t.location, t.count) == (
        "backend/alembic.ini",
        "backend/migrations/versions",
        1,
    )
    assert t.url_vars == ("SQLALCHEMY_DATABASE_URI",) and not t.notes
    assert p.name == "svc" and p.stack.frameworks == ("FastAPI",)


def test_env_example_names(tmp_path: Path) -> None:
    _write(tmp_path, {"env-example.txt": "A_URL=https://x.example\nB=1\n"})
    p = detect(tmp_path, environ={})
    assert p.env_example is not None and p.env_example.path == "env-example.txt"
    _write(tmp_path, {".env.sample": "C=1\n"})
    p = detect(tmp_path, environ={})
    assert p.env_example is not None and p.env_example.path == ".env.sample"
    assert p.env_example.values == {"C": "1"}


def test_example_values_are_not_interpolated_from_this_shell(tmp_path: Path) -> None:
    _write(tmp_path, {".env.example": "HOME_DIR=${HOME}\n"})
    p = detect(tmp_path, environ={"HOME": "/root"})
    assert p.env_example is not None and "/root" not in p.env_example.values["HOME_DIR"]


def test_interpreter_order(tmp_path: Path) -> None:
    assert detect_interpreter(tmp_path, {}).setting is None
    assert detect_interpreter(tmp_path, {"VIRTUAL_ENV": "/opt/venv"}).setting == "python"
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    assert detect_interpreter(tmp_path, {"VIRTUAL_ENV": "/opt/venv"}).setting == "venv/bin/python"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    assert detect_interpreter(tmp_path, {}).setting == ".venv/bin/python"


@pytest.mark.parametrize(
    ("names", "urls", "parts"),
    [
        (["DATABASE_URL", "DEBUG"], ("DATABASE_URL",), ()),
        (
            ["POSTGRES_USER", "POSTGRES_DB", "PGHOST"],
            (),
            ("POSTGRES_USER", "POSTGRES_DB", "PGHOST"),
        ),
        (["SENTRY_DSN", "DB_NAME"], ("SENTRY_DSN",), ("DB_NAME",)),
    ],
)
def test_split_vars(names: list[str], urls: tuple[str, ...], parts: tuple[str, ...]) -> None:
    assert split_vars(names) == (urls, parts)


def test_dependency_directories_are_not_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "node_modules/lib/manage.py": "",
            ".venv/lib/alembic.ini": "[alembic]\n",
            "package.json": "{}",
        },
    )
    assert detect(tmp_path, environ={}).migrations == ()
