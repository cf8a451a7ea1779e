"""A fresh login with the environment's `auth:` settings, separate from the run's shared session."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl.context import Context
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


def credentials(ctx: Context) -> tuple[str, str] | None:
    """(username, password) of the configured test account, or None (token auth, unset)."""
    cfg = ctx.environment.auth
    if cfg is None or cfg.kind != "login":
        return None
    user = ctx.environ.get(cfg.username_var)
    password = ctx.environ.get(cfg.password_var)
    if not user or not password:
        return None
    ctx.redactor.add(password)
    return user, password


def login_request(
    ctx: Context, client: httpx.Client, username: str, password: str, *, budget_s: float = 15
) -> Answer:
    """POST the login form or JSON as configured; the answer, whatever its status."""
    cfg = ctx.environment.auth
    assert cfg is not None
    body = {cfg.username_field: username, cfg.password_field: password}
    if cfg.body_format == "json":
        return fetch(ctx, client, cfg.method, cfg.path, json_body=body, budget_s=budget_s)
    return fetch(
        ctx,
        client,
        cfg.method,
        cfg.path,
        content=str(httpx.QueryParams(body)).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        budget_s=budget_s,
    )


def fresh_login(
    ctx: Context, client: httpx.Client, username: str | None = None, password: str | None = None
) -> Login:
    """Log in again (a new session); TargetError when it does not give a token."""
    cfg = ctx.environment.auth
    if username is None or password is None:
        creds = credentials(ctx)
        if creds is None:
            raise TargetError(ErrorReason.CONFIG, "no login credentials are configured")
        username, password = creds
    ctx.redactor.add(password)
    answer = login_request(ctx, client, username, password)
    assert cfg is not None
    if not answer.ok:
        raise TargetError(
            ErrorReason.INCONCLUSIVE, f"a fresh login at {cfg.path} answered {answer.status}"
        )
    data = answer.json()
    token = dig(data, cfg.token_path)
    if not isinstance(token, str) or not token:
        raise TargetError(
            ErrorReason.INCONCLUSIVE, f"the login answer has no token at {cfg.token_path!r}"
        )
    refresh = dig(data, cfg.refresh_token_path) if cfg.refresh_token_path else None
    ctx.redactor.add(token)
    if isinstance(refresh, str):
        ctx.redactor.add(refresh)
    return Login(token, refresh if isinstance(refresh, str) else None, answer)


def bearer(ctx: Context, token: str) -> dict[str, str]:
    """The auth header carrying `token` with the configured scheme."""
    cfg = ctx.environment.auth
    header = cfg.header if cfg else "Authorization"
    scheme = cfg.scheme if cfg else "Bearer"
    return {header: f"{scheme} {token}".strip()}
