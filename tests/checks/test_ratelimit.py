"""ratelimit.policies against fresh demos (healthy, no-rate-limit) and small limiters."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from readyctl.checks.ratelimit._request import render, seconds

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.checks.test_health import HOSTILE_MAP, hostile  # noqa: F401  (fixture)
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

ALLOW = ["ratelimit.*"]
REGISTER = "POST /v1/auth/register"
RESET = "POST /v1/auth/password-reset/request"
COUNSEL = "POST /v1/counsel/sessions/{prepared.id}/messages"


def test_policies_pass_on_a_fresh_healthy_demo(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo()  # its own demo: the budgets are spent for a minute (or an hour)
    out = run_checks(demo_context(d, allow=ALLOW), only=["ratelimit.*"])
    assert statuses(out, "ratelimit.policies") == {
        REGISTER: "pass",
        RESET: "pass",
        COUNSEL: "pass",
    }
    r = results_of(out, "ratelimit.policies")[COUNSEL]
    assert "100 per 1m" in r.summary and "429 at request 101" in r.summary
    assert r.evidence["headers"]["Retry-After"]
    # a second run in the same window finds the budget spent: inconclusive, never a pass
    out = run_checks(demo_context(d, allow=ALLOW), only=["ratelimit.*"])
    again = results_of(out, "ratelimit.policies")[REGISTER]
    assert again.status.value == "error" and again.error_reason.value == "inconclusive"


def test_policies_fail_without_rate_limits(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("no-rate-limit")
    out = run_checks(demo_context(d, allow=ALLOW), only=["ratelimit.*"])
    got = results_of(out, "ratelimit.policies")
    assert {s: r.status.value for s, r in got.items()} == {
        REGISTER: "fail",
        RESET: "fail",
        COUNSEL: "fail",
    }
    assert "answered 202 to request 6: no rate limit at 5 per 1m" in got[REGISTER].summary


def test_refused_on_production_unless_allowed(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["ratelimit.*"])
    (r,) = results_of(out, "ratelimit.policies").values()
    assert r.status.value == "skip" and "allow" in r.reason


def limiter_app(limit: int, *, early: int | None = None, headers: bool = True) -> FastAPI:
    """POST /hit: 200 until `limit` (or `early`), then 429 (with or without headers)."""
    app = FastAPI()
    seen: dict[str, Any] = {"n": 0, "bodies": []}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/hit")
    async def hit(request: Request) -> JSONResponse:
        seen["bodies"].append(await request.json())
        seen["n"] += 1
        cut = early if early is not None else limit
        if seen["n"] > cut:
            h = {"Retry-After": "30"} if headers else {}
            return JSONResponse({"error": "slow down"}, status_code=429, headers=h)
        h = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(limit - seen["n"])}
        return JSONResponse({"ok": True}, headers=h if headers else {})

    app.state.seen = seen
    return app


def policy_config(limit: int, **extra: Any) -> Config:
    policy = {"method": "POST", "path": "/hit", "limit": limit, "window": "1m"}
    policy["body"] = {"n": "{{ n }}", "email": "u{n}-{run}@example.com"}
    policy.update(extra)
    return Config(checks={"ratelimit.policies": {"policies": [policy], "concurrency": 3}})


def run_against(app: FastAPI, cfg: Config) -> dict[str, Any]:
    with serve(app) as s:
        env = Environment(base_url=s.url, production=True, allow=ALLOW)
        out = run_checks(make_context(config=cfg, environment=env), only=["ratelimit.*"])
    return results_of(out, "ratelimit.policies")


def test_too_strict_limit_fails_with_the_count() -> None:
    got = run_against(limiter_app(5, early=3), policy_config(5))
    r = got["POST /hit"]
    assert r.status.value == "fail"
    assert "429 after 3 of the 5 per 1m allowed requests" in r.summary


def test_429_without_retry_headers_warns_and_templates_render() -> None:
    app = limiter_app(4, headers=False)
    got = run_against(app, policy_config(4))
    r = got["POST /hit"]
    assert r.status.value == "warn" and "without Retry-After" in r.summary
    bodies = app.state.seen["bodies"]
    assert sorted(int(b["n"]) for b in bodies) == [1, 2, 3, 4, 5]
    assert len({b["email"] for b in bodies}) == 5


def test_budget_partly_spent_by_earlier_traffic_is_accounted() -> None:
    app = limiter_app(5)
    app.state.seen["n"] = 2  # two requests of this window came from someone else
    got = run_against(app, policy_config(5))
    r = got["POST /hit"]
    assert r.status.value == "pass" and "2 earlier requests" in r.summary


def test_probe_that_never_reaches_the_handler_is_inconclusive() -> None:
    app = limiter_app(5)
    got = run_against(app, policy_config(5, path="/missing"))
    r = got["POST /missing"]
    assert r.status.value == "error" and r.error_reason.value == "inconclusive"


def test_hostile_target_ends_as_error(hostile) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    h = hostile()
    env = Environment(base_url=h.url, production=True, allow=ALLOW, api=HOSTILE_MAP)
    for path in ("/never", "/malformed", "/hang", "/script"):
        cfg = policy_config(3, path=path, method="GET", body=None)
        cfg.checks["ratelimit.policies"]["request_timeout_s"] = 1
        out = run_checks(make_context(config=cfg, environment=env), only=["ratelimit.*"])
        (r,) = results_of(out, "ratelimit.policies").values()
        assert r.status.value == "error", (path, r.summary)
        assert len(r.summary) < 300


def notes_app(limit: int | None) -> FastAPI:
    """Another API shape: an OAuth-style form login at /oauth/token and a per-user limit on
    POST /api/v2/notes (`limit` None: no limit at all)."""
    app = FastAPI(openapi_url=None)
    seen: dict[str, int] = {}

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("username") != "t@x.org" or form.get("password") != "Right-Pass-123":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse({"access_token": "tok-notes", "token_type": "bearer"})

    @app.post("/api/v2/notes")
    async def note(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer tok-notes":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        seen["n"] = seen.get("n", 0) + 1
        if limit is not None and seen["n"] > limit:
            return JSONResponse({"error": "slow down"}, 429, headers={"Retry-After": "60"})
        return JSONResponse({"id": seen["n"]}, status_code=201)

    return app


NOTES_MAP = ApiConfig(
    openapi="off", login={"path": "/oauth/token", "body": "form", "username_field": "username"}
)
NOTES_POLICY = {"method": "POST", "path": "/api/v2/notes", "limit": 4, "window": "1m", "auth": True}
CREDS = {"READYCTL_AUTH_USERNAME": "t@x.org", "READYCTL_AUTH_PASSWORD": "Right-Pass-123"}


def run_notes(limit: int | None, api: ApiConfig, policies: list[Any]) -> dict[str, Any]:
    cfg = Config(checks={"ratelimit.policies": {"policies": policies, "concurrency": 2}})
    with serve(notes_app(limit)) as s:
        env = Environment(base_url=s.url, production=True, allow=ALLOW, api=api)
        ctx = make_context(config=cfg, environment=env, environ=dict(CREDS))
        out = run_checks(ctx, only=["ratelimit.*"])
    return results_of(out, "ratelimit.policies")


def test_an_authenticated_policy_logs_in_through_the_map_on_another_api_shape() -> None:
    got = run_notes(4, NOTES_MAP, [NOTES_POLICY])
    r = got["POST /api/v2/notes"]
    assert r.status.value == "pass" and "429 at request 5" in r.summary, r.summary
    got = run_notes(None, NOTES_MAP, [NOTES_POLICY])
    r = got["POST /api/v2/notes"]
    assert r.status.value == "fail" and "no rate limit at 4 per 1m" in r.summary, r.summary


def test_no_policies_skip_naming_the_setting_and_no_limit_is_invented() -> None:
    # the map knows a login route, yet readyctl does not guess the API's limits
    (r,) = run_notes(4, NOTES_MAP, []).values()
    assert r.status.value == "skip" and "checks.ratelimit.policies.policies" in r.reason
    # a policy that needs a session, on a map without a login: skipped, not an error
    (r,) = run_notes(4, ApiConfig(openapi="off"), [NOTES_POLICY]).values()
    assert r.status.value == "skip" and "no login route" in r.reason
    assert "environments.default.api.login" in r.reason


def test_render_and_windows() -> None:
    v = {"n": 7, "run": "ab12", "prepared": {"id": "s-1"}}
    assert render("/x/{prepared.id}/{n}", v) == "/x/s-1/7"
    assert render({"a": ["{{ n * 2 }}", "{run}"]}, v) == {"a": ["14", "ab12"]}
    assert seconds("1m") == 60 and seconds("1h") == 3600 and seconds(90) == 90
    with pytest.raises(ValueError):
        render("{prepared.missing}", v)


def windowed_app(limit: int, window_s: float) -> FastAPI:
    """A real fixed-window limiter: `limit` per `window_s`, counting from the window's start."""
    import time as _time

    app = FastAPI()
    state: dict[str, float] = {"start": _time.monotonic(), "n": 0}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/hit")
    async def hit() -> JSONResponse:
        now = _time.monotonic()
        if now - state["start"] >= window_s:
            state["start"], state["n"] = now, 0
        state["n"] += 1
        if state["n"] > limit:
            return JSONResponse({"error": "slow down"}, 429, headers={"Retry-After": "1"})
        left = str(limit - int(state["n"]))
        return JSONResponse({"ok": True}, headers={"RateLimit-Limit": str(limit),
                                                   "RateLimit-Remaining": left})  # fmt: skip

    return app


