"""Finding a project's migrations (alembic or commands) from check settings or the target."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from readyctl.check import CheckSettings
from readyctl.context import Context
from readyctl.rehearsal import (
    AlembicMigrator,
    CommandMigrator,
    Migrator,
    RehearsalError,
)

# The migration project is described once, under checks.migrations.rehearsal; lint and
# pending read the same keys there (their own settings win).
PROJECT_CHECK = "migrations.rehearsal"
NOT_FOUND = (
    "no migrations found: set checks.migrations.rehearsal.tool (alembic, typeorm, django, "
    "prisma) with its settings (alembic_config, data_source, manage_py, migrations_dir), or "
    "commands: {up, down, current} for another stack, or pass --alembic-config"
)
NATIVE_TOOLS = ("typeorm", "django", "prisma")  # modules of readyctl.rehearsal


class MigrationCommands(CheckSettings):
    """Migrations of another stack, through shell commands."""

    up: str = Field(description="apply one migration")
    down: str = Field(description="revert one migration")
    current: str = Field(description="print the current version")
    cwd: str | None = Field(None, description="directory the commands run in")


_VAR = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ConnectionEnv(CheckSettings):
    """Variables that receive the scratch server's connection parts (any subset)."""

    host: str | None = Field(None, pattern=_VAR, description="e.g. POSTGRES_SERVER, DB_HOST")
    port: str | None = Field(None, pattern=_VAR, description="e.g. POSTGRES_PORT, DB_PORT")
    user: str | None = Field(None, pattern=_VAR, description="e.g. POSTGRES_USER, DB_USER")
    password: str | None = Field(
        None, pattern=_VAR, description="e.g. POSTGRES_PASSWORD, DB_PASSWORD"
    )
    dbname: str | None = Field(None, pattern=_VAR, description="e.g. POSTGRES_DB, DB_NAME")

    def mapping(self) -> dict[str, str]:
        """part -> variable name, for the parts that are set."""
        return {k: v for k, v in self.model_dump().items() if v}


class ProjectSettings(CheckSettings):
    """The migration project (set under migrations.rehearsal; lint and pending read it there,
    and their own values of these keys win)."""

    tool: Literal["auto", "alembic", "typeorm", "django", "prisma", "commands"] = Field(
        "auto",
        description="the migration tool (auto: commands when set, else alembic.ini, else "
        "what the project's files show: a TypeORM data source, manage.py, prisma/migrations)",
    )
    node: str | tuple[str, ...] | None = Field(
        None, description='the Node.js command for TypeORM (default "node")'
    )
    data_source: str | None = Field(
        None,
        description="TypeORM: the file exporting the DataSource (.ts through ts-node, or "
        "compiled .js), e.g. src/data-source.ts",
    )
    manage_py: str | None = Field(None, description="Django: manage.py (default ./manage.py)")
    settings_module: str | None = Field(
        None, description="Django: DJANGO_SETTINGS_MODULE (default: what manage.py sets)"
    )
    migrations_dir: str | None = Field(
        None, description="Prisma: the migrations directory (default prisma/migrations)"
    )
    alembic_config: str | None = Field(
        None,
        description="the project's alembic.ini (default: the managed demo's, else ./alembic.ini)",
    )
    script_location: str | None = Field(None, description="alembic script_location override")
    version_locations: str | tuple[str, ...] | None = Field(
        None, description="alembic version_locations override"
    )
    version_table: str = Field("alembic_version", description="alembic's version table")
    python: str | tuple[str, ...] | None = Field(
        None,
        description='run alembic in the project\'s interpreter or command, e.g. ".venv/bin/python"'
        ' or "poetry run python"',
    )
    url_env: tuple[str, ...] | None = Field(
        None,
        description="variables that receive the scratch URL (commands: default DATABASE_URL)",
    )
    set_sqlalchemy_url: bool = Field(
        True, description="set sqlalchemy.url in alembic's config to the database's URL"
    )
    connection_env: ConnectionEnv | None = Field(
        None,
        description="variables that receive the scratch connection's parts, e.g. {host: "
        "POSTGRES_SERVER, port: POSTGRES_PORT, user: POSTGRES_USER, password: "
        "POSTGRES_PASSWORD, dbname: POSTGRES_DB} (alembic: implies a subprocess)",
    )
    cwd: str | None = Field(None, description="directory alembic (or the commands) run in")
    env: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="environment variables for the migrations, which get nothing else of "
        "readyctl's environment but PATH, HOME, locale, TZ, TMPDIR, VIRTUAL_ENV and NODE_*",
    )
    commands: MigrationCommands | None = Field(
        None, description="{up, down, current} shell commands for stacks other than alembic"
    )


