"""smoke.scenarios against the managed demo: green when healthy, exactly the mapped steps red."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

pytestmark = pytest.mark.slow
ALLOW = ["smoke.*"]
CID = "smoke.scenarios"


def _run(handle: Any, settings: dict[str, Any] | None = None, **env: Any) -> Any:
    config = Config(checks={CID: settings}) if settings else None
    ctx = demo_context(handle, config=config, allow=ALLOW, **env)
    return ctx, run_checks(ctx, only=[CID], deadline_s=120)


def _secrets(handle: Any) -> list[str]:
    return [
        handle.mail_token,
        handle.webhook_secret,
        handle.user("member")["password"],
        handle.user("member", "northwind")["password"],
    ]


def test_healthy_demo_passes_every_step(healthy_demo: Any) -> None:
    _, out = _run(healthy_demo)
    got = statuses(out, CID)
    assert set(got.values()) == {"pass"}, got
    assert len(got) == 19
    for subject in (
        "registration/register",
        "registration/verification-email",
        "registration/verify-email",
        "registration/login-new-account",
        "counsel/login",
        "counsel/refresh",
        "counsel/create-session",
        "counsel/message",
        "counsel/crisis-message",
        "counsel/close-session",
        "payments/signed-webhook",
        "payments/forged-webhook",
        "tenancy/read-own-session",
        "tenancy/read-other-org-session",
    ):
        assert got[subject] == "pass"
    step = results_of(out, CID)["counsel/message"]
    assert step.unit == "ms" and isinstance(step.measured, float) and step.measured > 0
    dumped = json.dumps([r.evidence for r in out.results], default=str)
    for secret in _secrets(healthy_demo):
        assert secret not in dumped


def test_faults_turn_exactly_the_mapped_steps_red(faulty_demo: Any) -> None:
    # the four faults touch different scenarios, so one demo serves them all
    handle = faulty_demo("email-broken", "crisis-detection-off", "webhook-unsigned", "cross-tenant")
    _, out = _run(handle)
    got = statuses(out, CID)
    failed = {s for s, st in got.items() if st == "fail"}
    assert failed == {
        "registration/verification-email",  # email-broken
        "counsel/crisis-message",  # crisis-detection-off
        "payments/forged-webhook",  # webhook-unsigned
        "tenancy/read-other-org-session",  # cross-tenant
    }, got
    assert {s for s, st in got.items() if st == "blocked"} == {
        "registration/read-email",
        "registration/verify-email",
        "registration/login-new-account",
    }
    assert {st for s, st in got.items() if s not in failed and st != "blocked"} == {"pass"}
    results = results_of(out, CID)
    assert "crisis is false, expected true" in results["counsel/crisis-message"].summary
    assert "answered 200, expected 400" in results["payments/forged-webhook"].summary
    assert results["registration/read-email"].reason == "registration/verification-email fail"
    # on failure: the redacted request and response, a few KB at most
    ev = results["tenancy/read-other-org-session"].evidence
    assert ev["response"]["status"] == 200
    assert ev["request_sent"]["headers"]["Authorization"] == "****"
    for r in results.values():
        assert len(json.dumps(r.evidence, default=str)) < 8000
    dumped = json.dumps([r.evidence for r in out.results], default=str)
    for secret in _secrets(handle):
        assert secret not in dumped
    assert "Bearer ey" not in dumped


def test_a_5xx_answer_fails_its_step(faulty_demo: Any) -> None:
    # error-burst: the first of every five counsel requests of each access token answers 500;
    # each scenario logs in afresh, so its first counsel step fails and the rest is blocked
    handle = faulty_demo("error-burst")
    _, out = _run(handle, {"only": ["counsel", "tenancy"]})
    results = results_of(out, CID)
    failed = sorted(r.subject for r in results.values() if r.status.value == "fail")
    assert failed == ["counsel/create-session", "tenancy/create-other-session"], statuses(out, CID)
    assert all("server error 500" in results[s].summary for s in failed)
    for scenario in ("counsel", "tenancy"):
        after = [
            r.status.value
            for s, r in results.items()
            if s.startswith(scenario + "/") and r.status.value not in ("pass", "fail")
        ]
        assert "blocked" in after


def test_without_a_mail_provider_the_email_steps_skip(healthy_demo: Any) -> None:
    _, out = _run(
        healthy_demo,
        {"only": ["registration"], "env": {"READYCTL_MAIL_URL": "", "READYCTL_MAIL_TOKEN": ""}},
    )
    got = statuses(out, CID)
    assert got["registration/register"] == "pass"
    for step in ("verification-email", "read-email", "verify-email", "login-new-account"):
        assert got[f"registration/{step}"] == "skip", got


def test_custom_suite_from_settings_and_config_errors(healthy_demo: Any, tmp_path: Any) -> None:
    suite = tmp_path / "smoke.yaml"
    suite.write_text(
        "scenarios:\n"
        "  - name: ops\n"
        "    steps:\n"
        "      - {name: health, path: /health, expect: {json: {status: ok}}}\n"
        "      - {name: ready, path: /health/ready, expect: {status: 200}}\n"
        "      - {name: missing, path: /v1/nope, expect: {status: 200}}\n"
        "      - {name: after, path: /health}\n"
    )
    # the managed demo's profile sets include_default; readyctl.yaml wins key by key
    _, out = _run(healthy_demo, {"suite": str(suite), "include_default": False})
    assert statuses(out, CID) == {
        "ops/health": "pass",
        "ops/ready": "pass",
        "ops/missing": "fail",
        "ops/after": "blocked",
    }
    _, out = _run(healthy_demo, {"only": ["no-such-scenario"]})
    (bad,) = results_of(out, CID).values()
    assert bad.status.value == "error" and bad.error_reason.value == "config"


def test_production_refuses_smoke_unless_allowed(healthy_demo: Any) -> None:
    ctx = demo_context(healthy_demo)  # production, nothing allowed
    out = run_checks(ctx, only=[CID])
    (r,) = results_of(out, CID).values()
    assert r.status.value == "skip" and "refused on production" in (r.reason or "")


def test_readyctl_smoke_command_runs_just_the_suite(healthy_demo: Any, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    cfg = {
        "version": 1,
        "default_environment": "target",
        "environments": {
            "target": {"base_url": healthy_demo.base_url, "ca_bundle": healthy_demo.ca_bundle}
        },
        # a plain environment (not `managed: demo`): the bundled suite runs only when asked
        "checks": {CID: {"only": ["counsel", "payments"], "include_default": True}},
    }
    (tmp_path / "readyctl.yaml").write_text(json.dumps(cfg))
    member = healthy_demo.user("member")
    env = dict(
        os.environ,
        NO_COLOR="1",
        PYTHONPATH=str(ROOT),
        READYCTL_AUTH_USERNAME=member["email"],
        READYCTL_AUTH_PASSWORD=member["password"],
        READYCTL_WEBHOOK_SECRET=healthy_demo.webhook_secret,
    )
    p = subprocess.run(
        [sys.executable, "-m", "readyctl", "smoke", "--out", "out", "--format", "json,junit"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    data = json.loads((tmp_path / "out" / "readiness.json").read_text())
    ids = {r["id"] for r in data["results"]}
    assert ids == {"http.reachable", CID}
    smoke = {r["subject"]: r["status"] for r in data["results"] if r["id"] == CID}
    assert smoke["payments/forged-webhook"] == "pass" and smoke["counsel/crisis-message"] == "pass"
    assert not any(s.startswith(("registration/", "tenancy/")) for s in smoke)  # `only`
    assert (tmp_path / "out" / "readiness.xml").exists()
    assert member["password"] not in (tmp_path / "out" / "readiness.json").read_text()


# -- another API shape: the suite is the user's, never the bundled counseling one --------------
def notes_app(broken: bool = False) -> FastAPI:
    """Another API: POST /api/v2/notes creates a note, GET /api/v2/notes/{id} reads it back."""
    app = FastAPI(openapi_url=None)
    notes: dict[int, str] = {}
    app.state.seen = []

    @app.middleware("http")
    async def record(request, call_next):  # type: ignore[no-untyped-def]
        app.state.seen.append(request.url.path)
        return await call_next(request)

    @app.post("/api/v2/notes", status_code=201)
    def create(body: dict[str, str]) -> dict[str, Any]:
        notes[len(notes) + 1] = body.get("text", "")
        return {"id": len(notes)}

    @app.get("/api/v2/notes/{note_id}")
    def read(note_id: int) -> JSONResponse:
        if broken or note_id not in notes:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"id": note_id, "text": notes[note_id]})

    return app


NOTES_SUITE = [
    {
        "name": "notes",
        "steps": [
            {
                "name": "create",
                "method": "POST",
                "path": "/api/v2/notes",
                "json": {"text": "hello"},
                "expect": {"status": 201},
                "capture": {"note": "json:id"},
            },
            {
                "name": "read-back",
                "path": "/api/v2/notes/{{ note }}",
                "expect": {"status": 200, "json": {"text": "hello"}},
            },
        ],
    }
]


def _run_notes(settings: dict[str, Any] | None, broken: bool = False) -> tuple[FastAPI, Any]:
    app = notes_app(broken)
    config = Config(checks={CID: settings}) if settings else None
    with serve(app) as s:
        env = Environment(base_url=s.url, api=ApiConfig(openapi="off"))
        out = run_checks(make_context(config=config, environment=env), only=[CID])
    return app, out


def test_an_inline_suite_runs_on_another_api_shape() -> None:
    _, out = _run_notes({"scenarios": NOTES_SUITE})
    assert statuses(out, CID) == {"notes/create": "pass", "notes/read-back": "pass"}
    _, out = _run_notes({"scenarios": NOTES_SUITE}, broken=True)
    assert statuses(out, CID) == {"notes/create": "pass", "notes/read-back": "fail"}


def test_without_a_suite_smoke_skips_naming_the_setting() -> None:
    app, out = _run_notes(None)
    (r,) = results_of(out, CID).values()
    assert r.status.value == "skip" and "checks.smoke.scenarios.suite" in r.reason
    assert not any(p.startswith("/v1/") for p in app.state.seen)  # no counseling route tried
