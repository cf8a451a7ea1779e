"""http.reachable and auth.session against small real servers on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from readyctl.apimap import ApiConfig
from readyctl.config import AuthConfig, Environment
from tests.helpers import make_context, run_checks, statuses
from tests.servers import free_port, serve


def app(status: int = 200) -> FastAPI:
    a = FastAPI()

    @a.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"ok": status < 500}, status_code=status)

    @a.post("/v1/auth/login")
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("email") == "t@x.org" and body.get("password") == "Right-Pass-123":
            return JSONResponse({"access_token": "eyJtest.eyJtest.sig", "refresh_token": "r1"})
        return JSONResponse({"error": "bad credentials"}, status_code=401)

    return a


def test_reachable_passes_over_tls_with_ca_bundle(tmp_path: Path) -> None:
    with serve(app(), tls_dir=tmp_path / "tls") as s:
        env = Environment(base_url=s.url, ca_bundle=s.ca_bundle)
        out = run_checks(make_context(environment=env), only=["http.reachable"])
    assert list(statuses(out, "http.reachable").values()) == ["pass"]


def test_reachable_fails_on_untrusted_certificate_and_blocks_dependents(tmp_path: Path) -> None:
    with serve(app(), tls_dir=tmp_path / "tls") as s:
        env = Environment(base_url=s.url, auth=AuthConfig())
        out = run_checks(make_context(environment=env), only=["auth.session"])
    (r,) = [x for x in out.results if x.check_id == "http.reachable"]
    assert r.status.value == "fail" and "TLS" in r.summary
    (a,) = [x for x in out.results if x.check_id == "auth.session"]
    assert a.status.value == "blocked" and a.reason.startswith("http.reachable fail")


def test_reachable_fails_on_closed_port_and_5xx() -> None:
    env = Environment(base_url=f"http://127.0.0.1:{free_port()}")
    out = run_checks(make_context(environment=env), only=["http.reachable"])
    assert list(statuses(out, "http.reachable").values()) == ["fail"]
    with serve(app(503)) as s:
        # the probe GETs the map's liveness path (a 404 at "/" would prove reachability)
        env = Environment(base_url=s.url, api=ApiConfig(openapi="off", health={"live": "/health"}))
        out = run_checks(make_context(environment=env), only=["http.reachable"])
    assert list(statuses(out, "http.reachable").values()) == ["fail"]


def test_auth_session_login_pass_and_fail() -> None:
    with serve(app()) as s:
        env = Environment(base_url=s.url, auth=AuthConfig())
        good = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}
        out = run_checks(make_context(environment=env, environ=good), only=["auth.session"])
        assert statuses(out, "auth.session") == {"/v1/auth/login": "pass"}
        bad = dict(good, READYCTL_AUTH_PASSWORD="Wrong-Pass-999")
        out = run_checks(make_context(environment=env, environ=bad), only=["auth.session"])
        (r,) = [x for x in out.results if x.check_id == "auth.session"]
        assert r.status.value == "fail" and "401" in r.summary
        assert "Wrong-Pass-999" not in r.summary
        out = run_checks(make_context(environment=env, environ={}), only=["auth.session"])
        (r,) = [x for x in out.results if x.check_id == "auth.session"]
        assert r.status.value == "fail" and "READYCTL_AUTH_USERNAME" in r.summary
