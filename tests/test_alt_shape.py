"""readyctl on an API shape it was not told about: the demo's `alt` shapes, found by discovery.

The alternate shapes serve the counseling features under /api/v2 with OAuth2 form login, tokens
under accessToken/refreshToken, refresh by Authorization header, page/size lists, /healthz and
/readyz, and OpenAPI only for logged-in callers. readyctl gets no map for them: only the base
URL, the CA and the test account; the routes come from RFC 8414 metadata and the OpenAPI
document read with the session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from readyctl.config import Config, EnvConfig
from readyctl.demo.faults import FAULT_INCIDENTAL, FAULTS, SHAPE_NOT_APPLICABLE
from tests.conftest import TEST_LOAD, demo_context
from tests.helpers import report_of, run_checks
from tests.test_fault_matrix import fault_groups, red_checks

DEMO = Path(__file__).resolve().parents[1] / "readyctl" / "demo"
ALLOW = [
    "smoke.*",
    "ratelimit.*",
    "load.*",
    "health.db_outage",
    "ops.graceful_shutdown",
    "compliance.privacy",
]


def alt_checks() -> dict[str, Any]:
    """The alt fragment's check settings, the smoke suite made absolute."""
    data = yaml.safe_load((DEMO / "alt.readyctl.yaml").read_text())["checks"]
    data["smoke.scenarios"]["suite"] = str(DEMO / data["smoke.scenarios"]["suite"])
    rules = data["alerts.rules"]
    rules["rule_files"] = [str(DEMO / f) for f in rules["rule_files"]]
    routing = data["alerts.routing"]
    routing["alertmanager_config"] = str(DEMO / routing["alertmanager_config"])
    data["load.thresholds"].update(TEST_LOAD)  # see tests/conftest.py
    return data


def alt_context(handle: Any, *, checks: bool = True) -> Any:
    """What a user writes for this API: the counseling env preset and the behavioural settings
    (limits, load mix, smoke suite); no routes."""
    config = Config(env=EnvConfig(preset="counseling"), checks=alt_checks() if checks else {})
    return demo_context(handle, config=config, allow=ALLOW)


def _config_file(tmp_path: Path) -> Path:
    """Only the base URL, the CA and the test account, as ${VAR}s."""
    f = tmp_path / "readyctl.yaml"
    f.write_text(
        "version: 2\n"
        "default_environment: alt\n"
        "environments:\n"
        "  alt:\n"
        "    base_url: ${ALT_URL}\n"
        "    ca_bundle: ${ALT_CA}\n"
        "    api:\n"
        "      login: {username_var: ALT_USER, password_var: ALT_PASSWORD}\n"
    )
    return f


def _account(handle: Any) -> dict[str, str]:
    user = handle.user("member")
    return {
        "ALT_URL": handle.base_url,
        "ALT_CA": handle.ca_bundle,
        "ALT_USER": user["email"],
        "ALT_PASSWORD": user["password"],
    }


