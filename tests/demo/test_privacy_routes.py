"""GDPR routes of the demo (data export, account deletion) and its legal pages, on both shapes.

Every account deleted here is a fresh one (registered, verified through the mail stand-in):
the seeded users stay for the other tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from readyctl.apimap import ApiConfig
from readyctl.demo import profile
from readyctl.demo.app import create_app
from readyctl.demo.db import strip_pool_params
from readyctl.demo.faults import FAULTS, SHAPE_NOT_APPLICABLE
from readyctl.demo.managed import ManagedDemo
from readyctl.demo.settings import Settings

from .helpers import api, token_from_mail, unique_email, wait_for_mail

PASSWORD = "correct horse battery staple"
STRONG = "kX9f2LQm8vR4tZp7WbN3cY6hJd1sGa5eUq0oIr"
PRIVACY_FAULTS = ("privacy-export-broken", "privacy-delete-noop", "no-privacy-policy")
Factory = Callable[..., ManagedDemo]


@dataclass(frozen=True)
class Routes:
    """A shape's routes as a client sees them."""

    prefix: str
    register: str
    export: str
    delete: str
    privacy: str
    terms: str
    alt: bool

    def login(self, c: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
        """Log in (JSON on the default shape, the OAuth2 password form on alt)."""
        if self.alt:
            return c.post(
                f"{self.prefix}/auth/token", data={"username": email, "password": password}
            )
        return c.post(f"{self.prefix}/auth/login", json={"email": email, "password": password})

    def tokens(self, c: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in and return {"access", "refresh"}."""
        r = self.login(c, email, password)
        assert r.status_code == 200, r.text
        body = r.json()
        if self.alt:
            return {"access": body["accessToken"], "refresh": body["refreshToken"]}
        return {"access": body["access_token"], "refresh": body["refresh_token"]}

    def refresh(self, c: httpx.Client, refresh_token: str) -> httpx.Response:
        """Rotate a refresh token."""
        if self.alt:
            return c.post(f"{self.prefix}/auth/refresh", headers=_bearer(refresh_token))
        return c.post(f"{self.prefix}/auth/refresh", json={"refresh_token": refresh_token})


ROUTES = {
    "default": Routes(
        "/v1",
        "/v1/auth/register",
        "/v1/account/export",
        "/v1/account",
        "/legal/privacy-policy",
        "/legal/terms-of-service",
        alt=False,
    ),
    "alt": Routes(
        "/api/v2",
        "/api/v2/users",
        "/api/v2/users/me/export",
        "/api/v2/users/me",
        "/privacy",
        "/terms",
        alt=True,
    ),
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register_verified(d: ManagedDemo, c: httpx.Client, routes: Routes) -> str:
    """Register a fresh account, verify it with the mailed token; return its email."""
    email = unique_email("gdpr")
    r = c.post(routes.register, json={"email": email, "password": PASSWORD})
    assert r.status_code == 202, r.text
    msgs = [m for m in wait_for_mail(d, email) if m["Subject"] == "Verify your email address"]
    assert msgs, "no verification mail"
    token = token_from_mail(d, msgs[0]["MessageID"])
    r = c.post(f"{routes.prefix}/auth/verify-email", json={"token": token})
    assert r.status_code == 200, r.text
    return email


def _sql(d: ManagedDemo, query: str, params: tuple[Any, ...]) -> Any:
    """One value from the demo's database."""
    conninfo, _ = strip_pool_params(d.database_url)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _demo(
    shape: str, faults: tuple[str, ...], demo: ManagedDemo, make_demo: Factory
) -> ManagedDemo:
    """The shared healthy demo for the default shape, else a fresh one."""
    if shape == "default" and not faults:
        return demo
    return make_demo(*faults, shape=shape)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [None, *PRIVACY_FAULTS])
@pytest.mark.parametrize("shape", ["default", "alt"])
def test_export_delete_and_legal_pages(
    shape: str, fault: str | None, demo: ManagedDemo, make_demo: Factory
) -> None:
    """The whole flow on each shape; each fault changes its own behaviour and nothing else."""
    d = _demo(shape, (fault,) if fault else (), demo, make_demo)
    routes = ROUTES[shape]
    with api(d) as c:
        # legal pages: public HTML, outside the API prefix
        privacy, terms = c.get(routes.privacy), c.get(routes.terms)
        assert terms.status_code == 200
        if fault == "no-privacy-policy":
            assert privacy.status_code == 404
            assert privacy.headers["content-type"].startswith("application/json")
            assert privacy.json()["error"]["code"] == "not_found"
        else:
            assert privacy.status_code == 200
        for page in [terms] + ([privacy] if privacy.status_code == 200 else []):
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.text.startswith("<!doctype html>")
            assert "<title>" in page.text and "<h1>" in page.text and "Last updated" in page.text
        if privacy.status_code == 200:
            for needle in (routes.export, routes.delete, "privacy@example.com"):
                assert needle in privacy.text, needle

        # export: the caller's own data, as a download; no token, no export
        email = _register_verified(d, c, routes)
        tokens = routes.tokens(c, email)
        h = _bearer(tokens["access"])
        session = c.post(
            f"{routes.prefix}/counsel/sessions", json={"title": "GDPR test"}, headers=h
        )
        assert session.status_code == 201, session.text
        sid = session.json()["id"]
        said = "I would like to talk about my week."
        r = c.post(
            f"{routes.prefix}/counsel/sessions/{sid}/messages", json={"content": said}, headers=h
        )
        assert r.status_code == 201, r.text
        anonymous = c.get(routes.export)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        r = c.get(routes.export, headers=h)
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == 'attachment; filename="export.json"'
        doc = r.json()
        assert set(doc) == {"exported_at", "user", "organization", "sessions"}
        assert doc["exported_at"]
        if fault == "privacy-export-broken":
            assert doc["user"] is None and doc["organization"] is None and doc["sessions"] == []
            assert email not in r.text
        else:
            user = doc["user"]
            assert user["email"] == email and user["role"] == "member"
            assert set(user) == {
                "id",
                "email",
                "display_name",
                "role",
                "created_at",
                "email_verified_at",
            }
            assert user["email_verified_at"] is not None
            assert set(doc["organization"]) == {"id", "name"}
            assert [s["id"] for s in doc["sessions"]] == [sid]  # the caller's sessions only
            exported = doc["sessions"][0]
            assert exported["title"] == "GDPR test" and exported["created_at"]
            messages = exported["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"]
            assert messages[0]["content"] == said
            assert all(set(m) == {"role", "content", "created_at"} for m in messages)

        # deletion: 204, then the account is gone (login 401 as for an unknown account)
        user_id = _sql(d, "SELECT id::text FROM users WHERE email = %s", (email,))
        assert c.delete(routes.delete).status_code == 401
        r = c.delete(routes.delete, headers=h)
        assert r.status_code == 204 and r.content == b""
        again = routes.login(c, email)
        refresh_tokens = _sql(
            d, "SELECT count(*) FROM refresh_tokens WHERE user_id = %s", (user_id,)
        )
        if fault == "privacy-delete-noop":
            assert again.status_code == 200, again.text
            assert refresh_tokens > 0
            assert c.get(routes.export, headers=h).status_code == 200
        else:
            unknown = routes.login(c, unique_email("nobody"))
            assert again.status_code == unknown.status_code == 401
            assert again.json()["error"]["code"] == unknown.json()["error"]["code"]
            assert again.json()["error"]["code"] == "invalid_credentials"
            assert refresh_tokens == 0
            assert _sql(d, "SELECT count(*) FROM counseling_sessions WHERE id = %s", (sid,)) == 0
            assert routes.refresh(c, tokens["refresh"]).status_code == 401
            assert c.get(routes.export, headers=h).status_code == 401


@pytest.mark.slow
def test_export_of_a_seeded_user_lists_all_their_sessions(demo: ManagedDemo) -> None:
    user = demo.user("member", index=9)
    routes = ROUTES["default"]
    with api(demo) as c:
        h = _bearer(routes.tokens(c, user["email"], user["password"])["access"])
        doc = c.get(routes.export, headers=h).json()
    assert doc["user"]["email"] == user["email"]
    assert doc["organization"]["name"] == "Acme Counseling"
    count = _sql(
        demo,
        "SELECT count(*) FROM counseling_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE u.email = %s",
        (user["email"],),
    )
    assert len(doc["sessions"]) == count > 0


def _doc(shape: str) -> dict[str, Any]:
    """The OpenAPI document of a shape, built in-process."""
    return create_app(Settings(database_url="", jwt_secret=STRONG, shape=shape)).openapi()


def test_alt_document_lists_export_and_delete_as_secured_operations() -> None:
    paths = _doc("alt")["paths"]
    export = paths["/api/v2/users/me/export"]["get"]
    delete = paths["/api/v2/users/me"]["delete"]
    assert export["summary"] == "Export my data" and delete["summary"] == "Delete my account"
    for op in (export, delete):
        assert op["security"] == [{"OAuth2PasswordBearer": []}]
    assert "204" in delete["responses"]
    assert "$ref" in export["responses"]["200"]["content"]["application/json"]["schema"]
    assert not {"/privacy", "/terms", "/legal/privacy-policy"} & set(paths)


def test_default_document_and_map_name_the_privacy_routes() -> None:
    paths = _doc("default")["paths"]
    assert "get" in paths["/v1/account/export"] and "delete" in paths["/v1/account"]
    assert not any(p.startswith(("/legal", "/privacy", "/terms")) for p in paths)
    m = profile.COUNSELING_MAP
    for key in ("privacy_export", "account_delete", "verify_email"):
        assert m[key]["method"].lower() in paths[m[key]["path"]], key
    assert (m["privacy_policy"], m["terms"]) == ("/legal/privacy-policy", "/legal/terms-of-service")
    api_config = ApiConfig.model_validate(m)
    assert api_config.privacy_export is not None


def test_privacy_faults_are_registered_for_every_shape() -> None:
    assert FAULTS["privacy-export-broken"].checks == ["compliance.privacy"]
    assert FAULTS["privacy-delete-noop"].checks == ["compliance.privacy"]
    assert FAULTS["no-privacy-policy"].checks == ["compliance.legal_pages"]
    for names in SHAPE_NOT_APPLICABLE.values():
        assert not set(PRIVACY_FAULTS) & set(names)
