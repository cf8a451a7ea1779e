"""compliance.privacy and compliance.legal_pages on an API shaped unlike the demo (its own
field names, POST export, DELETE /users/self, pages behind a redirect), in good and broken
variants; the managed demo's shapes are in tests/checks/test_compliance_demo.py."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from readyctl import openapi
from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

POLICY = (
    "<!doctype html><html><head><title>Privacy notice</title></head><body><h1>Privacy</h1>"
    + "<p>We keep your username and the notes you write, for as long as you have an account. "
    "Export them at any time, or delete your account and they are erased within 30 days.</p>"
    * 2
    + "</body></html>"
)
TERMS = POLICY.replace("Privacy notice", "Terms").replace("<h1>Privacy</h1>", "<h1>Terms</h1>")


class Shop:
    """A small API: accounts in memory, tokens are random strings."""

    def __init__(self, *variant: str) -> None:
        self.variant = set(variant)
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.registered = 0
        self.refused = False
        self.files: dict[str, str] = {}
        self.passwords: list[str] = []

    def app(self) -> FastAPI:
        a = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

        def who(request: Request) -> str | None:
            name = self.tokens.get(request.headers.get("x-session", ""))
            return name if name in self.users else None

        @a.post("/signup")
        async def signup(request: Request) -> Response:
            body = await request.json()
            if "limited-once" in self.variant and not self.refused:
                self.refused = True
                return JSONResponse(
                    {"error": "slow down"}, status_code=429, headers={"Retry-After": "1"}
                )
            if "nickname" not in body:
                return JSONResponse({"error": "nickname required"}, status_code=422)
            self.registered += 1
            self.passwords.append(body["pass"])
            self.users[body["username"]] = {"pass": body["pass"], "notes": ["hello"]}
            if "signup-token" in self.variant:  # signed in at once; login waits for email
                token = secrets.token_hex(16)
                self.tokens[token] = body["username"]
                return JSONResponse({"created": True, "token": token}, status_code=201)
            return JSONResponse({"created": True}, status_code=201)

        @a.post("/session")
        async def session(request: Request) -> Response:
            body = await request.json()
            user = self.users.get(body.get("username"))
            if user is None or user["pass"] != body.get("pass"):
                return JSONResponse({"error": "bad credentials"}, status_code=401)
            if "signup-token" in self.variant:
                return JSONResponse({"error": "verify your email first"}, status_code=403)
            token = secrets.token_hex(16)
            self.tokens[token] = body["username"]
            return JSONResponse({"data": {"jwt": token}})

        @a.get("/users/self")
        def me(request: Request) -> Response:
            name = who(request)
            if name is None:
                return JSONResponse({"error": "no session"}, status_code=401)
            return JSONResponse({"username": name})

        @a.post("/gdpr/export")
        def export(request: Request) -> Response:
            name = who(request)
            if name is None:
                return JSONResponse({"error": "no session"}, status_code=401)
            if "export-500" in self.variant:
                return JSONResponse({"error": "boom"}, status_code=500)
            if "echo" in self.variant:  # a careless API echoing the session and the password
                token = request.headers.get("x-session", "")
                secret = self.users[name]["pass"]
                return JSONResponse({"error": f"debug {token} {secret}"}, status_code=500)
            if "export-empty" in self.variant:
                return JSONResponse({"profile": {}, "notes": []})
            if "export-zip" in self.variant:  # the usual "download your data" archive
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                    z.writestr("README.txt", "Your data")
                    z.writestr("profile.json", json.dumps({"username": name}))
                return Response(buf.getvalue(), media_type="application/zip")
            if "export-link" in self.variant:
                file = secrets.token_hex(8)
                self.files[file] = name
                return JSONResponse({"data": {"download_url": f"/gdpr/files/{file}"}})
            return JSONResponse({"profile": {"username": name}, "notes": self.users[name]["notes"]})

        @a.get("/gdpr/files/{file}")
        def download(request: Request, file: str) -> Response:
            name = who(request)
            if name is None or self.files.get(file) != name:
                return JSONResponse({"error": "no session"}, status_code=401)
            return JSONResponse({"profile": {"username": name}})

        @a.delete("/users/self")
        def delete(request: Request) -> Response:
            name = who(request)
            if name is None:
                return JSONResponse({"error": "no session"}, status_code=401)
            if "delete-login-only" in self.variant:  # the login goes, the data stays
                self.users[name]["pass"] = secrets.token_hex(8)
                return Response(status_code=204)
            if "delete-noop" not in self.variant:
                self.users.pop(name, None)
            return Response(status_code=204)

        @a.get("/privacy")
        def privacy() -> Response:
            return RedirectResponse("/legal/privacy.html", status_code=301)

        @a.get("/legal/privacy.html")
        def privacy_page() -> Response:
            if "policy-json" in self.variant:
                return JSONResponse({"policy": "see website"})
            if "policy-stub" in self.variant:
                return HTMLResponse("<html><title>TODO</title>coming soon</html>")
            return HTMLResponse(POLICY)

        @a.get("/legal/terms")
        def terms() -> Response:
            if "terms-404" in self.variant:
                return JSONResponse({"error": "not found"}, status_code=404)
            return HTMLResponse(TERMS)

        return a


API = {
    "login": {
        "path": "/session",
        "username_field": "username",
        "password_field": "pass",
        "access_token": "data.jwt",
        "refresh_token": "none",
    },
    "header": "X-Session",
    "scheme": "",
    "me": "/users/self",
    "register": {"path": "/signup", "username_field": "username", "password_field": "pass"},
    "privacy_export": {"method": "POST", "path": "/gdpr/export"},
    "account_delete": "/users/self",
    "terms": "/legal/terms",
}
SETTINGS = {"compliance.privacy": {"register_body": {"nickname": "readyctl"}}}


def _run(
    url: str, only: str, api: dict[str, Any] | None = None, checks: dict[str, Any] | None = None
) -> Any:
    env = Environment(base_url=url, api=ApiConfig.model_validate(API if api is None else api))
    ctx = make_context(
        config=Config(checks=SETTINGS if checks is None else checks), environment=env
    )
    return run_checks(ctx, only=[only], deadline_s=120)


@pytest.mark.parametrize("variant", ["json", "export-zip", "export-link"])
def test_healthy_api_exports_then_deletes_the_throwaway_account(variant: str) -> None:
    shop = Shop(variant)
    with serve(shop.app()) as s:
        out = _run(s.url, "compliance.privacy")
    assert statuses(out, "compliance.privacy") == {
        "data export": "pass",
        "account deletion": "pass",
    }, results_of(out, "compliance.privacy")
    r = results_of(out, "compliance.privacy")["account deletion"]
    assert r.evidence["login_after"] == 401
    assert r.evidence["after_deletion"] == {"POST /gdpr/export": 401, "GET /users/self": 401}
    assert shop.registered == 1 and shop.users == {}  # registered once, gone afterwards
    assert r.evidence["account"].startswith("readyctl-privacy-")
    found = results_of(out, "compliance.privacy")["data export"].evidence["found_in"]
    want = {"json": "the answer", "export-zip": "profile.json of the archive"}.get(variant)
    assert found == want if want else found.startswith("the file at /gdpr/files/"), found


@pytest.mark.parametrize(
    ("variant", "subject", "words"),
    [
        ("export-empty", "data export", "does not contain the account's own data"),
        ("export-500", "data export", "answered 500"),
        ("delete-noop", "account deletion", "still logs in"),
        ("delete-login-only", "account deletion", "old session still exports"),
    ],
)
def test_broken_rights_fail_naming_what_is_wrong(variant: str, subject: str, words: str) -> None:
    shop = Shop(variant)
    with serve(shop.app()) as s:
        out = _run(s.url, "compliance.privacy")
    got = results_of(out, "compliance.privacy")
    want = "warn" if variant == "delete-login-only" else "fail"
    assert got[subject].status.value == want and words in got[subject].summary, got[subject]
    other = ({"data export", "account deletion"} - {subject}).pop()
    assert got[other].status.value == "pass", got[other]


@pytest.mark.parametrize("noop", [False, True], ids=["deletes", "delete-noop"])
def test_a_session_from_the_sign_up_answer_is_judged_by_what_it_still_reads(noop: bool) -> None:
    """Login waits for email verification, but the sign-up answer carries a token: the
    check works with it, and since the login was refused before the deletion too, only the
    old session's answers tell whether the account is gone."""
    shop = Shop("signup-token", *(["delete-noop"] if noop else []))
    with serve(shop.app()) as s:
        out = _run(s.url, "compliance.privacy")
    got = results_of(out, "compliance.privacy")
    assert got["data export"].status.value == "pass", got["data export"]
    deletion = got["account deletion"]
    if noop:
        assert deletion.status.value == "fail" and "old session still reads" in deletion.summary
    else:
        assert deletion.status.value == "pass", deletion
        assert "old session no longer reads" in deletion.summary
        assert shop.users == {}


