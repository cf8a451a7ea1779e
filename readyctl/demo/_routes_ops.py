"""Health, metrics, docs, OAuth metadata, crisis lines, admin and billing-webhook endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from readyctl.demo._core import DOCS_CSP, ApiError
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
from readyctl.demo._routing import ShapeRoutes
from readyctl.demo.shapes import OAUTH_METADATA_PATH, Shape

SIGNATURE_TOLERANCE_S = 300
_OK = b'{"status":"ok"}'


class AdminUserOut(BaseModel):
    """A user of the caller's organization."""

    id: str
    email: str
    role: str
    display_name: str | None
    verified: bool


class AdminUserPage(BaseModel):
    """One page of the organization's users (alt shapes)."""

    results: list[AdminUserOut]
    count: int
    page: int
    size: int


class WebhookOut(BaseModel):
    """Answer of the billing webhook."""

    received: bool
    id: str


async def health() -> Response:
    """Answer 200 while the process serves requests."""
    return Response(_OK, media_type="application/json")


async def health_live() -> Response:
    """Answer 200 while the process serves requests."""
    return Response(_OK, media_type="application/json")


async def health_ready(request: Request) -> JSONResponse:
    """Answer 200 when the database answers, else 503."""
    state = state_of(request)
    if state.has("ready-ignores-db"):
        return JSONResponse({"status": "ready", "checks": {"database": "ok"}})
    try:
        async with asyncio.timeout(3):
            async with db_pool(state).connection() as conn:
                await conn.execute("SELECT 1")
    except (*DB_ERRORS, ApiError, TimeoutError):
        return JSONResponse(
            {
                "status": "not_ready",
                "checks": {"database": "unreachable"},
                "error": {"code": "not_ready", "message": "The database is unreachable."},
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "checks": {"database": "ok"}})


# Public crisis hotlines (default shape: GET /v1/resources/crisis-lines): the same for every
# caller, so shared caches may keep them for five minutes and revalidate by ETag.
CRISIS_LINES: tuple[dict[str, str], ...] = (
    {"country": "US", "name": "988 Suicide & Crisis Lifeline", "phone": "988", "hours": "24/7"},
    {"country": "CA", "name": "9-8-8 Suicide Crisis Helpline", "phone": "988", "hours": "24/7"},
    {"country": "GB", "name": "Samaritans", "phone": "116 123", "hours": "24/7"},
    {"country": "AU", "name": "Lifeline Australia", "phone": "13 11 14", "hours": "24/7"},
)
_CRISIS_BODY = json.dumps({"items": list(CRISIS_LINES)}, separators=(",", ":")).encode()
CRISIS_ETAG = '"' + hashlib.sha256(_CRISIS_BODY).hexdigest()[:32] + '"'
CRISIS_CACHE_CONTROL = "public, max-age=300"


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match (a list, or *) against `etag`."""
    tags = [t.strip() for t in if_none_match.split(",") if t.strip()]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


async def crisis_lines(request: Request) -> Response:
    """The public crisis hotline list: cacheable, with an ETag and 304 on revalidation.

    Under no-cache-validators it is sent as `no-store` with no ETag and never answers 304.
    """
    if state_of(request).has("no-cache-validators"):
        return Response(
            _CRISIS_BODY, media_type="application/json", headers={"Cache-Control": "no-store"}
        )
    headers = {"Cache-Control": CRISIS_CACHE_CONTROL, "ETag": CRISIS_ETAG}
    if _etag_matches(request.headers.get("if-none-match", ""), CRISIS_ETAG):
        return Response(status_code=304, headers=headers)
    return Response(_CRISIS_BODY, media_type="application/json", headers=headers)


async def metrics(request: Request) -> PlainTextResponse:
    """Expose request counts, latency histograms and errors by route."""
    state = state_of(request)
    if state.has("no-metrics"):
        raise ApiError(404, "not_found", "Not found.")
    return PlainTextResponse(
        state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def docs_auth(request: Request) -> None:
    """Require a bearer token for the docs unless docs-public is on."""
    if not state_of(request).has("docs-public"):
        await current_user(request)


async def openapi_json(request: Request) -> JSONResponse:
    """Return the OpenAPI document."""
    return JSONResponse(request.app.openapi())


async def docs_page(request: Request) -> HTMLResponse:
    """Return a static HTML reference of the API (no scripts, strict CSP)."""
    spec = request.app.openapi()
    json_path = state_of(request).shape.openapi_path or ""
    rows = []
    for path, ops in sorted(spec.get("paths", {}).items()):
        for method, op in ops.items():
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
            )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(spec['info']['title'])} reference</title></head><body>"
        f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>"
        f"<p>The machine-readable document is at <code>{html.escape(json_path)}</code>.</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})


async def oauth_metadata(request: Request) -> JSONResponse:
    """OAuth 2.0 Authorization Server Metadata (RFC 8414) of the alt shapes, built per request."""
    shape = state_of(request).shape
    base = str(request.base_url).rstrip("/")
    grants = ["password", "refresh_token"] if shape.refresh else ["password"]
    doc: dict[str, Any] = {
        "issuer": base,
        "token_endpoint": base + shape.login_path,
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
    }
    if shape.docs_path:
        doc["service_documentation"] = base + shape.docs_path
    return JSONResponse(doc)


async def _org_users(
    state: DemoState, user: CurrentUser, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Admins only: one page of the users of the caller's organization, and their count."""
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This endpoint requires the admin role.")
    try:
        async with db_pool(state).connection() as conn:
            rows = await fetchall(
                conn,
                "SELECT id::text AS id, email, role, display_name, "
                "email_verified_at IS NOT NULL AS verified FROM users "
                "WHERE org_id = %s ORDER BY email LIMIT %s OFFSET %s",
                (user.org_id, limit, offset),
            )
            total = await fetchone(
                conn, "SELECT count(*) AS n FROM users WHERE org_id = %s", (user.org_id,)
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    return rows, int(total["n"] if total else 0)


async def admin_users(
    request: Request,
    limit: int = Query(50, ge=1, le=100),
    offset: int = Query(0, ge=0, le=1_000_000),
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Admins only: the users of the caller's organization."""
    rows, total = await _org_users(state_of(request), user, limit, offset)
    return {"items": rows, "limit": limit, "offset": offset, "total": total}


async def admin_users_paged(
    request: Request,
    page: int = Query(1, ge=1, le=100_000, description="page number, from 1"),
    size: int = Query(50, ge=1, le=100, description="users per page (at most 100)"),
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Admins only: one page of the users of the caller's organization."""
    rows, total = await _org_users(state_of(request), user, size, (page - 1) * size)
    return {"results": rows, "count": total, "page": page, "size": size}


def verify_stripe_signature(
    header: str, payload: bytes, secret: str, *, now: float | None = None
) -> bool:
    """Check a Stripe-Signature header (t=<ts>,v1=<hex hmac-sha256 of "<ts>.<payload>">)."""
    timestamp = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit() or not signatures or not secret:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


async def billing_webhook(request: Request) -> dict[str, Any]:
    """Accept a signed Stripe event once; forged, stale or replayed events are rejected."""
    state = state_of(request)
    payload = await request.body()
    if not state.has("webhook-unsigned"):
        header = request.headers.get("stripe-signature", "")
        if not verify_stripe_signature(header, payload, state.settings.stripe_webhook_secret):
            raise ApiError(400, "invalid_signature", "The webhook signature is invalid or stale.")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise ApiError(400, "invalid_payload", "The event is not valid JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise ApiError(400, "invalid_payload", "The event has no id.")
    event_type = str(event.get("type") or "unknown")
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            inserted = await fetchone(
                conn,
                "INSERT INTO billing_events (event_id, type, payload) VALUES (%s, %s, %s) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING id",
                (event["id"][:255], event_type[:255], json.dumps(event)),
            )
            org_id = _org_of(event)
            if inserted is not None and org_id and event_type in _PLAN_EVENTS:
                await conn.execute(
                    "UPDATE organizations SET plan = %s WHERE id::text = %s",
                    (_PLAN_EVENTS[event_type], org_id),
                )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if inserted is None:
        raise ApiError(409, "duplicate_event", "This event was already processed.")
    state.log.info("billing.event", event_id=event["id"], type=event_type)
    return {"received": True, "id": event["id"]}


_PLAN_EVENTS = {
    "checkout.session.completed": "pro",
    "customer.subscription.deleted": "free",
}


def _org_of(event: dict[str, Any]) -> str | None:
    """Return data.object.metadata.org_id of an event, if any."""
    obj = (event.get("data") or {}).get("object") or {}
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    value = meta.get("org_id") if isinstance(meta, dict) else None
    return str(value) if value else None


WEBHOOK_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "description": 't=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">',
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "type"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "data": {"type": "object"},
                    },
                }
            }
        },
    },
}


