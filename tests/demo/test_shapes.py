"""The demo's API shapes: the alt routes and auth conventions over HTTPS, the default unchanged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from readyctl.demo.app import create_app
from readyctl.demo.managed import ManagedDemo, start
from readyctl.demo.settings import Settings
from readyctl.demo.shapes import SHAPE_ENV, SHAPES, get_shape, shape_from_env, validate_shape
from readyctl.postgres.embedded import EmbeddedPostgres

from .helpers import api, bearer, event, login, stripe_signature, tls, unique_email

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "readyctl" / "demo"
PASSWORD = "correct horse battery staple"
STRONG = "kX9f2LQm8vR4tZp7WbN3cY6hJd1sGa5eUq0oIr"
TOKEN_KEYS = {"accessToken", "refreshToken", "tokenType", "expiresIn"}
METADATA = "/.well-known/oauth-authorization-server"
slow = pytest.mark.slow


def _start(pg: EmbeddedPostgres, shape: str, *faults: str) -> Iterator[ManagedDemo]:
    d = start(faults, pg=pg, shape=shape)
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def alt(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """A healthy demo of the alt shape."""
    yield from _start(pg, "alt")


@pytest.fixture(scope="module")
def alt_faulty(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """The alt shape with the faults whose behaviour depends on its routes."""
    yield from _start(
        pg, "alt", "refresh-reuse", "unversioned-api", "docs-public", "no-pagination-cap"
    )


@pytest.fixture(scope="module")
def alt_norefresh(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """The alt shape without refresh tokens."""
    yield from _start(pg, "alt-norefresh")


@pytest.fixture(scope="module")
def alt_noopenapi(pg: EmbeddedPostgres) -> Iterator[ManagedDemo]:
    """The alt shape without an OpenAPI document."""
    yield from _start(pg, "alt-noopenapi")


def token_login(c: httpx.Client, user: dict[str, Any], **extra: str) -> httpx.Response:
    """POST the OAuth2 password form of the alt shapes."""
    form = {"username": user["email"], "password": user["password"], **extra}
    return c.post("/api/v2/auth/token", data=form)


def alt_login(c: httpx.Client, user: dict[str, Any]) -> dict[str, Any]:
    """Log in on an alt shape and return the token answer."""
    r = token_login(c, user, grant_type="password")
    assert r.status_code == 200, r.text
    return r.json()


def auth(tokens: dict[str, Any], key: str = "accessToken") -> dict[str, str]:
    """An Authorization header carrying one of the alt token answer's tokens."""
    return {"Authorization": f"Bearer {tokens[key]}"}


def _doc(shape: str) -> dict[str, Any]:
    """The OpenAPI document of a shape, built in-process (no server, no database)."""
    return create_app(Settings(database_url="", jwt_secret=STRONG, shape=shape)).openapi()


def _schema(doc: dict[str, Any], ref_holder: dict[str, Any]) -> dict[str, Any]:
    """Resolve a {"$ref": "#/components/schemas/X"} holder."""
    name = ref_holder["$ref"].rsplit("/", 1)[1]
    return doc["components"]["schemas"][name]


# -- selecting a shape -----------------------------------------------------------------------


def test_shape_names_and_unknown_shape_error(tmp_path: Path) -> None:
    assert list(SHAPES) == ["default", "alt", "alt-norefresh", "alt-noopenapi"]
    assert validate_shape(None) == validate_shape("") == "default"
    assert shape_from_env({}) == "default"
    assert shape_from_env({SHAPE_ENV: "alt"}) == "alt"
    assert Settings.from_env({SHAPE_ENV: "alt-norefresh"}).api_shape.refresh is False
    message = "unknown demo shape 'v3'; valid shapes: default, alt, alt-norefresh, alt-noopenapi"
    for bad in (
        lambda: validate_shape("v3"),
        lambda: Settings.from_env({SHAPE_ENV: "v3"}),
        lambda: Settings(database_url="", jwt_secret=STRONG, shape="v3"),
        lambda: start(shape="v3", workdir=str(tmp_path)),
    ):
        with pytest.raises(ValueError) as info:
            bad()
        assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []  # refused before anything started


