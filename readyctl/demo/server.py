"""The demo server process: HTTPS API, plain-HTTP redirect port and the mail stand-in."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import Message, Receive, Scope, Send

from readyctl.demo._core import JsonLog
from readyctl.demo.app import create_app
from readyctl.demo.faults import FAULTS_ENV
from readyctl.demo.mail import create_mail_app
from readyctl.demo.releases import MAINTENANCE_FILE_ENV, MAINTENANCE_SECRET_ENV, RELEASE_ENV
from readyctl.demo.settings import Settings, StartupError, check_startup, parse_env_file
from readyctl.demo.shapes import SHAPE_ENV

PROCESS_ENV_KEYS = (
    FAULTS_ENV,
    SHAPE_ENV,
    "READYCTL_DEMO_AI_LATENCY_MS",
    "READYCTL_DEMO_PUBLIC_URL",
    RELEASE_ENV,
    MAINTENANCE_FILE_ENV,
    MAINTENANCE_SECRET_ENV,
)
EXIT_CONFIG = 2
GRACEFUL_TIMEOUT_S = 30
"""Longest wait for in-flight requests after SIGTERM before uvicorn cancels them."""
TLS_CLOSE_TIMEOUT_S = 5.0
"""Longest wait for a peer's TLS close_notify after closing a connection (asyncio: 30 s)."""


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to this module (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Do not install uvicorn's own handlers."""
        yield


class _JsonLogHandler(logging.Handler):
    """Forwards uvicorn's log records to the JSON log."""

    def __init__(self, log: JsonLog) -> None:
        """Wrap a JsonLog."""
        super().__init__()
        self.json_log = log

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record as JSON."""
        level = record.levelname.lower()
        self.json_log.log(
            "warning" if level == "warn" else (level if level != "critical" else "error"),
            "server.log",
            source=record.name,
            message=record.getMessage(),
        )


def close_when_draining(app: Any, draining: asyncio.Event) -> Any:
    """Wrap an ASGI app: a response started once `draining` is set says `Connection: close`.

    uvicorn closes a connection after the response it finished during shutdown but does not
    say so, so an HTTP/1.1 client parks the connection in its pool as reusable and never
    answers the server's TLS close_notify: the shutdown then waits for that idle peer.
    With the header the client closes the connection itself once it has read the response.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and draining.is_set():
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


def _bound_tls_close(loop: asyncio.AbstractEventLoop) -> None:
    """Make the loop's TLS servers wait at most TLS_CLOSE_TIMEOUT_S for a peer's close_notify.

    On shutdown uvicorn closes idle keep-alive connections; asyncio then waits (30 s by
    default) for the peer's close_notify before it reports the connection lost, and uvicorn
    waits for that. A pooled client that is not reading never sends one, so without a bound
    one idle client holds the whole shutdown until the graceful timeout (TLS does not require
    the closing side to wait for the peer's close_notify).
    """
    create_server = loop.create_server

    async def create_server_bounded(*args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_shutdown_timeout", TLS_CLOSE_TIMEOUT_S)
        return await create_server(*args, **kwargs)

    loop.create_server = create_server_bounded  # type: ignore[method-assign]


def redirect_app(public_url: str) -> Any:
    """Return an ASGI app answering 308 to the same path and query on `public_url`."""
    base = public_url.rstrip("/")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path = scope.get("raw_path") or scope["path"].encode()
        location = base.encode() + path
        if scope.get("query_string"):
            location += b"?" + scope["query_string"]
        body = b'{"error":{"code":"https_required","message":"Use HTTPS."}}'
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [
                    (b"location", location),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"server", b"counsel-api"),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def _listener(fd: int | None, host: str, port: int | None) -> socket.socket | None:
    """Return a listening socket from an inherited fd, or bind host:port, or None."""
    if fd is not None:
        sock = socket.socket(fileno=fd)
    elif port is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    else:
        return None
    sock.listen(2048)
    return sock


def _config(
    app: Any, *, lifespan: str, certfile: str | None = None, keyfile: str | None = None
) -> uvicorn.Config:
    """Build a uvicorn config in production posture (no banner, no proxy-header trust)."""
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=True,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
        timeout_keep_alive=5,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    return config


def build_parser() -> argparse.ArgumentParser:
    """Return the `serve` argument parser."""
    p = argparse.ArgumentParser(prog="python -m readyctl.demo serve", description=__doc__)
    p.add_argument("--env-file", required=True, help="dotenv file with the app's settings")
    p.add_argument("--host", default="127.0.0.1", help="address to bind when not given fds")
    p.add_argument("--api-fd", type=int, help="inherited listening socket for the HTTPS API")
    p.add_argument("--api-port", type=int, help="port for the HTTPS API")
    p.add_argument("--http-fd", type=int, help="inherited socket for the plain-HTTP port")
    p.add_argument("--http-port", type=int, help="port for the plain-HTTP redirect")
    p.add_argument("--mail-fd", type=int, help="inherited socket for the mail stand-in")
    p.add_argument("--mail-port", type=int, help="port for the mail stand-in")
    p.add_argument("--certfile", help="TLS certificate chain (PEM)")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--public-url", default="", help="https base URL the HTTP port redirects to")
    p.add_argument("--parent-pid", type=int, help="exit gracefully when this process goes away")
    p.add_argument(
        "--ready-file", help="write this file (the pid) once every server accepts connections"
    )
    return p


def serve(argv: list[str]) -> int:
    """Run the servers until SIGTERM/SIGINT; return the exit code."""
    args = build_parser().parse_args(argv)
    env = parse_env_file(args.env_file)
    for key in PROCESS_ENV_KEYS:
        if key in os.environ:
            env[key] = os.environ[key]
    if args.public_url:
        env["READYCTL_DEMO_PUBLIC_URL"] = args.public_url
    try:
        settings = Settings.from_env(env)
        check_startup(settings)
    except (StartupError, ValueError) as exc:
        JsonLog().error("app.startup_refused", reason=str(exc))
        print(f"counsel-api: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = JsonLog(settings.log_level)
    handler = _JsonLogHandler(log)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel(logging.INFO)
        lg.propagate = False

    api_sock = _listener(args.api_fd, args.host, args.api_port)
    http_sock = _listener(args.http_fd, args.host, args.http_port)
    mail_sock = _listener(args.mail_fd, args.host, args.mail_port)
    if api_sock is None:
        print("counsel-api: --api-fd or --api-port is required", file=sys.stderr)
        return EXIT_CONFIG
    if args.certfile is None:
        print("counsel-api: refusing to serve the API without TLS (--certfile)", file=sys.stderr)
        return EXIT_CONFIG
    app = create_app(settings, log=log)
    draining = asyncio.Event()
    api_app = close_when_draining(app, draining)
    api = _Server(_config(api_app, lifespan="on", certfile=args.certfile, keyfile=args.keyfile))
    servers: list[tuple[_Server, socket.socket]] = [(api, api_sock)]
    if http_sock is not None:
        plain = app if settings.has("no-https-redirect") else redirect_app(settings.public_url)
        servers.append(
            (_Server(_config(close_when_draining(plain, draining), lifespan="off")), http_sock)
        )
    mail = None
    if mail_sock is not None:
        mail = _Server(_config(create_mail_app(settings.postmark_token), lifespan="off"))
    return asyncio.run(
        _run(servers, mail, mail_sock, settings, log, args.parent_pid, draining, args.ready_file)
    )


async def _announce_ready(
    servers: list[tuple[_Server, socket.socket]], mail: _Server | None, ready_file: str
) -> None:
    """Write `ready_file` (atomically, with the pid) once every server has started."""
    everyone = [server for server, _ in servers] + ([mail] if mail is not None else [])
    while not all(s.started for s in everyone):
        if any(s.should_exit for s in everyone):
            return
        await asyncio.sleep(0.02)
    tmp = f"{ready_file}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    os.replace(tmp, ready_file)


async def _run(
    servers: list[tuple[_Server, socket.socket]],
    mail: _Server | None,
    mail_sock: socket.socket | None,
    settings: Settings,
    log: JsonLog,
    parent_pid: int | None,
    draining: asyncio.Event,
    ready_file: str | None = None,
) -> int:
    """Serve until told to stop; the mail stand-in stops after the API has drained.

    `ready_file` is written (with the pid) once every server has started: the launcher's
    signal that this process, not a predecessor sharing its sockets, now serves.
    """
    loop = asyncio.get_running_loop()
    _bound_tls_close(loop)

    def request_exit(reason: str) -> None:
        log.info("server.shutdown_requested", reason=reason)
        draining.set()
        for server, _ in servers:
            server.should_exit = True

    if settings.has("no-graceful-shutdown"):
        # The fault: die at once, dropping whatever is in flight.
        signal.signal(signal.SIGTERM, lambda *_: os._exit(1))
    else:
        loop.add_signal_handler(signal.SIGTERM, request_exit, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, request_exit, "SIGINT")

    def stop_accepting() -> None:
        # A successor shares the listening sockets (a release swap): leave new connections
        # to it, keep serving the ones accepted; SIGTERM follows once they had time to arrive.
        log.info("server.stop_accepting")
        for server in [s for s, _ in servers] + ([mail] if mail is not None else []):
            for listener in getattr(server, "servers", []):
                listener.close()

    loop.add_signal_handler(signal.SIGUSR1, stop_accepting)

    async def watch_parent() -> None:
        while parent_pid:
            await asyncio.sleep(0.5)
            if os.getppid() != parent_pid:
                request_exit("parent exited")
                return

    watchdog = asyncio.create_task(watch_parent())
    mail_task = asyncio.create_task(mail.serve([mail_sock])) if mail and mail_sock else None
    tasks = [asyncio.create_task(server.serve([sock])) for server, sock in servers]
    log.info("server.started", faults=sorted(settings.faults), shape=settings.shape)
    announce = (
        asyncio.create_task(_announce_ready(servers, mail, ready_file)) if ready_file else None
    )
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        watchdog.cancel()
        if announce is not None:
            announce.cancel()
        if mail is not None:
            mail.should_exit = True
        if mail_task is not None:
            await asyncio.gather(mail_task, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    for exc in failed:
        log.error("server.failed", exception=type(exc).__name__, message=str(exc)[:300])
    log.info("server.stopped")
    return 1 if failed else 0
