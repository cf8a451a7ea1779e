"""The API map of a running API, found by readyctl's own discovery (as `readyctl check` does).

A Context for an environment holding only the base URL, the CA bundle and the test account's
variable names resolves the map (`Context.api()`: OpenAPI anonymously and with the session,
OAuth 2.0 metadata, the login answer); the values are turned back into `api:` settings with
the source of each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from readyctl.apimap import (
    FIELDS,
    KEYS,
    OPENAPI,
    ApiConfig,
    ApiMap,
    HealthSpec,
    LoginSpec,
    RefreshSpec,
    RegisterSpec,
    Route,
    TokenSpec,
)

DEFAULT_USER_VAR = "READYCTL_AUTH_USERNAME"
DEFAULT_PASSWORD_VAR = "READYCTL_AUTH_PASSWORD"
# `api:` keys in the order they are written, as ApiConfig names them
CONFIG_ORDER = FIELDS


class UsageProblem(Exception):
    """A flag's value cannot be used (exit 2, one line)."""


@dataclasses.dataclass
class Discovery:
    """What discovery found at a base URL."""

    base_url: str
    answered: bool
    problem: str | None = None  # why the API did not answer
    values: dict[str, Any] = dataclasses.field(default_factory=dict)  # `api:` settings
    sources: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> source words
    unknown: list[str] = dataclasses.field(default_factory=list)  # KEYS not found
    openapi_at: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    session: str = ""  # how the test account did, in words
    api_map: ApiMap | None = None


def _route_value(route: Route) -> Any:
    return route.path if route.method == "POST" else {"method": route.method, "path": route.path}


def config_value(key: str, value: Any) -> Any:
    """A resolved map value as it is written under `api:`."""
    if isinstance(value, LoginSpec):
        out = value.model_dump(exclude_none=True, exclude_defaults=True)
        out.pop("username_var", None)
        out.pop("password_var", None)
        out["username_var"] = value.username_var
        out["password_var"] = value.password_var
        return out
    if isinstance(value, TokenSpec):
        return value.model_dump()
    if isinstance(value, RefreshSpec):
        return value.model_dump(exclude_none=True, exclude_defaults=True) | {"path": value.path}
    if isinstance(value, RegisterSpec):
        out = value.model_dump(exclude_defaults=True) | {"path": value.path}
        return out["path"] if set(out) == {"path"} else out
    if isinstance(value, Route):
        return _route_value(value)
    if isinstance(value, HealthSpec):
        return value.model_dump(exclude_none=True)
    if key == "lists":
        return [item.model_dump(exclude_none=True) for item in value]
    if key in ("docs", "cacheable"):
        return list(value)
    return value


