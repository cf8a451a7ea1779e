"""`readyctl config migrate`: what changed between config versions, and the version bump."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from readyctl.cli._common import CONFIG_OPT

config_app = typer.Typer(help="The readyctl.yaml format: migrate between versions.")


def register(app: typer.Typer) -> None:
    """Add the `config` command group."""
    app.add_typer(config_app, name="config")


# What version 2 changed, as (key path, applies when the file does not set it, message).
CHANGES_V2 = (
    (
        ("gate", "block_on"),
        "gate.block_on now defaults to high (was critical): a failed high check now blocks. "
        "To keep version 1's gate, set `gate: {block_on: critical}`.",
    ),
    (
        ("gate", "require"),
        "new gate.require (default high): a critical or high checklist item that nothing "
        "verified makes the verdict INCONCLUSIVE (exit 3), whatever the score. To keep "
        "version 1's gate, set `gate: {require: none}`; or declare items under "
        "`not_applicable:` with a reason and an owner.",
    ),
)
ALWAYS_V2 = (
    "checks: settings are typed: an unknown key or a bad value is a config error (exit 2) "
    "naming the closest valid key (`readyctl explain ID` lists them).",
    "readyctl smoke, load, db rehearse|lint|restore-drill and env validate exit 1 on any "
    "failure of their own checks and 3 when nothing could be verified (db rehearse with "
    "nothing to rehearse was 1).",
    "--base-url, --env-file, --database-url, --alembic-config and READYCTL_* variables beat "
    "readyctl.yaml, and an explicit target means the managed demo is not started.",
)


def _has(raw: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(raw, dict) or part not in raw:
            return False
        raw = raw[part]
    return True


def _bump(text: str) -> str:
    """The file's text with `version: 2` (comments and layout kept)."""
    pattern = re.compile(r"^version:\s*['\"]?1['\"]?\s*(#.*)?$", re.M)
    if pattern.search(text):
        return pattern.sub(lambda m: "version: 2" + (f"  {m.group(1)}" if m.group(1) else ""), text)
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        i += 1
    return "".join([*lines[:i], "version: 2\n", *lines[i:]])


@config_app.command(
    "migrate",
    help=(
        "Say what changed for this readyctl.yaml since its version, list settings the new "
        "version refuses (with the closest valid key), and with --write set `version: 2` "
        "(comments kept; nothing else is rewritten).\n\n"
        "Examples:\n\n  readyctl config migrate\n\n"
        "  readyctl config migrate --config deploy/readyctl.yaml --write\n\n"
        "Exit codes: 0 the file is valid under the current version; 1 it has settings to "
        "fix first; 2 usage or config error; 4 internal error (a bug in readyctl)."
    ),
)
def migrate(
    config: Path | None = CONFIG_OPT,
    write: bool = typer.Option(False, "--write", help="Set `version: 2` in the file."),
) -> None:
    from readyctl.cli._run import validate_check_settings
    from readyctl.config import CONFIG_VERSION, DEFAULT_CONFIG_NAME, _parse_yaml, load_config
    from readyctl.errors import ConfigError
    from readyctl.registry import load_catalog

    path = config or Path(DEFAULT_CONFIG_NAME)
    if not path.is_file():
        typer.echo(f"error: {path}: no such config file; pass --config FILE", err=True)
        raise typer.Exit(2)
    try:
        loaded = load_config(path, environ=_lenient_environ())
        _, raw = _parse_yaml(path)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    version = loaded.config.version
    problems: list[str] = []
    catalog = load_catalog()
    remaining = dict(loaded.config.checks)
    # every settings problem, not only the first
    while True:
        cfg = loaded.config.model_copy(update={"checks": remaining})
        try:
            validate_check_settings(loaded, cfg, catalog)
            break
        except ConfigError as e:
            problems.append(str(e).split(" (this config is version 1")[0])
            bad = next(
                (cid for cid in remaining if f"checks.{cid}" in str(e)), next(iter(remaining))
            )
            remaining = {k: v for k, v in remaining.items() if k != bad}
    if version >= CONFIG_VERSION:
        typer.echo(f"{path}: already version {version}.")
    else:
        typer.echo(f"{path}: version {version} -> {CONFIG_VERSION}. What changes for this file:")
        for key_path, message in CHANGES_V2:
            if not _has(raw, key_path):
                typer.echo(f"  - {message}")
        for message in ALWAYS_V2:
            typer.echo(f"  - {message}")
    for name, env in loaded.config.environments.items():
        if env.auth is not None:
            typer.echo(
                f"  - environments.{name}.auth is deprecated (still read); in "
                f"environments.{name}, replace it with:\n" + _indent(_auth_as_api(env.auth), 6)
            )
    if problems:
        typer.echo("Fix these settings first:")
        for p in problems:
            typer.echo(f"  - {p}")
    if write and version < CONFIG_VERSION:
        text = path.read_text(encoding="utf-8")
        path.write_text(_bump(text), encoding="utf-8")
        typer.echo(f"wrote version: {CONFIG_VERSION} to {path}")
    raise typer.Exit(1 if problems else 0)


def _auth_as_api(auth: Any) -> str:
    """The old `auth:` block as the `api:` YAML that replaces it."""
    import yaml

    from readyctl.apimap import from_deprecated_auth

    api = from_deprecated_auth(auth)
    data = api.model_dump(exclude_none=True, exclude_defaults=True, by_alias=True) if api else {}
    return yaml.safe_dump({"api": data}, sort_keys=False).rstrip()


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _lenient_environ() -> dict[str, str]:
    """The process environment where every `${VAR}` resolves (migrate reads, never runs)."""
    import os

    class _Any(dict):  # type: ignore[type-arg]
        def get(self, key: str, default: Any = None) -> Any:
            return os.environ.get(key, "http://placeholder.invalid")

    return _Any()
