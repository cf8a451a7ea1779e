"""http.error_hygiene, http.docs_exposure, http.banner and http.reachable on an API of another
shape: routes come from the API map (api:), never from the bundled demo's; unknown routes skip.
"""

from __future__ import annotations

import json
from typing import Any

from readyctl.apimap import ApiConfig
from readyctl.config import Environment
from readyctl.runner import RunOutcome
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

TRACE = b'Traceback (most recent call last):\n  File "/srv/app/orders.py", line 12, in create\n'
# the shape of this API: /api/v2, probes at /healthz and /readyz, docs at /api/v2/docs
SHAPE = ApiConfig(
    openapi="off",
    json_endpoint={"method": "POST", "path": "/api/v2/orders"},
    health={"live": "/healthz", "ready": "/readyz"},
    docs=["/api/v2/docs", "/api/v2/openapi.json"],
)
NO_MAP = ApiConfig(openapi="off")


def orders_api(
    *,
    leak: bool = False,
    public_docs: tuple[str, ...] = (),
    banner: bool = False,
    live_status: int = 200,
) -> Any:
    """A raw ASGI API: JSON errors of one shape, docs that need a login, small probes.

    `leak`: a malformed body answers a stack trace; `public_docs`: paths served anonymously;
    `banner`: the probes disclose the stack; `live_status`: what /healthz answers.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(f"{scope['method']} {scope['path']}")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break

        async def reply(status: int, payload: Any, headers: list[Any] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            ctype = b"text/plain" if isinstance(payload, bytes) else b"application/json"
            all_headers = [(b"content-type", ctype), *(headers or [])]
            await send({"type": "http.response.start", "status": status, "headers": all_headers})
            await send({"type": "http.response.body", "body": data})

        path, method = scope["path"], scope["method"]
        if path in ("/healthz", "/readyz"):
            extra = [(b"x-powered-by", b"Express/4.18.2")] if banner else []
            status = live_status if path == "/healthz" else 200
            await reply(status, {"ok": status == 200}, extra)
        elif path == "/api/v2/orders" and method == "POST":
            try:
                data = json.loads(body)
            except ValueError:
                if leak:
                    await reply(400, TRACE)
                else:
                    await reply(400, {"error": {"code": "bad_json", "message": "not JSON"}})
                return
            if not isinstance(data, dict) or not isinstance(data.get("sku"), str):
                await reply(422, {"error": {"code": "invalid", "message": "sku: a string"}})
                return
            await reply(201, {"id": 1})
        elif path in public_docs:
            await reply(200, {"openapi": "3.1.0", "paths": {}})
        elif path.startswith("/api/v2/docs") or path == "/api/v2/openapi.json":
            await reply(401, {"error": {"code": "unauthorized", "message": "log in"}})
        else:
            await reply(404, {"error": {"code": "not_found", "message": "no such route"}})

    seen: list[str] = []
    app.seen = seen  # type: ignore[attr-defined]
    return app


def run(app: Any, api: ApiConfig, only: list[str], **env: Any) -> RunOutcome:
    with serve(app) as s:
        environment = Environment(base_url=s.url, api=api, **env)
        return run_checks(make_context(environment=environment, env_name="prod"), only=only)


# -- http.error_hygiene ------------------------------------------------------------------------
EH = "http.error_hygiene"


def test_error_hygiene_probes_the_maps_json_endpoint_on_another_shape() -> None:
    app = orders_api()
    out = run(app, SHAPE, [EH])
    assert statuses(out, EH) == {
        "404 page": "pass",
        "malformed JSON": "pass",
        "wrong types": "pass",
        "error shape": "pass",
    }
    assert app.seen.count("POST /api/v2/orders") == 2
    assert not [r for r in app.seen if "/v1/" in r]  # no demo route guessed
    out = run(orders_api(leak=True), SHAPE, [EH])
    got = results_of(out, EH)
    assert got["malformed JSON"].status.value == "fail", got["malformed JSON"].summary
    assert "stack trace" in got["malformed JSON"].summary


def test_error_hygiene_falls_back_to_a_json_login_with_its_field_names() -> None:
    login = {"path": "/api/v2/orders", "body": "json", "username_field": "sku"}
    app = orders_api()
    out = run(app, ApiConfig(openapi="off", login=login), [EH])
    # the wrong-types body uses the login's own field names: {"sku": 5, "password": []}
    assert statuses(out, EH)["wrong types"] == "pass"
    assert results_of(out, EH)["wrong types"].evidence["status"] == 422


def test_error_hygiene_skips_naming_the_key_without_a_json_endpoint() -> None:
    for api in (NO_MAP, ApiConfig(openapi="off", login={"path": "/token", "body": "form"})):
        app = orders_api()
        out = run(app, api, [EH])
        (r,) = results_of(out, EH).values()
        assert r.status.value == "skip", r.summary
        assert "environments.prod.api.json_endpoint" in r.reason
        assert not [s for s in app.seen if s.startswith("POST")]


# -- http.docs_exposure ------------------------------------------------------------------------
DOCS = "http.docs_exposure"


def test_docs_exposure_probes_the_maps_docs_on_another_shape() -> None:
    app = orders_api()
    out = run(app, SHAPE, [DOCS], production=True)
    got = statuses(out, DOCS)
    assert got["/api/v2/docs"] == "pass" and got["/api/v2/openapi.json"] == "pass"
    assert set(got.values()) == {"pass"}, got
    # the probe's GET and the control path's: the map's liveness probe, not a guessed /health
    assert app.seen.count("GET /healthz") == 2 and "GET /health" not in app.seen
    out = run(orders_api(public_docs=("/api/v2/docs",)), SHAPE, [DOCS], production=True)
    got = statuses(out, DOCS)
    assert got["/api/v2/docs"] == "fail" and got["/api/v2/openapi.json"] == "pass"


def test_docs_exposure_with_an_empty_map_probes_the_usual_places() -> None:
    from readyctl.discovery import DOC_UI_PATHS
    from readyctl.openapi import CANDIDATE_PATHS

    app = orders_api()
    out = run(app, NO_MAP, [DOCS], production=True)
    got = statuses(out, DOCS)
    # the control is "/" (a 404 there still proves the app answers), the paths the usual ones
    assert set(got) == {*DOC_UI_PATHS, *CANDIDATE_PATHS} and set(got.values()) == {"pass"}
    assert app.seen[0] == "GET /"
    # a public OpenAPI document at a usual place is found without any map
    out = run(orders_api(public_docs=("/openapi.json",)), NO_MAP, [DOCS], production=True)
    assert statuses(out, DOCS)["/openapi.json"] == "fail"


# -- http.banner and http.reachable ------------------------------------------------------------
def test_banner_reads_the_maps_public_paths_on_another_shape() -> None:
    app = orders_api()
    out = run(app, SHAPE, ["http.banner"])
    assert statuses(out, "http.banner") == {"Server": "pass", "X-Powered-By": "pass"}
    assert {"GET /healthz", "GET /readyz"} <= set(app.seen)
    out = run(orders_api(banner=True), SHAPE, ["http.banner"])
    r = results_of(out, "http.banner")["X-Powered-By"]
    assert r.status.value == "fail" and "GET /healthz" in r.summary


def test_banner_and_reachable_with_an_empty_map_use_the_base_url() -> None:
    app = orders_api(banner=True)
    out = run(app, NO_MAP, ["http.banner"])
    # "/" and a random path; the probes were not guessed, so their banner goes unseen
    assert statuses(out, "http.banner") == {"Server": "pass", "X-Powered-By": "pass"}
    assert "GET /healthz" not in app.seen and "GET /health" not in app.seen
    (r,) = results_of(out, "http.reachable").values()
    assert r.status.value == "pass" and "/ answered 404" in r.summary  # any answer: reachable


def test_reachable_gets_the_maps_liveness_probe() -> None:
    out = run(orders_api(), SHAPE, ["http.reachable"])
    (r,) = results_of(out, "http.reachable").values()
    assert r.status.value == "pass" and "/healthz answered 200" in r.summary
    out = run(orders_api(live_status=503), SHAPE, ["http.reachable"])
    (r,) = results_of(out, "http.reachable").values()
    assert r.status.value == "fail" and "/healthz answered 503" in r.summary
