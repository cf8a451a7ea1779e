"""Small real servers on 127.0.0.1 for tests: an ASGI app under uvicorn, optionally over TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running test server."""

    url: str
    port: int
    ca_bundle: str | None


@contextlib.contextmanager
def serve(
    app: Any,
    *,
    tls_dir: Path | None = None,
    hostname: str = "127.0.0.1",
    cert_kwargs: dict[str, Any] | None = None,
) -> Iterator[Served]:
    """Serve `app` with uvicorn in a thread; with `tls_dir`, over HTTPS with a trustme CA."""
    import uvicorn

    port = free_port()
    kwargs: dict[str, Any] = {}
    ca_path = None
    if tls_dir is not None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert(hostname, "localhost", **(cert_kwargs or {}))
        tls_dir.mkdir(parents=True, exist_ok=True)
        ca_path = tls_dir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        cert_path = tls_dir / "cert.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
        kwargs.update(ssl_certfile=str(cert_path), ssl_keyfile=str(cert_path))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan="off", **kwargs
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    scheme = "https" if tls_dir is not None else "http"
    try:
        yield Served(f"{scheme}://127.0.0.1:{port}", port, str(ca_path) if ca_path else None)
    finally:
        server.should_exit = True
        thread.join(5)


def ssl_context(ca: str) -> ssl.SSLContext:
    """A client context trusting the test CA."""
    return ssl.create_default_context(cafile=ca)


# -- misbehaving servers -----------------------------------------------------------------------
# Raw sockets on 127.0.0.1: each answers the `sane` paths (/health, a login) like a small JSON
# API and every other path in one hostile way. Every loop is bounded: by the server's stop
# event, by MAX_CONNECTION_S per connection, and by the client going away.

MAX_CONNECTION_S = 60.0
BOMB_INFLATED = 2 * 1024**3  # the gzip bomb inflates to 2 GiB (about 2 MB on the wire)
BIG_BODY = 50_000_000
STACK_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/api/views.py", line 42, in list_sessions\n'
    "    rows = db.execute(QUERY).fetchall()\n"
    '  File "/srv/app/.venv/lib/python3.12/site-packages/psycopg/cursor.py", line 97, in execute\n'
    "    raise ex.with_traceback(None)\n"
    'psycopg.errors.UndefinedTable: relation "counsel_sessions" does not exist\n'
    "LINE 1: SELECT * FROM counsel_sessions WHERE owner_id = 7\n"
)
HOSTILE_MODES = (
    "hang",
    "slow_headers",
    "slow_body",
    "endless_chunked",
    "big_body",
    "gzip_bomb",
    "invalid_http",
    "redirect_loop",
    "offhost_redirect",
    "reset",
    "huge_headers",
    "stack_trace",
)


