"""A minimal Redis (RESP2) client over a socket: enough for PING, AUTH, SELECT and INFO.

No dependency: the check needs five commands, timeouts on every read and write, and never
to print a password (errors carry Redis's own error text, never the command sent).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_REPLY = 4 * 1024 * 1024  # INFO is a few kB; a reply bigger than this is not Redis
DEFAULT_PORT = 6379
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class RespError(Exception):
    """Redis answered with an error reply (`-NOAUTH ...`, `-WRONGPASS ...`)."""

    @property
    def code(self) -> str:
        """The error's first word (NOAUTH, WRONGPASS, ERR, ...)."""
        return (str(self).split() or [""])[0]


class ProtocolError(Exception):
    """The peer did not speak RESP (or closed the connection)."""


@dataclasses.dataclass(frozen=True)
class RedisUrl:
    """The parts of a redis:// or rediss:// URL (the password is kept, never shown)."""

    raw: str
    tls: bool
    host: str
    port: int
    db: int
    username: str | None
    password: str | None

    @property
    def where(self) -> str:
        """`host:port/db`, the subject's prefix (no credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.db}"

    @property
    def scheme(self) -> str:
        """redis or rediss."""
        return "rediss" if self.tls else "redis"

    @property
    def local(self) -> bool:
        """The host is this machine (a loopback name or address)."""
        if self.host.lower() in LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def same_instance(self, other: RedisUrl) -> bool:
        """The same server (host and port; loopback names count as one host)."""
        if self.port != other.port:
            return False
        if self.local and other.local:
            return True
        return self.host.lower() == other.host.lower()


def is_redis_url(value: str) -> bool:
    """Whether a value is a redis:// or rediss:// URL."""
    return value.strip().lower().startswith(("redis://", "rediss://"))


def parse_url(value: str) -> RedisUrl:
    """Parse a redis(s)://[user:password@]host[:port][/db] URL; ValueError names the problem."""
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"scheme {parts.scheme or '(none)'}:// is not redis:// or rediss://")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("has an invalid port") from None
    path = parts.path.strip("/")
    query_db = next(
        (p.split("=", 1)[1] for p in parts.query.split("&") if p.startswith("db=")), None
    )
    db_text = path or query_db or "0"
    if not db_text.isdigit():
        raise ValueError(f"database {db_text!r} is not a number")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is None and user and not parts.password:
        # redis://:secret@host is the usual form; redis://secret@host means a bare password
        password, user = user, None
    tls = scheme == "rediss"
    return RedisUrl(value.strip(), tls, parts.hostname, port, int(db_text), user or None, password)


class Connection:
    """One RESP connection with a timeout on every socket operation."""

    def __init__(
        self,
        url: RedisUrl,
        *,
        timeout: float,
        ca_file: str | None = None,
    ) -> None:
        """Connect (TLS when the URL is rediss://, verified against `ca_file` or the system)."""
        sock = socket.create_connection((url.host, url.port), timeout=timeout)
        if url.tls:
            ctx = ssl.create_default_context(cafile=ca_file)
            try:
                sock = ctx.wrap_socket(sock, server_hostname=url.host)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""
        self.tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None

    def close(self) -> None:
        """Close the socket (best effort)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, *args: str) -> Any:
        """Send one command, return its reply; an error reply raises RespError."""
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            data = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_REPLY:
                raise ProtocolError("reply line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by the server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by the server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _reply(self) -> Any:
        line = self._line()
        if not line:
            raise ProtocolError("empty reply")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            if n > MAX_REPLY:
                raise ProtocolError(f"bulk reply of {n} bytes")
            return self._exact(n).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            if n > 10_000:
                raise ProtocolError(f"array reply of {n} items")
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ProtocolError(f"not a RESP reply (starts with {kind!r})")


def info(text: str) -> dict[str, str]:
    """INFO's `key:value` lines as a mapping."""
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out
