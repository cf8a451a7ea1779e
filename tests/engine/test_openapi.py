"""readyctl.openapi: the API map derived from real OpenAPI documents, and hostile ones."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from fastapi import Depends, FastAPI
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

from readyctl import openapi
from readyctl.errors import ReadyctlError
from readyctl.openapi import (
    CANDIDATE_PATHS,
    Document,
    OpenApiError,
    derive_map,
    parse_document,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "openapi"
HANG_GUARD_S = 15.0  # a guard against a hang, not a timing assertion

# ------------------------------------------------------------------------ helpers


def load(name: str) -> dict[str, Any]:
    """A fixture document as a dict (JSON or YAML)."""
    return yaml.safe_load((DATA / name).read_text())


def parse(raw: dict[str, Any], source: str = "test") -> Document:
    return parse_document(json.dumps(raw), source=source)


def doc3(paths: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A minimal OpenAPI 3.0 document around `paths`."""
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **top}


def ok(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "ok"}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return {"200": response}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def one_line(message: str) -> bool:
    return "\n" not in message and "\r" not in message


# --------------------------------------------------------------- FastAPI (real output)


# FastAPI resolves these annotations from the module's globals (the file has postponed
# annotations), so the models and the scheme live at module level.
OAUTH2 = OAuth2PasswordBearer(tokenUrl="/api/v1/login/access-token")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Item(BaseModel):
    id: int
    title: str
    description: str | None = None


class ItemCreate(BaseModel):
    title: str
    description: str | None = None


class ItemsPublic(BaseModel):
    data: list[Item]
    count: int


class UserPublic(BaseModel):
    id: int
    email: str
    full_name: str | None = None


def fastapi_document(openapi_version: str) -> dict[str, Any]:
    """The document FastAPI emits for a small full-stack-template-like app."""
    app = FastAPI(title="Full Stack FastAPI Project")
    app.openapi_version = openapi_version

    @app.post("/api/v1/login/access-token")
    def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
        raise NotImplementedError

    @app.get("/api/v1/users/me")
    def read_me(token: Annotated[str, Depends(OAUTH2)]) -> UserPublic:
        raise NotImplementedError

    @app.get("/api/v1/items/")
    def read_items(
        token: Annotated[str, Depends(OAUTH2)], skip: int = 0, limit: int = 100
    ) -> ItemsPublic:
        raise NotImplementedError

    @app.post("/api/v1/items/")
    def create_item(token: Annotated[str, Depends(OAUTH2)], item: ItemCreate) -> Item:
        raise NotImplementedError

    @app.get("/api/v1/utils/health-check/")
    def health_check() -> bool:
        return True

    return app.openapi()


FASTAPI_MAP = {
    "prefix": "/api/v1",
    "login": {
        "method": "POST",
        "path": "/api/v1/login/access-token",
        "body": "form",
        "username_field": "username",
        "password_field": "password",
        "access_token": "access_token",
    },
    "me": "/api/v1/users/me",
    "lists": [
        {
            "path": "/api/v1/items/",
            "page_param": None,
            "size_param": "limit",
            "offset_param": "skip",
            "items": "data",
            "total": "count",
        }
    ],
    "json_endpoint": {"method": "POST", "path": "/api/v1/items/"},
    "health": {"live": "/api/v1/utils/health-check/"},
    "security": {"header": "Authorization", "scheme": "Bearer"},
}


@pytest.mark.parametrize("version", ["3.1.0", "3.0.2"])
def test_fastapi_document(version: str) -> None:
    raw = fastapi_document(version)
    assert raw["openapi"] == version
    doc = parse_document(json.dumps(raw), source="http://127.0.0.1:8000/openapi.json")
    assert doc.version == version
    assert derive_map(doc) == FASTAPI_MAP
    assert all(one_line(p) and len(p) <= 200 for p in doc.problems)
    if version == "3.1.0":
        assert doc.problems == ()


def test_fastapi_document_as_bytes_and_yaml() -> None:
    raw = fastapi_document("3.1.0")
    as_bytes = parse_document(json.dumps(raw).encode(), source="b")
    as_yaml = parse_document(yaml.safe_dump(raw), source="y")
    assert derive_map(as_bytes) == derive_map(as_yaml) == FASTAPI_MAP


