"""readyctl.secretnames: which variables are secrets, on real names from well-known projects.

The rows use variable names from the example env files (and settings modules) of:
- Laravel: laravel/laravel `.env.example`
- FastAPI: fastapi/full-stack-fastapi-template `.env` and `backend/app/core/config.py`
- NestJS: brocoders/nestjs-boilerplate `env-example-relational` and its file config
- Django: cookiecutter/cookiecutter-django `.envs/.production/.django` and `.postgres`, and
  Django's email/session settings as healthchecks' self-hosted configuration reads them
- Rails: mastodon/mastodon `.env.production.sample`, Rails' `RAILS_MASTER_KEY` and
  `RAILS_MAX_THREADS`, devise-jwt's `DEVISE_JWT_SECRET_KEY`

Secret-shaped values are built at runtime so this file holds no secret-shaped literal.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from readyctl.config import Config, EnvConfig, Environment, EnvRule
from readyctl.redact import MASK, is_secret_name
from readyctl.secretnames import classify, is_secret, secret_shape, why_not_secret
from tests.helpers import make_context, results_of, run_checks


def _hex(seed: str, n: int = 64) -> str:
    out = ""
    while len(out) < n:
        out += hashlib.sha256((seed + str(len(out))).encode()).hexdigest()
    return out[:n]


def _b64(seed: str, nbytes: int = 32) -> str:
    return base64.b64encode(bytes.fromhex(_hex(seed, nbytes * 2))).decode()


def _urlsafe(seed: str, n: int = 43) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(_hex(seed, 64))).decode().rstrip("=")[:n]


def _aws_key_id(seed: str) -> str:
    return "AK" + "IA" + _hex(seed, 16).upper().replace("0", "Q").replace("1", "Z")


def _pem(seed: str) -> str:
    dashes = "-" * 5
    return f"{dashes}BEGIN PRIVATE KEY{dashes}\\n{_b64(seed, 48)}\\n{dashes}END PRIVATE KEY{dashes}"


def _stripe(seed: str) -> str:
    return "sk" + "_live_" + _urlsafe(seed, 24).replace("-", "x").replace("_", "y")


def _sendgrid(seed: str) -> str:
    return "SG" + "." + _urlsafe(seed + "a", 22) + "." + _urlsafe(seed + "b", 43)


# (project, name, value, is_secret)
REAL_ROWS: list[tuple[str, str, str, bool]] = [
    # Laravel: laravel/laravel .env.example
    ("laravel", "APP_KEY", "base64:" + _b64("app-key"), True),
    ("laravel", "APP_DEBUG", "false", False),
    ("laravel", "APP_URL", "https://shop.example.com", False),
    ("laravel", "DB_HOST", "127.0.0.1", False),
    ("laravel", "DB_PORT", "3306", False),
    ("laravel", "DB_USERNAME", "laravel", False),
    ("laravel", "DB_PASSWORD", _urlsafe("db-password", 24), True),
    ("laravel", "SESSION_LIFETIME", "120", False),
    ("laravel", "BCRYPT_ROUNDS", "12", False),
    ("laravel", "REDIS_PASSWORD", "null", False),  # Laravel reads null as "no password"
    ("laravel", "MAIL_PORT", "587", False),
    ("laravel", "MAIL_USERNAME", "postmaster@mg.example.com", False),
    ("laravel", "MAIL_PASSWORD", _hex("mail-password", 32), True),
    ("laravel", "MAIL_ENCRYPTION", "tls", False),
    ("laravel", "AWS_ACCESS_KEY_ID", _aws_key_id("aws-key-id"), True),
    ("laravel", "AWS_SECRET_ACCESS_KEY", _b64("aws-secret", 30), True),
    ("laravel", "PUSHER_APP_ID", "1733095", False),
    ("laravel", "PUSHER_APP_SECRET", _hex("pusher-secret", 20), True),
    ("laravel", "PUSHER_PORT", "443", False),
    # FastAPI: full-stack-fastapi-template .env and backend/app/core/config.py
    ("fastapi", "SECRET_KEY", _urlsafe("fastapi-secret"), True),
    ("fastapi", "ACCESS_TOKEN_EXPIRE_MINUTES", "11520", False),
    ("fastapi", "EMAIL_RESET_TOKEN_EXPIRE_HOURS", "48", False),
    ("fastapi", "FIRST_SUPERUSER", "admin@example.com", False),
    ("fastapi", "FIRST_SUPERUSER_PASSWORD", "changethis", True),  # a weak secret is a secret
    ("fastapi", "SMTP_USER", "apikey", False),
    ("fastapi", "SMTP_PASSWORD", _sendgrid("smtp"), True),
    ("fastapi", "SMTP_TLS", "True", False),
    ("fastapi", "EMAILS_FROM_EMAIL", "info@example.com", False),
    ("fastapi", "POSTGRES_USER", "postgres", False),
    ("fastapi", "POSTGRES_PASSWORD", _urlsafe("pg-password", 20), True),
    (
        "fastapi",
        "SENTRY_DSN",
        f"https://{_hex('sentry', 32)}@o450123.ingest.sentry.io/5501234",
        False,
    ),
    # NestJS: brocoders/nestjs-boilerplate env-example-relational and file config
    ("nestjs", "AUTH_JWT_SECRET", _urlsafe("nest-jwt"), True),
    ("nestjs", "AUTH_JWT_TOKEN_EXPIRES_IN", "15m", False),
    ("nestjs", "AUTH_REFRESH_SECRET", _urlsafe("nest-refresh"), True),
    ("nestjs", "AUTH_REFRESH_TOKEN_EXPIRES_IN", "3650d", False),
    ("nestjs", "AUTH_FORGOT_SECRET", _urlsafe("nest-forgot"), True),
    ("nestjs", "AUTH_FORGOT_TOKEN_EXPIRES_IN", "30m", False),
    ("nestjs", "AUTH_CONFIRM_EMAIL_SECRET", _urlsafe("nest-confirm"), True),
    ("nestjs", "AUTH_CONFIRM_EMAIL_TOKEN_EXPIRES_IN", "1d", False),
    ("nestjs", "DATABASE_USERNAME", "root", False),
    ("nestjs", "DATABASE_PASSWORD", _urlsafe("nest-db", 24), True),
    ("nestjs", "DATABASE_SSL_ENABLED", "false", False),
    ("nestjs", "DATABASE_KEY", _pem("nest-db-key"), True),
    ("nestjs", "MAIL_CLIENT_PORT", "1080", False),
    ("nestjs", "TWITTER_CONSUMER_SECRET", _urlsafe("twitter", 50), True),
    ("nestjs", "WORKER_HOST", "redis://redis:6379/1", False),
    ("nestjs", "FILE_AWS_SECRET_ACCESS_KEY", _b64("nest-aws", 30), True),
    # Django: cookiecutter-django .envs/.production, Django settings read from the env
    ("django", "DJANGO_SECRET_KEY", _urlsafe("django-secret", 50), True),
    ("django", "DJANGO_ALLOWED_HOSTS", ".example.com", False),
    ("django", "DJANGO_ADMIN_URL", _hex("admin-url", 12) + "/", False),
    ("django", "DJANGO_SECURE_SSL_REDIRECT", "False", False),
    ("django", "MAILGUN_API_KEY", "key" + "-" + _hex("mailgun", 32), True),
    ("django", "DJANGO_AWS_STORAGE_BUCKET_NAME", "example-media", False),
    ("django", "REDIS_URL", "redis://redis:6379/0", False),
    ("django", "CELERY_FLOWER_USER", _hex("flower-user", 24), False),  # a user name
    ("django", "CELERY_FLOWER_PASSWORD", _hex("flower-pw", 48), True),
    (
        "django",
        "DATABASE_URL",
        f"postgres://app:{_hex('dj-db', 24)}@postgres:5432/app",
        True,
    ),
    ("django", "POSTGRES_PORT", "5432", False),
    ("django", "EMAIL_HOST_USER", "resend", False),
    ("django", "EMAIL_HOST_PASSWORD", _urlsafe("email-host", 36), True),
    ("django", "EMAIL_PORT", "587", False),
    ("django", "SESSION_COOKIE_AGE", "1209600", False),
    # Rails: mastodon .env.production.sample, Rails and devise-jwt conventions
    ("rails", "SECRET_KEY_BASE", _hex("rails-skb", 128), True),
    ("rails", "RAILS_MASTER_KEY", _hex("rails-master", 32), True),
    ("rails", "RAILS_MAX_THREADS", "5", False),
    ("rails", "DEVISE_JWT_SECRET_KEY", _hex("devise-jwt", 128), True),
    ("rails", "OTP_SECRET", _hex("otp", 128), True),
    ("rails", "VAPID_PRIVATE_KEY", _urlsafe("vapid-private"), True),
    ("rails", "VAPID_PUBLIC_KEY", "B" + _urlsafe("vapid-public", 86), False),
    ("rails", "DB_HOST", "/var/run/postgresql", False),
    ("rails", "DB_USER", "mastodon", False),
    ("rails", "DB_PASS", _urlsafe("mastodon-db", 24), True),
    ("rails", "ES_PASS", "password", True),  # a weak secret is a secret
    ("rails", "SMTP_LOGIN", "apikey", False),
    ("rails", "S3_ENABLED", "true", False),
    ("rails", "SESSION_RETENTION_PERIOD", "31556952", False),
]


def test_the_table_is_large_and_covers_every_framework() -> None:
    assert len(REAL_ROWS) >= 40
    assert {p for p, *_ in REAL_ROWS} == {"laravel", "fastapi", "nestjs", "django", "rails"}
    assert {e for *_, e in REAL_ROWS} == {True, False}


@pytest.mark.parametrize(
    ("project", "name", "value", "expected"),
    REAL_ROWS,
    ids=[f"{p}-{n}-{'secret' if e else 'setting'}" for p, n, _, e in REAL_ROWS],
)
def test_real_variables(project: str, name: str, value: str, expected: bool) -> None:
    verdict = classify(name, value)
    assert verdict.secret is expected, f"{project} {name}: {verdict.reason}"
    assert len(value) < 8 or value not in verdict.reason  # the reason never echoes a value


# (name, value or None for name-only, is_secret): each rule of the module, one row or two
RULE_ROWS: list[tuple[str, str | None, bool]] = [
    # a well-known shape is a secret whatever the name says
    ("STRIPE_API_VERSION", _stripe("misfiled"), True),
    ("AUTH_JWT_TOKEN_EXPIRES_IN", _stripe("misfiled-2"), True),
    ("WEB_APP_URL", f"https://bot:{_hex('webhook', 20)}@hooks.example.org/x", True),
    ("SENTRY_DSN", f"https://{_hex('pub', 32)}:{_hex('sec', 32)}@sentry.example.org/3", True),
    # non-secret suffixes
    ("JWT_SECRET_ALGORITHM", "HS256", False),
    ("AUTH_TOKEN_ISSUER", "https://auth.example.com/", False),
    ("AUTH_TOKEN_AUDIENCE", "api://default", False),
    ("PASSWORD_MIN_LENGTH", "12", False),
    ("TOKEN_TTL_SECONDS", "900", False),
    ("API_KEY_HEADER", "X-Api-Key", False),
    ("JWT_SECRET_FILE", "/run/secrets/jwt_secret", False),
    ("AUTH_SECRET_EXPIRES_IN_MS", "300000", False),
    ("jwtExpiresIn", "15m", False),
    # public keys
    ("STRIPE_PUBLISHABLE_KEY", "pk" + "_live_" + _hex("pk", 24), False),
    # values that are no secret under a secret-looking name
    ("JWT_SECRET", "HS256", False),
    ("SMTP_AUTH", "login", False),
    ("SMTP_AUTH", "true", False),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/run/secrets/gcp.json", False),
    ("TOKEN_REFRESH", "7", False),
    # ... but weak values under a name that ends with a secret word stay secret
    ("API_TOKEN", "123456", True),
    ("BASIC_AUTH", "admin:" + _hex("basic", 12), True),
    ("jwtSecret", _urlsafe("camel"), True),
    # the shell's working directory
    ("PWD", "/home/app", False),
    # name only (no value known)
    ("SENTRY_DSN", None, True),
    ("JWT_SECRET", None, True),
    ("JWT_EXPIRES_IN", None, False),
    ("AUTH_JWT_TOKEN_EXPIRES_IN", None, False),
    ("DATABASE_URL", None, False),
    ("KEYCLOAK_REALM", None, False),
]


@pytest.mark.parametrize(("name", "value", "expected"), RULE_ROWS)
def test_rules(name: str, value: str | None, expected: bool) -> None:
    assert is_secret(name, value) is expected, classify(name, value).reason


def test_an_env_rule_always_wins() -> None:
    rules = {"AUTH_JWT_TOKEN_EXPIRES_IN": EnvRule(secret=True), "JWT_SECRET": EnvRule(secret=False)}
    assert is_secret("AUTH_JWT_TOKEN_EXPIRES_IN", "15m", rules=rules)
    assert not is_secret("JWT_SECRET", _urlsafe("x"), rules=rules)
    assert why_not_secret("JWT_SECRET", "x", rules=rules) == "an env rule marks it secret: false"
    # a rule without `secret:` leaves the decision to the heuristics
    assert not is_secret("AUTH_JWT_TOKEN_EXPIRES_IN", "15m", rules={"X": EnvRule(secret=True)})
    assert not is_secret(
        "AUTH_JWT_TOKEN_EXPIRES_IN", "15m", rules={"AUTH_JWT_TOKEN_EXPIRES_IN": EnvRule()}
    )


def test_why_not_secret_explains_without_the_value() -> None:
    assert "EXPIRES_IN" in (why_not_secret("AUTH_JWT_TOKEN_EXPIRES_IN", "15m") or "")
    assert why_not_secret("AUTH_JWT_SECRET", "x" * 40) is None
    assert secret_shape(_stripe("shape")) == "a Stripe secret key"
    assert secret_shape("15m") is None


def test_redaction_stays_cautious() -> None:
    # readyctl.redact keeps its broad name pattern: a setting may still be masked in output
    assert is_secret_name("AUTH_JWT_TOKEN_EXPIRES_IN")
    assert is_secret_name("ACCESS_TOKEN_EXPIRE_MINUTES")


# -- through the real checks -------------------------------------------------------------------
def _prod_ctx(tmp_path: Path, text: str, rules: dict[str, EnvRule] | None = None) -> Any:
    f = tmp_path / "etc" / "app.env"
    f.parent.mkdir(exist_ok=True)
    f.write_text(text)
    f.chmod(0o600)
    env = Environment(production=True, env_file=str(f), env_source="file")
    cfg = Config(env=EnvConfig(rules=rules or {}))
    return make_context(config=cfg, environment=env, env_name="production", base_dir=tmp_path)


def _texts(outcome: Any) -> str:
    return json.dumps(
        [[r.subject, r.summary, r.reason, dict(r.evidence)] for r in outcome.results], default=str
    )


NEST_ENV = f"""\
NODE_ENV=production
AUTH_JWT_SECRET={_urlsafe("nest-real-secret")}
AUTH_JWT_TOKEN_EXPIRES_IN=15m
"""


def test_no_plain_env_does_not_count_a_token_lifetime_as_a_secret(tmp_path: Path) -> None:
    out = run_checks(_prod_ctx(tmp_path, NEST_ENV), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "fail", res.summary
    assert res.evidence["secret_variables"] == ["AUTH_JWT_SECRET"]
    assert res.measured == 1
    assert "AUTH_JWT_SECRET" in res.summary
    assert "AUTH_JWT_TOKEN_EXPIRES_IN" not in res.summary
    # the evidence says why the look-alike was left out
    (ignored,) = res.evidence["not_secret"]
    assert ignored["variable"] == "AUTH_JWT_TOKEN_EXPIRES_IN"
    assert "EXPIRES_IN" in ignored["why"]


def test_no_plain_env_counts_it_when_an_env_rule_says_secret(tmp_path: Path) -> None:
    rules = {"AUTH_JWT_TOKEN_EXPIRES_IN": EnvRule(secret=True)}
    out = run_checks(_prod_ctx(tmp_path, NEST_ENV, rules), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "fail"
    assert res.evidence["secret_variables"] == ["AUTH_JWT_SECRET", "AUTH_JWT_TOKEN_EXPIRES_IN"]
    assert res.measured == 2 and "AUTH_JWT_TOKEN_EXPIRES_IN" in res.summary


def test_only_settings_in_the_file_pass(tmp_path: Path) -> None:
    text = "NODE_ENV=production\nAUTH_JWT_TOKEN_EXPIRES_IN=15m\nACCESS_TOKEN_EXPIRE_MINUTES=60\n"
    out = run_checks(_prod_ctx(tmp_path, text), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "pass", res.summary
    assert [x["variable"] for x in res.evidence["not_secret"]] == [
        "ACCESS_TOKEN_EXPIRE_MINUTES",
        "AUTH_JWT_TOKEN_EXPIRES_IN",
    ]


def test_a_stripe_key_under_a_setting_name_is_a_secret_and_stays_redacted(tmp_path: Path) -> None:
    key = _stripe("live-key-in-the-wrong-variable")
    assert not is_secret("STRIPE_API_VERSION")  # by its name, a setting
    assert is_secret("STRIPE_API_VERSION", key)  # by its value, a secret
    assert not is_secret_name("STRIPE_API_VERSION")  # redaction's name pattern misses it
    text = f"NODE_ENV=production\nSTRIPE_API_VERSION={key}\nAUTH_JWT_TOKEN_EXPIRES_IN=15m\n"
    # env.format reports the bad value of a non-secret; here the value must stay hidden
    rules = {"STRIPE_API_VERSION": EnvRule(type="enum", values=["2024-06-20"])}
    ctx = _prod_ctx(tmp_path, text, rules)
    out = run_checks(ctx, only=["secrets.no_plain_env", "env.format"])
    plain = results_of(out, "secrets.no_plain_env")["env file"]
    assert plain.evidence["secret_variables"] == ["STRIPE_API_VERSION"]
    fmt = results_of(out, "env.format")["STRIPE_API_VERSION"]
    assert fmt.status.value == "fail"
    assert key not in _texts(out) and key[:12] not in _texts(out)
    # and the run's redactor masks the value wherever it would surface
    assert ctx.redactor.text(f"value {key} here") == f"value {MASK} here"


def test_a_secret_shape_is_redacted_even_when_a_rule_says_not_secret(tmp_path: Path) -> None:
    key = _stripe("rule-says-no")
    rules = {"BILLING_ACCOUNT": EnvRule(secret=False)}
    ctx = _prod_ctx(tmp_path, f"NODE_ENV=production\nBILLING_ACCOUNT={key}\n", rules)
    ctx.env_source()
    assert ctx.redactor.text(key) == MASK