def test_a_rate_limited_sign_up_is_waited_out_once() -> None:
    shop = Shop("limited-once")
    with serve(shop.app()) as s:
        out = _run(s.url, "compliance.privacy")
    assert shop.refused and shop.registered == 1
    assert set(statuses(out, "compliance.privacy").values()) == {"pass"}


def test_a_missing_register_field_is_an_error_naming_the_setting() -> None:
    with serve(Shop().app()) as s:
        out = _run(s.url, "compliance.privacy", checks={})
    got = results_of(out, "compliance.privacy")
    assert {r.status.value for r in got.values()} == {"error"}
    assert "checks.compliance.privacy.register_body" in got["data export"].reason


def test_unknown_routes_skip_naming_the_keys_and_register_nobody() -> None:
    shop = Shop()
    api = {k: v for k, v in API.items() if k not in ("privacy_export", "account_delete")}
    with serve(shop.app()) as s:
        out = _run(s.url, "compliance.privacy", api=api)
    got = results_of(out, "compliance.privacy")
    assert {r.status.value for r in got.values()} == {"skip"}
    assert "api.privacy_export" in got["data export"].reason
    assert "api.account_delete" in got["account deletion"].reason
    assert shop.registered == 0


def test_legal_pages_found_through_the_map_and_the_usual_places() -> None:
    with serve(Shop().app()) as s:
        out = _run(s.url, "compliance.legal_pages")
    got = results_of(out, "compliance.legal_pages")
    assert statuses(out, "compliance.legal_pages") == {
        "privacy policy": "pass",
        "terms of service": "pass",
    }, got
    policy = got["privacy policy"]
    assert policy.evidence["url"].endswith("/legal/privacy.html")  # after the redirect
    assert policy.evidence["how"] == "found at a usual place"
    assert policy.evidence["title"] == "Privacy notice"
    assert "api.terms" in got["terms of service"].evidence["how"]