def test_bundled_demo_document() -> None:
    """The demo target's own FastAPI document (3.1, a global bearer requirement)."""
    from readyctl.demo.app import create_app
    from readyctl.demo.settings import Settings

    app = create_app(Settings(database_url="postgresql://u@127.0.0.1:1/db", jwt_secret="x" * 40))
    api_map = derive_map(parse_document(json.dumps(app.openapi()), source="demo"))
    assert api_map["prefix"] == "/v1"
    assert api_map["login"] == {
        "method": "POST",
        "path": "/v1/auth/login",
        "body": "json",
        "username_field": "email",
        "password_field": "password",
    }
    assert api_map["me"] == "/v1/auth/me"
    assert api_map["refresh"] == {
        "method": "POST",
        "path": "/v1/auth/refresh",
        "send": "json",
        "field": "refresh_token",
    }
    assert api_map["logout"] == {"method": "POST", "path": "/v1/auth/logout"}
    assert api_map["health"] == {"live": "/health/live", "ready": "/health/ready"}
    assert api_map["metrics"] == "/metrics"
    assert api_map["json_endpoint"] == {"method": "POST", "path": "/v1/auth/login"}
    assert api_map["security"] == {"header": "Authorization", "scheme": "Bearer"}


# ---------------------------------------------------------------- NestJS-shaped documents

NEST_LOGIN = {
    "method": "POST",
    "path": "/api/auth/login",
    "body": "json",
    "username_field": "email",
    "password_field": "password",
    "access_token": "accessToken",
    "refresh_token": "refreshToken",
}
NEST_LISTS = [
    {
        "path": "/api/users",
        "page_param": "page",
        "size_param": "limit",
        "offset_param": None,
        "items": "data",
        "total": "meta.total",
    },
    {
        "path": "/api/posts",
        "page_param": None,
        "size_param": None,
        "offset_param": None,
        "items": "",
        "total": None,
    },
]
NEST_MAP = {
    "login": NEST_LOGIN,
    "me": "/api/auth/me",
    "refresh": {
        "method": "POST",
        "path": "/api/auth/refresh",
        "send": "json",
        "field": "refreshToken",
        "access_token": "accessToken",
        "refresh_token": "refreshToken",
    },
    "logout": {"method": "POST", "path": "/api/auth/logout"},
    "register": {
        "method": "POST",
        "path": "/api/auth/register",
        "username_field": "email",
        "password_field": "password",
    },
    "lists": NEST_LISTS,
    "json_endpoint": {"method": "POST", "path": "/api/auth/login"},
    "health": {"live": "/api/health"},
    "security": {"header": "Authorization", "scheme": "Bearer"},
}


def test_nest_30_document() -> None:
    doc = parse_document((DATA / "nest-3.0.json").read_bytes(), source="nest-3.0.json")
    assert doc.version == "3.0.0"
    assert doc.problems == ()
    assert derive_map(doc) == NEST_MAP


def test_nest_31_refresh_by_bearer_header() -> None:
    doc = parse_document((DATA / "nest-3.1.json").read_text(), source="nest-3.1.json")
    assert doc.version == "3.1.0"
    assert doc.problems == ()
    expected = copy.deepcopy(NEST_MAP)
    # 3.1: the tokens sit under "data" ($ref beside a description); refresh has no body
    expected["login"].update(access_token="data.accessToken", refresh_token="data.refreshToken")
    expected["refresh"] = {
        "method": "POST",
        "path": "/api/auth/refresh",
        "send": "header",
        "access_token": "accessToken",
        "refresh_token": "refreshToken",
    }
    assert derive_map(doc) == expected


def test_nest_31_refresh_by_cookie_from_yaml() -> None:
    doc = parse_document((DATA / "nest-3.1-cookie.yaml").read_text(), source="cookie.yaml")
    assert doc.version == "3.1.0"
    assert doc.problems == ()
    assert derive_map(doc) == {
        "login": {
            "method": "POST",
            "path": "/api/auth/login",
            "body": "json",
            "username_field": "username",
            "password_field": "password",
            "access_token": "access_token",
        },
        "me": "/api/auth/me",
        "refresh": {
            "method": "POST",
            "path": "/api/auth/refresh",
            "send": "cookie",
            "field": "refresh_token",
            "access_token": "access_token",
        },
        "logout": {"method": "POST", "path": "/api/auth/logout"},
        "json_endpoint": {"method": "POST", "path": "/api/auth/login"},
        "health": {"live": "/api/health", "ready": "/api/health/ready"},
        "security": {"header": "Authorization", "scheme": "Bearer"},
    }