def map_values(api: ApiMap) -> tuple[dict[str, Any], dict[str, str]]:
    """(`api:` settings, source per setting) of a resolved map, only what it knows."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def source(*keys: str) -> str:
        found = [api.sources[k] for k in keys if api.sources.get(k)]
        words = ", ".join(dict.fromkeys(found)) or "discovery"
        if OPENAPI in found and api.openapi_at:
            words = words.replace(OPENAPI, f"openapi ({api.openapi_at})")
        return words

    for key in CONFIG_ORDER:
        value = getattr(api, key, None)
        if value is None or value == ():
            continue
        if key == "header" and value == "Authorization":
            continue
        if key == "scheme" and value == "Bearer":
            continue
        if key == "health":
            if not (value.live or value.ready):
                continue
            sources[key] = source("health.live", "health.ready")
        elif key == "login" and value.path is None:
            continue
        else:
            sources[key] = source(key)
        values[key] = config_value(key, value)
    ApiConfig.model_validate(values)  # what is written must load
    return values, sources


def unknown_keys(api: ApiMap | None) -> list[str]:
    """The map keys (readyctl.apimap.KEYS) discovery could not determine."""
    out: list[str] = []
    for key in KEYS:
        if api is not None:
            if key == "token" and api.login_known:
                continue
            if key == "login" and api.token is not None:
                continue
            if key == "login" and api.login_known:
                continue
            value = api.get(key)
            if value is not None and value != ():
                continue
        elif key == "token":
            continue  # an alternative to login, never discovered
        out.append(key)
    return out


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text}"[:300]


def discover(
    base_url: str,
    *,
    ca_bundle: Path | None,
    root: Path,
    environ: dict[str, str],
    user_var: str = DEFAULT_USER_VAR,
    password_var: str = DEFAULT_PASSWORD_VAR,
) -> Discovery:
    """Ask the API at `base_url` for its map (bounded: discovery's own 30-second budget)."""
    from pydantic import ValidationError

    from readyctl.config import Config, Environment
    from readyctl.context import AuthError, Context
    from readyctl.redact import Redactor, using_redactor

    api_cfg = None
    if (user_var, password_var) != (DEFAULT_USER_VAR, DEFAULT_PASSWORD_VAR):
        api_cfg = ApiConfig(login=LoginSpec(username_var=user_var, password_var=password_var))
    try:
        env = Environment(
            base_url=base_url, ca_bundle=str(ca_bundle) if ca_bundle else None, api=api_cfg
        )
    except ValidationError as e:
        msg = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise UsageProblem(f"--base-url {base_url!r}: {msg}") from None
    secrets = [v for v in (environ.get(password_var),) if v]
    redactor = Redactor(secrets)
    ctx = Context(
        config=Config(),
        env_name="staging",
        environment=env,
        base_dir=root,
        redactor=redactor,
        environ=environ,
    )
    view = ctx.for_check("readyctl.init", 120, None)
    out = Discovery(base_url=base_url, answered=False)
    try:
        with using_redactor(redactor):
            try:
                client = view.http(timeout=10)
                client.get("/")
            except Exception as e:  # connection, TLS, timeout: the API did not answer
                out.problem = redactor.text(_one_line(e))
                if "CERTIFICATE_VERIFY_FAILED" in str(e) and ca_bundle is None:
                    out.problem += " (a private CA? pass --ca-bundle FILE)"
                out.unknown = unknown_keys(None)
                return out
            out.answered = True
            api = view.api()
            have_user = bool(environ.get(user_var)) and bool(environ.get(password_var))
            if not have_user:
                out.session = (
                    f"{user_var} / {password_var} are not set: discovery was anonymous only "
                    "(what the API shows only to a logged-in user stays unknown)"
                )
            elif not api.login_known:
                out.session = "no login route found: the test account was not used"
            else:
                try:
                    view.auth()
                    out.session = f"logged in as the test account (${user_var})"
                except AuthError as e:
                    out.session = redactor.text(f"the test account could not log in: {e}")
            out.api_map = api
            out.values, out.sources = map_values(api)
            out.unknown = unknown_keys(api)
            out.openapi_at = api.openapi_at
            out.notes = [redactor.text(n) for n in api.notes]
    finally:
        view.close_clients()
        ctx.run_cleanups()
    return out


# -- comparing a configured map with what discovery finds now --------------------------------
def _words(key: str, value: Any) -> str | None:
    """A map value reduced to what identifies the route (None: nothing to compare)."""
    if value is None or value == () or value == []:
        return None
    if isinstance(value, LoginSpec):
        return f"{value.method} {value.path}" if value.path else None
    if isinstance(value, RefreshSpec | Route | RegisterSpec):
        return f"{value.method} {value.path}"
    if key == "refresh" and value == "none":
        return "none"
    if key == "lists":
        return ", ".join(sorted(item.path for item in value))
    if key in ("docs", "cacheable"):
        return ", ".join(sorted(value))
    if isinstance(value, str):
        return value
    return None


def route_differences(configured: ApiConfig, found: ApiMap) -> list[str]:
    """One line per route the config sets that discovery now finds elsewhere."""
    out: list[str] = []
    fields = configured.model_fields_set
    for key in CONFIG_ORDER:
        attr = "register_" if key == "register" else key
        if attr not in fields or key in ("token", "header", "scheme", "cors_origin"):
            continue
        mine = getattr(configured, attr)
        if key == "health":
            pairs = [
                (f"health.{k}", getattr(mine, k), getattr(found.health, k))
                for k in ("live", "ready")
            ]
        else:
            pairs = [(key, mine, getattr(found, key))]
        for name, have, now in pairs:
            a, b = _words(name, have), _words(name, now)
            if a is None or b is None or a == b:
                continue
            src = found.sources.get(name, found.sources.get(name.split(".")[0], "discovery"))
            out.append(f"api.{name}: readyctl.yaml says {a}; discovery finds {b} ({src})")
    return out
