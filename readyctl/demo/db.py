"""Database URL handling and a small asyncio connection pool over psycopg."""

from __future__ import annotations

import asyncio
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

POOL_PARAMS = ("connection_limit", "pool_timeout")
DEFAULT_POOL_SIZE = 5
DEFAULT_POOL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PoolConfig:
    """Pool settings read from the DATABASE_URL query."""

    conninfo: str
    size: int
    timeout_s: float
    from_url: bool


def strip_pool_params(url: str) -> tuple[str, dict[str, str]]:
    """Remove Prisma-style pool parameters from a URL; return (libpq URL, removed params)."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    removed: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in POOL_PARAMS:
            removed[key] = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), removed


def pool_config(url: str) -> PoolConfig:
    """Read pool size and timeout from the URL query and return the libpq-safe URL."""
    conninfo, params = strip_pool_params(url)
    size = int(params.get("connection_limit") or DEFAULT_POOL_SIZE)
    timeout = float(params.get("pool_timeout") or DEFAULT_POOL_TIMEOUT_S)
    return PoolConfig(conninfo, max(1, size), max(0.1, timeout), bool(params))


def sqlalchemy_url(url: str) -> str:
    """Return the URL for SQLAlchemy's psycopg (v3) driver, without pool parameters."""
    conninfo, _ = strip_pool_params(url)
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if conninfo.startswith(prefix):
            return "postgresql+psycopg://" + conninfo[len(prefix) :]
    return conninfo


def redact_url(url: str) -> str:
    """Replace the password in a URL with '***'."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class PoolTimeout(Exception):
    """No connection became free within the pool timeout."""


class DatabaseUnavailable(Exception):
    """The database could not be reached."""


class Pool:
    """A bounded asyncio pool of autocommit psycopg connections that drops dead ones."""

    def __init__(self, config: PoolConfig, *, connect_timeout_s: int = 3) -> None:
        """Create an empty pool; connections are opened on demand."""
        self.config = config
        self._sem = asyncio.Semaphore(config.size)
        self._idle: list[psycopg.AsyncConnection] = []
        self._connect_timeout_s = connect_timeout_s
        self.in_use = 0
        self.closed = False

    @staticmethod
    def _alive(conn: psycopg.AsyncConnection) -> bool:
        """Tell whether an idle connection looks usable (nothing unread on its socket)."""
        if conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return False
        # An idle connection with readable data was closed or told to terminate by the server.
        return not readable

    async def _open(self) -> psycopg.AsyncConnection:
        """Open a new connection or raise DatabaseUnavailable."""
        try:
            return await psycopg.AsyncConnection.connect(
                self.config.conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout_s,
                options="-c statement_timeout=10000",
            )
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable("database connection failed") from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """Borrow a connection for the duration of the block."""
        try:
            await asyncio.wait_for(self._sem.acquire(), self.config.timeout_s)
        except TimeoutError as exc:
            raise PoolTimeout("no database connection free within pool_timeout") from exc
        conn: psycopg.AsyncConnection | None = None
        self.in_use += 1
        try:
            while self._idle:
                candidate = self._idle.pop()
                if self._alive(candidate):
                    conn = candidate
                    break
                await candidate.close()
            if conn is None:
                conn = await self._open()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                await conn.close()
                conn = None
                await self.discard_idle()
                raise DatabaseUnavailable("database connection lost") from exc
            except BaseException:
                if conn is not None and conn.info.transaction_status not in (
                    psycopg.pq.TransactionStatus.IDLE,
                ):
                    await conn.close()
                    conn = None
                raise
            if conn is not None and not self.closed and self._alive(conn):
                self._idle.append(conn)
                conn = None
        finally:
            if conn is not None:
                await conn.close()
            self.in_use -= 1
            self._sem.release()

    async def discard_idle(self) -> None:
        """Close every idle connection (after the server went away)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def close(self) -> None:
        """Close the pool and its idle connections."""
        self.closed = True
        await self.discard_idle()
