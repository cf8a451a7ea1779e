"""Typed check settings: readyctl.yaml typos and wrong types are refused before anything runs,
`explain` lists the settings, and `readyctl schema` lets an editor flag the same typos."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

# areas whose checks declare typed settings (checks/<area>/*.py)
TYPED_AREAS = ("auth", "backups", "database", "env", "health", "http")


def _plan(readyctl: Any, tmp_path: Path, yaml_text: str) -> Any:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(yaml_text)
    return readyctl("check", "--plan", "--config", str(cfg))


@pytest.mark.parametrize(
    ("yaml_text", "line", "key_path", "hint"),
    [
        # the issue: a route under the wrong key was silently ignored
        (
            "checks:\n  auth.jwt_tampering:\n    me_path: /api/v1/users/me\n",
            3,
            "checks.auth.jwt_tampering.me_path",
            "did you mean `path`?",
        ),
        (
            "runner:\n  jobs: 4\nchecks:\n  backups.freshness:\n    location: s3://b/db\n"
            "    rpo_hour: 12\n",
            6,
            "checks.backups.freshness.rpo_hour",
            "did you mean `rpo_hours`?",
        ),
        (
            "checks:\n  health.endpoints:\n    paths: [/health]\n    request_timeout: 2\n",
            4,
            "checks.health.endpoints.request_timeout",
            "did you mean `request_timeout_s`?",
        ),
        # a key inside a nested model
        (
            "checks:\n  http.versioning:\n    deprecated:\n      - prefix: /v0\n"
            "        sunet: 2027-06-30\n",
            5,
            "checks.http.versioning.deprecated.0.sunet",
            "did you mean `sunset`?",
        ),
    ],
)
def test_settings_typo_is_one_line_exit_2_with_did_you_mean(  # type: ignore[no-untyped-def]
    readyctl, tmp_path: Path, yaml_text: str, line: int, key_path: str, hint: str
) -> None:
    r = _plan(readyctl, tmp_path, yaml_text)
    assert r.code == 2, r.both
    assert "Traceback" not in r.both
    err = r.err.strip()
    assert "\n" not in err, err
    assert f"settings.yaml:{line}: {key_path}: unknown setting" in err, err
    assert hint in err, err


@pytest.mark.parametrize(
    ("yaml_text", "key_path", "needle"),
    [
        ("checks:\n  backups.freshness:\n    rpo_hours: soon\n", "rpo_hours", "valid number"),
        ("checks:\n  database.tls:\n    remote: maybe\n", "remote", "'maybe'"),
        ("checks:\n  health.endpoints:\n    requests: 0\n", "requests", "greater than"),
        ("checks:\n  auth.jwt_tampering:\n    method: FETCH\n", "method", "'GET'"),
        ("checks:\n  http.cors:\n    enabled: sometimes\n", "enabled", "valid boolean"),
    ],
)
def test_settings_of_the_wrong_type_exit_2(  # type: ignore[no-untyped-def]
    readyctl, tmp_path: Path, yaml_text: str, key_path: str, needle: str
) -> None:
    r = _plan(readyctl, tmp_path, yaml_text)
    assert r.code == 2, r.both
    err = r.err.strip()
    assert "\n" not in err and "Traceback" not in r.both
    assert f"settings.yaml:3: checks.{yaml_text.split()[1].rstrip(':')}.{key_path}:" in err, err
    assert needle in err, err


def test_valid_settings_plan(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _plan(
        readyctl,
        tmp_path,
        "checks:\n"
        "  auth.jwt_tampering: {path: /api/v1/users/me, method: get}\n"
        "  backups.rds: {instance: counsel-prod}\n"
        "  backups.restore_drill: {source: DUMP}\n"
        "  http.versioning: {deprecated: [/v0, {prefix: /v2, sunset: 2027-06-30}]}\n"
        "  database.pool: {statement_timeout_ms: 15s, instances: 2}\n"
        "  env.required: {}\n",
    )
    assert r.code == 0, r.both


def test_explain_lists_settings(readyctl) -> None:  # type: ignore[no-untyped-def]
    r = readyctl("explain", "auth.jwt_tampering")
    assert r.code == 0, r.both
    section = r.out.split("Settings", 1)[1]
    lines = {ln.strip().split(":", 1)[0]: ln.strip() for ln in section.splitlines() if ln.strip()}
    assert lines["path"].startswith("path: str = unset — ")  # default: from the API map
    assert "protected route" in lines["path"] and "api.me" in lines["path"]
    assert lines["expired_by_s"].startswith("expired_by_s: int (> 0) = 3600 — ")
    r = readyctl("explain", "http.versioning")
    assert "deprecated[].sunset: date = unset — " in r.out
    assert "request_timeout_s: float (> 0) = 10 — " in r.out
    r = readyctl("explain", "env.required")
    assert re.search(r"^Settings\s+none$", r.out, re.M), r.out


def _schema(readyctl: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = readyctl("schema")
    assert r.code == 0, r.both
    return json.loads(r.out)


def _repo_config() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "readyctl.yaml").read_text())
    return json.loads(json.dumps(data, default=str))  # YAML dates as the strings they were


def test_schema_validates_the_repo_config_and_flags_settings_typos(readyctl) -> None:  # type: ignore[no-untyped-def]
    import jsonschema

    schema = _schema(readyctl)
    checks = schema["properties"]["checks"]
    assert checks["additionalProperties"] is False
    reachable = checks["properties"]["http.reachable"]
    assert reachable["additionalProperties"] is False and "path" in reachable["properties"]
    validator = jsonschema.Draft202012Validator(schema)
    config = _repo_config()
    assert list(validator.iter_errors(config)) == []

    ok = {**config, "checks": {"http.reachable": {"path": "/health"}}}
    assert list(validator.iter_errors(ok)) == []
    for bad_checks in (
        {"http.reachable": {"pth": "/health"}},  # a settings typo
        {"auth.jwt_tampering": {"me_path": "/api/v1/users/me"}},
        {"http.reachabel": {"path": "/health"}},  # a check id typo
        {"backups.freshness": {"rpo_hours": "soon"}},  # a wrong type
        {"http.versioning": {"deprecated": [{"prefix": "/v0", "sunet": "2027-06-30"}]}},
    ):
        errors = list(validator.iter_errors({**config, "checks": bad_checks}))
        assert errors, bad_checks


def test_config_json_schema_import_loads_no_checks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, readyctl.config; "
        "print(any(m.startswith('readyctl.checks.') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_every_check_in_the_typed_areas_declares_settings() -> None:
    from readyctl.check import CheckSettings
    from readyctl.registry import load_catalog

    checked = 0
    for cid, cls in load_catalog().checks.items():
        if cid.split(".")[0] not in TYPED_AREAS:
            continue
        assert cls.Settings is not None and issubclass(cls.Settings, CheckSettings), cid
        assert cls.Settings.model_config.get("extra") == "forbid", cid
        for name, field in cls.Settings.model_fields.items():
            assert field.description, f"{cid}.{name} has no description"
        cls.Settings.model_validate({})  # the defaults are valid
        checked += 1
    assert checked >= 28
    pattern = re.compile(r"settings\(\)\.get\(|settings\.get\(|\bs\.get\(|settings\[")
    for area in TYPED_AREAS:
        for path in sorted((ROOT / "checks" / area).glob("*.py")):
            found = pattern.search(path.read_text())
            assert found is None, f"{path.relative_to(ROOT)} reads settings untyped"


def test_context_settings_are_typed_and_shared_between_checks(tmp_path: Path) -> None:
    from readyctl.checks.backups._location import configured_location

    from readyctl.config import Config
    from tests.helpers import make_context

    cfg = Config(
        checks={
            "backups.freshness": {"location": "s3://bucket/db", "rpo_hours": 12},
            "http.banner": {"paths": "/only"},
        }
    )
    ctx = make_context(config=cfg, base_dir=tmp_path)
    fresh = ctx.settings("backups.freshness")
    assert fresh.rpo_hours == 12.0 and fresh.size_window == 5
    assert ctx.settings("http.banner").paths == ("/only",)  # one path or a list
    # backups.s3_bucket and restore_drill fall back to backups.freshness's typed location
    assert configured_location(ctx, None) == (
        "s3://bucket/db",
        "checks.backups.freshness.location",
    )
    assert configured_location(ctx, "file:///b") == ("file:///b", "settings")
