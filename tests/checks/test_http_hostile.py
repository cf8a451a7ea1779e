"""Hostile or broken targets: every HTTP read is bounded; checks end as fail or error, in time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from readyctl.apimap import ApiConfig
from readyctl.config import AuthConfig, Config, Environment
from readyctl.httpread import DEADLINE, BodyTooLarge, BoundedTransport, read_body
from tests.helpers import make_context, run_checks
from tests.servers import HOSTILE_MODES, free_port, gzip_bomb_chunks, hostile_server, serve

MINE = [
    "http.security_headers",
    "http.banner",
    "http.cors",
    "http.error_hygiene",
    "http.compression",
    "http.pagination",
    "http.versioning",
    "http.docs_exposure",
]
CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}
SCRIPT = "<script>alert(1)</script>"
REQUEST_TIMEOUT = 1.0


def hostile(mode: str) -> Any:
    """A raw ASGI app: /health and login behave, everything else is hostile in one way."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health" or path == "/v1/auth/login":
            while (await receive()).get("more_body"):
                pass
            body = b'{"access_token": "tok-hostile"}' if "login" in path else b'{"ok":true}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if mode == "loop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", path.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/json")]
        if mode == "script":
            evil = SCRIPT.encode()
            headers += [
                (b"server", b"evil/1.0 " + evil),
                (b"x-powered-by", evil),
                (b"access-control-allow-origin", evil),
                (b"content-security-policy", evil),
                (b"set-cookie", evil + b"=1"),
                (b"location", evil),
            ]
            body = json.dumps({"items": [SCRIPT] * 200, "error": SCRIPT}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunk = b" " * 65536 if mode == "huge" else b" " * 512
        sent = 0
        stop = time.monotonic() + 20
        # huge: 10 MB; endless: a trickle that never ends (bounded so the test cleans up)
        while not gone.is_set() and time.monotonic() < stop:
            if mode == "huge" and sent >= 10_000_000:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            await asyncio.sleep(0.05 if mode == "endless" else 0)
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"{}"})
        watcher.cancel()

    return app


