"""Finding a project's migrations (alembic or commands) from check settings or the target."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from readyctl.context import Context
from readyctl.rehearsal import (
    AlembicMigrator,
    CommandMigrator,
    Migrator,
    RehearsalError,
    RehearsalSettings,
)

# The migration project is described once, under checks.migrations.rehearsal; lint and
# pending read the same keys there (their own settings win).
PROJECT_CHECK = "migrations.rehearsal"
NOT_FOUND = (
    "no migrations found: set checks.migrations.rehearsal.alembic_config (alembic.ini), or "
    "commands: {up, down, current} for another stack, or pass --alembic-config"
)


def project_settings(ctx: Context) -> dict[str, Any]:
    """The migration project's settings: migrations.rehearsal's, overlaid by this check's."""
    merged = ctx.settings(PROJECT_CHECK)
    if ctx.check_id and ctx.check_id != PROJECT_CHECK:
        merged.update(ctx.settings())
    return merged


def _command(value: Any, ctx: Context) -> list[str] | None:
    """A command given as a string or a list; a relative executable path is config-relative."""
    if value is None or value == "":
        return None
    parts = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    if parts and "/" in parts[0] and not Path(parts[0]).is_absolute():
        parts[0] = str(ctx.resolve(parts[0]))
    return parts


def rehearsal_settings(settings: dict[str, Any]) -> RehearsalSettings:
    """Timeouts, sample size and depth from check settings."""
    base = RehearsalSettings()
    extra = tuple(settings.get("exclude_tables", ()))
    return RehearsalSettings(
        last=int(settings.get("last", base.last)),
        sample_rows=int(settings.get("sample_rows", base.sample_rows)),
        lock_timeout_s=float(settings.get("lock_timeout_s", base.lock_timeout_s)),
        statement_timeout_s=float(settings.get("statement_timeout_s", base.statement_timeout_s)),
        step_timeout_s=float(settings.get("step_timeout_s", base.step_timeout_s)),
        dump_timeout_s=float(settings.get("dump_timeout_s", base.dump_timeout_s)),
        exclude_tables=extra,
    )


def find_migrator(ctx: Context, session_options: dict[str, str] | None = None) -> Migrator | str:
    """The project's migrator, or a skip reason when no migrations can be found.

    Raises RehearsalError when the settings name something that does not exist.
    """
    s = project_settings(ctx)
    extra_env = {str(k): str(v) for k, v in (s.get("env") or {}).items()}
    cmds = s.get("commands")
    if cmds:
        missing = [k for k in ("up", "down", "current") if not cmds.get(k)]
        if missing:
            raise RehearsalError(f"commands: needs up, down and current (missing {missing})")
        cwd = str(ctx.resolve(str(cmds.get("cwd") or s.get("cwd") or ".")))
        return CommandMigrator(
            up=str(cmds["up"]),
            down=str(cmds["down"]),
            current_cmd=str(cmds["current"]),
            cwd=cwd,
            url_env=list(s.get("url_env") or ["DATABASE_URL"]),
            extra_env=extra_env,
            session_options=dict(session_options or {}),
        )
    ini: str | None = None
    if s.get("alembic_config"):
        path = ctx.resolve(str(s["alembic_config"]))
        if not path.is_file():
            raise RehearsalError(f"alembic_config {path} does not exist")
        ini = str(path)
    elif ctx.managed is not None and getattr(ctx.managed, "alembic_ini", ""):
        ini = str(ctx.managed.alembic_ini)
    elif (Path(ctx.base_dir) / "alembic.ini").is_file():
        ini = str(Path(ctx.base_dir) / "alembic.ini")
    if ini is None:
        return NOT_FOUND
    locations = s.get("version_locations")
    if isinstance(locations, str):
        locations = [locations]
    return AlembicMigrator(
        ini=ini,
        script_location=str(ctx.resolve(s["script_location"]))
        if s.get("script_location")
        else None,
        version_locations=[str(ctx.resolve(v)) for v in locations] if locations else None,
        python=_command(s.get("python"), ctx),
        url_env=list(s.get("url_env") or []),
        set_url=bool(s.get("set_sqlalchemy_url", True)),
        cwd=str(ctx.resolve(s["cwd"])) if s.get("cwd") else None,
        version_table=str(s.get("version_table", "alembic_version")),
        session_options=dict(session_options or {}),
        extra_env=extra_env,
    )
