"""Sends transactional email through a Postmark-shaped API."""

from __future__ import annotations

import httpx

from readyctl.demo._core import JsonLog


class Mailer:
    """POSTs to `<postmark_url>/email`; under email-broken it silently drops every message."""

    def __init__(
        self, base_url: str, token: str, sender: str, log: JsonLog, *, broken: bool = False
    ) -> None:
        """Create the client; nothing is contacted until the first send."""
        self.sender = sender
        self.log = log
        self.broken = broken
        self.sent = 0
        self.failed = 0
        self._client = httpx.AsyncClient(
            base_url=base_url or "http://127.0.0.1:9",
            timeout=5.0,
            headers={
                "X-Postmark-Server-Token": token,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )

    async def send(self, to: str, subject: str, text: str, *, tag: str = "") -> bool:
        """Send one email; return True when the provider accepted it."""
        if self.broken:
            # The fault: report success without delivering anything.
            self.log.info("mail.sent", tag=tag)
            return True
        payload = {
            "From": self.sender,
            "To": to,
            "Subject": subject,
            "TextBody": text,
            "Tag": tag,
            "MessageStream": "outbound",
        }
        try:
            resp = await self._client.post("/email", json=payload)
        except httpx.HTTPError as exc:
            self.failed += 1
            self.log.error("mail.failed", tag=tag, reason=type(exc).__name__)
            return False
        if resp.status_code != 200:
            self.failed += 1
            self.log.error("mail.failed", tag=tag, status=resp.status_code)
            return False
        self.sent += 1
        self.log.info("mail.sent", tag=tag, message_id=resp.json().get("MessageID"))
        return True

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