@contextlib.contextmanager
def malformed_server() -> Iterator[str]:
    """A raw socket server: /health and login are fine, everything else has broken headers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(4096)
                if not more:
                    return
                data += more
            head, _, rest = data.partition(b"\r\n\r\n")
            line = head.split(b"\r\n")[0].split()
            path = line[1].decode() if len(line) > 1 else "/"
            length = 0
            for h in head.split(b"\r\n")[1:]:
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip() or 0)
            while len(rest) < length:
                more = conn.recv(4096)
                if not more:
                    break
                rest += more
            if path.startswith(("/health", "/v1/auth/login")):
                body = b'{"access_token": "tok-raw"}' if "login" in path else b'{"ok":true}'
                resp = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            else:
                resp = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"this line is not a header\r\nX-Bad\x00: <script>\r\n"
                    b"Content-Length: 2\r\n\r\n{}"
                )
            with contextlib.suppress(OSError):
                conn.sendall(resp)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        sock.close()


# the routes the hostile servers serve (discovery off: the checks are under test, not it)
HOSTILE_MAP = ApiConfig(
    openapi="off",
    prefix="/v1",
    health={"live": "/health"},
    lists=[{"path": "/v1/counsel/sessions", "size_param": "limit", "offset_param": "offset"}],
    docs=["/api/docs"],
)


def _run(url: str) -> Any:
    checks = {cid: {"request_timeout_s": REQUEST_TIMEOUT} for cid in MINE}
    env = Environment(base_url=url, auth=AuthConfig(), production=True, api=HOSTILE_MAP)
    ctx = make_context(environment=env, environ=dict(CREDS), config=Config(checks=checks))
    t0 = time.monotonic()
    out = run_checks(ctx, only=MINE, jobs=8)
    return out, time.monotonic() - t0


def _assert_sane(out: Any, took: float, limit: float) -> None:
    assert took < limit, f"took {took:.1f} s"
    for cid in MINE:
        results = [r for r in out.results if r.check_id == cid]
        assert results, cid
        for r in results:
            assert r.error_reason is None or r.error_reason.value != "bug", (
                cid,
                r.summary,
                r.trace,
            )
            assert "\n" not in r.summary and len(r.summary) < 400, (cid, r.summary)
            assert r.status.value in ("pass", "warn", "fail", "skip", "error", "blocked")


@pytest.mark.parametrize("mode", ["huge", "endless", "script", "loop"])
def test_hostile_targets_end_in_time_without_bugs(mode: str) -> None:
    with serve(hostile(mode)) as s:
        out, took = _run(s.url)
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    by = {(r.check_id, r.subject): r for r in out.results}
    if mode == "endless":
        # every check that reads a never-ending body gives up with a timeout error
        for cid in ("http.compression", "http.pagination", "http.security_headers"):
            assert any(
                r.check_id == cid and r.status.value == "error" and "within" in r.summary
                for r in out.results
            ), cid
    if mode == "huge":
        # a 10 MB body: read to the cap and judged (fail), or cut off by the deadline on a
        # busy machine (error); either way a one-line reason, never a pass
        comp = by[("http.compression", "/v1/counsel/sessions?limit=100")]
        assert comp.status.value in ("fail", "error")
        pag = by[("http.pagination", "/v1/counsel/sessions")]
        assert pag.status.value in ("fail", "error")
    if mode == "script":
        assert by[("http.banner", "X-Powered-By")].status.value == "fail"
        # no allowed origin is known: the allow side skips naming the key, never a pass
        cors = by[("http.cors", "allowed origin")]
        assert cors.status.value == "skip" and "api.cors_origin" in cors.summary
        assert len(by[("http.banner", "Server")].summary) < 200
    if mode == "loop":
        assert by[("http.versioning", "version prefix /v1")].status.value in ("fail", "warn")


def test_malformed_headers_end_as_errors() -> None:
    with malformed_server() as url:
        out, took = _run(url)
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    errors = [r for r in out.results if r.check_id in MINE and r.status.value == "error"]
    assert len({r.check_id for r in errors}) == len(MINE)
    assert any("malformed" in r.summary for r in errors)


def test_connection_refused_blocks_every_check() -> None:
    out, took = _run(f"http://127.0.0.1:{free_port()}")
    _assert_sane(out, took, 60)  # a hang guard, not a speed target
    for cid in MINE:
        assert {r.status.value for r in out.results if r.check_id == cid} == {"blocked"}


# -- the bounded client (readyctl/httpread.py), in process --------------------------------------
def _gzip(data: bytes) -> bytes:
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return z.compress(data) + z.flush()


def _zeros_gzip(n: int) -> bytes:
    """gzip of n zero bytes, compressed block by block (never n bytes in memory)."""
    return b"".join(gzip_bomb_chunks(n, 1 << 20))


def encoded(routes: dict[str, tuple[list[tuple[bytes, bytes]], bytes]]) -> Any:
    """A raw ASGI app: path -> (headers, body bytes sent as they are, content-encoding kept)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers, body = routes[scope["path"]]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(0, len(body), 65536):
            more = i + 65536 < len(body)
            await send(
                {"type": "http.response.body", "body": body[i : i + 65536], "more_body": more}
            )
        if not body:
            await send({"type": "http.response.body", "body": b""})

    return app


def _client(url: str, *, timeout_s: float = 10, **kw: Any) -> Any:
    ctx = make_context(environment=Environment(base_url=url)).for_check("t", timeout_s, None)
    return ctx, ctx.http(timeout=timeout_s, **kw)


