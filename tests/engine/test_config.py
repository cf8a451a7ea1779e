"""readyctl.yaml: interpolation, inheritance, and one-line errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from readyctl.config import load_config
from readyctl.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "readyctl.yaml"
    p.write_text(text)
    return p


def test_inheritance_and_interpolation(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """\
version: 1
base:
  base_url: ${API_URL:-https://api.example.org}
  auth: {kind: token, token_var: API_TOKEN}
environments:
  staging:
    instances: 2
  production:
    extends: staging
    production: true
    allow: ["env.*"]
    base_url: ${PROD_URL}
""",
    )
    loaded = load_config(p, environ={"PROD_URL": "https://prod.example.org"})
    _, staging = loaded.environment("staging")
    _, prod = loaded.environment("production")
    assert staging.base_url == "https://api.example.org"
    assert staging.auth is not None and staging.auth.kind == "token"
    assert prod.base_url == "https://prod.example.org"
    assert prod.instances == 2 and prod.production and prod.allow == ["env.*"]


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        loaded = load_config(p, environ=environ or {})
        loaded.environment(None)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    msg = _error(tmp_path, "version: 1\nenvironments:\n  staging:\n    base_url: [unclosed\n")
    assert "readyctl.yaml:" in msg and "YAML syntax error" in msg


def test_unknown_key_names_line_and_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, "version: 1\nenvironments:\n  staging:\n    base_ur: https://x.org\n")
    assert "readyctl.yaml:4:" in msg
    assert "environments.staging.base_ur" in msg and "unknown key" in msg


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, "version: 1\ngate:\n  fail_under: lots\n")
    assert "readyctl.yaml:3:" in msg and "gate.fail_under" in msg


def test_missing_variable_without_default(tmp_path: Path) -> None:
    msg = _error(tmp_path, "version: 1\nenvironments:\n  s:\n    base_url: ${NOPE}\n")
    assert ":4:" in msg and "NOPE" in msg and "environments.s.base_url" in msg


def test_missing_env_file(tmp_path: Path) -> None:
    msg = _error(tmp_path, "version: 1\nenvironments:\n  s:\n    env_file: .env.gone\n")
    assert ":4:" in msg and "env_file" in msg and ".env.gone" in msg


def test_extends_loop_and_unknown_parent(tmp_path: Path) -> None:
    msg = _error(tmp_path, "environments:\n  a: {extends: b}\n  b: {extends: a}\n")
    assert "inheritance loop" in msg
    msg = _error(tmp_path, "environments:\n  a: {extends: zzz}\n")
    assert "unknown environment 'zzz'" in msg


def test_several_environments_need_a_choice(tmp_path: Path) -> None:
    msg = _error(tmp_path, "environments:\n  a: {}\n  b: {}\n")
    assert "--env" in msg


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_config(None)
    name, env = loaded.environment(None)
    assert name == "default" and env.base_url is None
    assert loaded.config.env.required[0] == "DATABASE_URL"
