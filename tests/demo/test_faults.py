"""Each fault switch, tested directly: the property it names really is broken."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt
import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from readyctl.demo.db import strip_pool_params
from readyctl.demo.faults import FAULTS
from readyctl.demo.managed import ManagedDemo
from readyctl.demo.migrate import NORMAL_HEAD, alembic_config
from readyctl.demo.settings import jwt_secret_problem, parse_env_file
from readyctl.postgres.embedded import EmbeddedPostgres

from .helpers import (
    api,
    bearer,
    current_revisions,
    event,
    login,
    schema_snapshot,
    stripe_signature,
    unique_email,
    wait_for_mail,
)

pytestmark = pytest.mark.slow
Factory = Callable[..., ManagedDemo]
PASSWORD = "correct horse battery staple"

ISSUE_FAULTS = [
    "no-hsts",
    "no-security-headers",
    "server-banner",
    "cors-wildcard",
    "no-https-redirect",
    "no-rate-limit",
    "unversioned-api",
    "docs-public",
    "ready-ignores-db",
    "stack-traces",
    "no-compression",
    "no-pagination-cap",
    "user-enumeration",
    "jwt-none-alg",
    "jwt-no-expiry-check",
    "refresh-reuse",
    "weak-jwt-secret",
    "missing-env",
    "env-placeholder",
    "pool-defaults",
    "irreversible-migration",
    "lossy-migration",
    "unsafe-migration",
    "missing-index",
    "no-backup",
    "stale-backup",
    "slow-counsel",
    "error-burst",
    "crisis-detection-off",
    "email-broken",
    "webhook-unsigned",
    "cross-tenant",
    "no-graceful-shutdown",
    "no-metrics",
    # issue 17: the shipped alert rules and Alertmanager config
    "alert-rules-loose",
    "alerts-unrouted",
    # issue 18: the public crisis-lines list loses its cache validators
    "no-cache-validators",
    # issue 18: GDPR export and deletion, and the privacy policy page
    "privacy-export-broken",
    "privacy-delete-noop",
    "no-privacy-policy",
]


def test_registry_has_every_fault_of_the_issue() -> None:
    assert set(FAULTS) == set(ISSUE_FAULTS)
    for fault in FAULTS.values():
        assert fault.description and isinstance(fault.checks, list)


def _b64(data: dict[str, Any]) -> str:
    """Base64url-encode a JSON object without padding."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _none_alg(token: str) -> str:
    """Re-issue a token's claims with alg 'none' and no signature."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _expired(token: str, secret: str) -> str:
    """Re-sign a token's claims with the real secret, expired a minute ago."""
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 3600, exp=now - 60)
    return jwt.encode(claims, secret, algorithm="HS256")


# -- transport and headers --------------------------------------------------------------------


def test_no_hsts(make_demo: Factory) -> None:
    d = make_demo("no-hsts")
    with api(d) as c:
        h = c.get("/health").headers
    assert "strict-transport-security" not in h
    assert h["x-content-type-options"] == "nosniff"


def test_no_security_headers(make_demo: Factory) -> None:
    d = make_demo("no-security-headers")
    with api(d) as c:
        h = c.get("/health").headers
        docs = c.get("/api/docs", headers=bearer(login(c, d.user()))).headers
    for name in ("x-content-type-options", "x-frame-options", "referrer-policy"):
        assert name not in h, name
    assert "content-security-policy" not in h and "content-security-policy" not in docs
    assert "strict-transport-security" in h


def test_server_banner(make_demo: Factory) -> None:
    d = make_demo("server-banner")
    with api(d) as c:
        h = c.get("/health").headers
    assert h["server"].startswith("uvicorn/")
    assert h["x-powered-by"].startswith("FastAPI/")


def test_cors_wildcard(make_demo: Factory) -> None:
    d = make_demo("cors-wildcard")
    evil = "https://evil.example"
    with api(d) as c:
        r = c.get("/health", headers={"Origin": evil})
        pre = c.options(
            "/v1/auth/login", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
        )
    assert r.headers["access-control-allow-origin"] == evil
    assert r.headers["access-control-allow-credentials"] == "true"
    assert pre.headers["access-control-allow-origin"] == evil


def test_no_https_redirect(make_demo: Factory) -> None:
    d = make_demo("no-https-redirect")
    r = httpx.get(d.http_url + "/health", follow_redirects=False)
    assert r.status_code == 200
    r = httpx.post(
        d.http_url + "/v1/auth/login",
        json={"email": d.user()["email"], "password": d.user()["password"]},
        follow_redirects=False,
    )
    assert r.status_code == 200 and "access_token" in r.json()


