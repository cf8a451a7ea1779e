"""Typed check settings: every built-in check declares documented Settings, no check reads a
settings dict, and the shipped configs and snippets validate against them."""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from readyctl import resource_dir
from readyctl.check import Check, CheckSettings, settings_problem
from readyctl.cli._run import validate_check_settings
from readyctl.config import load_config
from readyctl.registry import load_catalog
from tests.conftest import ROOT


def _builtin() -> dict[str, type[Check]]:
    return {
        cid: cls
        for cid, cls in load_catalog().checks.items()
        if cls.__module__.startswith("readyctl.checks.")
    }


BUILTIN = sorted(_builtin())


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (unions, Annotated, containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _undocumented(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    """`Model.field` for each field without a description, nested models included."""
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        if not (field.description or "").strip():
            out.append(f"{model.__name__}.{name}")
        for sub in _models(field.annotation):
            out += _undocumented(sub, seen)
    return out


def test_the_catalog_has_builtin_checks() -> None:
    assert len(BUILTIN) > 40


@pytest.mark.parametrize("check_id", BUILTIN)
def test_every_builtin_check_declares_documented_settings(check_id: str) -> None:
    cls = _builtin()[check_id]
    model = cls.Settings
    assert isinstance(model, type) and issubclass(model, CheckSettings), (
        f"{check_id} declares no Settings(CheckSettings) (an empty one when it takes none)"
    )
    assert model is not CheckSettings, f"{check_id}: declare its own (maybe empty) Settings"
    assert model.model_config.get("extra") == "forbid" and model.model_config.get("frozen")
    assert _undocumented(model, set()) == [], f"{check_id}: every setting needs a description"
    model()  # every setting has a default: the check runs without configuration
    model.model_json_schema()  # explain and `readyctl schema` can show it


def test_no_check_reads_a_settings_dict() -> None:
    root = Path(resource_dir("checks"))
    offenders = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "settings().get(" in line or "settings.get(" in line
    ]
    assert offenders == [], "read typed settings as attributes:\n" + "\n".join(offenders)


def _config_files() -> list[Path]:
    examples = sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))
    return [ROOT / "readyctl.yaml", *examples]


@pytest.mark.parametrize("path", _config_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_pass_settings_validation(path: Path) -> None:
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))
    environ = {
        n: "postgresql://readyctl:secret@127.0.0.1:5432/app" if "DATABASE" in n else "x"
        for n in names
    }
    loaded = load_config(path, environ={**os.environ, **environ})
    validate_check_settings(loaded, loaded.config, load_catalog())


def test_settings_snippets_in_remediations_are_valid() -> None:
    catalog = load_catalog().checks
    seen = 0
    for check_id, cls in _builtin().items():
        snippet = cls.meta.remediation.snippet or ""
        if not snippet.startswith("checks:"):
            continue
        for cid, raw in yaml.safe_load(snippet)["checks"].items():
            assert cid in catalog, f"{check_id}'s snippet names unknown check {cid}"
            assert settings_problem(catalog[cid], raw) is None, (check_id, cid, raw)
            seen += 1
    assert seen >= 4


@pytest.mark.parametrize(
    ("check_id", "settings"),
    [
        # `readyctl load --users 4 --spawn-rate 50 --workers 2 --duration 3s`
        ("load.thresholds", {"users": 4, "spawn_rate": 50.0, "workers": 2, "duration": 3.0}),
        # `readyctl db rehearse|lint --alembic-config alembic.ini`
        ("migrations.rehearsal", {"alembic_config": "/srv/app/alembic.ini"}),
        ("migrations.lint", {"alembic_config": "/srv/app/alembic.ini"}),
        # documented forms
        ("load.thresholds", {"duration": "30s", "thresholds": {"overall": {"error_rate": "1%"}}}),
        ("indexes.hot_queries", {"queries": {"by user": "SELECT 1"}}),
        ("smoke.scenarios", {"suite": "smoke.yaml", "only": "counsel", "vars": {"api": "/v1"}}),
        ("secrets.manager", {"provider": "SSM", "secrets": {"JWT_SECRET": "jwt"}}),
        ("ratelimit.policies", {"policies": [{"path": "/x", "limit": 5, "window": "hour"}]}),
    ],
)
def test_settings_the_commands_and_docs_use_are_valid(
    check_id: str, settings: dict[str, Any]
) -> None:
    assert settings_problem(load_catalog().get(check_id), settings) is None


@pytest.mark.parametrize(
    ("check_id", "settings", "loc", "words"),
    [
        ("tls.hsts", {"path": ["/"]}, ("path",), "did you mean `paths`"),
        ("load.thresholds", {"duration": "soon"}, ("duration",), "not a duration"),
        ("load.thresholds", {"users": 0}, ("users",), "greater than or equal to 1"),
        (
            "load.thresholds",
            {"thresholds": {"overall": {"p42_ms": 3}}},
            ("thresholds", "overall", "p42_ms"),
            "'p95_ms'",
        ),
        (
            "load.thresholds",
            {"thresholds": {"overall": {"p95_ms": {"fial": 900}}}},
            ("thresholds", "overall", "p95_ms", "fial"),
            "did you mean `fail`",
        ),
        (
            "load.thresholds",
            {"profiles": [{"tasks": [{"path": "/a", "wieght": 2}]}]},
            ("profiles", 0, "tasks", 0, "wieght"),
            "did you mean `weight`",
        ),
        (
            "load.thresholds",
            {"profiles": [{"tasks": [{"steps": [{"path": "/a", "jsn": {}}]}]}]},
            ("profiles", 0, "tasks", 0, "steps", 0, "jsn"),
            "did you mean `json`",
        ),
        ("indexes.hot_queries", {"queries": [{"name": "q"}]}, ("queries", 0, "sql"), "required"),
        ("migrations.lint", {"ignore": ["drop-tabel"]}, ("ignore", 0), "'drop-table'"),
        ("migrations.rehearsal", {"commands": {"up": "u"}}, ("commands", "down"), "required"),
        (
            "ratelimit.policies",
            {"policies": [{"path": "/x"}]},
            ("policies", 0, "limit"),
            "required",
        ),
        ("secrets.manager", {"provider": "vault"}, ("provider",), "'ssm'"),
        ("ops.graceful_shutdown", {"request": {"path": "/", "bdy": 1}}, ("request", "bdy"), "body"),
        ("tls.expiry", {"good_days": 10, "poor_days": 10}, (), "must differ"),
    ],
)
def test_bad_settings_are_refused_with_the_path_and_a_hint(
    check_id: str, settings: dict[str, Any], loc: tuple[Any, ...], words: str
) -> None:
    problem = settings_problem(load_catalog().get(check_id), settings)
    assert problem is not None
    assert problem[0] == loc and words in problem[1], problem
