"""http.cache_headers: small real servers (good and broken variants) and the managed demo."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from readyctl.checks.http._cachecontrol import cache_directives, is_no_store, seconds

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

BODY = b'{"items":[{"name":"Lifeline","phone":"988"}]}'
ETAG = '"' + hashlib.sha256(BODY).hexdigest()[:16] + '"'
MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
ROUTES = {
    "/good": "good",
    "/good-lm": "good-lm",
    "/no-max-age": "no-max-age",
    "/no-validator": "no-validator",
    "/no-304": "no-304",
    "/no-store": "no-store",
}


def _app() -> FastAPI:
    a = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def answer(request: Request, kind: str) -> Response:
        headers = {"Cache-Control": "public, max-age=300", "ETag": ETAG}
        if kind == "good-lm":
            headers = {"Cache-Control": "public, s-maxage=60", "Last-Modified": MODIFIED}
            if request.headers.get("if-modified-since") == MODIFIED:
                return Response(status_code=304, headers=headers)
        elif kind == "no-max-age":
            headers["Cache-Control"] = "public"
        elif kind == "no-validator":
            del headers["ETag"]
        elif kind == "no-store":
            headers["Cache-Control"] = "no-store"
        conditional = request.headers.get("if-none-match") == ETAG
        if conditional and kind != "no-304" and "ETag" in headers:
            return Response(status_code=304, headers=headers)
        return Response(BODY, media_type="application/json", headers=headers)

    def route(kind: str) -> Any:
        def endpoint(request: Request) -> Response:
            return answer(request, kind)

        return endpoint

    for path, kind in ROUTES.items():
        a.add_api_route(path, route(kind), methods=["GET"])

    @a.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"ok": True})

    return a


def _ctx(url: str, api: ApiConfig, checks: dict[str, Any] | None = None) -> Any:
    env = Environment(base_url=url, production=True, api=api)
    return make_context(environment=env, config=Config(checks=checks or {}))


def test_cache_control_parsing_is_shared() -> None:
    cc = cache_directives(["public, max-age=300", 'S-MaxAge="60", max-age=5'])
    assert cc == {"public": None, "max-age": "300", "s-maxage": "60"}
    assert seconds(cc, "max-age") == 300 and seconds(cc, "s-maxage") == 60
    assert seconds(cache_directives(["max-age=abc"]), "max-age") is None
    assert is_no_store(["private", "No-Store"]) and not is_no_store(["no-cache"])


def test_good_and_broken_routes() -> None:
    api = ApiConfig(openapi="off", health={"live": "/health"}, cacheable=list(ROUTES))
    with serve(_app()) as s:
        out = run_checks(_ctx(s.url, api), only=["http.cache_headers"])
    st = statuses(out, "http.cache_headers")
    assert st == {
        "/good": "pass",
        "/good-lm": "pass",
        "/no-max-age": "fail",
        "/no-validator": "fail",
        "/no-304": "fail",
        "/no-store": "fail",
    }
    res = results_of(out, "http.cache_headers")
    assert res["/good"].measured == 300
    assert res["/good"].evidence["conditional"]["status"] == 304
    assert res["/good"].evidence["headers"]["etag"] == ETAG
    assert "max-age" in res["/no-max-age"].summary
    assert "no validator" in res["/no-validator"].summary
    assert res["/no-validator"].evidence["conditional"] is None
    assert "answered 200, not 304" in res["/no-304"].summary
    assert "no-store" in res["/no-store"].summary
    assert res["/no-store"].evidence["headers"]["cache-control"] == "no-store"


def test_settings_paths_and_a_missing_route() -> None:
    api = ApiConfig(openapi="off", health={"live": "/health"})
    with serve(_app()) as s:
        out = run_checks(_ctx(s.url, api), only=["http.cache_headers"])
        only = run_checks(
            _ctx(s.url, api, {"http.cache_headers": {"paths": ["/good", "/missing"]}}),
            only=["http.cache_headers"],
        )
    # no api.cacheable: skipped, naming the key to set
    [skip] = [r for r in out.results if r.check_id == "http.cache_headers"]
    assert skip.status.value == "skip", skip.summary
    assert "api.cacheable" in skip.summary
    assert statuses(only, "http.cache_headers") == {"/good": "pass", "/missing": "error"}


@pytest.mark.slow
def test_healthy_demo_is_green(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["http.cache_headers"])
    route = "/v1/resources/crisis-lines"
    assert statuses(out, "http.cache_headers") == {route: "pass"}
    r = results_of(out, "http.cache_headers")[route]
    assert r.evidence["headers"]["cache-control"] == "public, max-age=300"
    assert r.evidence["conditional"]["status"] == 304
    # authenticated answers keep their no-store (judged by http.security_headers)
    sh = run_checks(demo_context(healthy_demo), only=["http.security_headers"])
    assert statuses(sh, "http.security_headers")["Cache-Control (authenticated)"] == "pass"


@pytest.mark.slow
def test_fault_turns_it_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("no-cache-validators")
    out = run_checks(demo_context(d), only=["http.cache_headers"])
    route = "/v1/resources/crisis-lines"
    assert statuses(out, "http.cache_headers") == {route: "fail"}
    summary = results_of(out, "http.cache_headers")[route].summary
    assert "no-store" in summary and "no validator" in summary
