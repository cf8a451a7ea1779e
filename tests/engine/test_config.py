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
    # no env rules of their own: the preset, else .env.example (resolved at run time)
    assert loaded.config.env.required is None and loaded.config.env.preset is None


# -- what an adversarial run found (issue 11): each a one-line ConfigError, never a crash ----


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (
            b"version: 2\nbase:\n  description: caf\xe9\n",
            ["readyctl.yaml:3:", "UTF-8", "offset 35"],
        ),
        (b"base: &x {a: *x}\n", ["readyctl.yaml:1:", "base:", "recursive alias"]),
        (b"base: " + b"[" * 900 + b"]" * 900 + b"\n", [":1:", "deeper than 64"]),
        (
            b"base: [&a0 [x]"
            + b"".join(b", &a%d [*a%d]" % (i, i - 1) for i in range(1, 80))
            + b"]\n",
            ["base.", "deeper than 64 levels once YAML aliases are followed"],
        ),
        (
            b"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + b"".join(
                b"%s: &%s [%s]\n"
                % (bytes([98 + k]), bytes([98 + k]), b", ".join([b"*%s" % bytes([97 + k])] * 9))
                for k in range(8)
            ),
            ["expands to more than 50000 values"],
        ),
        (
            b"environments:\n  a: {}\n  b:\n    extends: [a]\n",
            [":4:", "environments.b.extends", "(a string), not a list"],
        ),
        (b"environments:\n  a: {}\n  b: {extends: {a: 1}}\n", [":3:", "(a string), not a mapping"]),
        (
            b"environments:\n  a: 5\n  b:\n    extends: a\n",
            [":4:", "environments.b.extends", "'a', which is a number, not a mapping"],
        ),
        (
            b"environments:\n"
            + b"".join(b"  e%d: {extends: e%d}\n" % (i, i + 1) for i in range(1000))
            + b"  e1000: {}\n",
            ["extends chain is longer than 32"],
        ),
        (
            b"waivers:\n  - {check: env.required, reason: accepted, owner: me,\n"
            b"     expires: 2026-02-30}\n",
            [":3:", "waivers.0.expires", "day value is outside expected range"],
        ),
        (
            b"default_environment: !!timestamp hi\n",
            ["default_environment", "unknown environment 'hi'"],
        ),
        (b"version: !!int abc\n", [":1:", "version: 'abc' is not a valid int", "quote it"]),
        (b"version: " + b"9" * 5000 + b"\n", [":1:", "version:", "not a valid int"]),
        (
            b"environments:\n  1: {}\n  a: {extends: zz}\n",
            [":3:", "unknown environment 'zz'; known: 1, a"],
        ),
        (
            b"checks:\n  1: {}\n  env.required: {}\n",
            [":2:", "checks.1: the key 1 is not valid here"],
        ),
        (b"scoring:\n  weights: {critical: .inf}\n", [":2:", "scoring.weights.critical", "finite"]),
        (
            b"scoring:\n  check_weights: {'env.*': .nan}\n",
            [":2:", "scoring.check_weights.env.*", "finite"],
        ),
        (
            b"scoring:\n  weights: {high: -5}\n",
            [":2:", "scoring.weights.high", "greater than or equal to 0"],
        ),
        (b"runner: {deadline_s: .inf}\n", [":1:", "runner.deadline_s", "finite"]),
        (
            b"environments:\n  a:\n    env_file: " + b"p" * 300 + b"\n",
            [":3:", "environments.a.env_file", "too long"],
        ),
        (b"report:\n  out: " + b"o" * 300 + b"\n", [":2:", "report.out", "too long"]),
        (b"waivers_file: " + b"w" * 300 + b"\n", [":1:", "waivers_file", "too long"]),
        (b'environments:\n  a: {env_file: "x\\0y"}\n', [":2:", "NUL byte"]),
        (b'environments:\n  "a\\nb": {bogus: 1}\n', [":2:", "unknown key 'bogus'"]),
    ],
)
def test_hostile_configs_are_one_line_config_errors(
    tmp_path: Path, text: bytes, needles: list[str]
) -> None:
    p = tmp_path / "readyctl.yaml"
    p.write_bytes(text)
    with pytest.raises(ConfigError) as e:
        load_config(p, environ={}).environment(None)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1, msg
    assert "readyctl.yaml:" in msg
    for needle in needles:
        assert needle in msg, msg


def test_interpolation_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "readyctl.yaml"
    p.write_text('base:\n  description: "' + "${BIG}" * 2000 + '"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p, environ={"BIG": "x" * 100_000})
    assert ":2: base.description: the config grows past 8 MB" in str(e.value)


def test_dates_stay_text_until_a_date_is_expected(tmp_path: Path) -> None:
    p = tmp_path / "readyctl.yaml"
    p.write_text(
        "environments:\n  a: {description: 2026-06-30}\n"
        "waivers:\n  - {check: env.required, reason: accepted, owner: me, expires: 2026-06-30}\n"
    )
    loaded = load_config(p, environ={})
    assert loaded.config.environments["a"].description == "2026-06-30"
    assert str(loaded.config.waivers[0].expires) == "2026-06-30"


def test_valid_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    p = tmp_path / "readyctl.yaml"
    p.write_text(
        "base: {}\nenvironments:\n"
        "  staging: &common {instances: 2, allow: [env.*]}\n"
        "  production: {<<: *common, production: true}\n"
    )
    _, prod = load_config(p, environ={}).environment("production")
    assert prod.instances == 2 and prod.production and prod.allow == ["env.*"]