def test_refresh_body_without_a_token_field_says_nothing_about_sending() -> None:
    raw = load("nest-3.0.json")
    raw["components"]["schemas"]["RefreshTokenDto"]["properties"] = {"deviceId": {"type": "string"}}
    raw["components"]["schemas"]["RefreshTokenDto"]["required"] = ["deviceId"]
    assert derive_map(parse(raw))["refresh"] == {
        "method": "POST",
        "path": "/api/auth/refresh",
        "access_token": "accessToken",
        "refresh_token": "refreshToken",
    }


# -------------------------------------------------------------------------- Swagger 2.0

SWAGGER_MAP = {
    "prefix": "/api/v1",
    "login": {
        "method": "POST",
        "path": "/api/v1/oauth/token",
        "body": "form",
        "username_field": "username",
        "password_field": "password",
        "access_token": "access_token",
        "refresh_token": "refresh_token",
    },
    "me": "/api/v1/users/me",
    "logout": {"method": "POST", "path": "/api/v1/auth/logout"},
    "lists": [
        {
            "path": "/api/v1/articles",
            "page_param": "page",
            "size_param": "per_page",
            "offset_param": None,
            "items": "",
            "total": None,
        }
    ],
    "json_endpoint": {"method": "POST", "path": "/api/v1/articles"},
    "health": {"live": "/api/v1/health"},
    "metrics": "/api/v1/metrics",
    "security": {"header": "Authorization", "scheme": "Bearer"},
}


def test_swagger_20_oauth2_password_flow() -> None:
    doc = parse_document((DATA / "swagger-2.0.json").read_bytes(), source="swagger.json")
    assert doc.version == "2.0"
    assert doc.problems == ()
    assert derive_map(doc) == SWAGGER_MAP


def test_swagger_20_token_url_without_a_documented_operation() -> None:
    raw = load("swagger-2.0.json")
    del raw["paths"]["/oauth/token"]
    api_map = derive_map(parse(raw))
    # RFC 6749's form fields and response name: the standard is the evidence
    assert api_map["login"] == {
        "method": "POST",
        "path": "/api/v1/oauth/token",
        "body": "form",
        "username_field": "username",
        "password_field": "password",
        "access_token": "access_token",
    }


def test_swagger_20_token_url_on_another_host_is_not_a_login() -> None:
    raw = load("swagger-2.0.json")
    del raw["paths"]["/oauth/token"]
    raw["securityDefinitions"]["oauth2"]["tokenUrl"] = "https://login.example.org/oauth/token"
    api_map = derive_map(parse(raw))
    assert "login" not in api_map
    assert api_map["security"] == {"header": "Authorization", "scheme": "Bearer"}


def test_swagger_20_api_key_header_from_yaml() -> None:
    doc = parse_document((DATA / "swagger-2.0-apikey.yaml").read_text(), source="apikey.yaml")
    assert doc.version == "2.0"
    assert doc.problems == ()
    assert derive_map(doc) == {
        "login": {
            "method": "POST",
            "path": "/auth/login",
            "body": "json",
            "username_field": "email",
            "password_field": "password",
            "access_token": "token",
        },
        "lists": [
            {
                "path": "/products",
                "page_param": None,
                "size_param": "limit",
                "offset_param": "offset",
                "items": "results",
                "total": "count",
            }
        ],
        "json_endpoint": {"method": "POST", "path": "/auth/login"},
        "health": {"live": "/status"},
        "security": {"header": "X-API-Key", "scheme": ""},
    }


def test_swagger_20_apikey_authorization_with_bearer_description() -> None:
    raw = load("swagger-2.0-apikey.yaml")
    raw["securityDefinitions"]["api_key"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Bearer <token>",
    }
    assert derive_map(parse(raw))["security"] == {"header": "Authorization", "scheme": "Bearer"}