def build_router(shape: Shape) -> APIRouter:
    """The ops, docs, admin and billing routes of a shape."""
    r = ShapeRoutes(shape, APIRouter())

    def ops(path: str, endpoint: Any, summary: str | None = None, **kw: Any) -> None:
        if summary is not None:
            kw["summary"] = summary
        r.add("GET", path, endpoint, prefixed=False, tags=["ops"], **kw)

    if shape.alt:
        ops(shape.live_path, health_live, "Liveness probe")
        ops(shape.ready_path, health_ready, "Readiness probe")
    else:
        ops("/health", health, "Liveness summary")
        ops("/health/live", health_live, "Liveness probe")
        ops("/health/ready", health_ready, "Readiness probe")
    ops("/metrics", metrics, "Prometheus metrics")
    if not shape.alt:
        # public and cacheable; its own Cache-Control wins over the middleware's no-store
        r.add(
            "GET",
            "/resources/crisis-lines",
            crisis_lines,
            tags=["resources"],
            summary="Public crisis hotlines (cacheable)",
        )
    if shape.openapi_path and shape.docs_path:
        ops(shape.openapi_path, openapi_json, auth=True, dependencies=[Depends(docs_auth)])
        ops(shape.docs_path, docs_page, auth=True, dependencies=[Depends(docs_auth)])
    summary = "List the organization's users"
    if shape.alt:
        ops(OAUTH_METADATA_PATH, oauth_metadata, "OAuth 2.0 Authorization Server Metadata")
        r.add(
            "GET",
            "/admin/users",
            admin_users_paged,
            auth=True,
            model=AdminUserPage,
            tags=["admin"],
            summary=summary,
        )
    else:
        r.add("GET", "/admin/users", admin_users, tags=["admin"], summary=summary)
    r.add(
        "POST",
        "/billing/webhook",
        billing_webhook,
        model=WebhookOut,
        openapi_extra=WEBHOOK_DOC,
        tags=["billing"],
        summary="Stripe webhook",
    )
    return r.router
