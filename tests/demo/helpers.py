"""Helpers shared by the demo tests (clients, login, mail, webhook signatures)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import ssl
import time
import uuid
from typing import Any

import httpx

from readyctl.demo.managed import ManagedDemo


def tls(d: ManagedDemo) -> ssl.SSLContext:
    """Return an SSL context trusting the demo's CA."""
    return ssl.create_default_context(cafile=d.ca_bundle)


def api(d: ManagedDemo, **kwargs: Any) -> httpx.Client:
    """Return an HTTPS client trusting the demo's CA."""
    kwargs.setdefault("timeout", 30)
    return httpx.Client(base_url=d.base_url, verify=tls(d), **kwargs)


def mail(d: ManagedDemo) -> httpx.Client:
    """Return a client of the mail stand-in with its token."""
    return httpx.Client(
        base_url=d.mail_url,
        headers={"X-Postmark-Server-Token": d.mail_token, "Accept": "application/json"},
        timeout=10,
    )


def login(client: httpx.Client, user: dict[str, Any]) -> dict[str, Any]:
    """Log a seeded user in and return the token response."""
    r = client.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """Return an Authorization header for a token response."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def unique_email(tag: str = "t") -> str:
    """Return a fresh email address."""
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def wait_for_mail(d: ManagedDemo, recipient: str, timeout_s: float = 5) -> list[dict[str, Any]]:
    """Return the outbound messages to a recipient, waiting briefly for at least one."""
    deadline = time.monotonic() + timeout_s
    with mail(d) as m:
        while True:
            r = m.get("/messages/outbound", params={"recipient": recipient, "count": 50})
            assert r.status_code == 200, r.text
            msgs = r.json()["Messages"]
            if msgs or time.monotonic() > deadline:
                return msgs
            time.sleep(0.1)


def token_from_mail(d: ManagedDemo, message_id: str) -> str:
    """Read a message's details and extract the token from its link."""
    with mail(d) as m:
        r = m.get(f"/messages/outbound/{message_id}/details")
        assert r.status_code == 200, r.text
        found = re.search(r"token=([A-Za-z0-9_\-]+)", r.json()["TextBody"])
        assert found, r.json()["TextBody"]
        return found.group(1)


def stripe_signature(secret: str, payload: bytes, ts: int | None = None) -> str:
    """Return a Stripe-Signature header value."""
    t = int(time.time()) if ts is None else ts
    sig = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def event(kind: str = "invoice.paid") -> bytes:
    """Return a Stripe-like event payload with a fresh id."""
    body = {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "data": {"object": {}}}
    return json.dumps(body).encode()


SCHEMA_QUERIES = {
    "columns": (
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "ORDER BY table_name, column_name"
    ),
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "constraints": (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
    ),
}


def schema_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return columns, indexes and constraints of the public schema (alembic_version excluded)."""
    import psycopg

    from readyctl.demo.db import strip_pool_params

    conninfo, _ = strip_pool_params(url)
    with psycopg.connect(conninfo) as conn:
        snap = {k: conn.execute(q).fetchall() for k, q in SCHEMA_QUERIES.items()}
    return {
        k: [row for row in rows if "alembic_version" not in str(row)] for k, rows in snap.items()
    }


def current_revisions(url: str) -> set[str]:
    """Return the revisions recorded in alembic_version."""
    import psycopg

    from readyctl.demo.db import strip_pool_params

    conninfo, _ = strip_pool_params(url)
    with psycopg.connect(conninfo) as conn:
        return {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
