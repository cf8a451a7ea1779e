"""auth.jwt_tampering, auth.refresh_reuse and auth.enumeration: demo faults and small servers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from readyctl.config import AuthConfig, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

ONLY = ["auth.jwt_tampering", "auth.refresh_reuse", "auth.enumeration"]
SECRET = "k9Vq2LmX7pR4tW1yB6nC3hJ5sD0gE8aUfZ"
CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}


def test_healthy_demo_passes_every_hardening_probe(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    ctx = demo_context(healthy_demo)
    out = run_checks(ctx, only=ONLY)
    assert statuses(out, "auth.jwt_tampering") == {
        "alg-none": "pass",
        "foreign-key": "pass",
        "expired": "pass",
    }
    assert statuses(out, "auth.refresh_reuse") == {"POST /v1/auth/refresh": "pass"}
    assert statuses(out, "auth.enumeration") == {"POST /v1/auth/login": "pass"}
    reuse = results_of(out, "auth.refresh_reuse")["POST /v1/auth/refresh"]
    assert "revoked its family" in reuse.summary
    # the run's shared session still works (refresh_reuse logged in on its own) ...
    assert ctx.authed_http().get("/v1/auth/me").status_code == 200
    ctx.run_cleanups()
    # ... and no token or password reached a result
    text = repr([(r.summary, dict(r.evidence)) for r in out.results])
    assert "eyJ" not in text and healthy_demo.user("member")["password"] not in text


def test_demo_faults_turn_each_probe_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("jwt-none-alg", "jwt-no-expiry-check", "refresh-reuse", "user-enumeration")
    out = run_checks(demo_context(d), only=ONLY)
    assert statuses(out, "auth.jwt_tampering") == {
        "alg-none": "fail",  # jwt-none-alg
        "foreign-key": "pass",
        "expired": "fail",  # jwt-no-expiry-check
    }
    assert statuses(out, "auth.refresh_reuse") == {"POST /v1/auth/refresh": "fail"}
    enum = results_of(out, "auth.enumeration")["POST /v1/auth/login"]
    assert enum.status.value == "fail" and "404" in enum.summary and "401" in enum.summary


# -- a small JWT API whose weaknesses are switched on one at a time ----------------------------
def auth_app(
    *,
    opaque: bool = False,
    check_exp: bool = True,
    me_always_401: bool = False,
    rotate: bool = True,
    revoke_family: bool = True,
    leak_message: bool = False,
) -> FastAPI:
    app = FastAPI()
    refresh_tokens: dict[str, dict[str, Any]] = {}

    def issue() -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": "u1", "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
        access = uuid.uuid4().hex if opaque else jwt.encode(claims, SECRET, algorithm="HS256")
        refresh = "r-" + uuid.uuid4().hex
        refresh_tokens[refresh] = {"used": False, "family": "f1", "revoked": False}
        return {"access_token": access, "refresh_token": refresh}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/auth/login")
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("email") == "t@x.org" and body.get("password") == "Right-Pass-123":
            return JSONResponse(issue())
        message = "Invalid email or password."
        if leak_message:
            known = body.get("email") == "t@x.org"
            message = "Wrong password." if known else "Invalid email or password."
        return JSONResponse({"error": {"message": message, "id": uuid.uuid4().hex}}, 401)

    @app.post("/v1/auth/refresh")
    async def refresh(request: Request) -> JSONResponse:
        token = (await request.json()).get("refresh_token")
        entry = refresh_tokens.get(token)
        if entry is None or entry["revoked"] or (entry["used"] and rotate):
            if entry is not None and revoke_family:
                for e in refresh_tokens.values():
                    e["revoked"] = True
            return JSONResponse({"error": "invalid"}, 401)
        entry["used"] = True
        return JSONResponse(issue())

    @app.get("/v1/auth/me")
    async def me(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if me_always_401:
            return JSONResponse({"error": "no"}, 401)
        try:
            jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": check_exp})
        except jwt.PyJWTError:
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse({"id": "u1"})

    return app


def run_small(app: FastAPI, *, only: list[str], environ: dict[str, str] | None = None) -> Any:
    with serve(app) as s:
        env = Environment(base_url=s.url, auth=AuthConfig())
        ctx = make_context(environment=env, environ={**CREDS, **(environ or {})})
        return run_checks(ctx, only=only)


def expired_token() -> str:
    now = int(time.time())
    claims = {"sub": "u1", "iat": now - 7200, "exp": now - 3600, "jti": "x"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_expired_token_from_a_variable_is_rejected_or_accepted() -> None:
    var = {"READYCTL_AUTH_EXPIRED_TOKEN": expired_token()}
    out = run_small(auth_app(), only=["auth.jwt_tampering"], environ=var)
    assert statuses(out, "auth.jwt_tampering") == {
        "alg-none": "pass",
        "foreign-key": "pass",
        "expired": "pass",
    }
    out = run_small(auth_app(check_exp=False), only=["auth.jwt_tampering"], environ=var)
    assert statuses(out, "auth.jwt_tampering")["expired"] == "fail"


def test_expired_skips_without_a_way_to_sign_and_opaque_tokens_skip() -> None:
    out = run_small(auth_app(), only=["auth.jwt_tampering"])
    exp = results_of(out, "auth.jwt_tampering")["expired"]
    assert exp.status.value == "skip" and "READYCTL_AUTH_EXPIRED_TOKEN" in exp.reason
    out = run_small(auth_app(opaque=True), only=["auth.jwt_tampering"])
    assert set(statuses(out, "auth.jwt_tampering").values()) == {"skip"}


def test_rejected_real_token_makes_the_probes_inconclusive() -> None:
    out = run_small(auth_app(me_always_401=True), only=["auth.jwt_tampering"])
    got = results_of(out, "auth.jwt_tampering")
    assert {r.status.value for r in got.values()} == {"error"}
    assert all(r.error_reason.value == "inconclusive" for r in got.values())


def test_refresh_reuse_without_family_revocation_warns() -> None:
    out = run_small(auth_app(revoke_family=False), only=["auth.refresh_reuse"])
    r = results_of(out, "auth.refresh_reuse")["POST /v1/auth/refresh"]
    assert r.status.value == "warn" and "not revoked" in r.summary
    out = run_small(auth_app(rotate=False), only=["auth.refresh_reuse"])
    assert statuses(out, "auth.refresh_reuse") == {"POST /v1/auth/refresh": "fail"}


def test_enumeration_by_message_with_the_same_status_fails() -> None:
    out = run_small(auth_app(leak_message=True), only=["auth.enumeration"])
    r = results_of(out, "auth.enumeration")["POST /v1/auth/login"]
    assert r.status.value == "fail" and "error.message" in r.summary
    out = run_small(auth_app(), only=["auth.enumeration"])  # per-request ids are not a leak
    assert statuses(out, "auth.enumeration") == {"POST /v1/auth/login": "pass"}