@pytest.mark.slow
def test_base_url_ca_and_account_suffice_no_route_errors(readyctl, faulty_demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(shape="alt")
    cfg = _config_file(tmp_path)
    run = readyctl(
        "check", "--config", str(cfg), "--format", "json", "--out", str(tmp_path / "r"),
        env=_account(d), timeout=600,
    )  # fmt: skip
    assert run.code in (0, 1, 3), run.both
    data = json.loads((tmp_path / "r" / "readiness.json").read_text())
    errors = [
        (r["id"], r["subject"], r["summary"]) for r in data["results"] if r["status"] == "error"
    ]
    assert errors == [], errors
    values = data["api"]["values"]
    assert values["login"]["source"] == "oauth metadata"
    assert "/api/v2/auth/token" in values["login"]["value"]
    assert values["me"] == {"value": "/api/v2/users/me", "source": "openapi"}
    assert (
        values["refresh"]["source"] == "openapi"
        and "Authorization header" in values["refresh"]["value"]
    )
    assert "/api/v2/counsel/sessions" in values["lists"]["value"]
    assert values["health.ready"]["value"] == "/readyz"
    assert data["api"]["openapi"] == "/api/v2/openapi.json"
    # the discovered routes were used: the hardening probes ran and held
    by = {(r["id"], r["subject"]): r["status"] for r in data["results"]}
    assert by[("auth.jwt_tampering", "alg-none")] == "pass"
    assert by[("auth.refresh_reuse", "POST /api/v2/auth/refresh")] == "pass"
    assert run.code == 3  # no database, no env file: required items unverified, not READY
    secrets = _account(d)
    for out in (run.both, json.dumps(data)):
        assert secrets["ALT_PASSWORD"] not in out


@pytest.mark.slow
def test_no_openapi_and_no_map_skips_naming_keys_inconclusive(
    readyctl, faulty_demo, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(shape="alt-noopenapi")
    cfg = _config_file(tmp_path)
    run = readyctl(
        "check", "--config", str(cfg), "--format", "json", "--out", str(tmp_path / "r"),
        env=_account(d), timeout=600,
    )  # fmt: skip
    data = json.loads((tmp_path / "r" / "readiness.json").read_text())
    assert run.code == 3 and data["verdict"] == "inconclusive", run.both
    assert [r for r in data["results"] if r["status"] == "error"] == []
    skipped = {r["id"]: r["summary"] for r in data["results"] if r["status"] == "skip"}
    for cid, key in (
        ("auth.jwt_tampering", "api.me"),
        ("http.pagination", "api.lists"),
        ("health.endpoints", "api.health"),
    ):
        assert f"environments.alt.{key}" in skipped.get(cid, ""), (cid, skipped.get(cid))
    assert data["api"]["values"]["login"]["source"] == "oauth metadata"
    # the checklist names what to set
    needs = {m["setting"] for it in data["checklist"]["items"] for m in it["missing"]}
    assert any(n.startswith("environments.alt.api.") for n in needs), needs


@pytest.mark.slow
def test_no_refresh_flow_is_not_applicable_not_an_error(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(shape="alt-norefresh")
    ctx = alt_context(d)
    out = run_checks(ctx, only=["auth.refresh_reuse", "auth.jwt_tampering"], deadline_s=300)
    by = {r.check_id: r for r in out.results}
    assert by["auth.refresh_reuse"].status.value == "skip"
    assert "no refresh flow" in by["auth.refresh_reuse"].summary
    assert by["auth.jwt_tampering"].status.value == "pass"


# -- the fault matrix on the alt shape ---------------------------------------------------------
ALL_GROUPS = fault_groups(6, leave_out=frozenset(SHAPE_NOT_APPLICABLE["alt"]))
# CI runs the groups holding the route-dependent faults (auth, http, health, rate limits,
# docs); READYCTL_ALT_MATRIX=1 (or READYCTL_FULL_MATRIX=1) runs every group.
FULL = os.environ.get("READYCTL_ALT_MATRIX") or os.environ.get("READYCTL_FULL_MATRIX")
GROUPS = ALL_GROUPS if FULL else ALL_GROUPS[:3]


@pytest.mark.slow
@pytest.mark.parametrize("faults", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_alt_shape_faults_turn_exactly_their_checks_red(faults, faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(*faults, own_pg=True, shape="alt")
    ctx = alt_context(d)
    out = run_checks(ctx, jobs=8, deadline_s=600)
    expected = set().union(*(FAULTS[f].checks for f in faults))
    incidental = frozenset().union(*(FAULT_INCIDENTAL.get(f, ()) for f in faults))
    red = red_checks(out, incidental)
    assert set(red) == expected, {
        "unexpected": {k: v for k, v in red.items() if k not in expected},
        "missing": expected - set(red),
    }
    assert out.api_map is not None and str(out.api_map["openapi"]).endswith("/openapi.json")


@pytest.mark.slow
def test_healthy_alt_shape_turns_nothing_red_and_is_ready(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(own_pg=True, shape="alt")
    ctx = alt_context(d)
    out = run_checks(ctx, jobs=8, deadline_s=600)
    assert red_checks(out) == {}
    report = report_of(ctx, out)
    assert report.verdict == "ready", report.data["gate"]["reasons"]
    items = report.data["checklist"]["items"]
    assert all(it["status"] == "verified" for it in items if it["required"]), items
    sources = {k: v["source"] for k, v in out.api_map["values"].items()}
    assert "default" not in sources.values(), sources  # nothing came from the demo's defaults