# ---------------------------------------------------------------- rules on small documents


def test_servers_path_is_prepended_relative_first() -> None:
    paths = {"/users/me": {"get": {"security": [{"b": []}], "responses": ok()}}}
    schemes = {"securitySchemes": {"b": {"type": "http", "scheme": "bearer"}}}
    raw = doc3(
        paths,
        servers=[
            {"url": "https://api.example.com/prod"},
            {"url": "/api/{version}", "variables": {"version": {"default": "v2"}}},
        ],
        components=schemes,
    )
    assert derive_map(parse(raw)) == {
        "prefix": "/api/v2",
        "me": "/api/v2/users/me",
        "security": {"header": "Authorization", "scheme": "Bearer"},
    }
    raw["servers"] = [{"url": "https://eu.example.com/api"}, {"url": "https://us.example.com/api/"}]
    assert derive_map(parse(raw))["me"] == "/api/users/me"


def test_me_needs_security_and_no_path_parameters() -> None:
    raw = doc3(
        {
            "/users/me": {"get": {"responses": ok()}},
            "/users/{id}/profile": {"get": {"security": [{"b": []}], "responses": ok()}},
            "/profile": {"get": {"security": [{}, {"b": []}], "responses": ok()}},
        }
    )
    assert "me" not in derive_map(parse(raw))
    raw["security"] = [{"b": []}]  # global requirement: /users/me now needs a token
    assert derive_map(parse(raw))["me"] == "/users/me"


def test_prefix_needs_a_majority() -> None:
    paths = {f"/r{i}": {"get": {"responses": ok()}} for i in range(3)}
    paths.update({f"/v1/r{i}": {"get": {"responses": ok()}} for i in range(2)})
    assert "prefix" not in derive_map(parse(doc3(paths)))
    paths["/v1/r9"] = {"get": {"responses": ok()}, "post": {"responses": ok()}}
    assert derive_map(parse(doc3(paths)))["prefix"] == "/v1"


def test_health_probes() -> None:
    get = {"get": {"responses": ok()}}
    raw = doc3(
        {
            "/orders/status": get,
            "/ping": get,
            "/healthz": get,
            "/readyz": get,
            "/livez": get,
            "/metrics": get,
        }
    )
    api_map = derive_map(parse(raw))
    assert api_map["health"] == {"live": "/livez", "ready": "/readyz"}
    assert api_map["metrics"] == "/metrics"
    only_ping = derive_map(parse(doc3({"/api/v1/ping": get, "/orders/status": get})))
    assert only_ping["health"] == {"live": "/api/v1/ping"}