def test_no_rate_limit(make_demo: Factory) -> None:
    d = make_demo("no-rate-limit")
    with api(d) as c:
        codes = []
        for _ in range(7):
            r = c.post("/v1/auth/register", json={"email": unique_email(), "password": PASSWORD})
            codes.append(r.status_code)
            assert not any(k.lower().startswith("ratelimit") for k in r.headers)
    assert codes == [202] * 7


def test_unversioned_api(make_demo: Factory) -> None:
    d = make_demo("unversioned-api")
    with api(d) as c:
        tokens = c.post(
            "/auth/login", json={"email": d.user()["email"], "password": d.user()["password"]}
        )
        assert tokens.status_code == 200
        h = bearer(tokens.json())
        assert c.get("/counsel/sessions", headers=h).status_code == 200
        assert c.get("/v2/counsel/sessions", headers=h).status_code == 200
        assert c.get("/v7/auth/me", headers=h).status_code == 200


def test_docs_public(make_demo: Factory) -> None:
    d = make_demo("docs-public")
    with api(d) as c:
        assert c.get("/api/docs").status_code == 200
        assert "/v1/auth/login" in c.get("/api/docs-json").json()["paths"]


def test_ready_ignores_db(make_demo: Factory) -> None:
    # Own PostgreSQL: stopping the shared one would disturb the other demos.
    d = make_demo("ready-ignores-db", pg=None)
    d.stop_database()
    try:
        with api(d) as c:
            assert c.get("/health/ready").status_code == 200
            # Positive control: the database really is down.
            r = c.post("/v1/auth/login", json={"email": d.user()["email"], "password": "x"})
            assert r.status_code == 503
    finally:
        d.start_database()


def test_stack_traces(make_demo: Factory) -> None:
    d = make_demo("stack-traces")
    with api(d) as c:
        r = c.post("/v1/auth/login", json={"email": 5})
    assert r.status_code == 422
    err = r.json()["error"]
    assert "Traceback" in "".join(err["traceback"])
    assert ".py" in r.text and "/site-packages/" in r.text


def test_no_compression(make_demo: Factory) -> None:
    d = make_demo("no-compression")
    with api(d) as c:
        h = bearer(login(c, d.user()))
        r = c.get(
            "/v1/counsel/sessions", params={"limit": 50}, headers={**h, "Accept-Encoding": "gzip"}
        )
    assert len(r.content) > 1000
    assert "content-encoding" not in r.headers


def test_no_pagination_cap(make_demo: Factory) -> None:
    d = make_demo("no-pagination-cap")
    with api(d) as c:
        h = bearer(login(c, d.user()))
        body = c.get("/v1/counsel/sessions", params={"limit": 1000}, headers=h).json()
    assert body["limit"] == 1000 and len(body["items"]) == body["total"] > 100


# -- auth --------------------------------------------------------------------------------------


