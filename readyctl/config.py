"""readyctl.yaml: pydantic models, `${VAR}` interpolation, environments and their inheritance."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from readyctl.check import Severity
from readyctl.errors import ConfigError

DEFAULT_CONFIG_NAME = "readyctl.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_REQUIRED = [
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
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def _default_rules() -> dict[str, EnvRule]:
    return {
        "DATABASE_URL": EnvRule(type="postgres_dsn", secret=True),
        "JWT_SECRET": EnvRule(min_length=32, secret=True, entropy_min=3.0),
        "OPENAI_API_KEY": EnvRule(min_length=20, secret=True),
        "POSTMARK_API_TOKEN": EnvRule(min_length=20, secret=True),
        "FROM_EMAIL": EnvRule(type="email"),
        "WEB_APP_URL": EnvRule(type="url"),
    }


class EnvConfig(_Model):
    """What environment validation expects (seed item 1)."""

    required: list[str] = Field(default_factory=lambda: list(DEFAULT_REQUIRED))
    rules: dict[str, EnvRule] = Field(default_factory=_default_rules)
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


class AuthConfig(_Model):
    """How readyctl gets a session on the target."""

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
    faults: list[str] = Field(default_factory=list)
    ca_bundle: str | None = None
    auth: AuthConfig | None = None
    aws: AwsConfig | None = None
    instances: int = Field(default=1, ge=1)

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

    @property
    def require_severity(self) -> Severity | None:
        """`require` as a severity (None for `none`)."""
        return None if self.require == "none" else Severity(self.require)


class ScoringConfig(_Model):
    """Weights by severity and per check (id globs)."""

    weights: dict[Severity, float] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: 10,
            Severity.HIGH: 5,
            Severity.MEDIUM: 3,
            Severity.LOW: 1,
            Severity.INFO: 0,
        }
    )
    check_weights: dict[str, float] = Field(default_factory=dict)


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
        key = ".".join(str(p) for p in loc)
        return ConfigError(f"{self.where(*loc)}: {key}: {message}")

    def environment(self, name: str | None) -> tuple[str, Environment]:
        """Resolve the environment to run against (flag, default, or the only one)."""
        envs = self.config.environments
        if name is None:
            name = self.config.default_environment
        if name is None:
            if len(envs) == 1:
                name = next(iter(envs))
            elif not envs:
                return "default", Environment()
            else:
                raise ConfigError(
                    f"{self.where('environments')}: several environments "
                    f"({', '.join(sorted(envs))}); pick one with --env NAME"
                )
        if name not in envs:
            known = ", ".join(sorted(envs)) or "none defined"
            raise ConfigError(
                f"{self.where('environments')}: unknown environment {name!r} (known: {known}); "
                "fix --env or add it under environments:"
            )
        env = envs[name]
        if env.env_file:
            path = self.resolve_path(env.env_file)
            if not path.is_file():
                raise self.error(
                    ("environments", name, "env_file"),
                    f"env file {env.env_file} does not exist; create it or fix the path",
                )
        return name, env

    def resolve_path(self, p: str) -> Path:
        """A config-relative path made absolute."""
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else self.base_dir / path


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
                    if str(k.value) == str(part):
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


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: Any, environ: Mapping[str, str], loc: tuple[str | int, ...] = ()) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; a missing VAR is an error."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group("name"), m.group("default")
            got = environ.get(name)
            if got is None or (got == "" and default is not None):
                if default is not None:
                    return default
                raise _InterpolationError(loc, name)
            return got

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, environ, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, (*loc, i)) for i, v in enumerate(value)]
    return value


class _InterpolationError(Exception):
    def __init__(self, loc: tuple[str | int, ...], name: str) -> None:
        super().__init__(name)
        self.loc = loc
        self.name = name


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _resolve_inheritance(raw: dict[str, Any], lines: _LineMap, path: Path) -> dict[str, Any]:
    envs = raw.get("environments")
    if not isinstance(envs, dict):
        return raw
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        return raw
    resolved: dict[str, Any] = {}

    def resolve(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name in resolved:
            return resolved[name]
        body = envs.get(name)
        if not isinstance(body, dict):
            body = {} if body is None else body
            if not isinstance(body, dict):
                return body  # let validation report the wrong type
        parent = body.get("extends")
        if parent is not None:
            if parent in seen:
                line = lines.line(("environments", name, "extends"))
                raise ConfigError(
                    f"{path}:{line}: environments.{name}.extends: inheritance loop through "
                    f"{' -> '.join((*seen, parent))}"
                )
            if parent not in envs:
                line = lines.line(("environments", name, "extends"))
                raise ConfigError(
                    f"{path}:{line}: environments.{name}.extends: unknown environment "
                    f"{parent!r}; known: {', '.join(sorted(envs))}"
                )
            merged = _merge(resolve(parent, (*seen, name)), body)
        else:
            merged = _merge(base, body)
        resolved[name] = merged
        return merged

    for name in envs:
        resolve(name, (name,))
    out = dict(raw)
    out["environments"] = resolved
    return out


def _format_validation(err: ValidationError, lines: _LineMap, path: Path) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc)
    line = lines.line(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        msg = f"unknown key {loc[-1]!r}" + (f" in {'.'.join(map(str, parent))}" if parent else "")
        msg += "; remove it or check its spelling (readyctl schema lists the keys)"
    else:
        msg = first["msg"]
        if "input" in first and kind not in ("missing",):
            shown = repr(first["input"])
            if len(shown) < 60:
                msg += f" (got {shown})"
    more = len(err.errors()) - 1
    tail = f" [+{more} more]" if more > 0 else ""
    return f"{path}:{line}: {key}: {msg}{tail}"


def _parse_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML file; errors are one line."""
    try:
        loader = _Loader(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "?"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"{path}:{line}: YAML syntax error: {problem}; fix the indentation or quoting"
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
        key = ".".join(str(p) for p in e.loc)
        raise ConfigError(
            f"{path}:{lines.line(e.loc)}: {key}: environment variable {e.name} is not set; "
            f"export it or write ${{{e.name}:-default}}"
        ) from None
    raw = _resolve_inheritance(raw, lines, path)
    try:
        config = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, lines, path)) from None
    if config.waivers_file:
        config = config.model_copy(
            update={"waivers": [*config.waivers, *_load_waivers_file(path, config.waivers_file)]}
        )
    return LoadedConfig(config, path.resolve(), lines)


def _load_waivers_file(config_path: Path, name: str) -> list[Waiver]:
    """Read a separate waivers file; any problem is a one-line ConfigError."""
    path = Path(os.path.expanduser(name))
    if not path.is_absolute():
        path = config_path.parent / path
    if not path.is_file():
        raise ConfigError(
            f"{path}: waivers file not found (named by waivers_file in {config_path})"
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
            key = ".".join(str(p) for p in loc)
            what = (
                f"unknown key {first['loc'][-1]!r}"
                if first["type"] == "extra_forbidden"
                else first["msg"]
            )
            raise ConfigError(f"{path}:{lines.line(loc)}: {key}: {what}") from None
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
