"""auth.jwt_tampering, auth.refresh_reuse and auth.enumeration: demo faults and small servers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from readyctl.apimap import ApiConfig
from readyctl.config import Environment
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


# the small JWT API's routes, as readyctl.yaml would give them (discovery off)
V1_MAP = ApiConfig(
    openapi="off",
    login={"path": "/v1/auth/login"},
    me="/v1/auth/me",
    refresh={"path": "/v1/auth/refresh"},
)


def run_small(
    app: FastAPI,
    *,
    only: list[str],
    environ: dict[str, str] | None = None,
    api: ApiConfig = V1_MAP,
) -> Any:
    with serve(app) as s:
        env = Environment(base_url=s.url, api=api)
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


# -- another API shape: OAuth-style form login, camelCase tokens, refresh by header ------------
OTHER_MAP = ApiConfig(
    openapi="off",
    login={"path": "/api/auth/token", "body": "form", "extra": {"grant_type": "password"}},
    refresh={"path": "/api/auth/refresh", "send": "header"},
    lists=[
        {"path": "/api/tips", "page_param": "page", "size_param": "size", "items": "results"},
        {"path": "/api/notes", "page_param": "page", "size_param": "size", "items": "results"},
    ],
)


def other_app(
    *,
    refresh_via: str = "header",
    alg_none: bool = False,
    rotate: bool = True,
    leak_message: bool = False,
) -> FastAPI:
    """Not the demo's shape: /api/auth/token (form), accessToken/refreshToken, no /me route,
    a public list (/api/tips) before the protected one (/api/notes)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    refresh_tokens: dict[str, dict[str, Any]] = {}
    seen: list[str] = []
    app.state.seen = seen

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        seen.append(request.url.path)
        return await call_next(request)

    def issue() -> JSONResponse:
        now = int(time.time())
        claims = {"sub": "u1", "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
        access = jwt.encode(claims, SECRET, algorithm="HS256")
        refresh = "rt-" + uuid.uuid4().hex
        refresh_tokens[refresh] = {"used": False, "revoked": False}
        if refresh_via == "cookie":
            r = JSONResponse({"accessToken": access, "tokenType": "bearer"})
            r.set_cookie("rt", refresh, httponly=True, secure=True, samesite="strict")
            return r
        return JSONResponse({"accessToken": access, "refreshToken": refresh, "tokenType": "bearer"})

    def valid(token: str) -> bool:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return False
        if alg_none and str(header.get("alg", "")).lower() == "none":
            return True
        try:
            jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return False
        return True

    @app.post("/api/auth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if form.get("username") == "t@x.org" and form.get("password") == "Right-Pass-123":
            return issue()
        message = "Invalid username or password."
        if leak_message and form.get("username") == "t@x.org":
            message = "Wrong password for this account."
        return JSONResponse({"error": "invalid_grant", "error_description": message}, 400)

    @app.post("/api/auth/refresh")
    async def refresh(request: Request) -> JSONResponse:
        if refresh_via == "header":
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
        elif refresh_via == "cookie":
            given = request.cookies.get("rt", "")
        else:
            given = str((await request.form()).get("refresh", ""))
        entry = refresh_tokens.get(given)
        if entry is None or entry["revoked"] or (entry["used"] and rotate):
            if entry is not None:
                for e in refresh_tokens.values():
                    e["revoked"] = True
            return JSONResponse({"error": "invalid_token"}, 401)
        entry["used"] = True
        return issue()

    @app.get("/api/tips")
    def tips(page: int = 1, size: int = 20) -> dict[str, Any]:
        return {"results": [{"tip": "breathe"}], "count": 1}

    @app.get("/api/notes")
    def notes(request: Request, page: int = 1, size: int = 20) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not valid(token):
            return JSONResponse({"error": "unauthorized"}, 401)
        return JSONResponse({"results": [], "count": 0})

    return app


def test_other_shape_healthy_is_green_and_broken_is_red() -> None:
    var = {"READYCTL_AUTH_EXPIRED_TOKEN": expired_token()}
    app = other_app()
    out = run_small(app, only=ONLY, environ=var, api=OTHER_MAP)
    assert statuses(out, "auth.jwt_tampering") == {
        "alg-none": "pass",
        "foreign-key": "pass",
        "expired": "pass",
    }
    # the protected route is the first list that refuses an anonymous request
    assert "GET /api/notes" in results_of(out, "auth.jwt_tampering")["alg-none"].summary
    assert statuses(out, "auth.refresh_reuse") == {"POST /api/auth/refresh": "pass"}
    assert statuses(out, "auth.enumeration") == {"POST /api/auth/token": "pass"}
    # nothing was guessed: only the map's routes (and the reachability probe's /) were asked
    asked = {"/", "/api/auth/token", "/api/auth/refresh", "/api/tips", "/api/notes"}
    assert set(app.state.seen) <= asked

    out = run_small(
        other_app(alg_none=True, rotate=False, leak_message=True),
        only=ONLY,
        environ=var,
        api=OTHER_MAP,
    )
    assert statuses(out, "auth.jwt_tampering")["alg-none"] == "fail"
    assert statuses(out, "auth.refresh_reuse") == {"POST /api/auth/refresh": "fail"}
    enum = results_of(out, "auth.enumeration")["POST /api/auth/token"]
    assert enum.status.value == "fail" and "error_description" in enum.summary


def test_refresh_token_sent_by_header_cookie_or_form_as_the_map_says() -> None:
    for via, field in (("header", "refresh_token"), ("cookie", "rt"), ("form", "refresh")):
        refresh = {"path": "/api/auth/refresh", "send": via, "field": field}
        api = OTHER_MAP.model_copy(update={"refresh": ApiConfig(refresh=refresh).refresh})
        out = run_small(other_app(refresh_via=via), only=["auth.refresh_reuse"], api=api)
        got = results_of(out, "auth.refresh_reuse")["POST /api/auth/refresh"]
        assert got.status.value == "pass" and "revoked its family" in got.summary, (via, got)
        out = run_small(
            other_app(refresh_via=via, rotate=False), only=["auth.refresh_reuse"], api=api
        )
        assert statuses(out, "auth.refresh_reuse") == {"POST /api/auth/refresh": "fail"}, via


def _reasons(out: Any, check_id: str) -> dict[str, str]:
    return {s: f"{r.status.value}: {r.reason}" for s, r in results_of(out, check_id).items()}


def test_unknown_routes_skip_naming_the_key_to_set() -> None:
    # an empty map: nothing to log in with, so nothing is guessed
    out = run_small(auth_app(), only=ONLY, api=ApiConfig(openapi="off"))
    for cid in ONLY:
        for text in _reasons(out, cid).values():
            assert text.startswith("skip: ") and "environments.default.api.login" in text, text
    # a login only: the protected route and the refresh endpoint are unknown
    login_only = ApiConfig(openapi="off", login={"path": "/v1/auth/login"})
    out = run_small(auth_app(), only=ONLY, api=login_only)
    (jwt_skip,) = _reasons(out, "auth.jwt_tampering").values()
    assert jwt_skip.startswith("skip: ") and "environments.default.api.me" in jwt_skip
    (refresh_skip,) = _reasons(out, "auth.refresh_reuse").values()
    assert refresh_skip.startswith("skip: ") and "environments.default.api.refresh" in refresh_skip
    assert statuses(out, "auth.enumeration") == {"POST /v1/auth/login": "pass"}
    # an API without a refresh flow: not applicable
    no_refresh = login_only.model_copy(update={"refresh": "none"})
    out = run_small(auth_app(), only=["auth.refresh_reuse"], api=no_refresh)
    (r,) = results_of(out, "auth.refresh_reuse").values()
    assert r.status.value == "skip"
    assert r.reason == "not applicable: the API has no refresh flow (api.refresh: none)"
    # a static token: no login to repeat or to probe
    static = ApiConfig(
        openapi="off", token={}, me="/v1/auth/me", refresh={"path": "/v1/auth/refresh"}
    )
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    out = run_small(auth_app(), only=ONLY, api=static, environ={"READYCTL_AUTH_TOKEN": token})
    assert statuses(out, "auth.jwt_tampering")["alg-none"] == "pass"
    for cid in ("auth.refresh_reuse", "auth.enumeration"):
        (text,) = _reasons(out, cid).values()
        assert text.startswith("skip: ") and "environments.default.api.login" in text, text


# the demo's alt shape, given as readyctl.yaml would (discovery off)
ALT_MAP = ApiConfig(
    openapi="off",
    login={"path": "/api/v2/auth/token", "body": "form", "extra": {"grant_type": "password"}},
    me="/api/v2/users/me",
    refresh={"path": "/api/v2/auth/refresh", "send": "header"},
)


def test_alt_shape_demo_green_when_healthy_red_under_faults(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    healthy = faulty_demo(shape="alt")
    out = run_checks(demo_context(healthy, api=ALT_MAP), only=ONLY)
    assert statuses(out, "auth.jwt_tampering") == {
        "alg-none": "pass",
        "foreign-key": "pass",
        "expired": "pass",
    }
    assert statuses(out, "auth.refresh_reuse") == {"POST /api/v2/auth/refresh": "pass"}
    assert statuses(out, "auth.enumeration") == {"POST /api/v2/auth/token": "pass"}
    d = faulty_demo("jwt-none-alg", "refresh-reuse", "user-enumeration", shape="alt")
    out = run_checks(demo_context(d, api=ALT_MAP), only=ONLY)
    assert statuses(out, "auth.jwt_tampering")["alg-none"] == "fail"
    assert statuses(out, "auth.refresh_reuse") == {"POST /api/v2/auth/refresh": "fail"}
    assert statuses(out, "auth.enumeration") == {"POST /api/v2/auth/token": "fail"}
