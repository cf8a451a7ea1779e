"""Each env rule against real env files: one input where it fails, one where it passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from readyctl.config import Config, EnvConfig, Environment, EnvRule
from tests.conftest import GOOD_ENV
from tests.helpers import make_context, run_checks, statuses


def _run(
    tmp_path: Path,
    text: str,
    *,
    only: str,
    config: Config | None = None,
    example: str | None = None,
    production: bool = True,
    env_name: str = "prod",
):
    f = tmp_path / ".env.production"
    f.write_text(text)
    if example is not None:
        (tmp_path / ".env.example").write_text(example)
    env = Environment(env_file=str(f), production=production)
    if config is None:  # the counseling API's rules, as the repository's readyctl.yaml says
        config = Config(env=EnvConfig(preset="counseling"))
    ctx = make_context(config=config, environment=env, env_name=env_name, base_dir=tmp_path)
    return run_checks(ctx, only=[only])


def _replace(name: str, value: str | None) -> str:
    lines = [ln for ln in GOOD_ENV.splitlines() if not ln.startswith(name + "=")]
    if value is not None:
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def test_required_passes_on_complete_file(tmp_path: Path) -> None:
    got = statuses(_run(tmp_path, GOOD_ENV, only="env.required"), "env.required")
    assert got == {
        n: "pass"
        for n in (
            "DATABASE_URL",
            "JWT_SECRET",
            "OPENAI_API_KEY",
            "POSTMARK_API_TOKEN",
            "FROM_EMAIL",
            "WEB_APP_URL",
        )
    }


@pytest.mark.parametrize("value", [None, "", "   "])
def test_required_fails_when_missing_or_empty(tmp_path: Path, value: str | None) -> None:
    got = statuses(
        _run(tmp_path, _replace("OPENAI_API_KEY", value), only="env.required"), "env.required"
    )
    assert got["OPENAI_API_KEY"] == "fail"
    assert got["JWT_SECRET"] == "pass"


@pytest.mark.parametrize(
    ("name", "rule", "bad", "good"),
    [
        (
            "WEB_APP_URL",
            EnvRule(type="https_url"),
            "http://app.example.org",
            "https://app.example.org",
        ),
        ("WEB_APP_URL", EnvRule(type="url"), "not a url", "https://app.example.org"),
        (
            "DATABASE_URL",
            EnvRule(type="postgres_dsn", secret=True),
            "mysql://u:p@h/db",
            "postgresql://u:Zx9@h:5432/db",
        ),
        (
            "DATABASE_URL",
            EnvRule(type="postgres_dsn", secret=True),
            "postgresql://u:p@h:5432/",
            "postgresql://u:p@h:5432/app",
        ),
        ("FROM_EMAIL", EnvRule(type="email"), "care-at-example", "Care <care@counsel.org>"),
        ("PORT", EnvRule(type="int", min=1, max=65535), "http", "8080"),
        ("PORT", EnvRule(type="int", min=1, max=65535), "70000", "443"),
        ("FEATURE_X", EnvRule(type="bool"), "maybe", "true"),
        ("LOG_LEVEL", EnvRule(type="enum", values=["info", "warn"]), "verbose", "warn"),
        ("TIMEOUT", EnvRule(type="duration"), "thirty", "30s"),
        ("REGION", EnvRule(min_length=5), "eu", "eu-west-1"),
    ],
)
def test_format_rules(tmp_path: Path, name: str, rule: EnvRule, bad: str, good: str) -> None:
    cfg = Config(env=EnvConfig(rules={name: rule}))
    bad_run = _run(tmp_path, _replace(name, bad), only="env.format", config=cfg)
    assert statuses(bad_run, "env.format") == {name: "fail"}
    good_run = _run(tmp_path, _replace(name, good), only="env.format", config=cfg)
    assert statuses(good_run, "env.format") == {name: "pass"}


def test_format_failure_never_shows_a_secret_value(tmp_path: Path) -> None:
    cfg = Config(env=EnvConfig(rules={"DATABASE_URL": EnvRule(type="postgres_dsn", secret=True)}))
    out = _run(
        tmp_path,
        _replace("DATABASE_URL", "mysql://u:CanaryPw1234@h/db"),
        only="env.format",
        config=cfg,
    )
    (r,) = out.results
    assert "CanaryPw1234" not in r.summary and "mysql://" not in r.summary


@pytest.mark.parametrize(
    "value", ["changeme", "your-key-here", "<your token>", "CHANGETHIS", "sk-your-key-here-123"]
)
def test_placeholder_fails(tmp_path: Path, value: str) -> None:
    got = statuses(
        _run(tmp_path, _replace("POSTMARK_API_TOKEN", value), only="env.placeholder"),
        "env.placeholder",
    )
    assert got["POSTMARK_API_TOKEN"] == "fail"
    assert got["JWT_SECRET"] == "pass"


def test_placeholder_rule_forbidden_values(tmp_path: Path) -> None:
    cfg = Config(
        env=EnvConfig(
            rules={"FROM_EMAIL": EnvRule(type="email", forbidden=["care@counsel.example.org"])}
        )
    )
    got = statuses(_run(tmp_path, GOOD_ENV, only="env.placeholder", config=cfg), "env.placeholder")
    assert got["FROM_EMAIL"] == "fail"


def test_secret_strength_length_and_entropy(tmp_path: Path) -> None:
    short = _run(
        tmp_path, _replace("JWT_SECRET", "tooshort-but-random-ish"), only="env.secret_strength"
    )
    assert statuses(short, "env.secret_strength")["JWT_SECRET"] == "fail"
    flat = _run(tmp_path, _replace("JWT_SECRET", "a" * 40), only="env.secret_strength")
    r = {x.subject: x for x in flat.results}["JWT_SECRET"]
    assert r.status.value == "fail" and r.measured == 0 and "entropy" in r.summary
    good = _run(tmp_path, GOOD_ENV, only="env.secret_strength")
    assert set(statuses(good, "env.secret_strength").values()) == {"pass"}


def test_example_drift_both_directions(tmp_path: Path) -> None:
    names = [ln.split("=")[0] for ln in GOOD_ENV.splitlines()]
    example = "\n".join(f"{n}=" for n in names[1:]) + "\nSENDGRID_KEY=\n"
    got = statuses(
        _run(tmp_path, GOOD_ENV, only="env.example_drift", example=example), "env.example_drift"
    )
    assert got == {"SENDGRID_KEY": "fail", "NODE_ENV": "fail"}
    same = "\n".join(f"{n}=" for n in names) + "\n"
    got = statuses(
        _run(tmp_path, GOOD_ENV, only="env.example_drift", example=same), "env.example_drift"
    )
    assert got == {".env.example": "pass"}


def test_example_drift_skips_without_example(tmp_path: Path) -> None:
    got = statuses(_run(tmp_path, GOOD_ENV, only="env.example_drift"), "env.example_drift")
    assert got == {"*": "skip"}


def test_production_sanity(tmp_path: Path) -> None:
    good = statuses(_run(tmp_path, GOOD_ENV, only="env.production"), "env.production")
    assert good == {"NODE_ENV": "pass", "WEB_APP_URL": "pass"}
    bad_text = _replace("NODE_ENV", "development").replace("https://counsel", "http://counsel")
    bad = statuses(
        _run(tmp_path, bad_text + "DEBUG=true\n", only="env.production"), "env.production"
    )
    assert bad == {"NODE_ENV": "fail", "WEB_APP_URL": "fail", "DEBUG": "fail"}
    none = statuses(
        _run(tmp_path, _replace("NODE_ENV", None), only="env.production"), "env.production"
    )
    assert none["app_env"] == "fail"


def test_production_sanity_skips_on_non_production_environment(tmp_path: Path) -> None:
    got = statuses(
        _run(tmp_path, GOOD_ENV, only="env.production", production=False, env_name="staging"),
        "env.production",
    )
    assert got == {"*": "skip"}


def test_process_environment_source(tmp_path: Path) -> None:
    env = Environment(env_source="process")
    ctx = make_context(
        config=Config(env=EnvConfig(preset="counseling")),
        environment=env,
        base_dir=tmp_path,
        environ={"DATABASE_URL": "postgresql://a:b@h:5432/d"},
    )
    got = statuses(run_checks(ctx, only=["env.required"]), "env.required")
    assert got["DATABASE_URL"] == "pass" and got["JWT_SECRET"] == "fail"


# -- env rules for any app: the preset, inference from .env.example, nothing -----------------
NODE_EXAMPLE = (
    "DATABASE_URL=postgres://app:app@localhost:5432/app\n"
    "SESSION_SECRET=\n"
    "REDIS_URL=redis://localhost:6379\n"
    "SMTP_FROM_EMAIL=noreply@example.org\n"
    "PORT=3000\n"
)
NODE_GOOD = (
    "DATABASE_URL=postgresql://app:Xq9v2LmR7pT4wY1b@db.internal:5432/app\n"
    "SESSION_SECRET=k9Vq2LmX7pR4tW1yB6nC3hJ5sD0gE8aUfZ\n"
    "REDIS_URL=redis://cache.internal:6379\n"
    "SMTP_FROM_EMAIL=noreply@shop.example.org\n"
    "PORT=8080\n"
)


def test_without_env_section_rules_come_from_env_example(tmp_path: Path) -> None:
    cfg = Config()
    out = _run(tmp_path, NODE_GOOD, only="env.*", config=cfg, example=NODE_EXAMPLE)
    assert statuses(out, "env.required") == {
        n: "pass"
        for n in ("DATABASE_URL", "SESSION_SECRET", "REDIS_URL", "SMTP_FROM_EMAIL", "PORT")
    }
    # the counseling API's variables are not asked of another app
    assert "JWT_SECRET" not in statuses(out, "env.required")
    assert set(statuses(out, "env.format")) >= {"DATABASE_URL", "REDIS_URL", "SMTP_FROM_EMAIL"}
    assert all(v == "pass" for v in statuses(out, "env.format").values())


def test_inferred_rules_fail_a_broken_file(tmp_path: Path) -> None:
    bad = NODE_GOOD.replace("SMTP_FROM_EMAIL=noreply@shop.example.org", "SMTP_FROM_EMAIL=nobody")
    bad = bad.replace("PORT=8080", "PORT=eighty").replace(
        "SESSION_SECRET=k9Vq2LmX7pR4tW1yB6nC3hJ5sD0gE8aUfZ\n", ""
    )
    out = _run(tmp_path, bad, only="env.*", config=Config(), example=NODE_EXAMPLE)
    assert statuses(out, "env.required")["SESSION_SECRET"] == "fail"
    fmt = statuses(out, "env.format")
    assert fmt["SMTP_FROM_EMAIL"] == "fail" and fmt["PORT"] == "fail"


def test_inferred_secret_is_judged_for_strength(tmp_path: Path) -> None:
    weak = NODE_GOOD.replace("k9Vq2LmX7pR4tW1yB6nC3hJ5sD0gE8aUfZ", "changeme")
    out = _run(tmp_path, weak, only="env.placeholder", config=Config(), example=NODE_EXAMPLE)
    assert statuses(out, "env.placeholder")["SESSION_SECRET"] == "fail"


def test_no_env_section_and_no_example_skips_naming_what_to_set(tmp_path: Path) -> None:
    out = _run(tmp_path, NODE_GOOD, only="env.required", config=Config())
    (r,) = [r for r in out.results if r.check_id == "env.required"]
    assert r.status.value == "skip"
    assert "env.required" in r.summary and ".env.example" in r.summary


def test_yaml_rules_win_over_inferred(tmp_path: Path) -> None:
    cfg = Config(env=EnvConfig(rules={"PORT": EnvRule(type="int", min=1, max=1024)}))
    out = _run(tmp_path, NODE_GOOD, only="env.format", config=cfg, example=NODE_EXAMPLE)
    assert statuses(out, "env.format")["PORT"] == "fail"  # 8080 > 1024


def test_preset_counseling_requires_the_counseling_variables(tmp_path: Path) -> None:
    out = _run(
        tmp_path,
        NODE_GOOD,
        only="env.required",
        config=Config(env=EnvConfig(preset="counseling")),
        example=NODE_EXAMPLE,
    )
    got = statuses(out, "env.required")
    assert got["JWT_SECRET"] == "fail" and got["DATABASE_URL"] == "pass"
