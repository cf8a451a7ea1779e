"""Settings of the demo API, the env file format and the startup guard."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from readyctl.demo.faults import ENV_FAULTS, FAULTS_ENV, parse_faults
from readyctl.demo.releases import (
    DEFAULT_RELEASE,
    MAINTENANCE_FILE_ENV,
    MAINTENANCE_SECRET_ENV,
    RELEASE_ENV,
    validate_release,
)
from readyctl.demo.shapes import DEFAULT_SHAPE, SHAPE_ENV, Shape, get_shape, validate_shape

# name -> (description, example value written to .env.example)
ENV_VARS: dict[str, tuple[str, str]] = {
    "APP_ENV": (
        "Deployment environment; 'production' enables the production posture.",
        "production",
    ),
    "NODE_ENV": ("Kept for tooling that reads NODE_ENV; same value as APP_ENV.", "production"),
    "DATABASE_URL": (
        "PostgreSQL URL; connection_limit and pool_timeout set the pool size and wait (s).",
        "postgresql://app:<password>@db.internal:5432/counsel?connection_limit=10&pool_timeout=10",
    ),
    "JWT_SECRET": (
        "HS256 signing secret, at least 32 random characters.",
        "<48+ random characters>",
    ),
    "OPENAI_API_KEY": ("Key of the AI provider used for counseling replies.", "sk-<key>"),
    "POSTMARK_API_TOKEN": ("Postmark server token used to send email.", "<postmark server token>"),
    "POSTMARK_API_URL": ("Base URL of the Postmark API.", "https://api.postmarkapp.com"),
    "FROM_EMAIL": ("Sender address of transactional email.", "no-reply@counsel.example"),
    "WEB_APP_URL": (
        "Public URL of the web app, used in email links.",
        "https://app.counsel.example",
    ),
    "STRIPE_WEBHOOK_SECRET": ("Signing secret of the Stripe webhook endpoint.", "whsec_<secret>"),
    "SENTRY_DSN": ("Sentry DSN for error reporting.", "https://<key>@sentry.counsel.example/1"),
    "CORS_ORIGINS": (
        "Comma-separated browser origins allowed by CORS.",
        "https://app.counsel.example",
    ),
    "LOG_LEVEL": ("Minimum level of the JSON logs on stderr.", "info"),
}

WEAK_SECRETS = frozenset(
    {"secret", "changeme", "password", "jwt-secret", "jwtsecret", "supersecret", "development"}
)
PLACEHOLDERS = frozenset({"changeme", "change-me", "todo", "xxx", "placeholder", "your-key-here"})


class StartupError(RuntimeError):
    """The startup guard refused the configuration."""


@dataclass(frozen=True)
class Settings:
    """Everything the demo API reads from its environment."""

    database_url: str
    jwt_secret: str
    postmark_token: str = ""
    postmark_url: str = ""
    from_email: str = "no-reply@counsel.example"
    web_app_url: str = "https://app.counsel.example"
    stripe_webhook_secret: str = ""
    cors_origins: tuple[str, ...] = ()
    openai_api_key: str = ""
    app_env: str = "production"
    log_level: str = "info"
    faults: frozenset[str] = field(default_factory=frozenset)
    ai_latency_ms: int = 50
    public_url: str = ""
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    shape: str = DEFAULT_SHAPE
    release: str = DEFAULT_RELEASE
    maintenance_file: str = ""
    maintenance_secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        """Refuse an unknown API shape or release."""
        validate_shape(self.shape)
        validate_release(self.release)

    @property
    def api_shape(self) -> Shape:
        """The API shape served (routes and auth conventions)."""
        return get_shape(self.shape)

    def has(self, fault: str) -> bool:
        """Return True when the named fault is switched on."""
        return fault in self.faults

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (env file merged with process env)."""
        origins = tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
        return cls(
            database_url=env.get("DATABASE_URL", ""),
            jwt_secret=env.get("JWT_SECRET", ""),
            postmark_token=env.get("POSTMARK_API_TOKEN", ""),
            postmark_url=env.get("POSTMARK_API_URL", ""),
            from_email=env.get("FROM_EMAIL", "no-reply@counsel.example"),
            web_app_url=env.get("WEB_APP_URL", "https://app.counsel.example").rstrip("/"),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            cors_origins=origins,
            openai_api_key=env.get("OPENAI_API_KEY", ""),
            app_env=env.get("APP_ENV", "production"),
            log_level=env.get("LOG_LEVEL", "info"),
            faults=frozenset(parse_faults(env.get(FAULTS_ENV))),
            ai_latency_ms=int(env.get("READYCTL_DEMO_AI_LATENCY_MS", "50")),
            public_url=env.get("READYCTL_DEMO_PUBLIC_URL", ""),
            shape=validate_shape(env.get(SHAPE_ENV)),
            release=validate_release(env.get(RELEASE_ENV)),
            maintenance_file=env.get(MAINTENANCE_FILE_ENV, ""),
            maintenance_secret=env.get(MAINTENANCE_SECRET_ENV, ""),
        )


def shannon_bits_per_char(value: str) -> float:
    """Return the Shannon entropy of a string in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def jwt_secret_problem(secret: str) -> str | None:
    """Return why a JWT secret is unacceptable, or None when it is strong enough."""
    if not secret:
        return "JWT_SECRET is missing"
    if secret.lower() in WEAK_SECRETS or len(secret) < 32:
        return "JWT_SECRET is too short (need at least 32 characters)"
    if shannon_bits_per_char(secret) < 3.5 or len(set(secret)) < 16:
        return "JWT_SECRET has too little entropy"
    return None


def check_startup(settings: Settings) -> None:
    """Refuse to start on a missing or weak configuration unless an env fault is on."""
    if settings.faults & ENV_FAULTS:
        return
    problems: list[str] = []
    if not settings.database_url:
        problems.append("DATABASE_URL is missing")
    jwt_problem = jwt_secret_problem(settings.jwt_secret)
    if jwt_problem:
        problems.append(jwt_problem)
    if not settings.openai_api_key:
        problems.append("OPENAI_API_KEY is missing")
    if settings.postmark_token.lower() in PLACEHOLDERS:
        problems.append("POSTMARK_API_TOKEN is a placeholder")
    if problems:
        raise StartupError("refusing to start: " + "; ".join(problems))


def parse_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a dotenv file: KEY=VALUE lines, '#' comments, optional quotes, optional 'export'."""
    values: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def render_env_file(values: Mapping[str, str], *, header: str = "") -> str:
    """Render a dotenv file with a comment line above each documented variable."""
    lines = [f"# {header}", ""] if header else []
    for key, value in values.items():
        desc = ENV_VARS.get(key, ("", ""))[0]
        if desc:
            lines.append(f"# {desc}")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def render_env_example() -> str:
    """Render .env.example documenting every variable with a placeholder value."""
    return render_env_file(
        {k: example for k, (_, example) in ENV_VARS.items()},
        header="Environment of the counseling API (readyctl demo). Copy to .env and fill in.",
    )
