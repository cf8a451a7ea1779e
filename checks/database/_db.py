"""Shared database helpers for the database, migrations and indexes checks (read-only)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from readyctl.context import Context
from readyctl.postgres import scratch

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "")


def target_url(ctx: Context) -> str | None:
    """The environment's database URL, with its password registered as a secret."""
    url = ctx.environment.database_url
    if url:
        parts = scratch.url_parts(url)
        ctx.redactor.add(parts.get("password"))
        ctx.redactor.add(url)
    return url or None


def describe(url: str) -> str:
    """`user@host:port/dbname` of a database URL (never the password)."""
    p = scratch.url_parts(url)
    host = p.get("host", "localhost")
    port = p.get("port", "5432")
    return f"{p.get('user', '')}@{host}:{port}/{p.get('dbname', '')}".lstrip("@")


def host_of(url: str) -> str:
    """The host of a database URL ('' for a unix socket)."""
    host = urlsplit(scratch.libpq_url(url)).hostname or ""
    if not host:
        host = scratch.url_parts(url).get("host", "")
    return host


def is_local(host: str) -> bool:
    """Whether `host` is this machine (loopback or a unix socket path)."""
    if host in LOCAL_HOSTS or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(
    ctx: Context,
    url: str | None = None,
    *,
    timeout: float = 10.0,
    statement_timeout_s: float | None = 10.0,
    read_only: bool = True,
    autocommit: bool = True,
    **extra: Any,
) -> Any:
    """A psycopg connection to the target with connect and statement timeouts, read-only.

    The session runs with default_transaction_read_only, so nothing a check sends can write;
    statement_timeout_s=None leaves the server's own statement_timeout in effect.
    """
    import psycopg

    url = url or target_url(ctx)
    if not url:
        raise ValueError("no database_url configured")
    opts = []
    if statement_timeout_s is not None:
        opts.append(f"-c statement_timeout={int(ctx.timeout(statement_timeout_s) * 1000)}")
    if read_only:
        opts.append("-c default_transaction_read_only=on")
    conn = psycopg.connect(
        scratch.libpq_url(url),
        connect_timeout=max(1, int(ctx.timeout(timeout))),
        options=" ".join(opts),
        autocommit=autocommit,
        application_name="readyctl",
        **extra,
    )
    ctx.add_cleanup(conn.close)
    return conn


def error_words(ctx: Context, e: BaseException) -> str:
    """One redacted line for a database error."""
    lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
    text = lines[0] if lines else type(e).__name__
    return ctx.redactor.clip(text, 240)