def project_settings(ctx: Context) -> ProjectSettings:
    """The migration project's settings: migrations.rehearsal's, overlaid by this check's."""
    merged: ProjectSettings = ctx.settings(PROJECT_CHECK)
    if ctx.check_id and ctx.check_id != PROJECT_CHECK:
        own = ctx.settings()
        shared = set(ProjectSettings.model_fields)
        update = {k: getattr(own, k) for k in own.model_fields_set if k in shared}
        if update:
            merged = merged.model_copy(update=update)
    return merged


def _command(value: str | tuple[str, ...] | None, ctx: Context) -> list[str] | None:
    """A command given as a string or a list; a relative executable path is config-relative."""
    if value is None or value == "":
        return None
    parts = shlex.split(value) if isinstance(value, str) else list(value)
    if parts and "/" in parts[0] and not Path(parts[0]).is_absolute():
        parts[0] = str(ctx.resolve(parts[0]))
    return parts


def find_migrator(ctx: Context, session_options: dict[str, str] | None = None) -> Migrator | str:
    """The project's migrator, or a skip reason when no migrations can be found.

    Raises RehearsalError when the settings name something that does not exist.
    """
    s = project_settings(ctx)
    extra_env = {k: str(v) for k, v in s.env.items()}
    connection_env = s.connection_env.mapping() if s.connection_env else {}
    cmds = s.commands
    if s.tool == "commands" and not cmds:
        raise RehearsalError("tool: commands needs commands: {up, down, current}")
    tool = s.tool
    if tool == "auto" and not cmds and _alembic_ini(ctx, s) is None:
        tool = next((t for t in NATIVE_TOOLS if _tool_module(t).detect(ctx, s)), "auto")
    if tool in NATIVE_TOOLS:
        return _tool_module(tool).from_project(
            ctx,
            s,
            session_options=dict(session_options or {}),
            extra_env=extra_env,
            connection_env=connection_env,
        )
    if cmds and tool in ("auto", "commands"):
        missing = [k for k in ("up", "down", "current") if not getattr(cmds, k)]
        if missing:
            raise RehearsalError(f"commands: needs up, down and current (missing {missing})")
        cwd = str(ctx.resolve(cmds.cwd or s.cwd or "."))
        return CommandMigrator(
            up=cmds.up,
            down=cmds.down,
            current_cmd=cmds.current,
            cwd=cwd,
            url_env=list(s.url_env or ["DATABASE_URL"]),
            extra_env=extra_env,
            session_options=dict(session_options or {}),
            connection_env=connection_env,
        )
    ini = _alembic_ini(ctx, s)
    if ini is None:
        return NOT_FOUND
    locations = s.version_locations
    if isinstance(locations, str):
        locations = (locations,)
    return AlembicMigrator(
        ini=ini,
        script_location=str(ctx.resolve(s.script_location)) if s.script_location else None,
        version_locations=[str(ctx.resolve(v)) for v in locations] if locations else None,
        python=_command(s.python, ctx),
        url_env=list(s.url_env or []),
        set_url=s.set_sqlalchemy_url,
        cwd=str(ctx.resolve(s.cwd)) if s.cwd else None,
        version_table=s.version_table,
        session_options=dict(session_options or {}),
        extra_env=extra_env,
        connection_env=connection_env,
    )


def _alembic_ini(ctx: Context, s: ProjectSettings) -> str | None:
    """alembic.ini: the configured one (which must exist), the managed demo's, ./alembic.ini."""
    if s.alembic_config:
        path = ctx.resolve(s.alembic_config)
        if not path.is_file():
            raise RehearsalError(f"alembic_config {path} does not exist")
        return str(path)
    if ctx.managed is not None and getattr(ctx.managed, "alembic_ini", ""):
        return str(ctx.managed.alembic_ini)
    if s.tool in ("auto", "alembic") and (Path(ctx.base_dir) / "alembic.ini").is_file():
        return str(Path(ctx.base_dir) / "alembic.ini")
    return None


def _tool_module(tool: str) -> Any:
    """readyctl.rehearsal.<tool>: `detect(ctx, settings) -> bool` and `from_project(ctx,
    settings, *, session_options, extra_env, connection_env) -> Migrator | str` (a str is
    a skip reason)."""
    return importlib.import_module(f"readyctl.rehearsal.{tool}")