def test_user_enumeration(make_demo: Factory) -> None:
    d = make_demo("user-enumeration")
    member = d.user()
    with api(d) as c:
        unknown = c.post("/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
        wrong = c.post("/v1/auth/login", json={"email": member["email"], "password": PASSWORD})
        again = c.post("/v1/auth/register", json={"email": member["email"], "password": PASSWORD})
    assert (unknown.status_code, wrong.status_code) == (404, 401)
    assert unknown.json()["error"]["message"] != wrong.json()["error"]["message"]
    assert again.status_code == 409


def test_jwt_none_alg(make_demo: Factory, demo: ManagedDemo) -> None:
    d = make_demo("jwt-none-alg")
    with api(d) as c:
        forged = _none_alg(login(c, d.user())["access_token"])
        assert (
            c.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 200
        )
    with api(demo) as c:  # positive control: the healthy demo refuses the same forgery
        forged = _none_alg(login(c, demo.user("member", index=11))["access_token"])
        assert (
            c.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        )


def test_jwt_no_expiry_check(make_demo: Factory, demo: ManagedDemo) -> None:
    d = make_demo("jwt-no-expiry-check")
    secret = parse_env_file(d.env_file)["JWT_SECRET"]
    with api(d) as c:
        expired = _expired(login(c, d.user())["access_token"], secret)
        assert (
            c.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 200
        )
    secret = parse_env_file(demo.env_file)["JWT_SECRET"]
    with api(demo) as c:  # positive control
        expired = _expired(login(c, demo.user("member", index=12))["access_token"], secret)
        assert (
            c.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
        )


def test_refresh_reuse(make_demo: Factory) -> None:
    d = make_demo("refresh-reuse")
    with api(d) as c:
        tokens = login(c, d.user())
        first = c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        reused = c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert first.status_code == 200 and reused.status_code == 200
        assert c.get("/v1/auth/me", headers=bearer(first.json())).status_code == 200


# -- configuration -------------------------------------------------------------------------------


def test_weak_jwt_secret(make_demo: Factory) -> None:
    d = make_demo("weak-jwt-secret")
    secret = parse_env_file(d.env_file)["JWT_SECRET"]
    assert jwt_secret_problem(secret) is not None and len(secret) < 32
    with api(d) as c:  # the guard is off: the server runs and signs with the weak secret
        token = login(c, d.user())["access_token"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about the short key: that is the point
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_iss": False})


def test_missing_env(make_demo: Factory) -> None:
    d = make_demo("missing-env")
    env = parse_env_file(d.env_file)
    example = parse_env_file(d.env_example)
    assert "OPENAI_API_KEY" in example and "OPENAI_API_KEY" not in env
    assert set(example) - set(env) == {"OPENAI_API_KEY"}
    with api(d) as c:
        assert c.get("/health/ready").status_code == 200


def test_env_placeholder(make_demo: Factory) -> None:
    d = make_demo("env-placeholder")
    assert parse_env_file(d.env_file)["POSTMARK_API_TOKEN"] == "changeme"
    email = unique_email("ph")
    with api(d) as c:  # mail still flows: only the env value is a placeholder
        assert (
            c.post("/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 202
        )
    assert len(wait_for_mail(d, email)) == 1


def test_pool_defaults(make_demo: Factory, demo: ManagedDemo) -> None:
    d = make_demo("pool-defaults")
    for url in (d.database_url, parse_env_file(d.env_file)["DATABASE_URL"]):
        assert "connection_limit" not in url and "pool_timeout" not in url
    assert "connection_limit=10" in demo.database_url and "pool_timeout=10" in demo.database_url
    with api(d) as c:
        assert c.get("/health/ready").status_code == 200


# -- migrations and data ---------------------------------------------------------------------------


def _scratch_at_fault_head(scratch_db: str, fault: str) -> Any:
    """Upgrade a scratch database to the fault's head; return its alembic Config."""
    cfg = alembic_config(scratch_db, [fault])
    command.upgrade(cfg, "heads")
    return cfg


def test_irreversible_migration(make_demo: Factory, scratch_db: str) -> None:
    d = make_demo("irreversible-migration")
    assert current_revisions(d.database_url) == {"f0005_irreversible"}
    cfg = _scratch_at_fault_head(scratch_db, "irreversible-migration")
    with pytest.raises(NotImplementedError):
        command.downgrade(cfg, "-1")


def test_lossy_migration(make_demo: Factory, scratch_db: str) -> None:
    d = make_demo("lossy-migration")
    assert current_revisions(d.database_url) == {"f0005_lossy"}
    cfg = alembic_config(scratch_db, ["lossy-migration"])
    command.upgrade(cfg, NORMAL_HEAD)
    before = schema_snapshot(scratch_db)
    command.upgrade(cfg, "heads")
    command.downgrade(cfg, "-1")  # succeeds ...
    assert current_revisions(scratch_db) == {NORMAL_HEAD}
    after = schema_snapshot(scratch_db)
    assert after != before  # ... but the schema is not what it was
    assert ("users", "timezone", "text", "YES", None) in after["columns"]


def test_unsafe_migration(make_demo: Factory) -> None:
    d = make_demo("unsafe-migration")
    assert current_revisions(d.database_url) == {NORMAL_HEAD}  # left pending
    cfg = alembic_config(d.database_url, ["unsafe-migration"])
    assert ScriptDirectory.from_config(cfg).get_heads() == ["f0005_unsafe"]
    out = io.StringIO()
    with redirect_stdout(out):
        command.upgrade(cfg, f"{NORMAL_HEAD}:heads", sql=True)
    sql = out.getvalue()
    assert "CREATE INDEX ix_counseling_messages_created_at ON counseling_messages" in sql
    assert "CONCURRENTLY" not in sql


def _explain_hot_query(url: str) -> str:
    """EXPLAIN the hot session query for a seeded user."""
    conninfo, _ = strip_pool_params(url)
    with psycopg.connect(conninfo) as conn:
        user_id = conn.execute("SELECT user_id FROM counseling_sessions LIMIT 1").fetchone()[0]
        rows = conn.execute(
            "EXPLAIN SELECT id, title FROM counseling_sessions WHERE user_id = %s AND status = %s",
            (user_id, "active"),
        ).fetchall()
    return "\n".join(r[0] for r in rows)


def test_missing_index(make_demo: Factory, demo: ManagedDemo, scratch_db: str) -> None:
    d = make_demo("missing-index")
    assert "ix_counseling_sessions_user_id_status" in _explain_hot_query(demo.database_url)
    plan = _explain_hot_query(d.database_url)
    assert "Seq Scan on counseling_sessions" in plan
    # The revision itself is clean: its downgrade restores the schema exactly.
    cfg = alembic_config(scratch_db, ["missing-index"])
    command.upgrade(cfg, NORMAL_HEAD)
    before = schema_snapshot(scratch_db)
    command.upgrade(cfg, "heads")
    command.downgrade(cfg, "-1")
    assert schema_snapshot(scratch_db) == before


def _backups(d: ManagedDemo) -> list[Path]:
    """List the dump files in the demo's backup location."""
    return sorted(Path(unquote(urlsplit(d.backup_location).path)).glob("*.dump"))


def test_healthy_backup_is_fresh_and_restorable(demo: ManagedDemo, pg: EmbeddedPostgres) -> None:
    files = _backups(demo)
    assert len(files) == 1
    assert time.time() - files[0].stat().st_mtime < 3600
    listing = subprocess.run(
        [pg.bin("pg_restore"), "--list", str(files[0])], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE public counseling_sessions" in listing


def test_no_backup(make_demo: Factory) -> None:
    d = make_demo("no-backup")
    assert d.backup_location.startswith("file://")
    assert _backups(d) == []


def test_stale_backup(make_demo: Factory) -> None:
    d = make_demo("stale-backup")
    files = _backups(d)
    assert len(files) == 1
    age = time.time() - files[0].stat().st_mtime
    assert 3 * 86400 - 60 <= age <= 3 * 86400 + 3600


# -- counseling, email, billing, tenancy -----------------------------------------------------------


def _session(c: httpx.Client, d: ManagedDemo, index: int = 0) -> tuple[dict[str, str], str]:
    """Log in and create a session; return (auth header, session id)."""
    h = bearer(login(c, d.user("member", index=index)))
    return h, c.post("/v1/counsel/sessions", json={}, headers=h).json()["id"]


def test_slow_counsel(make_demo: Factory) -> None:
    d = make_demo("slow-counsel")
    with api(d) as c:
        h, sid = _session(c, d)
        t0 = time.monotonic()
        r = c.post(
            f"/v1/counsel/sessions/{sid}/messages", json={"content": "hello there"}, headers=h
        )
        elapsed = time.monotonic() - t0
    assert r.status_code == 201 and elapsed >= 3.0


def test_error_burst(make_demo: Factory) -> None:
    d = make_demo("error-burst")
    with api(d) as c:
        h = bearer(login(c, d.user()))
        codes = [c.get("/v1/counsel/sessions", headers=h).status_code for _ in range(15)]
        last = c.get("/v1/counsel/sessions", headers=h)
    assert [i for i, code in enumerate(codes) if code == 500] == [0, 5, 10]
    assert all(code == 200 for i, code in enumerate(codes) if i % 5 != 0)
    assert last.status_code == 500  # the 16th request starts the next five
    # another client's count is its own: its first request fails too
    with api(d) as c:
        other = bearer(login(c, d.user(index=1)))
        assert c.get("/v1/counsel/sessions", headers=other).status_code == 500
        assert c.get("/v1/counsel/sessions", headers=other).status_code == 200


def test_error_burst_answers_json_without_trace(make_demo: Factory) -> None:
    d = make_demo("error-burst")
    with api(d) as c:
        h = bearer(login(c, d.user()))
        answers = [c.get("/v1/counsel/sessions", headers=h) for _ in range(5)]
    err = answers[0]
    assert err.status_code == 500
    assert err.json()["error"]["code"] == "internal_error" and "Traceback" not in err.text
    with api(d) as c:
        metrics = c.get("/metrics").text
    assert 'http_request_errors_total{route="/v1/counsel/sessions",method="GET"} 1' in metrics


def test_crisis_detection_off(make_demo: Factory) -> None:
    d = make_demo("crisis-detection-off")
    with api(d) as c:
        h, sid = _session(c, d)
        r = c.post(
            f"/v1/counsel/sessions/{sid}/messages",
            json={"content": "I want to end my life, I can't do this anymore"},
            headers=h,
        )
    assert r.status_code == 201
    assert r.json()["crisis"] is False and r.json()["resources"] == []
    assert "988" not in r.json()["reply"]["content"]


def test_email_broken(make_demo: Factory) -> None:
    d = make_demo("email-broken")
    email = unique_email("broken")
    with api(d) as c:
        r = c.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 202  # silently ...
        r = c.post("/v1/auth/password-reset/request", json={"email": d.user()["email"]})
        assert r.status_code == 202
    assert wait_for_mail(d, email, timeout_s=1.5) == []  # ... not delivered
    assert wait_for_mail(d, d.user()["email"], timeout_s=0.5) == []


def test_webhook_unsigned(make_demo: Factory) -> None:
    d = make_demo("webhook-unsigned")
    with api(d) as c:
        unsigned = c.post("/v1/billing/webhook", content=event())
        payload = event()
        forged = c.post(
            "/v1/billing/webhook",
            content=payload,
            headers={"Stripe-Signature": stripe_signature("whsec_forged", payload)},
        )
    assert unsigned.status_code == 200 and forged.status_code == 200


def test_cross_tenant(make_demo: Factory) -> None:
    d = make_demo("cross-tenant")
    with api(d) as c:
        other = bearer(login(c, d.user("member", "northwind")))
        sid = c.post("/v1/counsel/sessions", json={"title": "theirs"}, headers=other).json()["id"]
        mine = bearer(login(c, d.user()))
        r = c.get(f"/v1/counsel/sessions/{sid}", headers=mine)
    assert r.status_code == 200 and r.json()["title"] == "theirs"


def test_no_metrics(make_demo: Factory) -> None:
    d = make_demo("no-metrics")
    with api(d) as c:
        r = c.get("/metrics")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# -- shutdown -------------------------------------------------------------------------------------


def _inflight_during_sigterm(d: ManagedDemo) -> tuple[Any, float]:
    """Send SIGTERM once a slow counsel request is on the wire; return (response or error, exit s).

    SIGTERM follows the request's last byte rather than a fixed sleep, so a starved test thread
    cannot send it before the request. The client stays open (pooled, as real clients are)
    until the server has exited.
    """
    result: dict[str, Any] = {}
    body = json.dumps({"content": "hi there"}).encode()
    written = threading.Event()

    def content() -> Iterator[bytes]:
        yield body
        written.set()  # httpx asks for more only after writing the body

    with api(d) as c:
        h, sid = _session(c, d)
        headers = {**h, "Content-Type": "application/json", "Content-Length": str(len(body))}

        def post() -> None:
            try:
                result["r"] = c.post(
                    f"/v1/counsel/sessions/{sid}/messages", content=content(), headers=headers
                )
            except httpx.HTTPError as exc:
                result["r"] = exc
            finally:
                written.set()

        worker = threading.Thread(target=post)
        worker.start()
        assert written.wait(20)  # hang guard
        t0 = time.monotonic()
        d.send_sigterm()
        # hang guard: a drain takes ~2 s; it stays below the server's own GRACEFUL_TIMEOUT_S so
        # a shutdown that only ends because that timeout fired still fails here
        code = d.server_exit_code(timeout_s=20)
        elapsed = time.monotonic() - t0
        worker.join(20)
    assert code is not None, d.server_log()[-3000:]
    return result["r"], elapsed


def test_graceful_shutdown_completes_in_flight_requests(make_demo: Factory) -> None:
    d = make_demo(ai_latency_ms=2000)
    response, _ = _inflight_during_sigterm(d)
    assert isinstance(response, httpx.Response) and response.status_code == 201
    # answered after the server had started draining, and told the client not to reuse the
    # connection (a pooled keep-alive connection would otherwise hold the shutdown)
    assert response.headers["connection"] == "close"
    assert d.server_exit_code(0) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(d.base_url + "/health", verify=False, timeout=2)
    # The launcher can bring the server back on the same ports.
    old_pid = d.pid
    d.restart_server()
    assert d.pid != old_pid
    with api(d) as c:
        assert c.get("/health/ready").status_code == 200
        login(c, d.user())


def test_no_graceful_shutdown(make_demo: Factory) -> None:
    d = make_demo("no-graceful-shutdown", ai_latency_ms=6000)
    response, elapsed = _inflight_during_sigterm(d)
    assert isinstance(response, httpx.HTTPError)
    assert elapsed < 5.0  # dropped, not served after the 6 s reply
    assert d.server_exit_code(0) != 0
    assert not os.path.exists(f"/proc/{d.pid}")
