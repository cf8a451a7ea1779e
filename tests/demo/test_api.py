"""Happy paths of the healthy demo, over HTTPS against the shared managed instance."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest

from readyctl.demo.managed import ManagedDemo
from readyctl.demo.settings import parse_env_file

from .helpers import (
    api,
    bearer,
    event,
    login,
    mail,
    stripe_signature,
    tls,
    token_from_mail,
    unique_email,
    wait_for_mail,
)

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"


def test_health_endpoints(demo: ManagedDemo) -> None:
    with api(demo) as c:
        for path in ("/health", "/health/live", "/health/ready"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("application/json")
        assert c.get("/health/ready").json()["checks"]["database"] == "ok"


def test_register_verify_login_refresh_rotation_and_reuse(demo: ManagedDemo) -> None:
    email = unique_email("reg")
    with api(demo) as c:
        r = c.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 202, r.text
        assert r.headers["RateLimit-Limit"] == "5"
        assert int(r.headers["RateLimit-Remaining"]) < 5
        assert int(r.headers["RateLimit-Reset"]) > 0
        # Unverified accounts cannot log in yet.
        r = c.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "email_not_verified"
        msgs = wait_for_mail(demo, email)
        assert len(msgs) == 1 and msgs[0]["Subject"] == "Verify your email address"
        assert msgs[0]["To"][0]["Email"] == email
        token = token_from_mail(demo, msgs[0]["MessageID"])
        r = c.post("/v1/auth/verify-email", json={"token": token})
        assert r.status_code == 200 and r.json() == {"verified": True}
        assert c.post("/v1/auth/verify-email", json={"token": token}).status_code == 400
        tokens = login(c, {"email": email, "password": PASSWORD})
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
        me = c.get("/v1/auth/me", headers=bearer(tokens))
        assert me.status_code == 200 and me.json()["email"] == email
        # Rotation: the new refresh token differs, the old one is now spent.
        r = c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert c.get("/v1/auth/me", headers=bearer(rotated)).status_code == 200
        # Reuse of the spent token is rejected and revokes the whole family.
        r = c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "refresh_token_reused"
        r = c.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
        assert r.status_code == 401
        assert c.get("/v1/auth/me", headers=bearer(rotated)).status_code == 401


def test_register_existing_email_looks_the_same(demo: ManagedDemo) -> None:
    member = demo.user()
    with api(demo) as c:
        r = c.post("/v1/auth/register", json={"email": member["email"], "password": PASSWORD})
    assert r.status_code == 202
    assert r.json()["status"] == "verification_pending"


def test_login_failure_identical_for_unknown_account_and_wrong_password(
    demo: ManagedDemo,
) -> None:
    member = demo.user()
    with api(demo) as c:
        unknown = c.post("/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
        wrong = c.post("/v1/auth/login", json={"email": member["email"], "password": PASSWORD})
    assert unknown.status_code == wrong.status_code == 401
    a, b = unknown.json()["error"], wrong.json()["error"]
    assert (a["code"], a["message"]) == (b["code"], b["message"])


def test_logout_revokes_the_session(demo: ManagedDemo) -> None:
    with api(demo) as c:
        tokens = login(c, demo.user("member", index=5))
        assert c.post("/v1/auth/logout", headers=bearer(tokens)).status_code == 204
        assert c.get("/v1/auth/me", headers=bearer(tokens)).status_code == 401
        r = c.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401


def test_password_reset_flow(demo: ManagedDemo) -> None:
    user = dict(demo.user("member", index=7))
    with api(demo) as c:
        r = c.post("/v1/auth/password-reset/request", json={"email": user["email"]})
        assert r.status_code == 202
        assert "RateLimit-Remaining" in r.headers
        unknown = c.post("/v1/auth/password-reset/request", json={"email": unique_email()})
        assert unknown.status_code == 202 and unknown.json() == r.json()
        msgs = [m for m in wait_for_mail(demo, user["email"]) if "Reset" in m["Subject"]]
        token = token_from_mail(demo, msgs[0]["MessageID"])
        new_password = "a brand new password 42"
        r = c.post(
            "/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
        )
        assert r.status_code == 200, r.text
        old = c.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        assert old.status_code == 401
        login(c, {"email": user["email"], "password": new_password})


def test_counsel_session_and_reply(demo: ManagedDemo) -> None:
    with api(demo) as c:
        h = bearer(login(c, demo.user("member", index=2)))
        r = c.post("/v1/counsel/sessions", json={"title": "Sleep"}, headers=h)
        assert r.status_code == 201, r.text
        session = r.json()
        assert session["status"] == "active"
        r = c.post(
            f"/v1/counsel/sessions/{session['id']}/messages",
            json={"content": "I have trouble sleeping before exams."},
            headers=h,
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["crisis"] is False and body["resources"] == []
        assert body["reply"]["role"] == "assistant" and body["reply"]["content"]
        assert r.headers["RateLimit-Limit"] == "100"
        r = c.get(f"/v1/counsel/sessions/{session['id']}", headers=h)
        assert r.status_code == 200
        assert [m["role"] for m in r.json()["messages"]] == ["user", "assistant"]
        r = c.get("/v1/counsel/sessions/not-a-uuid", headers=h)
        assert r.status_code == 422


def test_crisis_and_grief_detection(demo: ManagedDemo) -> None:
    with api(demo) as c:
        h = bearer(login(c, demo.user("member", index=3)))
        sid = c.post("/v1/counsel/sessions", json={}, headers=h).json()["id"]
        r = c.post(
            f"/v1/counsel/sessions/{sid}/messages",
            json={"content": "I want to end my life, I can't do this anymore"},
            headers=h,
        )
        body = r.json()
        assert r.status_code == 201 and body["crisis"] is True
        assert any("988" in res["contact"] for res in body["resources"])
        assert body["reply"]["resources"] == body["resources"]
        assert "988" in body["reply"]["content"]
        r = c.post(
            f"/v1/counsel/sessions/{sid}/messages",
            json={"content": "My father passed away last month."},
            headers=h,
        )
        assert r.json()["grief"] is True and r.json()["crisis"] is False


def test_pagination_is_capped(demo: ManagedDemo) -> None:
    with api(demo) as c:
        h = bearer(login(c, demo.user("member", index=0)))
        r = c.get("/v1/counsel/sessions", params={"limit": 1000}, headers=h)
        assert r.status_code == 200
        body = r.json()
        assert body["total"] >= 150
        assert body["limit"] == 100 and len(body["items"]) == 100
        assert body["next_offset"] == 100
        r = c.get("/v1/counsel/sessions", params={"limit": 5, "status": "active"}, headers=h)
        assert len(r.json()["items"]) == 5
        assert {s["status"] for s in r.json()["items"]} == {"active"}


def test_gzip_on_large_responses_only(demo: ManagedDemo) -> None:
    with api(demo) as c:
        h = bearer(login(c, demo.user("member", index=0)))
        big = c.get(
            "/v1/counsel/sessions",
            params={"limit": 50},
            headers={**h, "Accept-Encoding": "gzip"},
        )
        assert big.headers.get("content-encoding") == "gzip"
        assert len(big.json()["items"]) == 50
        small = c.get("/health", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
    raw = httpx.get(
        demo.base_url + "/v1/counsel/sessions?limit=50",
        headers={**h, "Accept-Encoding": "gzip"},
        verify=tls(demo),
    )
    assert raw.headers["content-encoding"] == "gzip"


def test_cross_org_read_is_not_found(demo: ManagedDemo) -> None:
    with api(demo) as c:
        other = bearer(login(c, demo.user("member", "northwind")))
        sid = c.post("/v1/counsel/sessions", json={"title": "private"}, headers=other).json()["id"]
        assert c.get(f"/v1/counsel/sessions/{sid}", headers=other).status_code == 200
        acme = bearer(login(c, demo.user("member", index=1)))
        r = c.get(f"/v1/counsel/sessions/{sid}", headers=acme)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        acme_admin = bearer(login(c, demo.user("admin")))
        assert c.get(f"/v1/counsel/sessions/{sid}", headers=acme_admin).status_code == 404


def test_admin_endpoint_is_admin_only(demo: ManagedDemo) -> None:
    with api(demo) as c:
        member = bearer(login(c, demo.user("member", index=4)))
        r = c.get("/v1/admin/users", headers=member)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        admin = bearer(login(c, demo.user("admin")))
        r = c.get("/v1/admin/users", headers=admin)
        assert r.status_code == 200
        assert r.json()["total"] >= 121
        assert all(u["email"].endswith("@acme.example") for u in r.json()["items"])
        assert c.get("/v1/admin/users").status_code == 401


def test_webhook_signed_accepted_forged_stale_and_replayed_rejected(demo: ManagedDemo) -> None:
    url = "/v1/billing/webhook"
    with api(demo) as c:
        payload = event()
        sig = stripe_signature(demo.webhook_secret, payload)
        ok = c.post(url, content=payload, headers={"Stripe-Signature": sig})
        assert ok.status_code == 200 and ok.json()["received"] is True
        replay = c.post(url, content=payload, headers={"Stripe-Signature": sig})
        assert replay.status_code == 409
        forged = event()
        bad = stripe_signature("whsec_wrong", forged)
        r = c.post(url, content=forged, headers={"Stripe-Signature": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_signature"
        assert c.post(url, content=forged).status_code == 400
        stale = stripe_signature(demo.webhook_secret, forged, ts=int(time.time()) - 600)
        assert c.post(url, content=forged, headers={"Stripe-Signature": stale}).status_code == 400


def test_docs_require_auth_and_default_docs_are_off(demo: ManagedDemo) -> None:
    with api(demo) as c:
        for path in ("/api/docs", "/api/docs-json"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        h = bearer(login(c, demo.user("member", index=6)))
        page = c.get("/api/docs", headers=h)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "unsafe-inline" not in csp
        spec = c.get("/api/docs-json", headers=h)
        assert spec.status_code == 200 and "/v1/auth/login" in spec.json()["paths"]
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 404, path


def test_http_port_redirects_to_https_same_path(demo: ManagedDemo) -> None:
    r = httpx.get(demo.http_url + "/v1/counsel/sessions?limit=3", follow_redirects=False)
    assert r.status_code in (301, 308)
    assert r.headers["location"] == demo.base_url + "/v1/counsel/sessions?limit=3"
    r = httpx.post(demo.http_url + "/v1/auth/login", json={}, follow_redirects=False)
    assert r.status_code == 308


def test_security_headers(demo: ManagedDemo) -> None:
    with api(demo) as c:
        r = c.get("/health")
        h = r.headers
        assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        assert h["server"] == "counsel-api" and "/" not in h["server"]
        assert "x-powered-by" not in h
        authed = c.get("/v1/auth/me", headers=bearer(login(c, demo.user("member", index=8))))
        assert authed.headers["cache-control"] == "no-store"


def test_cors_allow_list(demo: ManagedDemo) -> None:
    with api(demo) as c:
        allowed = "https://app.counsel.example"
        r = c.get("/health", headers={"Origin": allowed})
        assert r.headers["access-control-allow-origin"] == allowed
        r = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = c.options(
            "/v1/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in pre.headers


def test_errors_have_one_json_shape(demo: ManagedDemo) -> None:
    with api(demo) as c:
        cases = [
            (c.get("/nope"), 404),
            (c.get("/v2/counsel/sessions"), 404),
            (c.get("/counsel/sessions"), 404),
            (c.delete("/health"), 405),
            (c.post("/v1/auth/login", json={"email": 1}), 422),
            (
                c.post(
                    "/v1/auth/login",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                422,
            ),
            (c.post("/v1/auth/register", json={"email": "x@y.example", "password": "short"}), 422),
        ]
        for r, status in cases:
            assert r.status_code == status, (r.request.url, r.text)
            body = r.json()
            assert set(body) == {"error"}, body
            assert {"code", "message"} <= set(body["error"]), body
            text = r.text
            assert "Traceback" not in text and ".py" not in text
        # Validation errors never echo the submitted values (passwords).
        r = c.post("/v1/auth/register", json={"email": "x@y.example", "password": "hunter2"})
        assert "hunter2" not in r.text


def test_metrics_exposition(demo: ManagedDemo) -> None:
    with api(demo) as c:
        c.get("/health")
        c.get("/nope")
        text = c.get("/metrics").text
    assert "# TYPE http_requests_total counter" in text
    assert 'http_requests_total{route="/health",method="GET",status="200"}' in text
    assert "# TYPE http_request_duration_seconds histogram" in text
    assert 'http_request_duration_seconds_bucket{route="/health",method="GET",le="+Inf"}' in text
    assert "# TYPE http_request_errors_total counter" in text
    assert 'route="<unmatched>"' in text


def test_structured_logs_without_secrets(demo: ManagedDemo) -> None:
    with api(demo) as c:
        login(c, demo.user("member", index=9))
    log = demo.server_log()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    assert any(r.get("event") == "http.request" for r in records)
    env = parse_env_file(demo.env_file)
    for key in ("JWT_SECRET", "OPENAI_API_KEY", "POSTMARK_API_TOKEN", "STRIPE_WEBHOOK_SECRET"):
        assert env[key] not in log, key
    assert demo.user("member", index=9)["password"] not in log
    db_password = demo.database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert db_password not in log


def test_mail_stand_in_requires_its_token(demo: ManagedDemo) -> None:
    r = httpx.get(demo.mail_url + "/messages/outbound", params={"count": 1})
    assert r.status_code == 401
    r = httpx.get(
        demo.mail_url + "/messages/outbound",
        params={"count": 1},
        headers={"X-Postmark-Server-Token": "wrong"},
    )
    assert r.status_code == 401
    with mail(demo) as m:
        r = m.post(
            "/email",
            json={"From": "a@x.example", "To": "b@y.example", "Subject": "S", "TextBody": "hi"},
        )
        assert r.status_code == 200 and r.json()["ErrorCode"] == 0
        found = m.get("/messages/outbound", params={"recipient": "b@y.example", "count": 10})
        assert found.json()["TotalCount"] >= 1
        mid = found.json()["Messages"][0]["MessageID"]
        assert m.get(f"/messages/outbound/{mid}/details").json()["TextBody"] == "hi"
        assert m.get("/messages/outbound/nope/details").status_code == 404


def test_gzip_body_is_valid(demo: ManagedDemo) -> None:
    with api(demo) as c:
        h = bearer(login(c, demo.user("member", index=0)))
    with httpx.Client(base_url=demo.base_url, verify=tls(demo)) as raw:
        req = raw.build_request(
            "GET", "/v1/counsel/sessions?limit=30", headers={**h, "Accept-Encoding": "gzip"}
        )
        resp = raw.send(req, stream=True)
        data = b"".join(resp.iter_raw())
        resp.close()
    assert resp.headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(data))["items"]) == 30