@pytest.mark.parametrize(
    ("variant", "subject", "words"),
    [
        ("policy-json", "privacy policy", "not text/html"),
        ("policy-stub", "privacy policy", "a placeholder"),
        ("terms-404", "terms of service", "answered 404"),
    ],
)
def test_broken_pages_fail(variant: str, subject: str, words: str) -> None:
    with serve(Shop(variant).app()) as s:
        out = _run(s.url, "compliance.legal_pages")
    got = results_of(out, "compliance.legal_pages")
    if variant.startswith("policy"):  # found nowhere usable: an API with accounts fails
        assert got[subject].status.value == "fail", got[subject]
        assert "no privacy policy found" in got[subject].summary
    else:
        assert got[subject].status.value == "fail" and words in got[subject].summary, got[subject]


def test_a_configured_broken_page_names_its_problem() -> None:
    with serve(Shop("policy-stub").app()) as s:
        out = _run(s.url, "compliance.legal_pages", api={**API, "privacy_policy": "/privacy"})
    r = results_of(out, "compliance.legal_pages")["privacy policy"]
    assert r.status.value == "fail" and "a placeholder" in r.summary, r


def test_no_accounts_and_no_pages_is_a_skip_naming_the_key() -> None:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    with serve(app) as s:
        out = _run(s.url, "compliance.legal_pages", api={})
    got = results_of(out, "compliance.legal_pages")
    assert {r.status.value for r in got.values()} == {"skip"}
    assert "api.privacy_policy" in got["privacy policy"].reason


