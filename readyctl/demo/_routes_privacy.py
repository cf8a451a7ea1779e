"""Privacy endpoints: the caller's data export and account deletion, and the legal pages.

Default shape: GET /v1/account/export, DELETE /v1/account, /legal/privacy-policy and
/legal/terms-of-service. Alt shapes: GET /api/v2/users/me/export, DELETE /api/v2/users/me,
/privacy and /terms. The legal pages are public HTML outside the API prefix and outside the
OpenAPI document; export and deletion need an access token and act on the caller only.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from readyctl.demo._core import ApiError
from readyctl.demo._deps import (
    DB_ERRORS,
    CurrentUser,
    current_user,
    db_pool,
    fetchall,
    fetchone,
    state_of,
    unavailable,
)
from readyctl.demo._routing import ShapeRoutes
from readyctl.demo.shapes import Shape

LEGAL_UPDATED = "2025-01-15"
PRIVACY_CONTACT = "privacy@example.com"
EXPORT_DISPOSITION = 'attachment; filename="export.json"'

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class ExportUser(BaseModel):
    """The caller's account."""

    id: str
    email: str
    display_name: str | None
    role: str
    created_at: Timestamp
    email_verified_at: Timestamp | None


class ExportOrganization(BaseModel):
    """The caller's organization."""

    id: str
    name: str


class ExportMessage(BaseModel):
    """A message of one of the caller's sessions."""

    role: str
    content: str
    created_at: Timestamp


class ExportSession(BaseModel):
    """One of the caller's counseling sessions, with all its messages (oldest first)."""

    id: str
    title: str | None
    created_at: Timestamp
    messages: list[ExportMessage]


