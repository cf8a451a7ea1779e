"""Discovery of built-in checks (one module per check) and plugin checks (entry points)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from readyctl import resource_dir
from readyctl.check import Check
from readyctl.errors import CheckDefinitionError

ENTRY_POINT_GROUP = "readyctl.checks"
_BUILTIN_PACKAGE = "readyctl.checks"


@dataclass(frozen=True)
class Catalog:
    """Every known check, by id, in a stable order."""

    checks: dict[str, type[Check]]

    def ids(self) -> list[str]:
        """Sorted ids."""
        return sorted(self.checks)

    def get(self, check_id: str) -> type[Check]:
        """The check with this id (KeyError if unknown)."""
        return self.checks[check_id]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (self.checks[i] for i in self.ids())

    def __len__(self) -> int:
        return len(self.checks)


def _builtin_modules() -> Iterable[str]:
    root = resource_dir("checks")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            continue
        area = rel.replace(os.sep, ".")
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("_"):
                yield f"{area}.{name[:-3]}"


def _load_builtin(check_id: str) -> type[Check]:
    module = importlib.import_module(f"{_BUILTIN_PACKAGE}.{check_id}")
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Check)
        and obj is not Check
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise CheckDefinitionError(
            f"checks/{check_id.replace('.', '/')}.py must define exactly one Check, "
            f"found {len(found)}"
        )
    cls = found[0]
    if cls.meta.id != check_id:
        raise CheckDefinitionError(
            f"check id {cls.meta.id!r} must equal its module path {check_id!r}"
        )
    return cls


def _load_plugins(into: dict[str, type[Check]]) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        package = (ep.dist.name if ep.dist else ep.module.split(".")[0]).replace("-", "_").lower()
        classes: list[type[Check]]
        if isinstance(obj, type) and issubclass(obj, Check):
            classes = [obj]
        else:
            classes = [
                v
                for v in vars(obj).values()
                if isinstance(v, type) and issubclass(v, Check) and v is not Check
            ]
        for cls in classes:
            if not cls.meta.id.startswith(package + "."):
                raise CheckDefinitionError(
                    f"plugin check {cls.meta.id!r} from {package!r} must be namespaced as "
                    f"'{package}.<area>.<name>'"
                )
            if cls.meta.id in into and into[cls.meta.id] is not cls:
                raise CheckDefinitionError(f"check id {cls.meta.id!r} is registered twice")
            into[cls.meta.id] = cls


_CACHE: Catalog | None = None


def load_catalog(*, plugins: bool = True) -> Catalog:
    """Import every built-in check module and plugin; ids are validated and unique."""
    global _CACHE
    if _CACHE is not None and plugins:
        return _CACHE
    checks: dict[str, type[Check]] = {}
    for check_id in _builtin_modules():
        cls = _load_builtin(check_id)
        if check_id in checks:
            raise CheckDefinitionError(f"check id {check_id!r} is registered twice")
        checks[check_id] = cls
    if plugins:
        _load_plugins(checks)
    catalog = Catalog(checks)
    if plugins:
        _CACHE = catalog
    return catalog


def reset_cache() -> None:
    """Forget the loaded catalog (tests)."""
    global _CACHE
    _CACHE = None