def test_openapi_documents_give_the_privacy_routes() -> None:
    doc = openapi.parse_document(
        """
openapi: 3.0.3
info: {title: t, version: '1', termsOfService: 'https://example.com/terms'}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
security: [{bearer: []}]
paths:
  /api/users/me: {get: {responses: {'200': {description: ok}}},
                  delete: {responses: {'204': {description: gone}}}}
  /api/users/{id}: {delete: {parameters: [{name: id, in: path, required: true}],
                    responses: {'204': {description: gone}}}}
  /api/users/me/data-export: {get: {responses: {'200': {description: ok}}}}
  /api/auth/email/verify: {post: {security: [], responses: {'200': {description: ok}}}}
  /api/auth/email/verify/resend: {post: {security: [], responses: {'200': {description: ok}}}}
""",
        source="test",
    )
    got = openapi.derive_map(doc)
    assert got["privacy_export"] == {"method": "GET", "path": "/api/users/me/data-export"}
    assert got["account_delete"] == {"method": "DELETE", "path": "/api/users/me"}
    assert got["verify_email"] == {"method": "POST", "path": "/api/auth/email/verify"}
    assert got["terms"] == "https://example.com/terms"
    api = ApiConfig.model_validate({k: v for k, v in got.items() if k != "security"})
    assert api.account_delete is not None and api.account_delete.method == "DELETE"


def test_map_paths_default_to_get_export_and_delete_account() -> None:
    api = ApiConfig.model_validate(
        {
            "privacy_export": "/me/export",
            "account_delete": "/me",
            "privacy_policy": "https://x.io/p",
        }
    )
    assert (api.privacy_export.method, api.account_delete.method) == ("GET", "DELETE")  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="http"):
        ApiConfig.model_validate({"terms": "ftp://x"})


def test_the_throwaway_password_and_session_reach_no_output(readyctl, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An API that echoes the throwaway account's session and password into its error body:
    no report format, the terminal or the log shows either."""
    import yaml

    shop = Shop("echo")
    with serve(shop.app()) as s:
        (tmp_path / "readyctl.yaml").write_text(
            yaml.safe_dump(
                {
                    "version": 2,
                    "default_environment": "shop",
                    "environments": {"shop": {"base_url": s.url, "api": API}},
                    "checks": SETTINGS,
                }
            )
        )
        run = readyctl(
            "check", "--only", "compliance.privacy", "--no-history", "--out", "out",
            "--format", "terminal,json,junit,markdown,html,sarif",
            env={"READYCTL_LOG": str(tmp_path / "readyctl.log")},
        )  # fmt: skip
    assert run.code == 3, run.both  # --only leaves the required items unverified
    assert shop.registered == 1 and shop.tokens
    secrets_seen = [*shop.tokens, *shop.passwords]
    assert len(secrets_seen) >= 2
    outputs = [run.out, run.err] + [
        f.read_text(errors="replace")
        for f in tmp_path.rglob("*")
        if f.is_file() and f.name != "readyctl.yaml"
    ]
    assert any("debug" in o for o in outputs)  # the echoing answer did reach the evidence
    for value in secrets_seen:
        assert not any(value in o for o in outputs), "a throwaway secret reached an output"
