"""The API map: where a target's routes are and how to get a session on it.

One map per environment (`api:` in readyctl.yaml). A value comes from the config, from
discovery (an OpenAPI document, OAuth 2.0 server metadata, the login answer) or, only for the
managed counseling demo, from the demo's defaults; explicit config always wins. Checks read
routes only from here (`ctx.api()`); a check whose route is unknown skips naming the key to set
(`RouteUnknown`), it never guesses a path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# where a value came from, shown beside it in `check --plan`, the terminal and the reports
CONFIG = "config"
OPENAPI = "openapi"
DEFAULT = "default"
DEPRECATED_AUTH = "auth: (deprecated)"
OAUTH_METADATA = "oauth metadata"
LOGIN_ANSWER = "login answer"

_PATH = re.compile(r"^/[^\s]*$")


def _path(v: Any) -> Any:
    if isinstance(v, str) and not _PATH.match(v):
        raise ValueError(f"must be a path starting with '/' (got {v!r})")
    return v


ApiPath = Annotated[str, AfterValidator(_path)]

_PAGE = re.compile(r"^(/|https?://[^\s/]+(/|$))[^\s]*$")


def _page(v: Any) -> Any:
    if isinstance(v, str) and not _PAGE.match(v):
        raise ValueError(f"must be a path starting with '/' or an http(s) URL (got {v!r})")
    return v


# a web page: a path on the target or a URL elsewhere (a policy on the company's website)
PageUrl = Annotated[str, AfterValidator(_page)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Route(_Model):
    """An endpoint: method and path (a bare string means `POST <path>` where a body is sent)."""

    method: str = "POST"
    path: ApiPath

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        v = v.upper()
        if v not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError("must be GET, POST, PUT, PATCH or DELETE")
        return v


def _route(v: Any, method: str | None = None) -> Any:
    if isinstance(v, str):
        return {"path": v} if method is None else {"method": method, "path": v}
    return v


class LoginSpec(_Model):
    """How readyctl logs in as the test account."""

    method: str = "POST"
    path: ApiPath | None = Field(None, description="the login route")
    body: Literal["json", "form"] | None = Field(
        None, description="json or form (x-www-form-urlencoded); default json"
    )
    username_field: str | None = Field(None, description="default email (json) / username (form)")
    password_field: str | None = Field(None, description="default password")
    username_var: str = Field("READYCTL_AUTH_USERNAME", description="variable with the username")
    password_var: str = Field("READYCTL_AUTH_PASSWORD", description="variable with the password")
    extra: dict[str, str] = Field(
        default_factory=dict, description="constant fields sent too (grant_type: password)"
    )
    access_token: str | None = Field(
        None, description="dotted path of the access token in the answer (default: found)"
    )
    refresh_token: str | None = Field(
        None, description="dotted path of the refresh token (default: found; none: no refresh)"
    )


class TokenSpec(_Model):
    """A static token instead of a login."""

    var: str = Field("READYCTL_AUTH_TOKEN", description="variable holding the token")


class RefreshSpec(_Model):
    """The refresh endpoint and how the refresh token is sent."""

    method: str = "POST"
    path: ApiPath
    send: Literal["json", "form", "header", "cookie"] = Field(
        "json", description="json or form field, Authorization header, or a cookie"
    )
    field: str = Field("refresh_token", description="the JSON/form field or cookie name")
    access_token: str | None = Field(None, description="dotted path of the new access token")
    refresh_token: str | None = Field(None, description="dotted path of the new refresh token")


class RegisterSpec(_Model):
    """The sign-up endpoint."""

    method: str = "POST"
    path: ApiPath
    username_field: str = "email"
    password_field: str = "password"


class ListSpec(_Model):
    """A list endpoint and its page parameters."""

    path: ApiPath
    page_param: str | None = Field(None, description="page number parameter (page=1, 2, ...)")
    size_param: str | None = Field(None, description="page size parameter (limit, size, ...)")
    offset_param: str | None = Field(None, description="offset parameter (offset, skip, ...)")
    items: str | None = Field(None, description='dotted path of the rows ("" : the body)')
    total: str | None = Field(None, description="dotted path of the total count")


class HealthSpec(_Model):
    """Health probes."""

    live: ApiPath | None = None
    ready: ApiPath | None = None


class ApiConfig(_Model):
    """`api:` of an environment: the target's routes (every key optional)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    openapi: str = Field(
        "auto",
        description="auto (try the usual places), off, a file in the repository or a URL",
    )
    prefix: ApiPath | None = Field(None, description="version prefix of the API routes (/v1)")
    login: LoginSpec | None = None
    token: TokenSpec | None = None
    header: str | None = Field(None, description="auth header (default Authorization)")
    scheme: str | None = Field(None, description="auth scheme (default Bearer)")
    me: ApiPath | None = Field(None, description="a protected GET route answering the current user")
    refresh: RefreshSpec | Literal["none"] | None = Field(
        None, description="the refresh endpoint, or none when the API has no refresh flow"
    )
    logout: Route | None = None
    # `register` itself would shadow pydantic's BaseModel.register (ABC)
    register_: RegisterSpec | None = Field(None, alias="register")
    password_reset: Route | None = Field(None, description="the password-reset request route")
    lists: list[ListSpec] | None = Field(None, description="list endpoints with page parameters")
    json_endpoint: Route | None = Field(None, description="an endpoint taking a JSON body")
    health: HealthSpec | None = None
    docs: list[ApiPath] | None = Field(None, description="API documentation paths (UI and JSON)")
    metrics: ApiPath | None = Field(None, description="the metrics endpoint")
    cacheable: list[ApiPath] | None = Field(
        None, description="public GET routes whose answers should be cacheable (http.cache_headers)"
    )
    cors_origin: str | None = Field(None, description="an origin the API must accept")
    verify_email: Route | None = Field(
        None, description="the email-verification route taking the emailed token (POST)"
    )
    privacy_export: Route | None = Field(
        None, description="the caller's own data export, GDPR Art. 15/20 (a path means GET)"
    )
    account_delete: Route | None = Field(
        None, description="the caller's account deletion, GDPR Art. 17 (a path means DELETE)"
    )
    privacy_policy: PageUrl | None = Field(
        None, description="the privacy policy page (a path on the target or a URL)"
    )
    terms: PageUrl | None = Field(
        None, description="the terms of service page (a path on the target or a URL)"
    )

    @field_validator(
        "logout", "json_endpoint", "password_reset", "register_", "verify_email", mode="before"
    )
    @classmethod
    def _routes(cls, v: Any) -> Any:
        return _route(v)

    @field_validator("privacy_export", mode="before")
    @classmethod
    def _get_route(cls, v: Any) -> Any:
        return _route(v, "GET")

    @field_validator("account_delete", mode="before")
    @classmethod
    def _delete_route(cls, v: Any) -> Any:
        return _route(v, "DELETE")

    @field_validator("refresh", mode="before")
    @classmethod
    def _refresh(cls, v: Any) -> Any:
        if v is False or (isinstance(v, str) and v.lower() in ("none", "off", "false")):
            return "none"
        return _route(v)

    @model_validator(mode="after")
    def _one_auth(self) -> ApiConfig:
        if self.login is not None and self.token is not None:
            raise ValueError("give either login or token, not both")
        return self


