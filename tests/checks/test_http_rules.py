"""HTTP hygiene checks against small real servers: the rules the demo cannot exercise."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from readyctl.checks.http.cors import FOREIGN
from readyctl.checks.http.security_headers import (
    MODIFIERS,
    SecurityHeaders,
    cookie_problems,
    csp_problems,
)

from readyctl.apimap import ApiConfig
from readyctl.config import AuthConfig, Config, Environment
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}
TOKEN = "tok-4f1c9e-secret"


def _login(a: FastAPI) -> None:
    @a.post("/v1/auth/login")
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("password") == CREDS["READYCTL_AUTH_PASSWORD"]:
            return JSONResponse({"access_token": TOKEN})
        return JSONResponse({"error": "no"}, status_code=401)


def _authed(request: Request) -> bool:
    return request.headers.get("authorization") == f"Bearer {TOKEN}"


# the small servers' routes, as readyctl.yaml would give them (discovery off)
V1_MAP = ApiConfig(
    openapi="off",
    prefix="/v1",
    health={"live": "/health"},
    lists=[
        {
            "path": "/v1/counsel/sessions",
            "size_param": "limit",
            "offset_param": "offset",
            "items": "items",
            "total": "total",
        }
    ],
    docs=["/api/docs"],
)


def _ctx(
    url: str,
    checks: dict[str, Any] | None = None,
    *,
    production: bool = True,
    api: ApiConfig | None = None,
) -> Any:
    env = Environment(base_url=url, auth=AuthConfig(), production=production, api=api)
    return make_context(environment=env, environ=dict(CREDS), config=Config(checks=checks or {}))


# -- security headers -------------------------------------------------------------------
def test_csp_cookie_and_referrer_rules() -> None:
    assert csp_problems([]) == ["csp-missing"]
    assert csp_problems(["default-src 'none'; frame-ancestors 'none'"]) == []
    assert csp_problems(["script-src 'self' 'unsafe-inline'; object-src 'none'"]) == [
        "csp-unsafe-script"
    ]
    # a nonce makes 'unsafe-inline' inert in CSP2+ browsers
    assert csp_problems(["script-src 'nonce-abc' 'unsafe-inline'; object-src 'none'"]) == []
    assert csp_problems(["script-src https:; object-src 'none'"]) == ["csp-unsafe-script"]
    assert csp_problems(["default-src 'self'"]) == ["csp-object-src"]
    assert cookie_problems("sid=s3cr3t; Secure; HttpOnly; SameSite=Lax") == ("sid", [])
    assert cookie_problems("sid=s3cr3t; Path=/")[1] == [
        "cookie-no-secure",
        "cookie-no-httponly",
        "cookie-no-samesite",
    ]
    text = SecurityHeaders.explain_extra()
    assert all(m.key in text for m in MODIFIERS.values())


def _weak_headers_app() -> FastAPI:
    a = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _login(a)
    base = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "unsafe-url",
    }

    @a.get("/health")
    def health() -> Response:
        r = JSONResponse({"ok": True}, headers=base)
        r.headers.append("set-cookie", "sid=s3cr3t-cookie-value; Path=/")
        return r

    @a.get("/v1/counsel/sessions")
    def sessions(request: Request) -> Response:
        if not _authed(request):
            return JSONResponse({"error": "auth"}, status_code=401)
        return JSONResponse({"items": []}, headers={**base, "Cache-Control": "private"})

    @a.get("/api/docs")
    def docs() -> Response:
        csp = "default-src 'self'; script-src 'self' 'unsafe-inline'"
        return HTMLResponse(
            "<html><body>docs</body></html>", headers={**base, "Content-Security-Policy": csp}
        )

    return a


def test_security_headers_weak_policies_fail_and_score_zero() -> None:
    with serve(_weak_headers_app()) as s:
        out = run_checks(_ctx(s.url, api=V1_MAP), only=["http.security_headers"])
    st = statuses(out, "http.security_headers")
    assert st == {
        "X-Content-Type-Options": "pass",
        "frame-ancestors / X-Frame-Options": "pass",
        "Referrer-Policy": "fail",
        "Cache-Control (authenticated)": "fail",
        "Set-Cookie": "fail",
        "CSP on /api/docs": "fail",
        "score": "fail",
    }
    res = results_of(out, "http.security_headers")
    assert res["score"].measured == 0
    assert set(res["score"].evidence["modifiers"]) >= {
        "referrer-unsafe",
        "cache-not-no-store",
        "cookie-no-secure",
        "csp-unsafe-script",
        "csp-object-src",
    }
    # the cookie's value never reaches a result
    assert all("s3cr3t-cookie-value" not in repr(r) for r in out.results)


# -- CORS -----------------------------------------------------------------------------------
def _cors_app(mode: str) -> FastAPI:
    a = FastAPI()

    @a.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @a.get("/v1/counsel/sessions")
    def sessions() -> dict[str, list[Any]]:
        return {"items": []}

    if mode == "star":
        a.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"])
    elif mode == "star-credentials":

        @a.middleware("http")
        async def star(request: Request, call_next: Any) -> Response:
            if request.method == "OPTIONS":
                resp: Response = Response(status_code=204)
            else:
                resp = await call_next(request)
            resp.headers["Access-Control-Allow-Origin"] = "*"
            resp.headers["Access-Control-Allow-Credentials"] = "true"
            return resp

    return a


def test_cors_wildcard_rules_and_positive_control() -> None:
    cfg = {"http.cors": {"allowed_origin": "https://app.example.org"}}
    with serve(_cors_app("star")) as s:
        out = run_checks(_ctx(s.url, cfg, api=V1_MAP), only=["http.cors"])
    assert statuses(out, "http.cors") == {
        "allowed origin": "pass",
        "preflight from a foreign origin": "warn",
        "simple GET from a foreign origin": "warn",
    }
    with serve(_cors_app("star-credentials")) as s:
        out = run_checks(_ctx(s.url, cfg, api=V1_MAP), only=["http.cors"])
    res = results_of(out, "http.cors")
    assert res["preflight from a foreign origin"].status.value == "fail"
    assert (
        "Access-Control-Allow-Credentials: true" in res["simple GET from a foreign origin"].summary
    )
    assert FOREIGN in res["preflight from a foreign origin"].evidence["origins"]
    with serve(_cors_app("none")) as s:
        out = run_checks(_ctx(s.url, cfg, api=V1_MAP), only=["http.cors"])
        res = results_of(out, "http.cors")
        # nobody gets CORS: the foreign probes cannot pass without the positive control
        assert {r.status.value for r in res.values()} == {"error"}
        assert all(r.error_reason.value == "inconclusive" for r in res.values())
        off = {"http.cors": {"enabled": False}}
        out = run_checks(_ctx(s.url, off, api=V1_MAP), only=["http.cors"])
    assert statuses(out, "http.cors") == {
        "allowed origin": "skip",
        "preflight from a foreign origin": "pass",
        "simple GET from a foreign origin": "pass",
    }


# -- versioning -----------------------------------------------------------------------------
def _versioned_app() -> FastAPI:
    a = FastAPI()

    @a.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @a.get("/v1/items")
    def v1(request: Request) -> Response:
        version = request.headers.get("api-version")
        if version not in (None, "1", "0"):
            return JSONResponse({"error": "unknown version"}, status_code=400)
        return JSONResponse({"items": []})

    @a.get("/v0/items")
    def v0() -> Response:
        return JSONResponse(
            {"items": []},
            headers={"Deprecation": "@1767225600", "Sunset": "Wed, 30 Jun 2027 23:59:59 GMT"},
        )

    @a.get("/v2/items")
    def v2() -> Response:
        return JSONResponse({"items": []})

    @a.get("/v99/items")
    def v99() -> Response:
        return HTMLResponse("<h1>Not Found</h1>", status_code=404)

    return a


def test_versioning_deprecation_headers_and_html_rejection() -> None:
    cfg = {
        "http.versioning": {
            "route": "/items",
            "deprecated": [{"prefix": "/v0", "sunset": "2027-06-30"}, {"prefix": "/v2"}],
        }
    }
    with serve(_versioned_app()) as s:
        out = run_checks(_ctx(s.url, cfg, api=V1_MAP), only=["http.versioning"])
        st = statuses(out, "http.versioning")
        assert st == {
            "version prefix /v1": "pass",
            "unknown version /v99": "fail",  # an HTML 404 is not a clean rejection
            "deprecated /v0": "pass",
            "deprecated /v2": "fail",
        }
        header_mode = {
            "http.versioning": {"header": "API-Version", "route": "/v1/items", "version": "1"}
        }
        out = run_checks(_ctx(s.url, header_mode, api=V1_MAP), only=["http.versioning"])
        assert statuses(out, "http.versioning") == {
            "version header API-Version": "pass",
            "unknown version API-Version: 99": "pass",
            "deprecated versions": "skip",
        }
        # the route from the map already carries the prefix: it is not prefixed twice
        items = V1_MAP.model_copy(update={"lists": ApiConfig(lists=[{"path": "/v1/items"}]).lists})
        out = run_checks(_ctx(s.url, api=items), only=["http.versioning"])
        res = results_of(out, "http.versioning")
        assert res["version prefix /v1"].status.value == "pass"
        assert "GET /v1/items answers 200" in res["version prefix /v1"].summary
        assert res["unknown version /v99"].evidence["known"] == "GET /v1/items -> 200"
        missing = {"http.versioning": {"route": "/nothing-here"}}
        out = run_checks(_ctx(s.url, missing, api=V1_MAP), only=["http.versioning"])
    (r,) = results_of(out, "http.versioning").values()
    assert r.status.value == "error" and r.error_reason.value == "inconclusive"


# -- docs exposure --------------------------------------------------------------------------
def test_docs_framework_defaults_fail_in_production_and_pass_elsewhere() -> None:
    a = FastAPI()  # FastAPI's defaults: /docs, /redoc, /openapi.json all public

    @a.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    with serve(a) as s:
        out = run_checks(_ctx(s.url), only=["http.docs_exposure"])
        st = statuses(out, "http.docs_exposure")
        assert st["/docs"] == "fail" and st["/openapi.json"] == "fail" and st["/redoc"] == "fail"
        assert st["/api/docs"] == "pass"
        out = run_checks(_ctx(s.url, production=False), only=["http.docs_exposure"])
        assert statuses(out, "http.docs_exposure") == {"docs": "pass"}

    bare = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @bare.get("/{anything:path}")
    def spa(anything: str) -> HTMLResponse:
        return HTMLResponse("<html><div id=app></div></html>")

    with serve(bare) as s:
        env = Environment(base_url=s.url, production=True)
        out = run_checks(make_context(environment=env), only=["http.docs_exposure"])
        # a single-page app's catch-all is not the docs
        assert set(statuses(out, "http.docs_exposure").values()) == {"pass"}
        env = Environment(base_url=s.url, production=False)
        out = run_checks(make_context(environment=env), only=["http.docs_exposure"])
        assert statuses(out, "http.docs_exposure") == {"docs": "warn"}


# -- pagination and compression -------------------------------------------------------------
def _list_app(rows: int, *, reject_over: int | None = None) -> FastAPI:
    a = FastAPI()
    _login(a)

    @a.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @a.get("/v1/counsel/sessions")
    def sessions(limit: int = 20, offset: int = 0) -> Response:
        if reject_over is not None and limit > reject_over:
            return JSONResponse({"error": "limit too large"}, status_code=422)
        items = [{"id": i} for i in range(rows)][offset : offset + limit]
        return JSONResponse({"items": items, "total": rows})

    return a


def test_pagination_needs_enough_rows_and_accepts_rejection() -> None:
    with serve(_list_app(30)) as s:
        out = run_checks(_ctx(s.url, api=V1_MAP), only=["http.pagination", "http.compression"])
    (r,) = results_of(out, "http.pagination").values()
    assert r.status.value == "error" and r.error_reason.value == "inconclusive"
    assert "only 30 rows" in r.summary
    # the response is small, so compression cannot be judged either
    (c,) = results_of(out, "http.compression").values()
    assert c.status.value == "error" and "only" in c.summary
    with serve(_list_app(500, reject_over=100)) as s:
        out = run_checks(_ctx(s.url, api=V1_MAP), only=["http.pagination"])
    (r,) = results_of(out, "http.pagination").values()
    assert r.status.value == "pass" and "422" in r.summary


# -- error hygiene --------------------------------------------------------------------------
def test_error_hygiene_sql_leak_html_404_and_positive_control() -> None:
    a = FastAPI()

    @a.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @a.post("/v1/auth/login")
    async def login(request: Request) -> Response:
        try:
            json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "bad json"}, status_code=400)
        msg = 'psycopg.errors.UndefinedColumn: column "emial" does not exist'
        return JSONResponse({"detail": msg}, status_code=422)

    @a.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<html><h1>404</h1></html>", status_code=404)

    with serve(a) as s:
        out = run_checks(_ctx(s.url), only=["http.error_hygiene"])
        assert statuses(out, "http.error_hygiene") == {
            "404 page": "pass",
            "malformed JSON": "pass",
            "wrong types": "fail",
            "error shape": "fail",
        }
        res = results_of(out, "http.error_hygiene")
        assert "SQL" in res["wrong types"].summary
        assert "not a JSON object" in res["error shape"].summary
        # an endpoint that accepts anything cannot show how errors look
        cfg = {"http.error_hygiene": {"json_endpoint": "/health", "json_method": "GET"}}
        out = run_checks(_ctx(s.url, cfg), only=["http.error_hygiene"])
    st = statuses(out, "http.error_hygiene")
    assert st["malformed JSON"] == "error" and st["wrong types"] == "error"
    assert st["error shape"] == "error"  # one provoked error cannot show a shared shape


# -- another API shape: /api/v2 routes, a form login, page/size lists under "results" --------
SHAPED = ["http.security_headers", "http.cors", "http.versioning", "http.pagination"]
SHAPED += ["http.compression"]
WEB = "https://web.example.net"
SHAPED_MAP = ApiConfig(
    openapi="off",
    prefix="/api/v2",
    login={"path": "/api/auth/token", "body": "form"},
    me="/api/v2/users/current",
    lists=[
        {
            "path": "/api/v2/notes",
            "page_param": "page",
            "size_param": "size",
            "items": "results",
            "total": "count",
        }
    ],
    health={"live": "/healthz"},
    docs=["/swagger-ui", "/v3/api-docs"],
    cors_origin=WEB,
)


def _shaped_app(*, broken: bool = False) -> FastAPI:
    """Healthy: headers, CORS for WEB only, /api/v2 only, size capped at 100, gzip. Broken:
    every one of them wrong at once (each check must turn red on its own part)."""
    from fastapi.middleware.gzip import GZipMiddleware

    a = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    seen: list[str] = []
    a.state.seen = seen
    rows = [{"id": i, "title": f"note number {i}", "body": "x" * 20} for i in range(500)]

    @a.post("/api/auth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("password") == CREDS["READYCTL_AUTH_PASSWORD"]:
            return JSONResponse({"accessToken": TOKEN, "tokenType": "bearer"})
        return JSONResponse({"error": "invalid_grant"}, status_code=400)

    @a.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def notes(request: Request, page: int = 1, size: int = 20) -> Response:
        if not _authed(request):
            return JSONResponse({"error": "auth"}, status_code=401)
        size = size if broken else min(size, 100)
        start = (page - 1) * size
        return JSONResponse(
            {"results": rows[start : start + size], "count": len(rows), "page": page}
        )

    a.get("/api/v2/notes")(notes)
    if broken:  # served without a version and under any version
        a.get("/api/notes")(notes)
        a.get("/api/{version}/notes")(notes)

    @a.get("/api/v2/users/current")
    def me(request: Request) -> Response:
        if not _authed(request):
            return JSONResponse({"error": "auth"}, status_code=401)
        return JSONResponse({"id": "u1"})

    @a.get("/swagger-ui")
    def ui() -> Response:
        return HTMLResponse("<html><body>docs</body></html>")

    @a.get("/v3/api-docs")
    def doc() -> dict[str, str]:
        return {"openapi": "3.1.0"}

    @a.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        seen.append(request.url.path)
        resp: Response = await call_next(request)
        if not broken:
            resp.headers["X-Content-Type-Options"] = "nosniff"
            resp.headers["X-Frame-Options"] = "DENY"
            resp.headers["Referrer-Policy"] = "no-referrer"
            resp.headers["Cache-Control"] = "no-store"
            if resp.headers.get("content-type", "").startswith("text/html"):
                csp = "default-src 'none'; frame-ancestors 'none'"
                resp.headers["Content-Security-Policy"] = csp
        return resp

    if not broken:
        a.add_middleware(GZipMiddleware, minimum_size=500)
    origins: dict[str, Any] = {"allow_origin_regex": ".*"} if broken else {"allow_origins": [WEB]}
    a.add_middleware(
        CORSMiddleware, allow_credentials=True, allow_methods=["*"], allow_headers=["*"], **origins
    )
    return a


def _shaped_ctx(url: str, api: ApiConfig) -> Any:
    env = Environment(base_url=url, production=True, api=api)
    return make_context(environment=env, environ=dict(CREDS))


def test_other_shape_healthy_is_green_and_only_the_maps_routes_are_asked() -> None:
    app = _shaped_app()
    with serve(app) as s:
        out = run_checks(_shaped_ctx(s.url, SHAPED_MAP), only=SHAPED)
    for cid in SHAPED:
        bad = {k: v for k, v in statuses(out, cid).items() if v not in ("pass", "skip")}
        assert bad == {}, (cid, [r.summary for r in results_of(out, cid).values()])
    sh = statuses(out, "http.security_headers")
    assert sh["score"] == "pass" and sh["CSP on /swagger-ui"] == "pass"
    assert sh["Cache-Control (authenticated)"] == "pass"
    assert "CSP on /v3/api-docs" not in sh  # the JSON document is not an HTML page
    assert statuses(out, "http.cors")["allowed origin"] == "pass"  # api.cors_origin
    assert statuses(out, "http.versioning") == {
        "version prefix /api/v2": "pass",
        "unknown version /api/v99": "pass",
        "deprecated versions": "skip",
    }
    pag = results_of(out, "http.pagination")["/api/v2/notes"]
    assert pag.status.value == "pass" and pag.measured == 100
    assert "size=10000" in pag.summary and "page=1" in pag.summary
    comp = results_of(out, "http.compression")["/api/v2/notes?size=100&page=1"]
    assert comp.status.value == "pass"
    # the map's routes only: no demo route was guessed, no prefix doubled
    assert set(app.state.seen) <= {
        "/",
        "/api/auth/token",
        "/healthz",
        "/api/v2/users/current",
        "/api/v2/notes",
        "/api/notes",
        "/api/v99/notes",
        "/swagger-ui",
    }, app.state.seen


def test_other_shape_broken_turns_each_check_red() -> None:
    with serve(_shaped_app(broken=True)) as s:
        out = run_checks(_shaped_ctx(s.url, SHAPED_MAP), only=SHAPED)
    for cid in SHAPED:
        assert "fail" in statuses(out, cid).values(), (cid, statuses(out, cid))
    sh = statuses(out, "http.security_headers")
    assert sh["CSP on /swagger-ui"] == "fail" and sh["Cache-Control (authenticated)"] == "fail"
    cors = results_of(out, "http.cors")["preflight from a foreign origin"]
    assert "WITH credentials" in cors.summary
    assert statuses(out, "http.versioning") == {
        "version prefix /api/v2": "fail",
        "unknown version /api/v99": "fail",
        "deprecated versions": "skip",
    }
    assert results_of(out, "http.pagination")["/api/v2/notes"].measured == 500
    (comp,) = results_of(out, "http.compression").values()
    assert comp.status.value == "fail"


def test_unknown_routes_skip_naming_the_key_to_set() -> None:
    app = _shaped_app()
    with serve(app) as s:
        out = run_checks(_shaped_ctx(s.url, ApiConfig(openapi="off")), only=SHAPED)
        login_only = ApiConfig(openapi="off", login=SHAPED_MAP.login)
        lists_unknown = run_checks(
            _shaped_ctx(s.url, login_only), only=["http.pagination", "http.compression"]
        )
    keys = {
        "http.security_headers": "health.live",
        "http.cors": "me",
        "http.versioning": "prefix",
        "http.pagination": "login",  # needs a session: the login is what is missing first
        "http.compression": "login",
    }
    for cid, key in keys.items():
        (r,) = results_of(out, cid).values()
        assert r.status.value == "skip", (cid, r.summary)
        assert f"environments.default.api.{key}" in (r.reason or ""), (cid, r.reason)
    for cid in ("http.pagination", "http.compression"):
        (r,) = results_of(lists_unknown, cid).values()
        assert r.status.value == "skip" and "environments.default.api.lists" in (r.reason or "")
    assert set(app.state.seen) <= {"/", "/api/auth/token"}, app.state.seen