def test_bounded_client_decodes_normal_bodies_and_stops_bombs_in_pieces() -> None:
    import zlib

    import brotli

    payload = json.dumps({"items": list(range(5000))}).encode()
    deflate_raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = _zeros_gzip(100 * 1024**2)  # 100 MiB of zeros in about 100 KB
    routes = {
        "/gzip": ([(b"content-encoding", b"gzip")], _gzip(payload)),
        "/deflate-raw": (
            [(b"content-encoding", b"deflate")],
            deflate_raw.compress(payload) + deflate_raw.flush(),
        ),
        "/br": ([(b"content-encoding", b"br")], brotli.compress(payload)),
        "/gzip-bomb": ([(b"content-encoding", b"gzip")], bomb),
        # gzip of a gzip bomb: each layer is decoded in bounded pieces, lazily
        "/nested-bomb": ([(b"content-encoding", b"gzip, gzip")], _gzip(bomb)),
        "/br-bomb": (
            [(b"content-encoding", b"br")],
            brotli.compress(bytes(100 * 1024**2), quality=5),  # about 100 bytes
        ),
    }
    with serve(encoded(routes)) as s:
        _, client = _client(s.url)
        for path in ("/gzip", "/deflate-raw", "/br"):
            r = client.get(path)
            assert r.content == payload and r.json()["items"][-1] == 4999, path
            assert r.headers["content-encoding"]  # judged by http.compression: kept as sent
            with client.stream("GET", path) as r:
                assert b"".join(r.iter_bytes(chunk_size=1000)) == payload
        for path, how in (
            ("/gzip-bomb", "gzip"),
            ("/nested-bomb", "gzip, gzip"),
            ("/br-bomb", "br"),
        ):
            with pytest.raises(BodyTooLarge) as info:
                client.get(path)
            e = info.value
            assert str(e) == f"body exceeded 10 MB after {how} decoding: stopped reading", path
            assert e.limit == 10_000_000 and e.seen <= e.limit + 65536 and not e.wire
            # a soft cap reads only what it asked for, in pieces of at most 64 KB
            with client.stream("GET", path) as r:
                body = read_body(r, cap=1_000_000)
            assert body.truncated and len(body.data) == 1_000_000
            assert body.over == f"body exceeded 1 MB after {how} decoding: stopped reading"
            assert body.wire_bytes < 1_000_000
        # a check may ask for less
        _, small = _client(s.url, max_body=100_000)
        with pytest.raises(BodyTooLarge, match="exceeded 100 KB after gzip decoding"):
            small.get("/gzip-bomb")


def test_bounded_client_stops_at_the_deadline_on_slow_drips_and_when_cancelled() -> None:
    for mode in ("slow_headers", "slow_body", "hang"):
        with hostile_server(mode) as s:
            # per-read timeouts (5 s) never fire on a drip; the 1.5 s deadline does
            ctx, client = _client(s.url, timeout_s=1.5)
            client.timeout = httpx.Timeout(5)
            t0 = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                client.get("/drip")
            assert time.monotonic() - t0 < 4, mode  # a hang guard, not a speed target
            # a request's own, earlier stop bounds the whole exchange too
            _, client = _client(s.url, timeout_s=30)
            t0 = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                client.get("/drip", extensions={DEADLINE: time.monotonic() + 1})
            assert time.monotonic() - t0 < 4, mode
    with hostile_server("slow_body") as s:
        ctx, client = _client(s.url, timeout_s=30)
        threading.Timer(0.5, ctx.state.cancelled.set).start()
        t0 = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            client.get("/drip")
        assert time.monotonic() - t0 < 4


def test_huge_headers_and_garbage_are_errors_not_crashes() -> None:
    with hostile_server("huge_headers") as s:
        _, client = _client(s.url)
        with pytest.raises(httpx.RemoteProtocolError, match="headers exceeded 102 KB"):
            client.get("/x")
    with hostile_server("invalid_http") as s:
        _, client = _client(s.url)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/x")


# -- every HTTP check against misbehaving servers, each server in its own capped process ------
BODY_CHECKS = [
    "http.security_headers",
    "http.compression",
    "http.error_hygiene",
    "http.banner",
    "http.docs_exposure",
    "health.endpoints",
]
# judged on response headers alone; a pass there says nothing about the body (never read
# beyond its small cap), so the no-pass rule applies to the others
HEADER_ONLY = {"http.banner"}
PEAK_RSS_MB = 200
REPO = Path(__file__).resolve().parents[2]
ROUTE_SETTINGS: dict[str, dict[str, Any]] = {
    "http.security_headers": {
        "public_paths": ["/api/items"],
        "auth_paths": ["/api/me"],
        "html_paths": [],
    },
    "http.compression": {"paths": ["/api/items"]},
    "http.error_hygiene": {
        "json_endpoint": "/api/items",
        "not_found_prefix": "/nope-",
    },
    "http.banner": {"paths": ["/api/items"]},
    "http.docs_exposure": {
        "paths": ["/docs", "/openapi.json"],
        "control_path": "/health",
    },
    "health.endpoints": {"paths": ["/ready"], "requests": 3},
}