def test_lists_are_ranked_and_capped() -> None:
    array = {"type": "array", "items": {"type": "string"}}
    paths: dict[str, Any] = {f"/plain{i}": {"get": {"responses": ok(array)}} for i in range(12)}
    paths["/paged"] = {
        "get": {
            "parameters": [
                {"name": "pageNumber", "in": "query", "schema": {"type": "integer"}},
                {"name": "pageSize", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": ok(
                {
                    "type": "object",
                    "properties": {
                        "content": array,
                        "totalElements": {"type": "integer"},
                        "sort": {"type": "array", "items": {"type": "string"}},
                    },
                }
            ),
        }
    }
    lists = derive_map(parse(doc3(paths)))["lists"]
    assert len(lists) == 10
    assert lists[0] == {
        "path": "/paged",
        "page_param": "pageNumber",
        "size_param": "pageSize",
        "offset_param": None,
        "items": "content",
        "total": "totalElements",
    }
    assert [entry["path"] for entry in lists[1:]] == [f"/plain{i}" for i in range(9)]


def test_login_by_password_property_skips_reset_and_signup_routes() -> None:
    creds = {
        "type": "object",
        "required": ["handle", "password"],
        "properties": {"handle": {"type": "string"}, "password": {"type": "string"}},
    }
    tokens = {
        "type": "object",
        "properties": {
            "tokens": {
                "type": "object",
                "properties": {
                    "access": {"type": "object", "properties": {"token": {"type": "string"}}},
                    "refresh": {"type": "object", "properties": {"token": {"type": "string"}}},
                },
            }
        },
    }
    raw = doc3(
        {
            "/auth/reset-password": {"post": {"requestBody": json_body(creds), "responses": ok()}},
            "/auth/signup": {"post": {"requestBody": json_body(creds), "responses": ok()}},
            "/auth/sessions": {"post": {"requestBody": json_body(creds), "responses": ok(tokens)}},
        }
    )
    api_map = derive_map(parse(raw))
    assert api_map["login"] == {
        "method": "POST",
        "path": "/auth/sessions",
        "body": "json",
        "username_field": "handle",  # the first required string that is not the password
        "password_field": "password",
        "access_token": "tokens.access.token",
        "refresh_token": "tokens.refresh.token",
    }
    assert api_map["register"] == {
        "method": "POST",
        "path": "/auth/signup",
        "username_field": "handle",
        "password_field": "password",
    }


# ----------------------------------------------------------------------- refused input


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json: [", "not valid JSON or YAML"),
        ('{"openapi": "3.0.0", "paths": {', "not valid JSON or YAML"),
        ("key: [unclosed\n  - x: : :", "not valid JSON or YAML"),
        ("just some words", "plain text, not a mapping"),
        ("- a\n- b\n", "a list, not a mapping"),
        ("", "empty, not a mapping"),
        ("<!DOCTYPE html><html><body>Swagger UI</body></html>", "HTML or XML page"),
        ('{"info": {"title": "x"}, "paths": {"/a": {}}}', "neither `openapi: 3.x` nor"),
        ('{"swagger": "1.2", "apis": []}', "Swagger 1.2 is not supported"),
        ('{"openapi": "2.0", "paths": {"/a": {}}}', "OpenAPI 2.0 is not supported"),
        ('{"openapi": "3.0.0", "info": {}}', "has no paths"),
        ('{"swagger": "2.0", "paths": {}}', "has no paths"),
    ],
)
def test_refused_documents_say_why_in_one_line(text: str, says: str) -> None:
    with pytest.raises(OpenApiError) as caught:
        parse_document(text, source="https://api.example.com/openapi.json")
    message = str(caught.value)
    assert one_line(message)
    assert message.startswith("https://api.example.com/openapi.json: ")
    assert says in message


def test_error_is_a_value_error_and_a_readyctl_error() -> None:
    assert issubclass(OpenApiError, ValueError)
    assert issubclass(OpenApiError, ReadyctlError)
    assert str(OpenApiError("a\nb\r\nc")) == "a b c"


def test_refuses_documents_over_20_mb() -> None:
    big = b" " * (20 * 2**20 + 1)
    started = time.monotonic()
    with pytest.raises(OpenApiError, match="larger than 20 MB"):
        parse_document(big, source="big.json")
    with pytest.raises(OpenApiError, match="larger than 20 MB"):
        parse_document("é" * (10 * 2**20 + 1), source="big.yaml")  # 2 bytes each in UTF-8
    assert time.monotonic() - started < HANG_GUARD_S


def test_refuses_non_utf8_bytes() -> None:
    with pytest.raises(OpenApiError, match=r"not UTF-8 \(byte 0xff"):
        parse_document(b'{"openapi": "3.0.0", "x": "\xff"}', source="latin1.json")


def test_yaml_alias_bomb_is_refused_fast() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    bomb = "openapi: 3.0.0\npaths: {}\n" + "\n".join(lines) + "\n"
    started = time.monotonic()
    with pytest.raises(OpenApiError, match="expands to more nodes than its size allows"):
        parse_document(bomb, source="lol.yaml")
    assert time.monotonic() - started < HANG_GUARD_S


def test_recursive_yaml_and_deep_nesting_are_refused() -> None:
    with pytest.raises(OpenApiError, match="nests too deeply"):
        parse_document("openapi: 3.0.0\npaths: &p {'/a': *p}\n", source="loop.yaml")
    with pytest.raises(OpenApiError):
        parse_document("[" * 100_000 + "]" * 100_000, source="deep.json")
    with pytest.raises(OpenApiError):
        parse_document("a: " + "[" * 100_000, source="deep.yaml")