# -- the resolved map ---------------------------------------------------------------------
# Keys of the map, in display order, with the setting a user writes to fill each.
KEYS = (
    "prefix",
    "login",
    "token",
    "me",
    "refresh",
    "logout",
    "register",
    "password_reset",
    "lists",
    "json_endpoint",
    "health.live",
    "health.ready",
    "docs",
    "metrics",
    "cacheable",
    "cors_origin",
    "verify_email",
    "privacy_export",
    "account_delete",
    "privacy_policy",
    "terms",
)


class RouteUnknown(Exception):
    """A check needs a route the map does not have: the check is skipped, naming the key."""

    def __init__(self, key: str, env_name: str, why: str = "") -> None:
        self.key = key
        self.env_name = env_name
        self.why = why
        super().__init__(self.message)

    @property
    def setting(self) -> str:
        """The readyctl.yaml key that would make the check runnable."""
        return f"environments.{self.env_name}.api.{self.key}"

    @property
    def message(self) -> str:
        """The skip reason: which route is unknown and how to give it."""
        extra = f" ({self.why})" if self.why else ""
        return (
            f"route unknown: the API map has no {self.key}{extra}; set {self.setting} "
            "or publish an OpenAPI document (api.openapi)"
        )


@dataclasses.dataclass(frozen=True)
class ApiMap:
    """The resolved map: typed values plus where each came from."""

    env_name: str
    prefix: str | None = None
    login: LoginSpec | None = None
    token: TokenSpec | None = None
    header: str = "Authorization"
    scheme: str = "Bearer"
    me: str | None = None
    refresh: RefreshSpec | Literal["none"] | None = None
    logout: Route | None = None
    register: RegisterSpec | None = None
    password_reset: Route | None = None
    lists: tuple[ListSpec, ...] = ()
    json_endpoint: Route | None = None
    health: HealthSpec = dataclasses.field(default_factory=HealthSpec)
    docs: tuple[str, ...] = ()
    metrics: str | None = None
    cacheable: tuple[str, ...] = ()
    cors_origin: str | None = None
    verify_email: Route | None = None
    privacy_export: Route | None = None
    account_delete: Route | None = None
    privacy_policy: str | None = None
    terms: str | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    openapi_at: str | None = None  # where the OpenAPI document was found
    notes: tuple[str, ...] = ()

    # -- what checks call ---------------------------------------------------------------
    def need(self, key: str, why: str = "") -> Any:
        """The value at `key` (dotted: `health.ready`), or raise RouteUnknown naming it."""
        value = self.get(key)
        if value is None or value == () or value == []:
            raise RouteUnknown(key, self.env_name, why)
        return value

    def get(self, key: str) -> Any:
        """The value at `key`, None when unknown."""
        head, _, rest = key.partition(".")
        value = getattr(self, head, None)
        if rest and value is not None:
            value = getattr(value, rest, None)
        return value

    @property
    def login_known(self) -> bool:
        """A login route or a static token is known."""
        return self.token is not None or (self.login is not None and self.login.path is not None)

    @property
    def has_refresh(self) -> bool | None:
        """True: a refresh route is known; False: the API has none; None: unknown."""
        if self.refresh == "none":
            return False
        return True if isinstance(self.refresh, RefreshSpec) else None

    def public_paths(self) -> list[str]:
        """Paths that answer without a session: the health probes (deduplicated)."""
        return list(dict.fromkeys(p for p in (self.health.live, self.health.ready) if p))

    def describe(self) -> Iterator[tuple[str, str, str]]:
        """(key, value as text, source) per known key, in display order."""
        for key in KEYS:
            value = self.get(key)
            if value is None or value == ():
                continue
            yield key, _text(value), self.sources.get(key, self.sources.get(key.split(".")[0], ""))

    def to_dict(self) -> dict[str, Any]:
        """JSON form for reports: {key: {value, source}} plus where OpenAPI was found."""
        return {
            "values": {k: {"value": v, "source": s} for k, v, s in self.describe()},
            "openapi": self.openapi_at,
            "notes": list(self.notes),
        }


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Route):
        return f"{value.method} {value.path}"
    if isinstance(value, LoginSpec):
        body = value.body or "json"
        fields = f"{value.username_field or '?'}/{value.password_field or 'password'}"
        return f"{value.method} {value.path} ({body}: {fields})"
    if isinstance(value, TokenSpec):
        return f"static token from ${value.var}"
    if isinstance(value, RefreshSpec):
        how = {"header": "Authorization header", "cookie": f"cookie {value.field}"}.get(
            value.send, f"{value.send} field {value.field}"
        )
        return f"{value.method} {value.path} (refresh token by {how})"
    if isinstance(value, RegisterSpec):
        return f"{value.method} {value.path}"
    if isinstance(value, tuple | list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, ListSpec):
        params = [p for p in (value.page_param, value.size_param, value.offset_param) if p]
        return f"{value.path}" + (f" ({', '.join(params)})" if params else "")
    return str(value)