@dataclass
class Hostile:
    """A running hostile server; `seen` records every request line it read, with headers."""

    url: str
    port: int
    ca_bundle: str | None
    seen: list[tuple[str, dict[str, str]]]


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _sane(path: str) -> bytes:
    body = (
        b'{"access_token": "tok-sane", "refresh_token": "ref-sane"}'
        if "login" in path
        else b'{"status": "ok"}'
    )
    return (
        _head(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        + body
    )


def gzip_bomb_chunks(inflated: int = BOMB_INFLATED, block: int = 1 << 20) -> Iterator[bytes]:
    """A valid gzip stream of `inflated` zero bytes (a multiple of `block`), about 1000:1.

    One block of zeros is compressed once, ending in a full flush (no back-references past
    it), and that piece is repeated: sending a 2 GiB bomb costs the server no CPU. The CRC in
    the trailer is only computed if a client reads that far.
    """
    import struct as _struct
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = z.compress(bytes(block)) + z.flush(zlib.Z_FULL_FLUSH)
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip header: deflate, no name
    count = inflated // block
    for _ in range(count):
        yield piece
    yield zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block
    crc = 0
    zeros = bytes(block)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    yield _struct.pack("<II", crc, (count * block) & 0xFFFFFFFF)


@contextlib.contextmanager
def hostile_server(
    mode: str,
    *,
    sane: tuple[str, ...] = ("/health", "/v1/auth/login"),
    host: str = "127.0.0.1",
    offhost: str = "http://127.0.0.2:9/elsewhere",
    tls_dir: Path | None = None,
    not_after: Any = None,
) -> Iterator[Hostile]:
    """Serve `mode` on every path but the `sane` ones (exact paths, query ignored).

    Modes: hang (reads the request, never answers), slow_headers (one header byte a second),
    slow_body (headers, then one body byte every 0.3 s, never the end),
    endless_chunked (64 KB chunks as fast as the client reads, never the last one), big_body
    (50 MB with a Content-Length), gzip_bomb (2 GiB of zeros, gzip, about 2 MB on the wire),
    invalid_http (not a status line), redirect_loop (302 to the same path), offhost_redirect
    (302 to `offhost`), reset (TCP RST after the request), huge_headers (2 MB of headers),
    stack_trace (500 with a Python traceback and a SQL error), ok (everything sane: with
    `tls_dir` and `not_after`, an HTTPS server with an expired certificate).
    """
    assert mode in (*HOSTILE_MODES, "ok"), mode
    sslctx: ssl.SSLContext | None = None
    ca_path = None
    if tls_dir is not None:
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert(host, "localhost", not_after=not_after)
        tls_dir.mkdir(parents=True, exist_ok=True)
        ca_path = str(tls_dir / "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
        cert_file = str(tls_dir / "server.pem")
        leaf.private_key_and_cert_chain_pem.write_to_path(cert_file)
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sslctx.load_cert_chain(cert_file)
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stop = threading.Event()
    seen: list[tuple[str, dict[str, str]]] = []

    def alive(t0: float) -> bool:
        return not stop.is_set() and time.monotonic() - t0 < MAX_CONNECTION_S

    def hostile(sock: socket.socket, path: str, t0: float) -> None:
        if mode == "hang":
            while alive(t0):
                stop.wait(0.2)
        elif mode == "slow_headers":
            head = _head("200 OK", [("Content-Type", "application/json")] + [("X-Slow", "y")] * 99)
            for i in range(len(head)):
                if not alive(t0):
                    return
                sock.sendall(head[i : i + 1])
                stop.wait(1.0)
        elif mode == "slow_body":
            sock.sendall(
                _head(
                    "200 OK",
                    [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                )
            )
            while alive(t0):
                sock.sendall(b"1\r\n \r\n")
                stop.wait(0.3)
        elif mode == "endless_chunked":
            sock.sendall(
                _head(
                    "200 OK",
                    [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                )
            )
            chunk = b"10000\r\n" + b"[" * 65536 + b"\r\n"
            while alive(t0):
                sock.sendall(chunk)
        elif mode == "big_body":
            sock.sendall(
                _head(
                    "200 OK",
                    [("Content-Type", "application/json"), ("Content-Length", str(BIG_BODY))],
                )
            )
            block = b" " * 65536
            for _ in range(BIG_BODY // len(block) + 1):
                if not alive(t0):
                    return
                sock.sendall(block)
        elif mode == "gzip_bomb":
            sock.sendall(
                _head(
                    "200 OK",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Encoding", "gzip"),
                        ("Connection", "close"),
                    ],
                )
            )
            for out in gzip_bomb_chunks():
                if not alive(t0):
                    return
                sock.sendall(out)
        elif mode == "invalid_http":
            sock.sendall(b"SPEAKING-NONSENSE 200 maybe\r\n\x00\x01\x02 <script>\r\n\r\n{}")
        elif mode in ("redirect_loop", "offhost_redirect"):
            where = path if mode == "redirect_loop" else offhost
            sock.sendall(
                _head(
                    "302 Found",
                    [("Location", where), ("Content-Length", "0"), ("Connection", "close")],
                )
            )
        elif mode == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "huge_headers":
            pad = "h" * 1000
            headers = [("Content-Type", "application/json")]
            headers += [(f"X-Pad-{i}", pad) for i in range(2000)]
            sock.sendall(_head("200 OK", [*headers, ("Content-Length", "2")]) + b"{}")
        elif mode == "stack_trace":
            body = STACK_TRACE.encode()
            sock.sendall(
                _head(
                    "500 Internal Server Error",
                    [
                        ("Content-Type", "text/plain"),
                        ("Content-Length", str(len(body))),
                        ("Connection", "close"),
                    ],
                )
                + body
            )
        else:  # ok
            sock.sendall(_sane(path))

    def handle(conn: socket.socket) -> None:
        t0 = time.monotonic()
        conn.settimeout(5)
        sock = conn
        try:
            if sslctx is not None:
                sock = sslctx.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                got = sock.recv(4096)
                if not got:
                    return
                data += got
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            path = parts[1] if len(parts) > 1 else "/"
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            seen.append((f"{parts[0]} {path}", headers))
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < min(length, 1_000_000):
                got = sock.recv(4096)
                if not got:
                    break
                rest += got
            sock.settimeout(10)
            if path.split("?", 1)[0] in sane:
                sock.sendall(_sane(path))
            else:
                hostile(sock, path, t0)
            if mode != "reset":
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass  # the client went away (the point of most modes) or sent garbage
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                conn.close()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    scheme = "https" if tls_dir is not None else "http"
    try:
        yield Hostile(f"{scheme}://{host}:{port}", port, ca_path, seen)
    finally:
        stop.set()
        thread.join(2)
        listener.close()
