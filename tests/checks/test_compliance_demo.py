"""compliance.privacy and compliance.legal_pages on the managed demo: the default shape (routes
from the map) and the alt shape (routes discovered from its OpenAPI document, pages at the
usual places), healthy and with the three privacy faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from readyctl.config import Config, EnvConfig
from tests.conftest import demo_context
from tests.helpers import report_of, results_of, run_checks, statuses

ONLY = ["compliance.*"]
FAULTS = ("privacy-export-broken", "privacy-delete-noop", "no-privacy-policy")
HEALTHY = {
    ("compliance.privacy", "data export"): "pass",
    ("compliance.privacy", "account deletion"): "pass",
    ("compliance.legal_pages", "privacy policy"): "pass",
    ("compliance.legal_pages", "terms of service"): "pass",
}
BROKEN = {
    ("compliance.privacy", "data export"): "fail",
    ("compliance.privacy", "account deletion"): "fail",
    ("compliance.legal_pages", "privacy policy"): "fail",
    ("compliance.legal_pages", "terms of service"): "pass",
}


def _context(handle: Any, shape: str) -> Any:
    if shape == "default":
        return demo_context(handle, allow=["compliance.*"])
    # the alt shape: no routes given, only the counseling env preset (as tests/test_alt_shape)
    config = Config(env=EnvConfig(preset="counseling"))
    return demo_context(handle, config=config, allow=["compliance.*"])


def _seen(out: Any) -> dict[tuple[str, str], str]:
    return {
        (cid, subject): status
        for cid in ("compliance.privacy", "compliance.legal_pages")
        for subject, status in statuses(out, cid).items()
    }


def _users(handle: Any) -> set[str]:
    import psycopg

    from readyctl.postgres.scratch import libpq_url

    with psycopg.connect(libpq_url(handle.database_url)) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM users").fetchall()}


def test_default_shape_is_green_and_the_test_account_survives(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    ctx = _context(healthy_demo, "default")
    before = _users(healthy_demo)
    out = run_checks(ctx, only=ONLY, deadline_s=180)
    assert _seen(out) == HEALTHY, {
        k: r.summary for k, r in results_of(out, "compliance.privacy").items()
    }
    deletion = results_of(out, "compliance.privacy")["account deletion"]
    assert deletion.evidence["login_after"] == 401
    assert _users(healthy_demo) == before  # the throwaway account is gone, nobody else
    # the test account still logs in: auth.session passes after the check
    after = run_checks(ctx, only=["auth.session"], deadline_s=60)
    assert set(statuses(after, "auth.session").values()) == {"pass"}, statuses(
        after, "auth.session"
    )
    # item 20 is verified by these checks' own results; no throwaway password in the report
    report = report_of(ctx, out)
    item = next(i for i in report.data["checklist"]["items"] if i["item"] == "20")
    assert item["status"] == "verified"
    assert set(item["verified_by"]) == {"compliance.privacy", "compliance.legal_pages"}
    assert "Readyctl-" not in json.dumps(report.data)


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "faults"), [("alt", ()), ("alt", FAULTS), ("default", FAULTS)])
def test_shapes_and_faults(faulty_demo, shape: str, faults: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo(*faults, shape=shape) if shape != "default" else faulty_demo(*faults)
    out = run_checks(_context(d, shape), only=ONLY, deadline_s=180)
    want = BROKEN if faults else HEALTHY
    summaries = {
        (r.check_id, r.subject): r.summary
        for r in out.results
        if r.check_id.startswith("compliance.")
    }
    assert _seen(out) == want, summaries
    if shape == "alt":
        api = out.api_map or {}
        values = api.get("values", {}) if isinstance(api, dict) else {}
        assert values.get("privacy_export", {}).get("source", "").startswith("openapi"), values
        assert values.get("account_delete", {}).get("source", "").startswith("openapi"), values
    if faults:
        export = results_of(out, "compliance.privacy")["data export"]
        assert "does not contain the account's own data" in export.summary
        assert "still logs in" in results_of(out, "compliance.privacy")["account deletion"].summary
