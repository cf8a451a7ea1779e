"""A mail provider's record of sent messages, for checks that must read an email the target
sent (a verification token): Postmark's Messages API, which other providers' test inboxes
and the demo's mail sink answer in the same shape.

https://postmarkapp.com/developer/api/messages-api: `GET /messages/outbound?recipient=...`
lists messages (`Messages[].MessageID`), `GET /messages/outbound/{id}/details` gives one with
`TextBody` and `HtmlBody`; the server token goes in `X-Postmark-Server-Token`.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

POSTMARK_URL = "https://api.postmarkapp.com"
TOKEN_HEADER = "X-Postmark-Server-Token"


def headers(token: str) -> dict[str, str]:
    """The request headers of the Messages API."""
    return {"Accept": "application/json", TOKEN_HEADER: token}


def outbound_url(base: str | None, recipient: str, count: int = 10) -> str:
    """The list of messages sent to `recipient`, newest first."""
    query = urlencode({"recipient": recipient, "count": count, "offset": 0})
    return f"{(base or POSTMARK_URL).rstrip('/')}/messages/outbound?{query}"


def details_url(base: str | None, message_id: str) -> str:
    """One sent message with its bodies."""
    root = (base or POSTMARK_URL).rstrip("/")
    return f"{root}/messages/outbound/{quote(message_id, safe='')}/details"
