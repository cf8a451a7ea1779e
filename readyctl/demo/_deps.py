"""Shared state and request dependencies of the demo API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from fastapi import Request
from psycopg.rows import dict_row

from readyctl.demo._core import ApiError, JsonLog, Metrics
from readyctl.demo._mailer import Mailer
from readyctl.demo._ratelimit import RateLimiter
from readyctl.demo._tokens import TokenError, Tokens
from readyctl.demo.db import DatabaseUnavailable, Pool, PoolTimeout
from readyctl.demo.settings import Settings
from readyctl.demo.shapes import Shape


@dataclass
class DemoState:
    """Everything a request handler needs; one per app."""

    settings: Settings
    log: JsonLog
    metrics: Metrics
    limiter: RateLimiter
    tokens: Tokens
    pool: Pool | None = None
    mailer: Mailer | None = None
    counsel_requests: int = 0
    counsel_requests_by_token: dict[str, int] = field(default_factory=dict)
    dummy_hash: str | None = None
    dummy_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def has(self, fault: str) -> bool:
        """Return True when the fault is on."""
        return fault in self.settings.faults

    @property
    def shape(self) -> Shape:
        """The API shape served."""
        return self.settings.api_shape


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller."""

    id: str
    org_id: str
    role: str
    email: str
    session_family: str

    @property
    def is_admin(self) -> bool:
        """Return True for organization admins."""
        return self.role == "admin"


def state_of(request: Request) -> DemoState:
    """Return the app's DemoState."""
    return request.app.state.demo


def client_ip(request: Request) -> str:
    """Return the peer address (proxy headers are not trusted)."""
    return request.client.host if request.client else "unknown"


def db_pool(state: DemoState) -> Pool:
    """Return the pool or fail with 503."""
    if state.pool is None:
        raise ApiError(503, "service_unavailable", "Database not configured.")
    return state.pool


async def fetchone(
    conn: psycopg.AsyncConnection, sql: str, params: Sequence[Any] = ()
) -> dict[str, Any] | None:
    """Run a query and return the first row as a dict."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def fetchall(
    conn: psycopg.AsyncConnection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Run a query and return all rows as dicts."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


def unavailable(exc: Exception) -> ApiError:
    """Map pool and connectivity errors to a 503."""
    if isinstance(exc, PoolTimeout):
        return ApiError(
            503,
            "service_unavailable",
            "Database busy; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return ApiError(503, "service_unavailable", "Database unavailable; retry shortly.")


DB_ERRORS = (DatabaseUnavailable, PoolTimeout)


def _unauthorized(message: str, *, invalid: bool) -> ApiError:
    """Return a 401 with a Bearer challenge."""
    challenge = 'Bearer error="invalid_token"' if invalid else 'Bearer realm="counsel-api"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _valid_uuid(value: Any) -> str:
    """Return the canonical UUID string or raise TokenError."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise TokenError("bad subject") from exc


async def current_user(request: Request) -> CurrentUser:
    """Authenticate the bearer access token and load the caller."""
    cached = request.scope.get("demo.user")
    if cached is not None:
        return cached
    state = state_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("A bearer access token is required.", invalid=False)
    try:
        claims = state.tokens.decode(token.strip(), "access")
        user_id = _valid_uuid(claims.get("sub"))
        family = _valid_uuid(claims.get("sid"))
    except TokenError as exc:
        raise _unauthorized("The access token is invalid or expired.", invalid=True) from exc
    try:
        async with db_pool(state).connection() as conn:
            row = await fetchone(
                conn,
                "SELECT u.id::text AS id, u.org_id::text AS org_id, u.role, u.email "
                "FROM users u JOIN refresh_families f ON f.user_id = u.id "
                "WHERE u.id = %s AND f.id = %s AND f.revoked_at IS NULL",
                (user_id, family),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if row is None:
        raise _unauthorized("The session has ended; log in again.", invalid=True)
    user = CurrentUser(row["id"], row["org_id"], row["role"], row["email"], family)
    request.scope["demo.user"] = user
    return user
