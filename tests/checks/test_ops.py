"""ops.graceful_shutdown: SIGTERM on a fresh healthy demo and under no-graceful-shutdown."""

from __future__ import annotations

import ssl

import pytest

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses

ALLOW = ["ratelimit.*", "ops.graceful_shutdown"]
COUNSEL_ONLY = {
    "policies": [
        {
            "method": "POST",
            "path": "/v1/counsel/sessions/{prepared.id}/messages",
            "limit": 100,
            "window": "1m",
            "auth": True,
            "prepare": {
                "method": "POST",
                "path": "/v1/counsel/sessions",
                "body": {"title": "probe"},
                "auth": True,
            },
            "body": {"content": "probe {n}"},
        }
    ]
}


def test_shutdown_drains_after_the_rate_limit_probe_spent_the_budget(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo()  # SIGTERM ends this demo
    cfg = Config(checks={"ratelimit.policies": COUNSEL_ONLY})
    out = run_checks(demo_context(d, config=cfg, allow=ALLOW), only=["ratelimit.*", "ops.*"])
    # the same order as a full run: the counsel budget of the test account is spent first
    assert statuses(out, "ratelimit.policies") == {
        "POST /v1/counsel/sessions/{prepared.id}/messages": "pass"
    }
    got = results_of(out, "ops.graceful_shutdown")
    assert {s: r.status.value for s, r in got.items()} == {
        "in-flight requests": "pass",
        "new connections": "pass",
        "exit": "pass",
    }
    assert "all 10 in-flight" in got["in-flight requests"].summary
    assert got["exit"].measured < 30
    # the target is left as found: the server was started again and answers (a deploy's
    # gate goes on using it)
    assert got["in-flight requests"].evidence["restarted_after"] is True
    assert d.server_exit_code(0) is None
    import httpx

    ca = ssl.create_default_context(cafile=d.ca_bundle)
    ready = httpx.get(d.base_url + "/health/ready", verify=ca, timeout=10)
    assert ready.status_code == 200


def test_no_graceful_shutdown_drops_in_flight_requests(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("no-graceful-shutdown")
    out = run_checks(demo_context(d, allow=ALLOW), only=["ops.*"])
    got = results_of(out, "ops.graceful_shutdown")
    assert got["in-flight requests"].status.value == "fail"
    assert "10 of 10 in-flight" in got["in-flight requests"].summary
    assert got["exit"].status.value == "fail" and "code 1" in got["exit"].summary
    assert got["new connections"].status.value == "pass"


def test_refused_on_production_and_skipped_without_a_managed_target(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["ops.*"])
    (r,) = results_of(out, "ops.graceful_shutdown").values()
    assert r.status.value == "skip" and "allow" in r.reason
    env = Environment(base_url="https://api.example.org", allow=ALLOW)
    out = run_checks(make_context(environment=env), only=["ops.*"])
    (r,) = results_of(out, "ops.graceful_shutdown").values()
    assert r.status.value == "skip" and "managed" in r.reason
    assert healthy_demo.server_exit_code(0) is None  # the shared demo is still up


# the demo's alt shape: an OAuth2 password form at /api/v2/auth/token (not the default's JSON
# login), given as readyctl.yaml would (discovery off)
ALT_MAP = ApiConfig(
    openapi="off",
    login={"path": "/api/v2/auth/token", "body": "form", "extra": {"grant_type": "password"}},
)


@pytest.mark.parametrize("broken", [False, True], ids=["healthy", "no-graceful-shutdown"])
def test_other_shape_holds_the_maps_login_in_flight(faulty_demo, broken: bool) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(*(["no-graceful-shutdown"] if broken else []), shape="alt")
    # with an empty map there is nothing to hold in flight: a skip naming the key, no SIGTERM
    empty = demo_context(d, allow=ALLOW, api=ApiConfig(openapi="off"))
    out = run_checks(empty, only=["ops.*"])
    (r,) = results_of(out, "ops.graceful_shutdown").values()
    assert r.status.value == "skip" and "environments.demo.api.login" in (r.reason or "")
    assert d.server_exit_code(0) is None
    out = run_checks(demo_context(d, allow=ALLOW, api=ALT_MAP), only=["ops.*"])
    got = results_of(out, "ops.graceful_shutdown")
    held = got["in-flight requests"]
    assert "POST /api/v2/auth/token" in held.summary, held.summary
    if broken:
        assert held.status.value == "fail" and "10 of 10 in-flight" in held.summary
        assert got["exit"].status.value == "fail"
    else:
        assert {s: r.status.value for s, r in got.items()} == {
            "in-flight requests": "pass",
            "new connections": "pass",
            "exit": "pass",
        }
