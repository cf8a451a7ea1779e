"""The API map: precedence, the deprecated `auth:`, and discovery against real FastAPI servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

from readyctl import apimap
from readyctl.apimap import ApiConfig, Builder, RouteUnknown
from readyctl.config import AuthConfig, Config, Environment, load_config
from readyctl.errors import ConfigError
from tests.helpers import make_context, run_checks
from tests.servers import serve

CREDS = {"READYCTL_AUTH_USERNAME": "ada@example.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}
ACCESS = "acc-7f3k9v2q"
REFRESH = "ref-2m8x4c1p"


# -- precedence and the deprecated auth: ---------------------------------------------------
def test_config_beats_discovery_beats_defaults() -> None:
    b = Builder("prod")
    b.add(ApiConfig(me="/account/me", health={"live": "/livez"}), apimap.CONFIG)
    b.add({"me": "/users/me", "health": {"live": "/h", "ready": "/readyz"}}, apimap.OPENAPI)
    b.add({"metrics": "/metrics", "me": "/v1/auth/me"}, apimap.DEFAULT)
    api = b.build()
    assert api.me == "/account/me" and api.sources["me"] == "config"
    assert api.health.live == "/livez" and api.sources["health.live"] == "config"
    assert api.health.ready == "/readyz" and api.sources["health.ready"] == "openapi"
    assert api.metrics == "/metrics" and api.sources["metrics"] == "default"
    shown = {k: (v, s) for k, v, s in api.describe()}
    assert shown["health.ready"] == ("/readyz", "openapi")


def test_discovery_completes_a_configured_login_but_never_overrides_it() -> None:
    b = Builder("prod")
    b.add(ApiConfig(login={"path": "/api/token", "body": "form"}), apimap.CONFIG)
    b.add({"login": {"path": "/api/token", "body": "json", "access_token": "data.jwt"}}, "openapi")
    login = b.build().login
    assert login is not None and login.body == "form" and login.access_token == "data.jwt"


def test_unknown_key_names_the_setting() -> None:
    api = Builder("staging").build()
    with pytest.raises(RouteUnknown) as e:
        api.need("health.ready")
    assert e.value.setting == "environments.staging.api.health.ready"
    assert "environments.staging.api.health.ready" in e.value.message


def test_refresh_none_means_no_refresh_flow() -> None:
    api = Builder("p")
    api.add(ApiConfig(refresh="none"), "config")
    assert api.build().has_refresh is False
    assert Builder("p").build().has_refresh is None


def test_deprecated_auth_still_works_with_a_note(tmp_path: Path) -> None:
    env = Environment(
        base_url="http://127.0.0.1:9",
        auth=AuthConfig(path="/api/login", body_format="form", token_path="data.token"),
    )
    ctx = make_context(environment=env, env_name="prod")
    api = ctx.api_static()
    assert api.login is not None and api.login.path == "/api/login"
    assert api.login.body == "form" and api.login.access_token == "data.token"
    assert api.sources["login"] == apimap.DEPRECATED_AUTH
    assert any("deprecated" in n for n in api.notes)


def test_api_map_errors_are_one_line_naming_the_key(tmp_path: Path) -> None:
    f = tmp_path / "readyctl.yaml"
    f.write_text("environments:\n  prod:\n    api:\n      me: users/me\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "\n" not in msg and "environments.prod.api.me" in msg and "'/'" in msg


def test_token_paths_are_found_in_a_login_answer() -> None:
    assert apimap.find_token_paths({"data": {"accessToken": "a", "refreshToken": "r"}}) == (
        "data.accessToken",
        "data.refreshToken",
    )
    assert apimap.find_token_paths({"token": "t", "user": {"id": 1}}) == ("token", None)
    assert apimap.find_token_paths({"user": {"name": "x"}}) == (None, None)


# -- discovery against real servers ----------------------------------------------------------
class TokenOut(BaseModel):
    accessToken: str
    refreshToken: str
    tokenType: str = "bearer"


class Item(BaseModel):
    id: int
    name: str


class Page(BaseModel):
    results: list[Item]
    count: int


def shop_api(*, docs: str, metadata: bool) -> tuple[FastAPI, dict[str, int]]:
    """An API readyctl has never seen: OAuth2 form login at /api/shop/token, tokens under
    accessToken/refreshToken, page/size lists. `docs`: public, session or none."""
    hits: dict[str, int] = {}
    scheme = OAuth2PasswordBearer(tokenUrl="/api/shop/token")
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        hits[request.url.path] = hits.get(request.url.path, 0) + 1
        return await call_next(request)

    def user(token: str = Depends(scheme)) -> str:
        if token != ACCESS:
            raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
        return "ada"

    @app.post("/api/shop/token", response_model=TokenOut)
    def token(form: OAuth2PasswordRequestForm = Depends()) -> TokenOut:
        if (form.username, form.password) != tuple(CREDS.values()):
            raise HTTPException(401)
        return TokenOut(accessToken=ACCESS, refreshToken=REFRESH)

    @app.get("/api/shop/users/me")
    def me(who: str = Depends(user)) -> dict[str, str]:
        return {"name": who}

    @app.get("/api/shop/items", response_model=Page)
    def items(page: int = 1, size: int = 20, who: str = Depends(user)) -> Page:
        return Page(results=[], count=0)

    @app.get("/livez")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    if docs != "none":

        @app.get("/api/openapi.json", include_in_schema=False)
        def doc(request: Request) -> Any:
            if docs == "session" and request.headers.get("authorization") != f"Bearer {ACCESS}":
                raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
            return app.openapi()

    if metadata:

        @app.get("/.well-known/oauth-authorization-server")
        def meta(request: Request) -> dict[str, Any]:
            base = str(request.base_url).rstrip("/")
            return {
                "issuer": base,
                "token_endpoint": f"{base}/api/shop/token",
                "grant_types_supported": ["password", "refresh_token"],
            }

    return app, hits


def _ctx(url: str, **api: Any) -> Any:
    env = Environment(base_url=url, api=ApiConfig(**api) if api else None)
    return make_context(environment=env, env_name="shop", environ=dict(CREDS))


def test_public_openapi_gives_login_me_and_lists() -> None:
    app, _ = shop_api(docs="public", metadata=False)
    with serve(app) as s:
        ctx = _ctx(s.url)
        api = ctx.api()
        assert api.openapi_at == "/api/openapi.json"
        assert api.login is not None and api.login.path == "/api/shop/token"
        assert api.login.body == "form" and api.sources["login"] == "openapi"
        assert api.me == "/api/shop/users/me"
        assert [lst.path for lst in api.lists] == ["/api/shop/items"]
        session = ctx.auth()  # form login; tokens found under accessToken/refreshToken
        assert session.token == ACCESS and session.refresh_token == REFRESH
        ctx.run_cleanups()


def test_hidden_openapi_is_read_with_the_session_found_through_oauth_metadata() -> None:
    app, hits = shop_api(docs="session", metadata=True)
    with serve(app) as s:
        ctx = _ctx(s.url)
        api = ctx.api()
        assert api.sources["login"] == apimap.OAUTH_METADATA
        assert api.openapi_at == "/api/openapi.json" and api.me == "/api/shop/users/me"
        assert any("only to a session" in n for n in api.notes)
        assert hits["/api/openapi.json"] == 2  # anonymously (401), then with the session
        ctx.run_cleanups()


def test_nothing_published_and_no_map_skips_naming_the_key() -> None:
    app, _ = shop_api(docs="none", metadata=False)
    with serve(app) as s:
        ctx = _ctx(s.url)
        out = run_checks(ctx, only=["auth.session", "auth.jwt_tampering"])
        by_id = {r.check_id: r for r in out.results}
        assert by_id["auth.session"].status.value == "skip"
        assert "environments.shop.api.login" in by_id["auth.session"].summary
        assert by_id["auth.jwt_tampering"].status.value == "skip"
        assert not [r for r in out.results if r.status.value == "error"]


def test_explicit_config_wins_and_openapi_off_sends_no_discovery_request() -> None:
    app, hits = shop_api(docs="public", metadata=True)
    with serve(app) as s:
        ctx = _ctx(s.url, openapi="off", login={"path": "/api/shop/token", "body": "form"})
        api = ctx.api()
        assert api.me is None and api.sources["login"] == "config"
        assert "/api/openapi.json" not in hits and not any(".well-known" in p for p in hits)
        assert ctx.auth().token == ACCESS
        ctx.run_cleanups()
        ctx2 = _ctx(s.url, me="/api/shop/users/me")
        assert ctx2.api().sources["me"] == "config"
        ctx2.run_cleanups()


def test_config_models_round_trip_in_the_schema() -> None:
    schema = Config.model_json_schema()
    assert "api" in str(schema)
