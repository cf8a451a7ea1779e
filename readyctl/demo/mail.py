"""A mail-provider stand-in with a Postmark-shaped API (send, outbound search, details)."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

TOKEN_HEADER = "X-Postmark-Server-Token"
MAX_COUNT = 500


@dataclass
class StoredMessage:
    """One accepted email."""

    message_id: str
    sender: str
    to: list[str]
    subject: str
    text_body: str
    html_body: str
    tag: str
    received_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return the outbound-search shape of this message."""
        return {
            "Tag": self.tag,
            "MessageID": self.message_id,
            "MessageStream": "outbound",
            "To": [{"Email": addr, "Name": None} for addr in self.to],
            "Cc": [],
            "Bcc": [],
            "Recipients": list(self.to),
            "ReceivedAt": self.received_at.isoformat(),
            "From": self.sender,
            "Subject": self.subject,
            "Attachments": [],
            "Status": "Sent",
            "TrackOpens": False,
            "TrackLinks": "None",
            "Metadata": dict(self.metadata),
            "Sandboxed": False,
        }

    def details(self) -> dict[str, Any]:
        """Return the message-details shape, including the bodies."""
        data = self.summary()
        data.update(
            {
                "TextBody": self.text_body,
                "HtmlBody": self.html_body,
                "Body": self.html_body or self.text_body,
                "MessageEvents": [
                    {
                        "Recipient": addr,
                        "Type": "Delivered",
                        "ReceivedAt": self.received_at.isoformat(),
                        "Details": {"DeliveryMessage": "Accepted by the stand-in"},
                    }
                    for addr in self.to
                ],
            }
        )
        return data


def _error(status: int, code: int, message: str) -> JSONResponse:
    """Return a Postmark-shaped error."""
    return JSONResponse({"ErrorCode": code, "Message": message}, status_code=status)


def _split_addresses(value: str) -> list[str]:
    """Split a Postmark address list ('a@x, "B" <b@y>') into bare addresses."""
    out: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if "<" in part and part.endswith(">"):
            part = part[part.index("<") + 1 : -1]
        if part:
            out.append(part)
    return out


def create_mail_app(token: str) -> FastAPI:
    """Build the mail stand-in app; every call must carry the server token."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    messages: list[StoredMessage] = []
    app.state.messages = messages

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        supplied = request.headers.get(TOKEN_HEADER)
        if not supplied:
            return _error(401, 10, "No Account or Server API tokens were supplied in the headers.")
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return _error(401, 10, "Request does not contain a valid Server token.")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, 0 if exc.status_code < 500 else 500, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, 300, "Invalid request.")

    @app.post("/email")
    async def send_email(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(422, 402, "Received invalid JSON input.")
        if not isinstance(body, dict):
            return _error(422, 402, "Received invalid JSON input.")
        to = _split_addresses(str(body.get("To") or ""))
        if not to:
            return _error(422, 300, "Invalid 'To' address.")
        if not body.get("From"):
            return _error(422, 300, "Invalid 'From' address.")
        msg = StoredMessage(
            message_id=str(uuid.uuid4()),
            sender=str(body["From"]),
            to=to,
            subject=str(body.get("Subject") or ""),
            text_body=str(body.get("TextBody") or ""),
            html_body=str(body.get("HtmlBody") or ""),
            tag=str(body.get("Tag") or ""),
            received_at=datetime.now(UTC),
            metadata={str(k): str(v) for k, v in (body.get("Metadata") or {}).items()},
        )
        messages.append(msg)
        return JSONResponse(
            {
                "To": ", ".join(to),
                "SubmittedAt": msg.received_at.isoformat(),
                "MessageID": msg.message_id,
                "ErrorCode": 0,
                "Message": "OK",
            }
        )

    @app.get("/messages/outbound")
    async def search(
        count: int = Query(..., ge=1, le=MAX_COUNT),
        offset: int = Query(0, ge=0),
        recipient: str | None = None,
        fromemail: str | None = None,
        tag: str | None = None,
        subject: str | None = None,
    ) -> JSONResponse:
        found = [
            m
            for m in reversed(messages)
            if (recipient is None or recipient.lower() in (a.lower() for a in m.to))
            and (fromemail is None or fromemail.lower() in m.sender.lower())
            and (tag is None or tag == m.tag)
            and (subject is None or subject.lower() in m.subject.lower())
        ]
        page = found[offset : offset + count]
        return JSONResponse({"TotalCount": len(found), "Messages": [m.summary() for m in page]})

    @app.get("/messages/outbound/{message_id}/details")
    async def details(message_id: str) -> JSONResponse:
        for m in messages:
            if m.message_id == message_id:
                return JSONResponse(m.details())
        return _error(404, 701, "This message was not found.")

    return app
