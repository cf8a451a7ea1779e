"""Health, metrics, docs, admin and billing-webhook endpoints."""

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

from readyctl.demo._core import DOCS_CSP, ApiError
from readyctl.demo._deps import (
    DB_ERRORS,
    V1,
    CurrentUser,
    current_user,
    db_pool,
    fetchall,
    fetchone,
    state_of,
    unavailable,
)

router = APIRouter()
SIGNATURE_TOLERANCE_S = 300
_OK = b'{"status":"ok"}'


@router.get("/health", tags=["ops"], summary="Liveness summary")
async def health() -> Response:
    """Answer 200 while the process serves requests."""
    return Response(_OK, media_type="application/json")


@router.get("/health/live", tags=["ops"], summary="Liveness probe")
async def health_live() -> Response:
    """Answer 200 while the process serves requests."""
    return Response(_OK, media_type="application/json")


@router.get("/health/ready", tags=["ops"], summary="Readiness probe")
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


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics")
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


@router.get("/api/docs-json", tags=["ops"], dependencies=[Depends(docs_auth)])
async def openapi_json(request: Request) -> JSONResponse:
    """Return the OpenAPI document."""
    return JSONResponse(request.app.openapi())


@router.get("/api/docs", tags=["ops"], dependencies=[Depends(docs_auth)])
async def docs_page(request: Request) -> HTMLResponse:
    """Return a static HTML reference of the API (no scripts, strict CSP)."""
    spec = request.app.openapi()
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
        "<p>The machine-readable document is at <code>/api/docs-json</code>.</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})


@router.get(f"{V1}/admin/users", tags=["admin"], summary="List the organization's users")
async def admin_users(
    request: Request,
    limit: int = Query(50, ge=1, le=100),
    offset: int = Query(0, ge=0, le=1_000_000),
    user: CurrentUser = Depends(current_user),
) -> dict[str, Any]:
    """Admins only: the users of the caller's organization."""
    if not user.is_admin:
        raise ApiError(403, "forbidden", "This endpoint requires the admin role.")
    state = state_of(request)
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
    return {
        "items": rows,
        "limit": limit,
        "offset": offset,
        "total": int(total["n"] if total else 0),
    }


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


@router.post(f"{V1}/billing/webhook", tags=["billing"], summary="Stripe webhook")
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