def test_unknown_shape_on_the_command_lines(tmp_path: Path) -> None:
    from readyctl.demo.__main__ import run_foreground

    said: list[str] = []
    assert run_foreground([], said.append, "v3") == 2
    assert said == ["error: unknown demo shape 'v3'; valid shapes: " + ", ".join(SHAPES)]
    up = subprocess.run(
        [sys.executable, "-m", "readyctl.demo", "up", "--shape", "v3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert up.returncode == 2 and "alt-noopenapi" in up.stderr
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=postgresql://u:p@127.0.0.1:1/db\nJWT_SECRET={STRONG}\n")
    serve = subprocess.run(
        [sys.executable, "-m", "readyctl.demo", "serve", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**_environ(), SHAPE_ENV: "v3"},
    )
    assert serve.returncode == 2
    assert "unknown demo shape 'v3'; valid shapes:" in serve.stderr


def _environ() -> dict[str, str]:
    """The process environment without the demo's own variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_DEMO_")}


def test_unversioned_paths_of_each_shape() -> None:
    default, alt = get_shape("default"), get_shape("alt")
    assert default.unversioned_path("/v1/auth/me") is None
    assert default.unversioned_path("/v2/counsel/sessions") == "/v1/counsel/sessions"
    assert default.unversioned_path("/auth/login") == "/v1/auth/login"
    assert default.unversioned_path("/health") is None
    assert alt.unversioned_path("/api/v2/users/me") is None
    assert alt.unversioned_path("/api/v99/counsel/sessions") == "/api/v2/counsel/sessions"
    assert alt.unversioned_path("/v1/counsel/sessions") == "/api/v2/counsel/sessions"
    assert alt.unversioned_path("/users/me") == "/api/v2/users/me"
    assert alt.unversioned_path("/counsel/sessions") == "/api/v2/counsel/sessions"
    assert alt.unversioned_path("/healthz") is None
    assert alt.unversioned_path(METADATA) is None


# -- the OpenAPI documents (in-process) ------------------------------------------------------


def test_alt_document_describes_the_alt_routes() -> None:
    doc = _doc("alt")
    assert doc["info"]["version"] == "2.0.0"
    routes = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    expected = {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v2/openapi.json"),
        ("GET", "/api/v2/docs"),
        ("GET", METADATA),
        ("GET", "/api/v2/admin/users"),
        ("POST", "/api/v2/billing/webhook"),
        ("POST", "/api/v2/users"),
        ("POST", "/api/v2/auth/verify-email"),
        ("POST", "/api/v2/auth/token"),
        ("POST", "/api/v2/auth/refresh"),
        ("POST", "/api/v2/auth/logout"),
        ("GET", "/api/v2/users/me"),
        ("GET", "/api/v2/users/me/export"),
        ("DELETE", "/api/v2/users/me"),
        ("POST", "/api/v2/auth/password-reset/request"),
        ("POST", "/api/v2/auth/password-reset/confirm"),
        ("POST", "/api/v2/counsel/sessions"),
        ("GET", "/api/v2/counsel/sessions"),
        ("GET", "/api/v2/counsel/sessions/{session_id}"),
        ("POST", "/api/v2/counsel/sessions/{session_id}/messages"),
        ("POST", "/api/v2/counsel/sessions/{session_id}/close"),
    }
    assert routes == expected
    schemes = doc["components"]["securitySchemes"]
    password = schemes["OAuth2PasswordBearer"]["flows"]["password"]
    assert password["tokenUrl"] == "/api/v2/auth/token"
    assert password["refreshUrl"] == "/api/v2/auth/refresh"
    assert schemes["RefreshToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["RefreshToken"]["description"],
    }
    assert "security" not in doc  # per operation, not global
    paths = doc["paths"]
    token = paths["/api/v2/auth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]
    body = _schema(doc, form["schema"])
    assert {"username", "password", "grant_type"} <= set(body["properties"])
    assert set(body["required"]) == {"username", "password"}
    answer = _schema(doc, token["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(answer["properties"]) == TOKEN_KEYS == set(answer["required"])
    assert "security" not in token
    refresh = paths["/api/v2/auth/refresh"]["post"]
    assert "requestBody" not in refresh
    assert refresh["security"] == [{"RefreshToken": []}]
    answer = _schema(doc, refresh["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(answer["properties"]) == TOKEN_KEYS
    protected = [
        ("get", "/api/v2/users/me"),
        ("post", "/api/v2/auth/logout"),
        ("get", "/api/v2/counsel/sessions"),
        ("post", "/api/v2/counsel/sessions/{session_id}/messages"),
        ("get", "/api/v2/admin/users"),
        ("get", "/api/v2/openapi.json"),
    ]
    for method, path in protected:
        assert paths[path][method]["security"] == [{"OAuth2PasswordBearer": []}], path
    for method, path in (("post", "/api/v2/users"), ("get", "/healthz"), ("get", METADATA)):
        assert "security" not in paths[path][method], path
    register = paths["/api/v2/users"]["post"]["requestBody"]["content"]["application/json"]
    assert {"email", "password"} <= set(_schema(doc, register["schema"])["properties"])
    listing = paths["/api/v2/counsel/sessions"]["get"]
    assert {"page", "size"} <= {p["name"] for p in listing["parameters"]}
    page = _schema(doc, listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"results", "count", "page", "size"}
    created = paths["/api/v2/counsel/sessions"]["post"]["responses"]["201"]["content"]
    assert "id" in _schema(doc, created["application/json"]["schema"])["properties"]
    assert not any(p.startswith(("/v1", "/health/", "/api/docs")) for p in paths)


def test_alt_variants_documents() -> None:
    doc = _doc("alt-norefresh")
    assert "/api/v2/auth/refresh" not in doc["paths"]
    schemes = doc["components"]["securitySchemes"]
    assert "refreshUrl" not in schemes["OAuth2PasswordBearer"]["flows"]["password"]
    assert "RefreshToken" not in schemes
    token = doc["paths"]["/api/v2/auth/token"]["post"]["responses"]["200"]["content"]
    answer = _schema(doc, token["application/json"]["schema"])
    assert set(answer["properties"]) == TOKEN_KEYS - {"refreshToken"}
    doc = _doc("alt-noopenapi")  # built in-process only; never served (tested below)
    assert "/api/v2/openapi.json" not in doc["paths"] and "/api/v2/docs" not in doc["paths"]
    assert "/api/v2/auth/refresh" in doc["paths"]


def test_default_document_keeps_its_shape() -> None:
    doc = _doc("default")
    assert doc["info"]["version"] == "1.0.0"
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert {"/v1/auth/login", "/v1/auth/me", "/health/ready", "/api/docs-json"} <= set(doc["paths"])
    assert not any(p.startswith("/api/v2") or p in ("/healthz", METADATA) for p in doc["paths"])
    assert not any("security" in op for ops in doc["paths"].values() for op in ops.values())


def _openapi_path(path: str) -> str:
    """A request path with {placeholders} and without its query, as OpenAPI names it."""
    path = path.split("?", 1)[0]
    return re.sub(r"\{[^}]+\}", "{session_id}", path)


def test_alt_config_fragment_and_suite_use_alt_routes() -> None:
    from readyctl.scenarios import load_suite

    paths = _doc("alt")["paths"]
    cfg = yaml.safe_load((DEMO_DIR / "alt.readyctl.yaml").read_text(encoding="utf-8"))
    checks = cfg["checks"]
    assert set(checks) == {
        "smoke.scenarios",
        "ratelimit.policies",
        "load.thresholds",
        "alerts.rules",
        "alerts.routing",
    }
    suite_file = DEMO_DIR / checks["smoke.scenarios"]["suite"]
    suite = load_suite(suite_file)
    assert suite.vars["api"] == "/api/v2"
    covered = {s.covers or sc.covers or sc.name for sc in suite.scenarios for s in sc.steps}
    assert {
        "registration",
        "login",
        "counseling-session",
        "email",
        "payment",
        "crisis-detection",
        "tenancy",
    } <= covered
    requests: list[tuple[str, str]] = []
    policies = checks["ratelimit.policies"]["policies"]
    assert [(p["limit"], p["window"]) for p in policies] == [(5, "1m"), (10, "1h"), (100, "1m")]
    for p in policies:
        requests.append((p["method"], p["path"]))
        if "prepare" in p:
            requests.append((p["prepare"]["method"], p["prepare"]["path"]))
    for profile in checks["load.thresholds"]["profiles"]:
        for item in [*profile.get("on_start", []), *profile["tasks"]]:
            for req in item.get("steps", [item]):
                requests.append((req["method"], req["path"]))
    assert "/api/v2/counsel/sessions?page=1&size=20" in [p for _, p in requests]
    for method, path in requests:
        assert method.lower() in paths[_openapi_path(path)], (method, path)


# -- the alt shape, served -------------------------------------------------------------------


@slow
def test_alt_form_login_token_keys_and_me(alt: ManagedDemo) -> None:
    assert alt.shape == "alt"
    user = alt.user("member", index=10)
    with api(alt) as c:
        tokens = alt_login(c, user)
        assert set(tokens) == TOKEN_KEYS
        assert tokens["tokenType"] == "bearer" and tokens["expiresIn"] > 0
        me = c.get("/api/v2/users/me", headers=auth(tokens))
        assert me.status_code == 200 and me.json()["email"] == user["email"]
        assert token_login(c, user).status_code == 200  # grant_type is optional
        as_json = c.post(
            "/api/v2/auth/token", json={"username": user["email"], "password": user["password"]}
        )
        assert as_json.status_code == 422
        wrong = token_login(c, {"email": user["email"], "password": PASSWORD})
        unknown = token_login(c, {"email": unique_email(), "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
        r = token_login(c, user, grant_type="client_credentials")
        assert r.status_code == 422
        assert c.get("/api/v2/users/me").status_code == 401
        assert c.post("/api/v2/auth/logout", headers=auth(tokens)).status_code == 204
        assert c.get("/api/v2/users/me", headers=auth(tokens)).status_code == 401


@slow
def test_alt_refresh_by_bearer_header_rotates_and_refuses_reuse(alt: ManagedDemo) -> None:
    with api(alt) as c:
        tokens = alt_login(c, alt.user("member", index=11))
        r = c.post("/api/v2/auth/refresh", headers=auth(tokens, "refreshToken"))
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert set(rotated) == TOKEN_KEYS
        assert rotated["refreshToken"] != tokens["refreshToken"]
        assert c.get("/api/v2/users/me", headers=auth(rotated)).status_code == 200
        reused = c.post("/api/v2/auth/refresh", headers=auth(tokens, "refreshToken"))
        assert reused.status_code == 401
        assert reused.json()["error"]["code"] == "refresh_token_reused"
        assert reused.headers["WWW-Authenticate"].startswith("Bearer")
        # Reuse revoked the family: the rotated pair is dead too.
        dead = c.post("/api/v2/auth/refresh", headers=auth(rotated, "refreshToken"))
        assert dead.status_code == 401
        assert c.get("/api/v2/users/me", headers=auth(rotated)).status_code == 401
        # The token goes in the header: a body, or an access token, is refused.
        fresh = alt_login(c, alt.user("member", index=11))
        body = c.post("/api/v2/auth/refresh", json={"refresh_token": fresh["refreshToken"]})
        assert body.status_code == 401
        assert body.headers["WWW-Authenticate"].startswith("Bearer")
        assert c.post("/api/v2/auth/refresh", headers=auth(fresh)).status_code == 401


@slow
def test_alt_refresh_reuse_fault_accepts_a_reused_token(alt_faulty: ManagedDemo) -> None:
    with api(alt_faulty) as c:
        tokens = alt_login(c, alt_faulty.user("member", index=12))
        spent = auth(tokens, "refreshToken")
        assert c.post("/api/v2/auth/refresh", headers=spent).status_code == 200
        again = c.post("/api/v2/auth/refresh", headers=spent)
        assert again.status_code == 200, again.text
        assert set(again.json()) == TOKEN_KEYS


@slow
def test_alt_openapi_and_docs_need_a_token(alt: ManagedDemo) -> None:
    with api(alt) as c:
        for path in ("/api/v2/openapi.json", "/api/v2/docs"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        h = auth(alt_login(c, alt.user("member", index=13)))
        spec = c.get("/api/v2/openapi.json", headers=h)
        assert spec.status_code == 200
        doc = spec.json()
        flows = doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
        assert flows["password"]["tokenUrl"] == "/api/v2/auth/token"
        assert "/api/v2/auth/token" in doc["paths"]
        page = c.get("/api/v2/docs", headers=h)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/api/v2/openapi.json" in page.text
        for path in ("/api/docs", "/api/docs-json", "/docs", "/openapi.json"):
            assert c.get(path, headers=h).status_code == 404, path


@slow
def test_alt_oauth_metadata_token_endpoint_works(alt: ManagedDemo) -> None:
    with api(alt) as c:
        r = c.get(METADATA)
    assert r.status_code == 200
    meta = r.json()
    assert meta["issuer"] == alt.base_url
    assert meta["token_endpoint"] == alt.base_url + "/api/v2/auth/token"
    assert meta["grant_types_supported"] == ["password", "refresh_token"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    user = alt.user("member", index=14)
    with httpx.Client(verify=tls(alt), timeout=30) as raw:
        form = {"grant_type": "password", "username": user["email"], "password": user["password"]}
        answer = raw.post(meta["token_endpoint"], data=form)
    assert answer.status_code == 200 and set(answer.json()) == TOKEN_KEYS


@slow
def test_alt_page_size_pagination_is_capped(alt: ManagedDemo, alt_faulty: ManagedDemo) -> None:
    with api(alt) as c:
        h = auth(alt_login(c, alt.user("member", index=0)))  # user000 has 150 sessions
        r = c.get("/api/v2/counsel/sessions", params={"page": 1, "size": 1000}, headers=h)
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"results", "count", "page", "size"}
        assert body["count"] >= 150 and body["page"] == 1
        assert body["size"] == 100 and len(body["results"]) == 100
        second = c.get("/api/v2/counsel/sessions", params={"page": 2, "size": 100}, headers=h)
        assert len(second.json()["results"]) == body["count"] - 100
        first_ids = {s["id"] for s in body["results"]}
        assert first_ids.isdisjoint(s["id"] for s in second.json()["results"])
        default = c.get("/api/v2/counsel/sessions", headers=h).json()
        assert (default["page"], default["size"], len(default["results"])) == (1, 20, 20)
        assert c.get("/api/v2/counsel/sessions", params={"page": 0}, headers=h).status_code == 422
        admin = auth(alt_login(c, alt.user("admin")))
        users = c.get("/api/v2/admin/users", params={"page": 2, "size": 10}, headers=admin)
        assert users.status_code == 200
        assert (users.json()["page"], users.json()["size"]) == (2, 10)
        assert len(users.json()["results"]) == 10 and users.json()["count"] >= 121
        assert c.get("/api/v2/admin/users", headers=h).status_code == 403
    with api(alt_faulty) as c:
        h = auth(alt_login(c, alt_faulty.user("member", index=0)))
        body = c.get("/api/v2/counsel/sessions", params={"size": 1000}, headers=h).json()
    assert body["size"] == 1000 and len(body["results"]) == body["count"] > 100


@slow
def test_alt_probes_and_metrics(alt: ManagedDemo) -> None:
    with api(alt) as c:
        live = c.get("/healthz")
        ready = c.get("/readyz")
        assert live.status_code == ready.status_code == 200
        assert ready.json()["checks"]["database"] == "ok"
        assert "no-store" not in live.headers.get("cache-control", "")
        for path in ("/health", "/health/live", "/health/ready"):
            assert c.get(path).status_code == 404, path
        text = c.get("/metrics").text
    assert 'http_requests_total{route="/readyz",method="GET",status="200"}' in text


@slow
def test_v1_routes_are_not_served_on_alt(alt: ManagedDemo) -> None:
    user = alt.user("member", index=15)
    with api(alt) as c:
        r = c.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        h = auth(alt_login(c, user))
        for path in (
            "/v1/auth/me",
            "/v1/counsel/sessions",
            "/counsel/sessions",
            "/users/me",
            "/api/v99/counsel/sessions",
            "/api/v1/users/me",
        ):
            assert c.get(path, headers=h).status_code == 404, path


@slow
def test_alt_faults_unversioned_and_docs_public(alt_faulty: ManagedDemo) -> None:
    with api(alt_faulty) as c:
        h = auth(alt_login(c, alt_faulty.user("member", index=16)))
        for path in ("/counsel/sessions", "/api/v99/counsel/sessions", "/users/me", "/v2/users/me"):
            assert c.get(path, headers=h).status_code == 200, path
        assert c.get("/api/v2/docs").status_code == 200
        assert "/api/v2/auth/token" in c.get("/api/v2/openapi.json").json()["paths"]


@slow
def test_alt_critical_paths_pass_the_alt_smoke_suite(alt: ManagedDemo) -> None:
    from readyctl.redact import Redactor
    from readyctl.result import Status
    from readyctl.scenarios import Runner, load_suite

    member, other = alt.user("member", index=17), alt.user("member", "northwind")
    env = {
        "READYCTL_AUTH_USERNAME": member["email"],
        "READYCTL_AUTH_PASSWORD": member["password"],
        "READYCTL_OTHER_USERNAME": other["email"],
        "READYCTL_OTHER_PASSWORD": other["password"],
        "READYCTL_MAIL_URL": alt.mail_url,
        "READYCTL_MAIL_TOKEN": alt.mail_token,
        "READYCTL_WEBHOOK_SECRET": alt.webhook_secret,
    }
    suite = load_suite(DEMO_DIR / "scenarios_alt.yaml")
    with api(alt) as c:
        outcomes = Runner(c, redactor=Redactor(), env=env).run_suite(suite)
    failed = [(o.subject, o.status, o.summary) for o in outcomes if o.status != Status.PASS]
    assert not failed
    assert {o.covers for o in outcomes if not o.cleanup} >= {
        "registration",
        "login",
        "counseling-session",
        "email",
        "payment",
        "crisis-detection",
        "tenancy",
    }


@slow
def test_alt_webhook_and_register_rate_limit(alt: ManagedDemo) -> None:
    with api(alt) as c:
        payload = event()
        sig = stripe_signature(alt.webhook_secret, payload)
        ok = c.post("/api/v2/billing/webhook", content=payload, headers={"Stripe-Signature": sig})
        assert ok.status_code == 200 and ok.json() == {"received": True, "id": ok.json()["id"]}
        assert c.post("/api/v2/billing/webhook", content=event()).status_code == 400
        r = c.post("/api/v2/users", json={"email": unique_email("alt"), "password": PASSWORD})
        assert r.status_code == 202 and r.headers["RateLimit-Limit"] == "5"


# -- the alt variants ------------------------------------------------------------------------


@slow
def test_alt_norefresh_has_no_refresh(alt_norefresh: ManagedDemo) -> None:
    d = alt_norefresh
    with api(d) as c:
        tokens = alt_login(c, d.user("member", index=18))
        assert set(tokens) == TOKEN_KEYS - {"refreshToken"}
        assert c.get("/api/v2/users/me", headers=auth(tokens)).status_code == 200
        r = c.post("/api/v2/auth/refresh", headers=auth(tokens))
        assert r.status_code == 404
        meta = c.get(METADATA).json()
        assert meta["grant_types_supported"] == ["password"]
        doc = c.get("/api/v2/openapi.json", headers=auth(tokens)).json()
        assert "/api/v2/auth/refresh" not in doc["paths"]


@slow
def test_alt_noopenapi_serves_no_document(alt_noopenapi: ManagedDemo) -> None:
    d = alt_noopenapi
    with api(d) as c:
        tokens = alt_login(c, d.user("member", index=19))
        for path in ("/api/v2/openapi.json", "/api/v2/docs", "/api/docs", "/api/docs-json"):
            assert c.get(path, headers=auth(tokens)).status_code == 404, path
        meta = c.get(METADATA)
        assert meta.status_code == 200
        assert meta.json()["token_endpoint"] == d.base_url + "/api/v2/auth/token"
        assert "service_documentation" not in meta.json()
        r = c.post("/api/v2/auth/refresh", headers=auth(tokens, "refreshToken"))
        assert r.status_code == 200
    # A restart waits for the shape's readiness probe (/readyz), not /health/ready.
    d.send_sigterm()
    assert d.server_exit_code(timeout_s=30) == 0
    d.restart_server()
    with api(d) as c:
        assert c.get("/readyz").status_code == 200


# -- the default shape, unchanged ------------------------------------------------------------


@slow
def test_default_shape_is_unchanged(demo: ManagedDemo) -> None:
    assert demo.shape == "default"
    with api(demo) as c:
        tokens = login(c, demo.user("member", index=20))
        assert {"access_token", "refresh_token", "token_type", "expires_in"} <= set(tokens)
        assert c.get("/v1/auth/me", headers=bearer(tokens)).status_code == 200
        user = demo.user("member", index=20)
        assert token_login(c, user).status_code == 404
        h = bearer(tokens)
        for path in ("/api/v2/counsel/sessions", "/api/v2/users/me", "/healthz", METADATA):
            assert c.get(path, headers=h).status_code == 404, path
        assert c.get("/health/ready").status_code == 200
