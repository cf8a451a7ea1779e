"""The smoke-scenario model and executor, against a small real server (and a hostile one)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from readyctl.errors import ConfigError
from readyctl.redact import Redactor
from readyctl.result import ErrorReason, Status
from readyctl.scenarios import (
    Runner,
    Suite,
    default_suite,
    load_suite,
    match,
    parse_suite,
    status_ok,
)
from tests.servers import free_port, serve

SECRET = "s3cr3t-token-value-1234567890"


def _app() -> FastAPI:
    app = FastAPI()
    state: dict[str, Any] = {"flaky": 0, "cleanups": [], "seen_auth": []}
    app.state.data = state

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("password") != "pw-123456789012":
            return JSONResponse({"error": "bad"}, status_code=401)
        return {"access_token": SECRET, "user": {"id": 7, "tags": ["a", "b"]}}

    @app.get("/me")
    async def me(request: Request) -> Any:
        state["seen_auth"].append(request.headers.get("authorization"))
        if request.headers.get("authorization") != f"Bearer {SECRET}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"id": 7, "name": "Ann"}, headers={"X-Trace": "abc"})

    @app.post("/items")
    async def items(request: Request) -> Any:
        body = await request.json()
        return JSONResponse({"id": f"item-{body['n']}", "n": body["n"]}, status_code=201)

    @app.post("/items/{item_id}/close")
    async def close(item_id: str) -> dict[str, Any]:
        state["cleanups"].append(item_id)
        return {"closed": item_id}

    @app.get("/boom")
    async def boom() -> Any:
        return JSONResponse({"error": "internal"}, status_code=500)

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        await asyncio.sleep(2.5)
        return {"late": True}

    @app.get("/forever")
    async def forever() -> StreamingResponse:
        async def gen() -> Any:
            for _ in range(50):  # far longer than the step's timeout, but not forever
                yield b"x" * 100
                await asyncio.sleep(0.05)

        return StreamingResponse(gen(), media_type="application/json")

    @app.get("/huge")
    async def huge() -> Response:
        return Response(b"[" + b"1," * 5_000_000 + b"1]", media_type="application/json")

    @app.get("/flaky")
    async def flaky() -> Any:
        state["flaky"] += 1
        if state["flaky"] < 3:
            return JSONResponse({"Messages": []})
        return JSONResponse({"Messages": [{"MessageID": "m-1"}]})

    @app.get("/mail/m-1")
    async def mail() -> dict[str, Any]:
        return {"TextBody": "Open https://x/verify?token=AbCdEfGhIjKlMnOpQrStUv123 to verify."}

    @app.get("/evil")
    async def evil() -> Response:
        return Response(
            '{"msg": "<script>alert(1)</script>"}',
            media_type="application/json",
            headers={"X-Evil": "<script>alert(1)</script>"},
        )

    @app.post("/sign")
    async def sign(request: Request) -> dict[str, Any]:
        return {"sig": request.headers.get("x-sig"), "raw": (await request.body()).decode()}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """One test server for the module."""
    app = _app()
    with serve(app) as s:
        s.app = app  # type: ignore[attr-defined]
        yield s


def _runner(server: Any, **kw: Any) -> tuple[Runner, Redactor]:
    red = Redactor()
    client = httpx.Client(base_url=server.url, timeout=10)
    env = {"APP_PASSWORD": "pw-123456789012", "SIGNING_SECRET": "whsec_abc123456789"}
    env.update(kw.pop("env", {}))
    return Runner(client, redactor=red, env=env, **kw), red


def _suite(scenarios: list[dict[str, Any]], **vars: Any) -> Suite:
    return parse_suite({"vars": vars, "scenarios": scenarios})


def _by_step(outcomes: list[Any]) -> dict[str, Any]:
    return {o.step: o for o in outcomes}


# -- the model -------------------------------------------------------------------------------
def test_model_rejects_bad_suites(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="status"):
        _suite([{"name": "a", "steps": [{"name": "s", "path": "/", "expect": {"status": 999}}]}])
    with pytest.raises(ConfigError, match="twice"):
        _suite([{"name": "a", "steps": [{"name": "s", "path": "/"}, {"name": "s", "path": "/"}]}])
    with pytest.raises(ConfigError, match="only one of"):
        _suite([{"name": "a", "steps": [{"name": "s", "path": "/", "json": {}, "body": "x"}]}])
    with pytest.raises(ConfigError, match="steps"):
        _suite([{"name": "a", "steps": []}])
    with pytest.raises(ConfigError, match="capture"):
        _suite([{"name": "a", "steps": [{"name": "s", "path": "/", "capture": {"x": "nope"}}]}])
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_suite(bad)


def test_default_suite_is_package_data_and_valid() -> None:
    from importlib.resources import files

    assert files("readyctl").joinpath("scenarios_default.yaml").is_file()
    suite = default_suite()
    names = [s.name for s in suite.scenarios]
    assert names == ["registration", "counsel", "payments", "tenancy"]
    steps = {f"{s.name}/{st.name}" for s in suite.scenarios for st in s.steps}
    for wanted in (
        "registration/verification-email",
        "counsel/crisis-message",
        "payments/forged-webhook",
        "tenancy/read-other-org-session",
    ):
        assert wanted in steps


def test_matchers_and_status_specs() -> None:
    assert status_ok(204, None) and not status_ok(404, None)
    assert status_ok(404, [403, 404]) and status_ok(418, "4xx") and not status_ok(500, "4xx")
    assert match(3, {"gt": 2, "lt": 4}, "x") is None
    assert "expected a string" in (match(3, {"type": "string"}, "x") or "")
    assert "does not match" in (match("abc", {"matches": "^z"}, "x") or "")
    assert match([1, 2], {"min_length": 2, "contains": 2}, "x") is None
    assert "expected true" in (match(False, True, "JSON crisis") or "")


# -- the executor ----------------------------------------------------------------------------
def test_captures_templates_and_secrets(server: Any) -> None:
    runner, red = _runner(server)
    suite = _suite(
        [
            {
                "name": "flow",
                "vars": {"email": "u-{{ run_id }}@example.com"},
                "steps": [
                    {
                        "name": "login",
                        "method": "POST",
                        "path": "/login",
                        "json": {"email": "{{ vars.email }}", "password": "{{ env.APP_PASSWORD }}"},
                        "expect": {"status": 200, "json": {"user.tags.1": "b", "user.id": 7}},
                        "capture": {"token": "json:access_token", "uid": "json:user.id"},
                    },
                    {
                        "name": "me",
                        "path": "/me",
                        "headers": {"Authorization": "Bearer {{ token }}"},
                        "expect": {
                            "json": {"id": "{{ uid }}", "name": {"matches": "^A"}},
                            "headers": {"X-Trace": "abc", "X-Missing": None},
                            "max_ms": 5000,
                        },
                    },
                    {
                        "name": "create",
                        "method": "POST",
                        "path": "/items",
                        "json": {"n": "{{ uid * 6 }}"},
                        "expect": {"status": 201, "json": {"n": 42}},
                        "capture": {"item": "json:id"},
                    },
                ],
            }
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert [o.status for o in out.values()] == [Status.PASS] * 3, [o.summary for o in out.values()]
    assert out["me"].duration_ms is not None and out["me"].max_ms == 5000
    # a lone {{ expr }} keeps its type: uid * 6 is the integer 42
    assert out["create"].evidence["captured"] == ["item"]
    # a captured token is secret from then on
    assert red.text(f"x {SECRET} y") == "x **** y"


def test_failed_step_blocks_the_rest_and_cleanup_still_runs(server: Any) -> None:
    runner, _ = _runner(server)
    suite = _suite(
        [
            {
                "name": "s",
                "steps": [
                    {
                        "name": "create",
                        "method": "POST",
                        "path": "/items",
                        "json": {"n": 5},
                        "capture": {"item": "json:id"},
                    },
                    {"name": "me", "path": "/me", "expect": {"status": 200}},
                    {"name": "after", "path": "/me"},
                ],
                "cleanup": [
                    {"name": "close", "method": "POST", "path": "/items/{{ item }}/close"},
                    {
                        "name": "never-captured",
                        "when": "{{ nothing is defined }}",
                        "path": "/x",
                    },
                ],
            }
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert out["create"].status is Status.PASS
    assert out["me"].status is Status.FAIL
    assert "answered 401, expected 200" in out["me"].summary
    assert out["after"].status is Status.BLOCKED
    assert out["after"].summary == "s/me fail"
    assert out["close"].status is Status.PASS and out["close"].cleanup
    assert out["never-captured"].status is Status.SKIP
    assert "item-5" in server.app.state.data["cleanups"]
    ev = out["me"].evidence
    assert ev["response"]["status"] == 401
    assert ev["request_sent"]["method"] == "GET"


def test_a_5xx_fails_the_step_even_without_an_expectation(server: Any) -> None:
    runner, _ = _runner(server)
    out = runner.run_suite(_suite([{"name": "s", "steps": [{"name": "b", "path": "/boom"}]}]))
    assert out[0].status is Status.FAIL
    assert "server error 500" in out[0].summary


def test_hanging_and_endless_responses_end_within_the_step_timeout(server: Any) -> None:
    runner, _ = _runner(server)
    suite = _suite(
        [
            {"name": "a", "steps": [{"name": "slow", "path": "/slow", "timeout_s": 1}]},
            {"name": "b", "steps": [{"name": "forever", "path": "/forever", "timeout_s": 1}]},
        ]
    )
    t0 = time.monotonic()
    out = _by_step(runner.run_suite(suite))
    assert time.monotonic() - t0 < 5
    assert out["slow"].status is Status.FAIL and "did not answer within" in out["slow"].summary
    assert out["forever"].status is Status.FAIL


def test_a_huge_body_is_capped(server: Any) -> None:
    runner, _ = _runner(server)
    suite = _suite(
        [
            {
                "name": "s",
                "steps": [{"name": "huge", "path": "/huge", "expect": {"json": {"0": 1}}}],
            }
        ]
    )
    out = runner.run_suite(suite)[0]
    assert out.status is Status.FAIL
    assert "body over 1 MB" in out.summary
    body = out.evidence["response"]["body"]
    assert len(body) < 2200 and "more characters" in body


def test_connection_refused_is_an_error_not_a_hang() -> None:
    red = Redactor()
    client = httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    runner = Runner(client, redactor=red, env={})
    out = runner.run_suite(
        _suite([{"name": "s", "steps": [{"name": "a", "path": "/"}, {"name": "b", "path": "/"}]}])
    )
    assert out[0].status is Status.ERROR
    assert out[0].error_reason is ErrorReason.CONNECTIVITY
    assert "failed before an answer" in out[0].summary
    assert out[1].status is Status.BLOCKED


def test_retry_polls_until_the_expectation_holds_and_regex_captures(server: Any) -> None:
    runner, red = _runner(server)
    suite = _suite(
        [
            {
                "name": "mail",
                "steps": [
                    {
                        "name": "search",
                        "path": "/flaky",
                        "retry": {"attempts": 5, "interval_s": 0.05},
                        "expect": {"json": {"Messages.0.MessageID": {"type": "string"}}},
                        "capture": {"mid": "json:Messages.0.MessageID"},
                    },
                    {
                        "name": "read",
                        "path": "/mail/{{ mid }}",
                        "capture": {
                            "code": {
                                "from": "json:TextBody",
                                "regex": "token=([A-Za-z0-9]+)",
                                "secret": True,
                            }
                        },
                    },
                ],
            }
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert out["search"].status is Status.PASS and out["search"].evidence["attempts"] == 3
    assert out["read"].status is Status.PASS
    assert red.text("AbCdEfGhIjKlMnOpQrStUv123") == "****"


def test_when_skips_cascade_to_steps_needing_their_captures(server: Any) -> None:
    runner, _ = _runner(server, env={"MAIL_URL": ""})
    suite = _suite(
        [
            {
                "name": "s",
                "steps": [
                    {
                        "name": "search",
                        "when": "{{ env.MAIL_URL }}",
                        "skip_reason": "no mail provider",
                        "path": "{{ env.MAIL_URL }}/x",
                        "capture": {"mid": "json:id"},
                    },
                    {"name": "read", "path": "/mail/{{ mid }}"},
                    {"name": "independent", "path": "/me", "expect": {"status": 401}},
                ],
            },
            {
                "name": "off",
                "when": "{{ env.NOT_SET }}",
                "skip_reason": "not configured",
                "steps": [{"name": "x", "path": "/"}],
            },
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert out["search"].status is Status.SKIP and out["search"].summary == "no mail provider"
    assert out["read"].status is Status.SKIP and "needs mid" in out["read"].summary
    assert out["independent"].status is Status.PASS
    assert out["x"].status is Status.SKIP and out["x"].summary == "not configured"


def test_sandbox_and_template_errors_are_config_errors(server: Any) -> None:
    runner, _ = _runner(server)
    suite = _suite(
        [
            {
                "name": "s",
                "steps": [
                    {"name": "evil", "path": "/{{ ''.__class__.__mro__[1].__subclasses__() }}"},
                    {"name": "next", "path": "/me"},
                ],
            },
            {"name": "t", "steps": [{"name": "undefined", "path": "/{{ nope }}"}]},
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert out["evil"].status is Status.ERROR and out["evil"].error_reason is ErrorReason.CONFIG
    assert "template error" in out["evil"].summary
    assert out["next"].status is Status.BLOCKED
    assert out["undefined"].status is Status.ERROR and "nope" in out["undefined"].summary


def test_raw_body_signature_and_redacted_evidence(server: Any) -> None:
    runner, red = _runner(server)
    suite = _suite(
        [
            {
                "name": "s",
                "steps": [
                    {
                        "name": "signed",
                        "method": "POST",
                        "path": "/sign",
                        "vars": {"ts": "{{ timestamp() }}", "payload": '{"id":"evt_{{ run_id }}"}'},
                        "headers": {
                            "X-Sig": "t={{ ts }},v1={{ hmac_sha256(env.SIGNING_SECRET, "
                            "ts ~ '.' ~ payload) }}"
                        },
                        "body": "{{ payload }}",
                        "expect": {"json": {"sig": {"matches": "^t=\\d+,v1=[0-9a-f]{64}$"}}},
                    },
                    {
                        "name": "login-fails-on-purpose",
                        "method": "POST",
                        "path": "/login",
                        "headers": {"Authorization": "Bearer {{ env.SIGNING_SECRET }}"},
                        "json": {"email": "a@b.c", "password": "wrong-{{ env.APP_PASSWORD }}"},
                    },
                ],
            },
            {"name": "h", "steps": [{"name": "evil", "path": "/evil", "expect": {"status": 201}}]},
        ]
    )
    out = _by_step(runner.run_suite(suite))
    assert out["signed"].status is Status.PASS, out["signed"].summary
    failed = out["login-fails-on-purpose"]
    assert failed.status is Status.FAIL
    text = json.dumps(failed.evidence)
    assert "whsec_abc123456789" not in text and "pw-123456789012" not in text
    assert failed.evidence["request_sent"]["headers"]["Authorization"] == "****"
    assert red.text("whsec_abc123456789") == "****"
    # hostile values stay data (reporters escape them), truncated to a few KB
    evil = out["evil"]
    assert evil.status is Status.FAIL
    assert len(json.dumps(evil.evidence)) < 6000