# ------------------------------------------------------------ hostile references, bounded


def login_doc(token_schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A document whose only login answers with `token_schema`."""
    creds = {
        "type": "object",
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
    }
    paths = {
        "/auth/login": {"post": {"requestBody": json_body(creds), "responses": ok(token_schema)}}
    }
    return doc3(paths, components={"schemas": schemas})


LOGIN_WITHOUT_TOKENS = {
    "method": "POST",
    "path": "/auth/login",
    "body": "json",
    "username_field": "username",
    "password_field": "password",
}


def test_reference_cycles_terminate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "VALIDATION_SECONDS", 1.0)
    ref = "#/components/schemas/"
    schemas = {
        "Self": {"$ref": ref + "Self"},
        "A": {"$ref": ref + "B"},
        "B": {"$ref": ref + "A"},
        "C": {"allOf": [{"$ref": ref + "D"}], "properties": {"token": {"type": "string"}}},
        "D": {"allOf": [{"$ref": ref + "C"}], "properties": {"refresh_token": {"type": "string"}}},
        "Tree": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": ref + "Tree"}}},
        },
    }
    started = time.monotonic()
    for target, tokens in [
        ("Self", {}),
        ("A", {}),
        ("C", {"access_token": "token", "refresh_token": "refresh_token"}),
        ("Tree", {}),
    ]:
        doc = parse(login_doc({"$ref": ref + target}, schemas))
        assert derive_map(doc)["login"] == {**LOGIN_WITHOUT_TOKENS, **tokens}
        assert all(one_line(p) and len(p) <= 200 for p in doc.problems)
    assert time.monotonic() - started < HANG_GUARD_S


def test_ref_chains_are_followed_32_hops_deep_and_no_further() -> None:
    def chain(hops: int) -> dict[str, Any]:
        schemas = {f"T{i}": {"$ref": f"#/components/schemas/T{i + 1}"} for i in range(hops)}
        schemas[f"T{hops}"] = {"type": "object", "properties": {"jwt": {"type": "string"}}}
        return login_doc({"$ref": "#/components/schemas/T0"}, schemas)

    assert derive_map(parse(chain(31)))["login"] == {**LOGIN_WITHOUT_TOKENS, "access_token": "jwt"}
    started = time.monotonic()
    deep = parse(chain(1_000))
    assert derive_map(deep)["login"] == LOGIN_WITHOUT_TOKENS
    assert time.monotonic() - started < HANG_GUARD_S


def test_billion_laughs_of_references_stay_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "VALIDATION_SECONDS", 0.5)
    levels, fan = 30, 10
    ref = "#/components/schemas/"
    schemas: dict[str, Any] = {}
    for i in range(levels):
        schemas[f"All{i}"] = {"allOf": [{"$ref": f"{ref}All{i + 1}"}] * fan}
        schemas[f"Prop{i}"] = {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"{ref}Prop{i + 1}"} for j in range(fan)},
        }
    schemas[f"All{levels}"] = {"type": "object", "properties": {"access_token": {"type": "string"}}}
    schemas[f"Prop{levels}"] = {"type": "string"}
    token = {"allOf": [{"$ref": ref + "All0"}, {"properties": {"rows": {"$ref": ref + "Prop0"}}}]}
    raw = login_doc(token, schemas)
    raw["paths"]["/things"] = {"get": {"responses": ok({"$ref": ref + "Prop0"})}}
    started = time.monotonic()
    doc = parse(raw)
    api_map = derive_map(doc)
    assert time.monotonic() - started < HANG_GUARD_S
    assert api_map["login"] == {**LOGIN_WITHOUT_TOKENS, "access_token": "access_token"}
    assert "lists" not in api_map
    # the validator expands allOf exponentially: it is stopped, and says so
    assert any(p.startswith("not fully validated") for p in doc.problems)


def test_external_references_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    attempts: list[object] = []

    def record(*args: object, **kwargs: object) -> None:
        attempts.append(args)  # recorded, not raised: a swallowed exception would hide it
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", record)
    schemas = {
        # with a default, the validator resolves the reference to check the value
        "Token": {"$ref": "http://127.0.0.1:9/token.json", "default": "x"},
        "Other": {"$ref": "other.yaml#/Token", "default": 1},
        "Local": {"$ref": "file:///etc/passwd", "default": 1},
    }
    for name in schemas:
        doc = parse(login_doc({"$ref": f"#/components/schemas/{name}"}, schemas))
        assert derive_map(doc)["login"] == LOGIN_WITHOUT_TOKENS
        assert any("Unresolvable" in p for p in doc.problems)
    assert attempts == []


def test_validation_problems_are_reported_but_the_map_is_derived() -> None:
    raw = load("nest-3.0.json")
    del raw["info"]
    raw["paths"]["/api/users"]["get"]["operationId"] = "AuthController_login"
    raw["paths"]["/api/users/{id}"]["get"]["parameters"] = []
    raw["paths"]["/api/posts"]["get"]["responses"]["200"].pop("description")
    raw["paths"]["/api/health"]["get"]["responses"]["200"].pop("description")
    raw["components"]["schemas"]["UserDto"]["properties"]["createdAt"]["default"] = 12
    doc = parse(raw)
    assert len(doc.problems) == openapi.MAX_PROBLEMS
    assert doc.problems[0] == "'info' is a required property"
    assert any("$.paths['/api/posts'].get.responses['200']: " in p for p in doc.problems)
    assert any("'AuthController_login'" in p and "not unique" in p for p in doc.problems)
    assert all(one_line(p) and len(p) <= openapi.MAX_PROBLEM_CHARS for p in doc.problems)
    assert derive_map(doc) == NEST_MAP


def test_a_failing_validator_is_a_problem_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import openapi_spec_validator
    from jsonschema.exceptions import ValidationError

    def iter_errors(self: object) -> Iterator[ValidationError]:
        yield ValidationError("first finding")
        raise RuntimeError("boom\nwith a second line")

    validator = openapi_spec_validator.OpenAPIV30SpecValidator
    monkeypatch.setattr(validator, "iter_errors", iter_errors)
    doc = parse_document((DATA / "nest-3.0.json").read_text(), source="nest")
    assert doc.problems == (
        "first finding",
        "not fully validated: RuntimeError: boom with a second line",
    )
    assert derive_map(doc) == NEST_MAP


def test_validation_leaves_the_trace_function_alone() -> None:
    before = sys.gettrace()
    parse_document((DATA / "nest-3.0.json").read_text(), source="nest")
    assert sys.gettrace() is before


def test_derive_map_tolerates_junk_inside_a_document() -> None:
    raw = doc3(
        {
            "/a": {"get": "nonsense", "post": {"responses": []}, "parameters": [None, 3]},
            "x-extension": {"get": {}},
            "/b": {"$ref": "#/nowhere"},
            "/c": {"get": {"responses": {"200": {"$ref": 12}}, "security": "all"}},
        },
        components={"securitySchemes": {"x": None, "y": {"type": "oauth2", "flows": []}}},
        servers="localhost",
    )
    assert derive_map(parse(raw)) == {"security": {"header": "Authorization", "scheme": "Bearer"}}
    assert derive_map(Document(version="3.0.0", raw={"paths": 3})) == {}


# ----------------------------------------------------------------------------- the module


def test_candidate_paths() -> None:
    asked = (
        "/openapi.json",
        "/api/openapi.json",
        "/api/v1/openapi.json",
        "/api/v2/openapi.json",
        "/docs-json",
        "/api-docs-json",
        "/api/docs-json",
        "/swagger.json",
        "/api/swagger.json",
        "/v3/api-docs",
        "/v2/api-docs",
        "/api-docs",
        "/openapi.yaml",
        "/swagger/v1/swagger.json",
    )
    assert CANDIDATE_PATHS[: len(asked)] == asked
    assert "/api-json" in CANDIDATE_PATHS  # NestJS's default for SwaggerModule.setup("api")
    assert len(set(CANDIDATE_PATHS)) == len(CANDIDATE_PATHS)
    assert all(p.startswith("/") for p in CANDIDATE_PATHS)


def test_import_is_light() -> None:
    code = (
        "import sys, readyctl.openapi; "
        "heavy = [m for m in ('yaml', 'openapi_spec_validator', 'jsonschema', 'fastapi') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
