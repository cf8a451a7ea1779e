"""Alembic helpers: the demo's ini, version locations per fault set, and the start upgrade."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from readyctl.demo.faults import MIGRATION_FAULTS, validate_faults
from readyctl.demo.releases import DEFAULT_RELEASE, validate_release

if TYPE_CHECKING:
    from alembic.config import Config

DEMO_DIR = Path(__file__).resolve().parent
INI_PATH = DEMO_DIR / "alembic.ini"
SCRIPT_LOCATION = DEMO_DIR / "migrations"
NORMAL_VERSIONS = SCRIPT_LOCATION / "versions"
FAULT_VERSIONS = SCRIPT_LOCATION / "faults"
RELEASE_VERSIONS = SCRIPT_LOCATION / "releases"
NORMAL_HEAD = "0004_billing"
# Fault revisions that start() leaves pending instead of applying.
PENDING_AT_START = {"unsafe-migration": "f0005_unsafe"}
FAULT_REVISIONS = {
    "irreversible-migration": "f0005_irreversible",
    "lossy-migration": "f0005_lossy",
    "unsafe-migration": "f0005_unsafe",
    "missing-index": "f0005_missing_index",
}


def fault_version_dir(fault: str) -> Path:
    """Return the version directory of a migration fault."""
    return FAULT_VERSIONS / fault.replace("-", "_")


def release_version_dir(release: str, faults: Iterable[str] = ()) -> Path | None:
    """Return the version directory of a release's own revisions (None for v1).

    Only that release's ini lists it, so v1 has nothing pending. Under the failing-migration
    fault v2's revision comes from a variant directory that fails half way.
    """
    release = validate_release(release)
    if release == DEFAULT_RELEASE:
        return None
    variant = "_failing_migration" if "failing-migration" in validate_faults(faults) else ""
    return RELEASE_VERSIONS / f"{release}{variant}"


def migrations_config(
    faults: Iterable[str] = (), release: str = DEFAULT_RELEASE
) -> tuple[str, list[str]]:
    """Return (alembic.ini path, version locations) for a fault set and a release."""
    chosen = validate_faults(faults)
    locations = [str(NORMAL_VERSIONS)]
    locations += [str(fault_version_dir(f)) for f in chosen if f in MIGRATION_FAULTS]
    extra = release_version_dir(release, chosen)
    if extra is not None:
        locations.append(str(extra))
    return str(INI_PATH), locations


def alembic_config(database_url: str | None = None, faults: Iterable[str] = ()) -> Config:
    """Return an alembic Config for the demo with the fault set's version locations."""
    from alembic.config import Config

    ini, locations = migrations_config(faults)
    cfg = Config(ini)
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def write_alembic_ini(
    path: str | os.PathLike[str], faults: Iterable[str] = (), release: str = DEFAULT_RELEASE
) -> str:
    """Write a standalone alembic.ini with absolute paths for `alembic -c` (URL from env).

    `release` adds that release's version location (v1, the default, adds none).
    """
    _, locations = migrations_config(faults, release)
    text = INI_PATH.read_text(encoding="utf-8")
    text = text.replace("%(here)s/migrations/versions", os.pathsep.join(locations), 1)
    text = text.replace("%(here)s/migrations", str(SCRIPT_LOCATION), 1)
    Path(path).write_text(text, encoding="utf-8")
    return str(path)


def start_targets(faults: Iterable[str]) -> list[str]:
    """Return the revisions start() upgrades to (pending fault revisions excluded)."""
    chosen = validate_faults(faults)
    targets = [NORMAL_HEAD]
    targets += [
        FAULT_REVISIONS[f] for f in chosen if f in FAULT_REVISIONS and f not in PENDING_AT_START
    ]
    return targets


def upgrade_for_start(database_url: str, faults: Iterable[str] = ()) -> list[str]:
    """Upgrade a fresh database as start() does; return the revisions it is left at."""
    from alembic import command

    chosen = validate_faults(faults)
    cfg = alembic_config(database_url, chosen)
    targets = start_targets(chosen)
    for rev in targets:
        command.upgrade(cfg, rev)
    return targets
