"""`readyctl init --check`: where an existing readyctl.yaml and the project disagree."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from readyctl.init.detect import MigrationTool, Project

UNSET = "http://unset.invalid"  # stands in for a ${VAR} with no value and no default
_UNSET_VAR = re.compile(r"environment variable (\w+) is not set")
# words a `commands:` string holds when it runs this tool
TOOL_WORDS = {
    "alembic": ("alembic",),
    "django": ("manage.py", "django-admin"),
    "prisma": ("prisma",),
    "typeorm": ("typeorm",),
    "knex": ("knex",),
    "flyway": ("flyway",),
    "rails": ("rails", "rake"),
}


@dataclasses.dataclass
class Section:
    """One thing compared: a headline and its disagreements."""

    name: str
    summary: str
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def load_lenient(path: Path, environ: Mapping[str, str]) -> Any:
    """The config, a ${VAR} that is unset and has no default reading as an `.invalid` URL."""
    from readyctl.config import load_config
    from readyctl.errors import ConfigError

    env = dict(environ)
    for _ in range(200):
        try:
            return load_config(path, environ=env)
        except ConfigError as e:
            m = _UNSET_VAR.search(str(e))
            if m is None or m.group(1) in env:
                raise
            env[m.group(1)] = UNSET
    return load_config(path, environ=env)


def is_placeholder(url: str | None) -> bool:
    """A base URL that names no real host (unset, or a reserved .invalid one)."""
    if not url:
        return True
    host = urlsplit(url).hostname or ""
    return host == "invalid" or host.endswith(".invalid")


def _merged_project_settings(checks: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        checks.get(cid) or {}
        for cid in ("migrations.rehearsal", "migrations.lint", "migrations.pending")
    ]


def tool_configured(t: MigrationTool, checks: Mapping[str, Mapping[str, Any]], base: Path) -> bool:
    """Whether the config's migration settings run this tool."""
    layers = _merged_project_settings(checks)
    words = TOOL_WORDS.get(t.tool, (t.tool,))
    for s in layers:
        if s.get("tool") == t.tool:
            return True
        cmds = s.get("commands")
        if isinstance(cmds, Mapping):
            text = " ".join(str(v) for v in cmds.values())
            if any(w in text for w in words):
                return True
        if t.sql_glob and s.get("sql_files"):
            return True
        if t.tool == "alembic" and s.get("alembic_config"):
            configured = (base / str(s["alembic_config"])).resolve()
            if t.config_file and configured == (base / t.config_file).resolve():
                return True
    if t.tool == "alembic" and t.config_file == "alembic.ini":
        # readyctl's default: ./alembic.ini beside the config, unless commands replace it
        return not any(s.get("commands") or s.get("alembic_config") for s in layers)
    return False


def compare_env(p: Project, cfg: Any, base: Path) -> Section:
    """The env example against env.required (and env.example_file)."""
    from readyctl import dotenv
    from readyctl.config import COUNSELING_REQUIRED

    env = cfg.env
    example_path: Path | None = None
    sec = Section("env example", "")
    if env.example_file:
        example_path = base / env.example_file
        if not example_path.is_file():
            sec.problems.append(
                f"env.example_file is {env.example_file}, which does not exist"
                + (f" (the project has {p.env_example.path})" if p.env_example else "")
            )
            example_path = None
    elif p.env_example is not None:
        example_path = p.root / p.env_example.path
    if example_path is None:
        sec.summary = "none found" if not sec.problems else "not read"
        return sec
    try:
        documented = list(dotenv.read(example_path, environ={}))
    except Exception as e:  # a broken example cannot be compared
        sec.summary = f"{example_path.name} could not be read ({type(e).__name__})"
        return sec
    if env.required is not None:
        required, origin = list(env.required), "env.required"
    elif env.preset == "counseling":
        required, origin = list(COUNSELING_REQUIRED), "the counseling preset"
    else:
        sec.summary = (
            f"{example_path.name}: {len(documented)} variables; env.required is not set, so "
            "readyctl requires what the example documents"
        )
        return sec
    sec.summary = (
        f"{example_path.name}: {len(documented)} variables; {origin} lists {len(required)}"
    )
    for name in documented:
        if name not in required:
            sec.problems.append(f"{name} is in {example_path.name} but not in {origin}")
    for name in required:
        if name not in documented:
            sec.problems.append(
                f"{origin} lists {name}, which {example_path.name} does not document"
            )
    return sec


def compare_migrations(p: Project, cfg: Any, base: Path) -> Section:
    """Each migration tool found against the config's migration settings."""
    checks = cfg.checks
    sec = Section("migrations", "")
    for s in _merged_project_settings(checks):
        ini = s.get("alembic_config")
        if ini and not (base / str(ini)).is_file():
            sec.problems.append(f"alembic_config is {ini}, which does not exist")
    if not p.migrations:
        sec.summary = "no migration tool found"
        return sec
    done = []
    for t in p.migrations:
        if tool_configured(t, checks, base):
            done.append(t.tool)
        else:
            sec.problems.append(
                f"found {t.words()}, which checks.migrations.rehearsal does not configure"
            )
    sec.summary = ", ".join(t.words() for t in p.migrations)
    if done:
        sec.summary += f"; configured: {', '.join(done)}"
    return sec


def compare_api(
    cfg: Any,
    base: Path,
    environ: Mapping[str, str],
    base_url: str | None,
    ca_bundle: Path | None,
    env_name: str,
) -> Section:
    """The configured routes against what discovery finds now (when a base URL is known)."""
    from readyctl.apimap import ApiConfig
    from readyctl.init.discover import (
        DEFAULT_PASSWORD_VAR,
        DEFAULT_USER_VAR,
        discover,
        route_differences,
    )

    sec = Section("API map", "")
    env = cfg.environments.get(env_name)
    url = base_url or (env.base_url if env is not None else None)
    if is_placeholder(url):
        sec.summary = (
            f"not compared: environments.{env_name}.base_url is not set here; pass --base-url "
            "URL (or set the variable it reads)"
        )
        return sec
    assert url is not None
    if ca_bundle is None and env is not None and env.ca_bundle and env.ca_bundle != UNSET:
        path = Path(os.path.expanduser(env.ca_bundle))
        ca_bundle = path if path.is_absolute() else base / path
        if not ca_bundle.is_file():
            sec.notes.append(f"the configured ca_bundle {env.ca_bundle} does not exist; not used")
            ca_bundle = None
    api: ApiConfig = (env.api if env is not None else None) or ApiConfig()
    login = api.login
    found = discover(
        url,
        ca_bundle=ca_bundle,
        root=base,
        environ=dict(environ),
        user_var=login.username_var if login else DEFAULT_USER_VAR,
        password_var=login.password_var if login else DEFAULT_PASSWORD_VAR,
    )
    if not found.answered or found.api_map is None:
        sec.summary = f"not compared: {url} did not answer ({found.problem})"
        return sec
    sec.problems = route_differences(api, found.api_map)
    n = len(found.values)
    sec.summary = f"compared with {url}: discovery finds {n} keys"
    if found.session:
        sec.notes.append(found.session)
    return sec