# -- merging ------------------------------------------------------------------------------
# ApiConfig's map keys, in the order they are shown and written (`readyctl init` too)
FIELDS = (
    "prefix",
    "login",
    "token",
    "header",
    "scheme",
    "me",
    "refresh",
    "logout",
    "register",
    "password_reset",
    "lists",
    "json_endpoint",
    "health",
    "docs",
    "metrics",
    "cacheable",
    "cors_origin",
    "verify_email",
    "privacy_export",
    "account_delete",
    "privacy_policy",
    "terms",
)


class Builder:
    """Layers of values, the first layer to set a key wins (config, then discovery, ...)."""

    def __init__(self, env_name: str) -> None:
        self.env_name = env_name
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []
        self.openapi_at: str | None = None
        self.hidden = False  # no public OpenAPI document: try again with the session
        self.budget: Any = None  # discovery's time budget, shared by its passes

    def add(self, layer: Mapping[str, Any] | ApiConfig | None, source: str) -> None:
        """Fill keys still unset from `layer` (a validated ApiConfig or a raw mapping)."""
        if layer is None:
            return
        if not isinstance(layer, ApiConfig):
            try:
                layer = ApiConfig.model_validate({k: v for k, v in layer.items() if v is not None})
            except ValueError as e:
                self.notes.append(f"{source}: ignored an invalid value ({str(e).splitlines()[0]})")
                return
        for name in FIELDS:
            value = getattr(layer, "register_" if name == "register" else name)
            if value is None:
                continue
            if name == "health":
                current = self.values.get("health") or HealthSpec()
                merged = {
                    "live": current.live or value.live,
                    "ready": current.ready or value.ready,
                }
                for sub in ("live", "ready"):
                    if getattr(current, sub) is None and getattr(value, sub) is not None:
                        self.sources[f"health.{sub}"] = source
                self.values["health"] = HealthSpec(**merged)
                continue
            if name == "login" and "login" in self.values and isinstance(value, LoginSpec):
                # discovery may complete a configured login (the route, the token fields)
                had_path = self.values["login"].path is not None
                self.values["login"] = _complete(self.values["login"], value)
                if not had_path and self.values["login"].path is not None:
                    self.sources["login"] = source  # the route itself came from here
                continue
            if name in self.values:
                continue
            if name in ("login", "token") and ("login" in self.values or "token" in self.values):
                continue
            self.values[name] = value
            self.sources[name] = source

    def build(self) -> ApiMap:
        """The resolved map."""
        v = dict(self.values)
        sources = dict(self.sources)
        if "docs" not in v and self.openapi_at and self.openapi_at.startswith("/"):
            v["docs"] = [self.openapi_at]  # where the document was found is a docs path
            sources["docs"] = OPENAPI
        return ApiMap(
            env_name=self.env_name,
            prefix=v.get("prefix"),
            login=v.get("login"),
            token=v.get("token"),
            header=v.get("header") or "Authorization",
            scheme=v.get("scheme") if v.get("scheme") is not None else "Bearer",
            me=v.get("me"),
            refresh=v.get("refresh"),
            logout=v.get("logout"),
            register=v.get("register"),
            password_reset=v.get("password_reset"),
            lists=tuple(v.get("lists") or ()),
            json_endpoint=v.get("json_endpoint"),
            health=v.get("health") or HealthSpec(),
            docs=tuple(v.get("docs") or ()),
            metrics=v.get("metrics"),
            cacheable=tuple(v.get("cacheable") or ()),
            cors_origin=v.get("cors_origin"),
            verify_email=v.get("verify_email"),
            privacy_export=v.get("privacy_export"),
            account_delete=v.get("account_delete"),
            privacy_policy=v.get("privacy_policy"),
            terms=v.get("terms"),
            sources=sources,
            openapi_at=self.openapi_at,
            notes=tuple(self.notes),
        )


