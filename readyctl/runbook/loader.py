"""Reading runbook YAML: bounded like readyctl.yaml, validated, errors as `file:line: key: ...`.

A runbook is found by path, or by name: `runbooks/NAME.yaml` in the project (next to
readyctl.yaml, else the working directory), then the runbooks shipped in the package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from readyctl.errors import ConfigError, UsageError
from readyctl.runbook.model import (
    BUILTIN_ACTIONS,
    BUILTIN_NAMES,
    Runbook,
    Step,
    parse_condition,
    placeholders,
)


@dataclasses.dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook and where it came from (for messages)."""

    runbook: Runbook
    path: Path
    lines: Any  # readyctl.config._LineMap

    def where(self, *loc: str | int) -> str:
        """`file:line` of a key."""
        line = self.lines.line(loc) if self.lines is not None else None
        return f"{self.path}:{line}" if line else str(self.path)

    def error(self, loc: tuple[str | int, ...], message: str) -> ConfigError:
        """A ConfigError naming the file, the line and the key (exit 2)."""
        from readyctl.config import _key

        return ConfigError(f"{self.where(*loc)}: {_key(loc)}: {message}")

    def all_steps(self) -> list[tuple[str, int, Step]]:
        """(section, index, step) for `steps` then `after_rollback`."""
        rb = self.runbook
        return [("steps", i, s) for i, s in enumerate(rb.steps)] + [
            ("after_rollback", i, s) for i, s in enumerate(rb.after_rollback)
        ]


def packaged_dir() -> Path:
    """The runbooks shipped with readyctl (`runbooks/` mapped into the package)."""
    from readyctl import resource_dir

    return Path(resource_dir("runbooks"))


def project_dir_of(config_path: Path | None) -> Path:
    """The project's directory: readyctl.yaml's, else the working directory."""
    if config_path is not None:
        return Path(config_path).resolve().parent
    return Path.cwd()


def find_runbook(spec: str, project_dir: Path) -> Path:
    """A runbook by path (`ops/deploy.yaml`) or name (`deploy`); UsageError when none."""
    as_path = Path(spec)
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        if as_path.is_file():
            return as_path
        raise UsageError(f"runbook {spec}: no such file; check the path")
    for folder in (project_dir / "runbooks", packaged_dir()):
        for ext in (".yaml", ".yml"):
            candidate = folder / f"{spec}{ext}"
            if candidate.is_file():
                return candidate
    known = ", ".join(name for name, *_ in list_runbooks(project_dir)) or "none"
    raise UsageError(
        f"unknown runbook {spec!r} (known: {known}); pass a file or see `readyctl runbook list`"
    )


def list_runbooks(project_dir: Path) -> list[tuple[str, Path, str, str]]:
    """(name, path, description, source) of the project's and the packaged runbooks; a
    project runbook hides a packaged one of the same name."""
    seen: dict[str, tuple[str, Path, str, str]] = {}
    for source, folder in (("project", project_dir / "runbooks"), ("packaged", packaged_dir())):
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            name = path.stem
            if name in seen:
                continue
            try:
                description = load_runbook(path).runbook.description
            except ConfigError as e:
                description = f"(invalid: {e})"
            seen[name] = (
                name,
                path,
                description.strip().splitlines()[0] if description else "",
                source,
            )
    return sorted(seen.values())


def load_runbook(path: str | Path, *, extra_vars: Iterable[str] = ()) -> LoadedRunbook:
    """Read and validate a runbook; ConfigError (one line, `file:line: key: ...`) otherwise.

    `extra_vars`: variables given apart from the runbook's `vars:` (readyctl.yaml, --var).
    """
    from readyctl.config import _format_validation, _LineMap, _parse_yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: runbook not found; check the path")
    node, raw = _parse_yaml(path)
    lines = _LineMap(node)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a runbook is a mapping of keys (name, steps, ...)")
    try:
        runbook = Runbook.model_validate(raw)
    except ValidationError as e:
        msg = _format_validation(e, lines, path)
        msg = msg.replace("readyctl schema lists", "readyctl schema --runbook lists")
        raise ConfigError(msg) from None
    loaded = LoadedRunbook(runbook, path.resolve(), lines)
    _check(loaded, set(runbook.vars) | set(extra_vars))
    return loaded


def _known_actions() -> set[str]:
    from readyctl.runbook.engine import registry

    return set(registry()) | set(BUILTIN_ACTIONS)


def _check(loaded: LoadedRunbook, var_names: set[str]) -> None:
    """What the schema cannot say: unique ids, known actions, known variables."""
    import difflib

    known = _known_actions()
    seen: dict[str, tuple[str | int, ...]] = {}
    for section, i, step in loaded.all_steps():
        loc: tuple[str | int, ...] = (section, i)
        sid = step.step_id
        if sid in seen:
            raise loaded.error(
                (*loc, "id"),
                f"step id {sid!r} is used twice (first at {loaded.where(*seen[sid])}); "
                "give each step its own id",
            )
        seen[sid] = loc
        for where, uses in ((("uses",), step.uses), (("rollback", "uses"), _rb_uses(step))):
            if uses is not None and uses not in known:
                close = difflib.get_close_matches(uses, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise loaded.error(
                    (*loc, *where),
                    f"unknown action {uses!r} (known: {', '.join(sorted(known))}){hint}",
                )
        if step.when is not None and step.when not in ("true", "false"):
            _, names = parse_condition(step.when)
            _check_names(loaded, (*loc, "when"), names, var_names, condition=True)
        for key, value in (
            ("with", step.with_),
            ("run", step.run),
            ("timeout", step.timeout),
            ("rollback", step.rollback.model_dump(by_alias=True) if step.rollback else None),
        ):
            _check_names(loaded, (*loc, key), set(placeholders(value)), var_names)


def _rb_uses(step: Step) -> str | None:
    return step.rollback.uses if step.rollback is not None else None


def _check_names(
    loaded: LoadedRunbook,
    loc: tuple[str | int, ...],
    names: set[str],
    var_names: set[str],
    *,
    condition: bool = False,
) -> None:
    for name in sorted(names):
        if name.startswith("vars."):
            var = name.split(".", 1)[1]
            if var not in var_names:
                known = ", ".join(sorted(var_names)) or "none"
                raise loaded.error(
                    loc,
                    f"variable {var!r} is not defined (defined: {known}); add it under vars: "
                    "or pass --var",
                )
        elif "." in name:
            raise loaded.error(
                loc,
                f"unknown placeholder ${{{name}}}; use vars.NAME, "
                f"{', '.join(BUILTIN_NAMES)} or an environment variable",
            )
        elif condition and name not in BUILTIN_NAMES:
            raise loaded.error(loc, f"unknown name {name!r} in the condition")