def _write_config(
    path: Path,
    url: str,
    *,
    reach: str = "/health",
    login: str = "/v1/auth/login",
    ca_bundle: str | None = None,
    tls: bool = False,
    timeout_s: float = 3.0,
) -> str:
    # the routes come from the settings below; discovery is off (it is not under test here)
    env: dict[str, Any] = {
        "base_url": url,
        "production": True,
        "auth": {"path": login},
        "api": {"openapi": "off"},
    }
    if ca_bundle:
        env["ca_bundle"] = ca_bundle
    checks: dict[str, Any] = {
        cid: {**v, "request_timeout_s": timeout_s} for cid, v in ROUTE_SETTINGS.items()
    }
    checks["http.reachable"] = {"path": reach, "request_timeout_s": timeout_s}
    if tls:
        checks = {"tls.certificate": {"timeout_s": 3}, "tls.expiry": {"timeout_s": 3}}
    cfg = {"version": 2, "default_environment": "t", "environments": {"t": env}, "checks": checks}
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return str(path)


def _child(tmp: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run readyctl's CLI in one address-space-capped process; its results and peak RSS."""
    import os
    import subprocess
    import sys

    for run in runs:
        run["out"] = str(tmp / f"out-{run['name']}")
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"runs": runs, "rlimit_as": 1 << 30}))
    env = {**os.environ, **CREDS, "MALLOC_ARENA_MAX": "2", "NO_COLOR": "1"}
    env.pop("READYCTL_DEBUG", None)
    # forked from a small launcher: a child of the pytest worker would report the worker's RSS
    launcher = str(REPO / "tests" / "launch_small.py")
    proc = subprocess.run(
        [sys.executable, launcher, sys.executable, "-m", "tests.checks.hostile_child", str(spec)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,  # a hang guard
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _by_check(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in run["results"]:
        out.setdefault(r["id"], []).append(r)
    return out


def _summaries(results: list[dict[str, Any]]) -> str:
    return " | ".join(r["summary"] for r in results)


def _sane_results(answer: dict[str, Any]) -> None:
    assert answer["peak_rss_mb"] < PEAK_RSS_MB, answer["peak_rss_mb"]
    for name, run in answer["runs"].items():
        assert run["took_s"] < 60, (name, run["took_s"])  # a hang guard, not a speed target
        assert run["results"], name
        for r in run["results"]:
            assert r["error_reason"] != "bug", r
            assert "\n" not in r["summary"] and len(r["summary"]) < 400, r["summary"]


# what each check must say about each server (a regex found in its summaries), beyond "no pass"
SAYS: dict[str, dict[str, str]] = {
    # the login's stop and the run's deadline (2 s) fall together: either may report it
    "hang": {"reach": "did not answer in time", "login": "in time|deadline passed"},
    "slow_headers": {"reach": "did not answer in time", "login": "in time|deadline passed"},
    "slow_body": {
        "reach": "answered 200, but the body was still arriving",
        "login": "in time|deadline passed",
        "http.compression": "did not finish within",
        "health.endpoints": "did not end within",
    },
    "endless_chunked": {
        "reach": "body exceeded 10 MB on the wire: stopped reading",
        "login": "body exceeded 1 MB: stopped reading",
        "http.compression": "over 1000000 bytes",
        "http.error_hygiene": "body exceeded 1 MB: stopped reading",
        "http.docs_exposure": "body exceeded 256 KB: stopped reading",
        "health.endpoints": "body exceeded 64 KB: stopped reading",
    },
    "big_body": {
        "reach": "body exceeded 10 MB on the wire: stopped reading",
        "login": "body exceeded 1 MB: stopped reading",
        "http.compression": "over 1000000 bytes",
        "health.endpoints": "body exceeded 64 KB: stopped reading",
    },
    "gzip_bomb": {
        "reach": "body exceeded 10 MB after gzip decoding: stopped reading",
        "login": "body exceeded 1 MB after gzip decoding: stopped reading",
        "http.compression": "body exceeded 1 MB after gzip decoding: stopped reading",
        "http.error_hygiene": "body exceeded 1 MB after gzip decoding",
        "http.docs_exposure": "body exceeded 256 KB after gzip decoding",
        "health.endpoints": "body exceeded 64 KB after gzip decoding: stopped reading",
    },
    "invalid_http": {
        "reach": "not a valid HTTP answer",
        "login": "RemoteProtocolError",
        "http.compression": "malformed HTTP response",
        "health.endpoints": "malformed",
    },
    "redirect_loop": {
        "reach": "redirects in a loop",
        "login": "answered 302",
        "health.endpoints": "a loop",
    },
    "offhost_redirect": {
        "reach": "to another origin",
        "login": "answered 302 to http://127.0.0.2",
        "health.endpoints": "redirects to http://127.0.0.2",
    },
    "reset": {
        "reach": "reset by peer",
        "login": "failed",
        "http.compression": "reset by peer",
        "health.endpoints": "reset by peer",
    },
    "huge_headers": {
        "reach": "headers exceeded 102 KB",
        "login": "failed",
        "http.compression": "headers exceeded 102 KB",
        "health.endpoints": "headers exceeded 102 KB",
    },
    "stack_trace": {
        "reach": "answered 500",
        "login": "answered 500",
        "http.error_hygiene": "stack trace",
        "health.endpoints": "500 x3",
    },
}


# servers that share one child process (one interpreter start for three servers)
GROUPS = {
    "stalls": ("hang", "slow_headers"),
    "floods": ("endless_chunked", "big_body", "gzip_bomb"),
    "broken": ("invalid_http", "reset", "huge_headers", "slow_body"),
    "answers": ("redirect_loop", "offhost_redirect", "stack_trace"),
}
assert sorted(m for g in GROUPS.values() for m in g) == sorted(HOSTILE_MODES)
STALLS = ("hang", "slow_headers", "slow_body")  # every request costs its whole budget


def _runs(mode: str, url: str, tmp: Path) -> list[dict[str, Any]]:
    """Three readyctl runs against one hostile server."""
    tmp.mkdir()
    # a server that stalls costs each request its whole budget: keep it short there (slow_body
    # must still get its headers in time); the others answer at once, and a short budget would
    # only make a busy machine flaky
    wait = {"hang": 0.5, "slow_headers": 0.5, "slow_body": 1.0}.get(mode, 3.0)
    return [
        # the probe on a hostile path
        {
            "name": f"{mode}/reach",
            "config": _write_config(
                tmp / "reach.yaml", url, reach="/hostile/health", timeout_s=wait
            ),
            "only": ["http.reachable"],
        },
        # the login on a hostile path (the probe's /health is sane)
        {
            "name": f"{mode}/login",
            "config": _write_config(
                tmp / "login.yaml", url, login="/hostile/login", timeout_s=wait
            ),
            "only": ["auth.session"],
            **({"deadline": "2s"} if mode in STALLS else {}),
        },
        # the rest on hostile paths, with a sane probe and login
        {
            "name": f"{mode}/checks",
            "config": _write_config(tmp / "checks.yaml", url, timeout_s=wait),
            "only": BODY_CHECKS,
        },
    ]


def _assert_mode(mode: str, answer: dict[str, Any]) -> None:
    """What every check reported about one hostile server."""
    says = SAYS[mode]
    reach = _by_check(answer["runs"][f"{mode}/reach"])["http.reachable"]
    assert [r["status"] for r in reach] != ["pass"], reach
    assert re.search(says["reach"], _summaries(reach)), (mode, reach)
    login = _by_check(answer["runs"][f"{mode}/login"])
    assert [r["status"] for r in login["http.reachable"]] == ["pass"]  # the sane /health
    assert {r["status"] for r in login["auth.session"]} <= {"fail", "error"}, login
    assert re.search(says["login"], _summaries(login["auth.session"])), (mode, login)
    checks = _by_check(answer["runs"][f"{mode}/checks"])
    assert [r["status"] for r in checks["http.reachable"]] == ["pass"]
    assert [r["status"] for r in checks["auth.session"]] == ["pass"]
    for cid in BODY_CHECKS:
        results = checks[cid]
        got = {r["status"] for r in results}
        if cid not in HEADER_ONLY:
            assert "pass" not in got and got & {"fail", "error", "warn"}, (mode, cid, results)
        assert "blocked" not in got, (mode, cid, results)  # the probe and the login are sane
        if cid in says:
            assert re.search(says[cid], _summaries(results)), (mode, cid, results)
        if mode in (*STALLS, "invalid_http", "reset", "huge_headers"):
            assert got == {"error"}, (mode, cid, results)


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_every_http_check_against_misbehaving_servers(group: str, tmp_path: Path) -> None:
    modes = GROUPS[group]
    with contextlib.ExitStack() as stack:
        elsewhere = stack.enter_context(hostile_server("ok", host="127.0.0.2"))
        runs = []
        for mode in modes:
            s = stack.enter_context(hostile_server(mode, offhost=f"{elsewhere.url}/stolen"))
            runs += _runs(mode, s.url, tmp_path / mode)
        answer = _child(tmp_path, runs)
    _sane_results(answer)
    for mode in modes:
        _assert_mode(mode, answer)
    # nothing follows a redirect to another host (it would carry the session there)
    assert elsewhere.seen == []
    print(f"{group} ({', '.join(modes)}): peak RSS {answer['peak_rss_mb']} MB")


@pytest.mark.slow
def test_expired_certificate_is_reported_as_expired_whatever_the_chain_says(
    tmp_path: Path,
) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with hostile_server("ok", tls_dir=tmp_path / "tls", not_after=past) as s:
        assert s.ca_bundle
        runs = [
            {  # trusted CA: the chain fails only because the leaf expired
                "name": "trusted",
                "config": _write_config(
                    tmp_path / "a.yaml", s.url, ca_bundle=s.ca_bundle, tls=True
                ),
                "only": ["tls.certificate", "tls.expiry"],
            },
            {  # unknown CA: OpenSSL names the issuer first, the leaf is expired all the same
                "name": "untrusted",
                "config": _write_config(tmp_path / "b.yaml", s.url, tls=True),
                "only": ["tls.certificate", "tls.expiry"],
            },
        ]
        answer = _child(tmp_path, runs)
    _sane_results(answer)
    for name, run in answer["runs"].items():
        by = {(r["id"], r["subject"]): r for r in run["results"]}
        reach = by[("http.reachable", s.url)]
        assert reach["status"] == "fail" and "TLS handshake failed" in reach["summary"], name
        chain = by[("tls.certificate", "chain")]
        assert chain["status"] == "fail" and "expired" in chain["summary"], (name, chain)
        expiry = by[("tls.expiry", "leaf certificate")]
        assert expiry["status"] == "fail", (name, expiry)
        assert "expired 3 days ago" in expiry["summary"], (name, expiry)
    untrusted = {(r["id"], r["subject"]): r for r in answer["runs"]["untrusted"]["results"]}
    chain = untrusted[("tls.certificate", "chain")]
    assert "unable to get local issuer certificate" in chain["summary"]
    assert "the leaf certificate expired 3 days ago" in chain["summary"]
    print(f"expired certificate: peak RSS {answer['peak_rss_mb']} MB")


def test_smoke_steps_are_bounded_and_never_pass_on_a_hostile_body() -> None:
    from readyctl.redact import Redactor
    from readyctl.scenarios import Runner, parse_suite

    def step(name: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "path": "/x", "expect": {"status": 200}, "timeout_s": 2, **kw}

    got: dict[str, Any] = {}
    for mode, extra in (
        ("gzip_bomb", {}),
        ("endless_chunked", {}),
        ("slow_body", {}),
        ("redirect_loop", {"follow_redirects": True}),
    ):
        with hostile_server(mode) as s:
            _, client = _client(s.url, timeout_s=30)
            suite = parse_suite({"scenarios": [{"name": mode, "steps": [step(mode, **extra)]}]})
            (got[mode],) = Runner(client, redactor=Redactor(), env={}).run_suite(suite)
    for mode, out in got.items():
        assert out.status.value == "fail", (mode, out.summary)
    assert "body exceeded 1 MB after gzip decoding: stopped reading" in got["gzip_bomb"].summary
    assert "body exceeded 1 MB: stopped reading" in got["endless_chunked"].summary
    assert "did not answer within 2.0 s" in got["slow_body"].summary
    assert "redirects in a loop" in got["redirect_loop"].summary


def test_every_http_client_of_checks_and_drivers_comes_from_the_context() -> None:
    """Context.http() is the one place a client is built, so every read is bounded."""
    import re as _re

    raw = _re.compile(
        r"httpx\.(?:Client|AsyncClient|get|post|put|patch|delete|request|stream)\("
        r"|urlopen\(|\bhttp\.client\b|\brequests\.(?:get|post|request|Session)\b"
    )
    offenders = []
    for root in (REPO / "checks", REPO / "readyctl"):
        for path in root.rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("readyctl/demo/"):  # the demo is a target, not readyctl
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if raw.search(line) and rel != "readyctl/context.py":
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders
    ctx = make_context(environment=Environment(base_url="http://127.0.0.1:9"))
    client = ctx.http()
    assert isinstance(client._transport, BoundedTransport)
    assert all(isinstance(t, BoundedTransport) for t in client._mounts.values() if t)
