"""Counseling endpoints under <prefix>/counsel: sessions, messages and the simulated AI reply."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from readyctl.demo._core import ApiError
from readyctl.demo._counsel_ai import assess, compose_reply
from readyctl.demo._deps import (
    DB_ERRORS,
    CurrentUser,
    DemoState,
    current_user,
    db_pool,
    fetchall,
    fetchone,
    state_of,
    unavailable,
)
from readyctl.demo._ratelimit import COUNSEL_MESSAGE
from readyctl.demo._routing import ShapeRoutes
from readyctl.demo.shapes import Shape

PAGE_CAP = 100
SLOW_COUNSEL_S = 3.0


async def count_counsel_request(request: Request) -> None:
    """Count counsel requests; under error-burst 1 in 5 per access token fails with a 500.

    The count is kept per access token (the 1st, 6th, 11th ... request of each token fails),
    so every client that talks to the counsel API sees exactly its own 20%, whatever other
    clients do at the same time.
    """
    state = state_of(request)
    state.counsel_requests += 1
    if not state.has("error-burst"):
        return
    key = hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()
    n = state.counsel_requests_by_token.get(key, 0) + 1
    state.counsel_requests_by_token[key] = n
    if n % 5 == 1:
        raise RuntimeError("simulated upstream failure (error-burst)")


class SessionIn(BaseModel):
    """Body of POST /v1/counsel/sessions."""

    title: str | None = Field(default=None, max_length=200)


class SessionInV2(SessionIn):
    """Body of POST /v1/counsel/sessions in release v2: an optional mood."""

    mood: str | None = Field(default=None, max_length=40)


class MessageIn(BaseModel):
    """Body of POST /v1/counsel/sessions/{id}/messages."""

    content: str = Field(min_length=1, max_length=4000)


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class SessionOut(BaseModel):
    """A counseling session."""

    id: str
    org_id: str
    user_id: str
    title: str | None
    status: str
    created_at: Timestamp
    updated_at: Timestamp
    last_message_at: Timestamp | None


class MessageOut(BaseModel):
    """A message of a session (the user's or the counselor's)."""

    id: str
    role: str
    content: str
    crisis: bool
    grief: bool
    created_at: Timestamp


class Resource(BaseModel):
    """A crisis resource."""

    name: str
    contact: str
    url: str


class ReplyOut(MessageOut):
    """The counselor's reply, with the crisis resources it points to."""

    resources: list[Resource]


class SessionDetailOut(SessionOut):
    """A session with its latest 100 messages."""

    messages: list[MessageOut]


class ExchangeOut(BaseModel):
    """The stored message, the counselor's reply and what the message was assessed as."""

    message: MessageOut
    reply: ReplyOut
    crisis: bool
    grief: bool
    resources: list[Resource]


class SessionPage(BaseModel):
    """One page of the caller's sessions (alt shapes), newest first."""

    results: list[SessionOut]
    count: int = Field(description="sessions in total")
    page: int
    size: int = Field(description="sessions per page (at most 100)")


SESSION_COLUMNS = (
    "s.id::text AS id, s.org_id::text AS org_id, s.user_id::text AS user_id, s.title, s.status, "
    "s.created_at, s.updated_at, s.last_message_at"
)

V2_SESSION_COLUMNS = SESSION_COLUMNS + ", s.mood"


def _columns(state: DemoState) -> str:
    """The session columns the running release selects (v2 adds mood)."""
    return SESSION_COLUMNS if state.settings.release == "v1" else V2_SESSION_COLUMNS


def _session_json(row: dict[str, Any]) -> dict[str, Any]:
    """Serialise a session row (with its mood when the release selects it)."""
    data = _session_json_v1(row)
    if "mood" in row:
        data["mood"] = row["mood"]
    return data