class ExportOut(BaseModel):
    """Everything the service keeps about the caller (GDPR Art. 15 and 20)."""

    exported_at: Timestamp
    user: ExportUser | None
    organization: ExportOrganization | None
    sessions: list[ExportSession]


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 of a timestamp (None stays None)."""
    return value.isoformat() if value is not None else None


async def _export_document(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Read the caller's account, organization, sessions and messages."""
    state = state_of(request)
    try:
        async with db_pool(state).connection() as conn:
            row = await fetchone(
                conn,
                "SELECT id::text AS id, email, display_name, role, created_at, "
                "email_verified_at FROM users WHERE id = %s",
                (user.id,),
            )
            org = await fetchone(
                conn,
                "SELECT o.id::text AS id, o.name FROM organizations o "
                "JOIN users u ON u.org_id = o.id WHERE u.id = %s",
                (user.id,),
            )
            sessions = await fetchall(
                conn,
                "SELECT id::text AS id, title, created_at FROM counseling_sessions "
                "WHERE user_id = %s ORDER BY created_at, id",
                (user.id,),
            )
            messages = await fetchall(
                conn,
                "SELECT m.session_id::text AS session_id, m.role, m.content, m.created_at "
                "FROM counseling_messages m JOIN counseling_sessions s ON s.id = m.session_id "
                "WHERE s.user_id = %s ORDER BY m.created_at, m.id",
                (user.id,),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    if row is None:  # deleted between authentication and now
        raise ApiError(404, "not_found", "Account not found.")
    by_session: dict[str, list[dict[str, Any]]] = {s["id"]: [] for s in sessions}
    for m in messages:
        by_session.setdefault(m["session_id"], []).append(
            {"role": m["role"], "content": m["content"], "created_at": _iso(m["created_at"])}
        )
    return {
        "user": {
            "id": row["id"],
            "email": row["email"],
            "display_name": row["display_name"],
            "role": row["role"],
            "created_at": _iso(row["created_at"]),
            "email_verified_at": _iso(row["email_verified_at"]),
        },
        "organization": {"id": org["id"], "name": org["name"]} if org else None,
        "sessions": [
            {
                "id": s["id"],
                "title": s["title"],
                "created_at": _iso(s["created_at"]),
                "messages": by_session[s["id"]],
            }
            for s in sessions
        ],
    }


async def export_data(
    request: Request, response: Response, user: CurrentUser = Depends(current_user)
) -> dict[str, Any]:
    """Export everything kept about the caller as one JSON document (a download).

    Under privacy-export-broken the document holds none of the caller's data.
    """
    exported_at = datetime.now(UTC).isoformat()
    response.headers["Content-Disposition"] = EXPORT_DISPOSITION
    if state_of(request).has("privacy-export-broken"):
        return {"exported_at": exported_at, "user": None, "organization": None, "sessions": []}
    return {"exported_at": exported_at, **await _export_document(request, user)}


async def delete_account(request: Request, user: CurrentUser = Depends(current_user)) -> Response:
    """Delete the caller's account and everything that references it (GDPR Art. 17).

    Tokens, sessions and messages go with the user row (ON DELETE CASCADE); an organization
    left without users goes too (its name was derived from the address). Under
    privacy-delete-noop nothing is deleted.
    """
    state = state_of(request)
    if state.has("privacy-delete-noop"):
        return Response(status_code=204)
    try:
        async with db_pool(state).connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM users WHERE id = %s", (user.id,))
            await conn.execute(
                "DELETE FROM organizations o WHERE o.id = %s "
                "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id)",
                (user.org_id,),
            )
    except DB_ERRORS as exc:
        raise unavailable(exc) from exc
    state.log.info("account.deleted", user_id=user.id)
    return Response(status_code=204)


def _page(title: str, paragraphs: list[str]) -> str:
    """A small HTML5 document (paragraphs are HTML already)."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - Counsel API</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Last updated: {LEGAL_UPDATED}</p>{body}</body></html>"
    )


def privacy_policy_html(shape: Shape) -> str:
    """The privacy policy of a shape (it names that shape's export and deletion routes)."""
    export, delete = _account_routes(shape)
    contact = f'<a href="mailto:{PRIVACY_CONTACT}">{PRIVACY_CONTACT}</a>'
    return _page(
        "Privacy Policy",
        [
            "We keep the data needed to run the counseling service: your account (email "
            "address, display name, role, a hash of your password, when you registered and "
            "verified your email), your organization, your counseling sessions and their "
            "messages, and the login sessions of your devices.",
            "We use it only to provide the service. Messages are read by the automated "
            "counselor to answer you and to point you to crisis resources when needed.",
            f"You can download all of it as JSON at any time: <code>GET {export}</code> "
            "while logged in (right of access and portability, GDPR Art. 15 and 20).",
            f"You can delete your account at any time: <code>DELETE {delete}</code> while "
            "logged in. Your account, sessions, messages and login tokens are erased at once "
            "(right to erasure, GDPR Art. 17).",
            f"Questions or requests about your data: {contact}.",
        ],
    )


def terms_html() -> str:
    """The terms of service."""
    return _page(
        "Terms of Service",
        [
            "The Counsel API offers automated counseling conversations. It is not a medical "
            "service and does not replace a licensed professional.",
            "If you are in crisis, call your local emergency number or a crisis line at once.",
            "Keep your password secret; you are responsible for what is done with your account.",
            "Do not misuse the service: no attempts to break it, overload it or reach other "
            "people's data.",
            "We may change these terms; the date above tells when they last changed. You can "
            f"stop using the service and delete your account at any time ({PRIVACY_CONTACT}).",
        ],
    )


def _account_routes(shape: Shape) -> tuple[str, str]:
    """The export and deletion routes of a shape."""
    if shape.alt:
        return f"{shape.prefix}/users/me/export", f"{shape.prefix}/users/me"
    return f"{shape.prefix}/account/export", f"{shape.prefix}/account"


def legal_paths(shape: Shape) -> tuple[str, str]:
    """The privacy policy and terms of service pages of a shape."""
    if shape.alt:
        return "/privacy", "/terms"
    return "/legal/privacy-policy", "/legal/terms-of-service"


def build_router(shape: Shape) -> APIRouter:
    """The privacy routes (export, deletion) and the legal pages of a shape."""
    r = ShapeRoutes(shape, APIRouter())
    export, delete = _account_routes(shape)
    r.add(
        "GET",
        export.removeprefix(shape.prefix),
        export_data,
        auth=True,
        model=ExportOut,
        tags=["privacy"],
        summary="Export my data",
    )
    r.add(
        "DELETE",
        delete.removeprefix(shape.prefix),
        delete_account,
        auth=True,
        status_code=204,
        tags=["privacy"],
        summary="Delete my account",
    )
    privacy_page = privacy_policy_html(shape)
    terms_page = terms_html()

    async def privacy_policy(request: Request) -> HTMLResponse:
        """The privacy policy (404 under no-privacy-policy)."""
        if state_of(request).has("no-privacy-policy"):
            raise ApiError(404, "not_found", "Not found.")
        return HTMLResponse(privacy_page)

    async def terms(request: Request) -> HTMLResponse:
        """The terms of service."""
        return HTMLResponse(terms_page)

    privacy_path, terms_path = legal_paths(shape)
    for path, endpoint in ((privacy_path, privacy_policy), (terms_path, terms)):
        r.add("GET", path, endpoint, prefixed=False, tags=["legal"], include_in_schema=False)
    return r.router
