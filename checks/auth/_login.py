"""A fresh login with the API map's login (`api.login`), separate from the run's shared session."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl.apimap import LoginSpec, RouteUnknown
from readyctl.context import Context, login_body, token_paths
from readyctl.result import ErrorReason


@dataclasses.dataclass(frozen=True)
class Login:
    """Tokens of one fresh login (redacted everywhere: they are added to the redactor)."""

    token: str
    refresh_token: str | None
    answer: Answer

    def __repr__(self) -> str:
        return "Login(...)"


def dig(data: Any, path: str | None) -> Any:
    """Follow a dotted path into JSON."""
    if not path:
        return None
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def login_spec(ctx: Context, why: str = "") -> LoginSpec:
    """The map's login with a route, else RouteUnknown("login") (a static token has none)."""
    api = ctx.api()
    spec = api.login
    if spec is None or spec.path is None:
        if not why and api.token is not None:
            why = "a static token (api.token) gives no login to repeat"
        raise RouteUnknown("login", ctx.env_name, why)
    return spec


def credentials(ctx: Context) -> tuple[str, str] | None:
    """(username, password) of the test account, or None (no login in the map, unset)."""
    spec = ctx.api().login
    if spec is None or spec.path is None:
        return None
    user = ctx.environ.get(spec.username_var)
    password = ctx.environ.get(spec.password_var)
    if not user or not password:
        return None
    ctx.redactor.add(password)
    return user, password


def missing_credentials(spec: LoginSpec) -> str:
    """The skip reason when the test account's variables are not set."""
    return f"needs the test account: export {spec.username_var} and {spec.password_var}"


def login_request(
    ctx: Context, client: httpx.Client, username: str, password: str, *, budget_s: float = 15
) -> Answer:
    """Send the map's login (JSON or form, with its constant extras); the answer, any status."""
    spec = login_spec(ctx)
    assert spec.path is not None
    body = login_body(spec, username, password)
    if (spec.body or "json") == "json":
        return fetch(ctx, client, spec.method, spec.path, json_body=body, budget_s=budget_s)
    return fetch(
        ctx,
        client,
        spec.method,
        spec.path,
        content=str(httpx.QueryParams(body)).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        budget_s=budget_s,
    )


def set_cookie(answer: Answer, name: str) -> str | None:
    """The value of cookie `name` set by `answer` (Set-Cookie), or None."""
    for raw in answer.headers.get_list("set-cookie"):
        first = raw.split(";", 1)[0]
        key, sep, value = first.partition("=")
        if sep and key.strip() == name and value.strip():
            return value.strip().strip('"')
    return None


def fresh_login(
    ctx: Context,
    client: httpx.Client,
    username: str | None = None,
    password: str | None = None,
    *,
    refresh_cookie: str | None = None,
) -> Login:
    """Log in again (a new session); TargetError when it does not give a token.

    The tokens are where the map says (api.login.access_token / refresh_token), else found by
    key name in the answer; with `refresh_cookie`, a refresh token only set as that cookie
    counts too.
    """
    spec = login_spec(ctx)
    if username is None or password is None:
        creds = credentials(ctx)
        if creds is None:
            raise TargetError(ErrorReason.CONFIG, missing_credentials(spec))
        username, password = creds
    ctx.redactor.add(password)
    answer = login_request(ctx, client, username, password)
    if not answer.ok:
        raise TargetError(
            ErrorReason.INCONCLUSIVE, f"a fresh login at {spec.path} answered {answer.status}"
        )
    data = answer.json()
    access_path, refresh_path = token_paths(spec, data)
    token = dig(data, access_path)
    if not isinstance(token, str) or not token:
        where = repr(access_path) if access_path else "any access_token/token key"
        raise TargetError(ErrorReason.INCONCLUSIVE, f"the login answer has no token at {where}")
    refresh = dig(data, refresh_path) if refresh_path else None
    if not isinstance(refresh, str) and refresh_cookie:
        refresh = set_cookie(answer, refresh_cookie)
    ctx.redactor.add(token)
    if isinstance(refresh, str):
        ctx.redactor.add(refresh)
    return Login(token, refresh if isinstance(refresh, str) and refresh else None, answer)


def bearer(ctx: Context, token: str) -> dict[str, str]:
    """The auth header carrying `token` with the map's header and scheme."""
    api = ctx.api()
    return {api.header: f"{api.scheme} {token}".strip()}