def _session_json_v1(row: dict[str, Any]) -> dict[str, Any]:
    """Serialise the session columns every release has."""
    return {
        "id": row["id"],
        "org_id": row["org_id"],
        "user_id": row["user_id"],
        "title": row["title"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "last_message_at": row["last_message_at"].isoformat() if row["last_message_at"] else None,
    }


def _message_json(row: dict[str, Any]) -> dict[str, Any]:
    """Serialise a message row."""
    return {
        "id": row["id"],
        "role": row["role"],
        "content": row["content"],
        "crisis": row["crisis"],
        "grief": row["grief"],
        "created_at": row["created_at"].isoformat(),
    }


async def _load_session(request: Request, user: CurrentUser, session_id: uuid.UUID) -> Any:
    """Load a session the caller may see, or raise 404."""
    state = state_of(request)
    if state.has("cross-tenant"):
        scope_sql, params = "s.id = %s", (str(session_id),)
    else:
        scope_sql = "s.id = %s AND s.org_id = %s AND (s.user_id = %s OR %s)"
        params = (str(session_id), user.org_id, user.id, user.is_admin)
    try:
        async with db_pool(state).connection() as conn:
            row = await fetchone(
                conn,
                f"SELECT {_columns(state)} FROM counseling_sessions s WHERE {scope_sql}",
                params,
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if row is None:
        raise ApiError(404, "not_found", "Session not found.")
    return row


async def create_session(
    body: SessionIn, request: Request, user: CurrentUser = Depends(current_user)
) -> dict[str, Any]:
    """Create a session for the caller."""
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn:
            row = await fetchone(
                conn,
                "INSERT INTO counseling_sessions AS s (org_id, user_id, title, status) "
                f"VALUES (%s, %s, %s, 'active') RETURNING {SESSION_COLUMNS}",
                (user.org_id, user.id, body.title or "New session"),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    assert row is not None
    return _session_json(row)


async def create_session_v2(
    body: SessionInV2, request: Request, user: CurrentUser = Depends(current_user)
) -> dict[str, Any]:
    """Create a session for the caller, with its mood (release v2; bad-release breaks it)."""
    state = state_of(request)
    if state.has("bad-release"):
        raise RuntimeError("simulated regression in release v2 (bad-release)")
    try:
        async with db_pool(state).connection() as conn:
            row = await fetchone(
                conn,
                "INSERT INTO counseling_sessions AS s (org_id, user_id, title, status, mood) "
                f"VALUES (%s, %s, %s, 'active', %s) RETURNING {V2_SESSION_COLUMNS}",
                (user.org_id, user.id, body.title or "New session", body.mood),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    assert row is not None
    return _session_json(row)


async def _session_rows(
    state: DemoState, user: CurrentUser, limit: int, offset: int, status: str | None
) -> tuple[list[dict[str, Any]], int]:
    """One page of the caller's sessions, newest first, and how many there are."""
    where = "s.user_id = %s" + (" AND s.status = %s" if status else "")
    params: tuple[Any, ...] = (user.id, status) if status else (user.id,)
    try:
        async with db_pool(state).connection() as conn:
            rows = await fetchall(
                conn,
                f"SELECT {_columns(state)} FROM counseling_sessions s WHERE {where} "
                "ORDER BY s.created_at DESC, s.id LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            total = await fetchone(
                conn, f"SELECT count(*) AS n FROM counseling_sessions s WHERE {where}", params
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    return rows, int(total["n"]) if total else 0


def _capped(state: DemoState, size: int) -> int:
    """The page size served: at most PAGE_CAP unless the no-pagination-cap fault is on."""
    return size if state.has("no-pagination-cap") else min(size, PAGE_CAP)


async def list_sessions(
    request: Request,
    limit: int = Query(20, ge=1, le=1_000_000),
    offset: int = Query(0, ge=0, le=1_000_000),
    status: Literal["active", "closed", "archived"] | None = None,
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Return one page of the caller's sessions, newest first; limit is capped at 100."""
    state = state_of(request)
    effective = _capped(state, limit)
    rows, n = await _session_rows(state, user, effective, offset, status)
    next_offset = offset + len(rows) if offset + len(rows) < n else None
    return {
        "items": [_session_json(r) for r in rows],
        "limit": effective,
        "offset": offset,
        "total": n,
        "next_offset": next_offset,
    }


async def list_sessions_paged(
    request: Request,
    page: int = Query(1, ge=1, le=100_000, description="page number, from 1"),
    size: int = Query(20, ge=1, le=1_000_000, description="sessions per page (capped at 100)"),
    status: Literal["active", "closed", "archived"] | None = None,
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Return one page of the caller's sessions, newest first; size is capped at 100."""
    state = state_of(request)
    effective = _capped(state, size)
    rows, n = await _session_rows(state, user, effective, (page - 1) * effective, status)
    return {
        "results": [_session_json(r) for r in rows],
        "count": n,
        "page": page,
        "size": effective,
    }


async def get_session(
    session_id: uuid.UUID, request: Request, user: CurrentUser = Depends(current_user)
) -> dict[str, Any]:
    """Return a session of the caller's organization with its latest 100 messages."""
    row = await _load_session(request, user, session_id)
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn:
            messages = await fetchall(
                conn,
                "SELECT id::text AS id, role, content, crisis, grief, created_at "
                "FROM counseling_messages WHERE session_id = %s ORDER BY created_at, id LIMIT 100",
                (row["id"],),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    data = _session_json(row)
    data["messages"] = [_message_json(m) for m in messages]
    return data


async def post_message(
    session_id: uuid.UUID,
    body: MessageIn,
    request: Request,
    response: Response,
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Store the message, wait for the simulated AI and store its reply."""
    state = state_of(request)
    for key, value in state.limiter.hit(COUNSEL_MESSAGE, user.id).items():
        response.headers[key] = value
    row = await _load_session(request, user, session_id)
    if row["status"] != "active":
        raise ApiError(409, "session_closed", "The session is closed.")
    found = assess(body.content, detection=not state.has("crisis-detection-off"))
    latency = SLOW_COUNSEL_S if state.has("slow-counsel") else state.settings.ai_latency_ms / 1000
    if latency > 0:
        await asyncio.sleep(latency)
    reply = compose_reply(body.content, found)
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            mine = await fetchone(
                conn,
                "INSERT INTO counseling_messages (session_id, role, content, crisis, grief) "
                "VALUES (%s, 'user', %s, %s, %s) "
                "RETURNING id::text AS id, role, content, crisis, grief, created_at",
                (row["id"], body.content, found.crisis, found.grief),
            )
            theirs = await fetchone(
                conn,
                "INSERT INTO counseling_messages (session_id, role, content, crisis, grief, "
                "created_at) VALUES (%s, 'assistant', %s, %s, %s, clock_timestamp()) "
                "RETURNING id::text AS id, role, content, crisis, grief, created_at",
                (row["id"], reply, found.crisis, found.grief),
            )
            await conn.execute(
                "UPDATE counseling_sessions SET last_message_at = now(), updated_at = now() "
                "WHERE id = %s",
                (row["id"],),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    assert mine is not None and theirs is not None
    if found.crisis:
        state.log.warning("counsel.crisis_flagged", session_id=row["id"], user_id=user.id)
    return {
        "message": _message_json(mine),
        "reply": {**_message_json(theirs), "resources": found.resources},
        "crisis": found.crisis,
        "grief": found.grief,
        "resources": found.resources,
    }


async def close_session(
    session_id: uuid.UUID, request: Request, user: CurrentUser = Depends(current_user)
) -> dict[str, Any]:
    """Mark a session closed."""
    row = await _load_session(request, user, session_id)
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn:
            updated = await fetchone(
                conn,
                "UPDATE counseling_sessions AS s SET status = 'closed', updated_at = now() "
                f"WHERE s.id = %s RETURNING {_columns(state)}",
                (row["id"],),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    assert updated is not None
    return _session_json(updated)


def build_router(shape: Shape, release: str = "v1") -> APIRouter:
    """The counseling routes of a shape in a release (v2 takes a mood at session creation)."""
    r = ShapeRoutes(
        shape, APIRouter(tags=["counsel"], dependencies=[Depends(count_counsel_request)])
    )
    sessions = "/counsel/sessions"
    r.add(
        "POST",
        sessions,
        create_session if release == "v1" else create_session_v2,
        auth=True,
        model=SessionOut,
        status_code=201,
        summary="Start a counseling session",
    )
    if shape.alt:
        r.add(
            "GET",
            sessions,
            list_sessions_paged,
            auth=True,
            model=SessionPage,
            summary="List the caller's sessions",
        )
    else:
        r.add("GET", sessions, list_sessions, summary="List the caller's sessions")
    r.add(
        "GET",
        sessions + "/{session_id}",
        get_session,
        auth=True,
        model=SessionDetailOut,
        summary="Get a session with its messages",
    )
    r.add(
        "POST",
        sessions + "/{session_id}/messages",
        post_message,
        auth=True,
        model=ExchangeOut,
        status_code=201,
        summary="Send a message and get the counselor's reply",
    )
    r.add(
        "POST",
        sessions + "/{session_id}/close",
        close_session,
        auth=True,
        model=SessionOut,
        summary="Close a session",
    )
    return r.router
