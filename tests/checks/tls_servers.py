"""Raw HTTP(S) servers on 127.0.0.1 for TLS tests: legacy protocols, silence, hostile answers."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# a route answers with raw bytes, or takes over the socket (to stream forever)
Route = bytes | Callable[[socket.socket], None]


def response(
    status: int = 200,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """A raw HTTP/1.1 response with Content-Length and Connection: close."""
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    for name, value in pairs:
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


OK = response(200, body=b'{"status":"ok"}')


def endless(sock: socket.socket) -> None:
    """200 headers (with good HSTS), then a body that never ends (until the client leaves)."""
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000\r\n"
        b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    with contextlib.suppress(OSError):
        for _ in range(100_000):
            sock.sendall(chunk)


@dataclass
class Raw:
    """A running raw server."""

    url: str
    port: int
    ca_bundle: str | None


def legacy_context(cert_file: str) -> ssl.SSLContext:
    """A server context that also accepts TLS 1.0 and 1.1 (@SECLEVEL=0, minimum TLSv1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


@contextlib.contextmanager
def raw_server(
    routes: dict[str, Route] | None = None,
    *,
    tls_dir: Path | None = None,
    legacy: bool = False,
    silent: bool = False,
    names: tuple[str, ...] = ("127.0.0.1", "localhost"),
    not_after: dt.datetime | None = None,
) -> Iterator[Raw]:
    """Serve `routes` (path -> raw answer) over HTTP, or HTTPS with a trustme CA in tls_dir.

    `legacy` accepts TLS 1.0/1.1; `silent` accepts TCP connections and never says a word;
    `names` and `not_after` shape the leaf certificate. Unknown paths answer 404; /health
    answers 200 unless routed.
    """
    table: dict[str, Route] = {"/health": OK, **(routes or {})}
    ctx: ssl.SSLContext | None = None
    ca_path = None
    if tls_dir is not None:
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert(*names, not_after=not_after)
        tls_dir.mkdir(parents=True, exist_ok=True)
        ca_path = str(tls_dir / "ca.pem")
        ca.cert_pem.write_to_path(ca_path)
        cert_file = str(tls_dir / "server.pem")
        leaf.private_key_and_cert_chain_pem.write_to_path(cert_file)
        if legacy:
            ctx = legacy_context(cert_file)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert_file)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if silent:
                held.append(conn)
                stop.wait(30)
                return
            sock = ctx.wrap_socket(conn, server_side=True) if ctx else conn
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                got = sock.recv(4096)
                if not got:
                    return
                data += got
            target = data.split(b" ", 2)[1].decode("latin-1") if data.count(b" ") >= 2 else "/"
            route = table.get(target.split("?", 1)[0], response(404, body=b'{"error":"nf"}'))
            if callable(route):
                route(sock)
            else:
                sock.sendall(route)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
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
        yield Raw(f"{scheme}://127.0.0.1:{port}", port, ca_path)
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()
