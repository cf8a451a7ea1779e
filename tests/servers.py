"""Small real servers on 127.0.0.1 for tests: an ASGI app under uvicorn, optionally over TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
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