def test_a_window_that_ends_during_the_probe_is_inconclusive_not_a_fail() -> None:
    """Under load the probe can outlast the window: request limit+1 then rightly passes.

    A 1 s window that the limiter resets mid-probe must not read as "no rate limit". Each
    request takes 0.6 s and 3 are in flight: the 7 requests span 3 waves (>= 1.8 s), so the
    7th comes at least 1.2 s after the window began and always finds a fresh window, however
    busy the machine (0.3 s once let all 7 fit in one window on a CI run)."""
    app = windowed_app(6, 1.0)

    @app.middleware("http")
    async def slow(request, call_next):  # type: ignore[no-untyped-def]
        import asyncio

        if request.url.path == "/hit":
            await asyncio.sleep(0.6)
        return await call_next(request)

    got = run_against(app, policy_config(6, window="1s"))
    r = got["POST /hit"]
    assert r.status.value == "error" and r.error_reason.value == "inconclusive", r.summary
    assert "window" in r.summary


def _reset_after_first_app(limit: int, *, enforce: bool) -> FastAPI:
    """A fixed window that ends right after the first request (one earlier request counted in
    it); the next window then counts from zero. `enforce=False`: it only counts (remaining
    stays at 0, never a 429)."""
    app = FastAPI()
    seen = {"n": 0}

    @app.post("/hit")
    async def hit() -> JSONResponse:
        seen["n"] += 1
        used = 2 if seen["n"] == 1 else seen["n"] - 1  # window A: one earlier + ours
        if enforce and used > limit:
            return JSONResponse(
                {"error": "slow down"}, status_code=429, headers={"Retry-After": "9"}
            )
        h = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - used))}
        return JSONResponse({"ok": True}, headers=h)

    return app


def test_a_window_boundary_after_the_first_request_is_not_read_as_no_limit() -> None:
    # seen on a loaded CI box: request 6 of a 5/min policy passed because a new fixed window
    # began after request 1; the headers show the limiter counted 5, not the 7 the probe sent
    r = run_against(_reset_after_first_app(5, enforce=True), policy_config(5))["POST /hit"]
    assert r.status.value == "pass", r.summary
    # a limiter that counts but never refuses is still a fail
    r = run_against(_reset_after_first_app(5, enforce=False), policy_config(5))["POST /hit"]
    assert r.status.value == "fail", r.summary
    assert "no rate limit" in r.summary