def _complete(have: LoginSpec, more: LoginSpec) -> LoginSpec:
    """A configured login with the gaps (body, fields, token paths) filled from discovery."""
    if have.path is not None and more.path is not None and have.path != more.path:
        return have
    update: dict[str, Any] = {"extra": more.extra} if more.extra and not have.extra else {}
    update |= {
        k: getattr(more, k)
        for k in (
            "path",
            "body",
            "username_field",
            "password_field",
            "access_token",
            "refresh_token",
        )
        if getattr(have, k) is None and getattr(more, k) is not None
    }
    return have.model_copy(update=update) if update else have


def from_deprecated_auth(auth: Any) -> ApiConfig | None:
    """The old `auth:` block as a map layer (login or token, header, scheme)."""
    if auth is None:
        return None
    data: dict[str, Any] = {"header": auth.header, "scheme": auth.scheme}
    if auth.kind == "token":
        data["token"] = {"var": auth.token_var or "READYCTL_AUTH_TOKEN"}
    else:
        data["login"] = {
            "method": auth.method,
            "path": auth.path,
            "body": auth.body_format,
            "username_field": auth.username_field,
            "password_field": auth.password_field,
            "username_var": auth.username_var,
            "password_var": auth.password_var,
            "access_token": auth.token_path,
            "refresh_token": auth.refresh_token_path or "none",
        }
    return ApiConfig.model_validate(data)


# -- finding tokens in a login answer ------------------------------------------------------
_ACCESS = re.compile(r"^(access_?token|accesstoken|token|jwt|id_?token|auth_?token)$", re.I)
_REFRESH = re.compile(r"^refresh_?token$", re.I)


def find_token_paths(data: Any, *, depth: int = 3) -> tuple[str | None, str | None]:
    """(access token path, refresh token path) in a JSON login answer, by key name."""
    access: str | None = None
    refresh: str | None = None

    def walk(node: Any, prefix: str, level: int) -> None:
        nonlocal access, refresh
        if level > depth or not isinstance(node, dict):
            return
        for key, value in list(node.items())[:200]:
            path = f"{prefix}{key}"
            if isinstance(value, str) and value:
                if refresh is None and _REFRESH.match(str(key)):
                    refresh = path
                elif access is None and _ACCESS.match(str(key)):
                    access = path
            elif isinstance(value, dict):
                walk(value, f"{path}.", level + 1)

    walk(data, "", 0)
    return access, refresh
