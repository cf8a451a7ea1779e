"""The seeded test tenant: two organizations, an admin, 120 members and their sessions."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from readyctl.demo.db import strip_pool_params

PRIMARY_ORG = ("Acme Counseling", "acme")
OTHER_ORG = ("Northwind Wellness", "northwind")
MEMBERS = 120
SESSIONS_PER_MEMBER = 40
SESSIONS_FIRST_MEMBER = 150
STATUSES = ("active", "closed", "archived")


@dataclass(frozen=True)
class SeedPasswords:
    """Passwords of the test tenant and their bcrypt hashes."""

    member: str
    member_hash: str
    admin: str
    admin_hash: str
    other: str
    other_hash: str


def seed_tenant(
    database_url: str, pw: SeedPasswords, *, rng_seed: int = 7
) -> tuple[dict[str, Any], ...]:
    """Insert the tenant; return its users (org, org_slug, org_id, id, email, password, role)."""
    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    acme_id, north_id = str(uuid.uuid4()), str(uuid.uuid4())
    users: list[dict[str, Any]] = []

    def add(org: tuple[str, str], org_id: str, email: str, password: str, role: str) -> None:
        users.append(
            {
                "org": org[0],
                "org_slug": org[1],
                "org_id": org_id,
                "id": str(uuid.uuid4()),
                "email": email,
                "password": password,
                "role": role,
            }
        )

    add(PRIMARY_ORG, acme_id, "admin@acme.example", pw.admin, "admin")
    for i in range(MEMBERS):
        add(PRIMARY_ORG, acme_id, f"user{i:03d}@acme.example", pw.member, "member")
    add(OTHER_ORG, north_id, "alice@northwind.example", pw.other, "member")
    add(OTHER_ORG, north_id, "admin@northwind.example", pw.other, "admin")
    hashes = {pw.member: pw.member_hash, pw.admin: pw.admin_hash, pw.other: pw.other_hash}

    conninfo, _ = strip_pool_params(database_url)
    with psycopg.connect(conninfo, autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO organizations (id, name, slug, plan) VALUES (%s, %s, %s, 'pro'), "
                "(%s, %s, %s, 'free')",
                (acme_id, *PRIMARY_ORG, north_id, *OTHER_ORG),
            )
            with cur.copy(
                "COPY users (id, org_id, email, password_hash, display_name, role, "
                "email_verified_at) FROM STDIN"
            ) as copy:
                for u in users:
                    name = u["email"].split("@")[0].title()
                    copy.write_row(
                        (
                            u["id"],
                            u["org_id"],
                            u["email"],
                            hashes[u["password"]],
                            name,
                            u["role"],
                            now,
                        )
                    )
            first_member = users[1]["id"]
            with cur.copy(
                "COPY counseling_sessions (id, org_id, user_id, title, status, created_at, "
                "updated_at) FROM STDIN"
            ) as copy:
                for u in users:
                    count = SESSIONS_PER_MEMBER if u["org_slug"] == "acme" else 5
                    if u["id"] == first_member:
                        count = SESSIONS_FIRST_MEMBER
                    for n in range(count):
                        created = now - timedelta(minutes=rng.randint(1, 90 * 24 * 60))
                        status = STATUSES[0] if n % 4 == 0 else rng.choice(STATUSES)
                        copy.write_row(
                            (
                                str(uuid.uuid4()),
                                u["org_id"],
                                u["id"],
                                f"Session {n + 1}",
                                status,
                                created,
                                created,
                            )
                        )
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE organizations, users, counseling_sessions")
    return tuple(users)
