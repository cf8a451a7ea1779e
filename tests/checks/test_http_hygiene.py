"""HTTP hygiene checks on the managed demo: healthy is green, each fault turns its check red."""

from __future__ import annotations

import time

import pytest

from tests.conftest import demo_context
from tests.helpers import results_of, run_checks, statuses

pytestmark = pytest.mark.slow

MINE = [
    "http.security_headers",
    "http.banner",
    "http.cors",
    "http.error_hygiene",
    "http.compression",
    "http.pagination",
    "http.versioning",
    "http.docs_exposure",
]

# fault -> the checks it must turn red (and no other of MINE)
FAULT_MAP = {
    "no-security-headers": ["http.security_headers"],
    "server-banner": ["http.banner"],
    "cors-wildcard": ["http.cors"],
    "stack-traces": ["http.error_hygiene"],
    "no-compression": ["http.compression"],
    "no-pagination-cap": ["http.pagination"],
    "unversioned-api": ["http.versioning"],
    "docs-public": ["http.docs_exposure"],
}


def _bad(outcome, check_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Subjects of a check that did not pass or skip."""
    return {s: v for s, v in statuses(outcome, check_id).items() if v not in ("pass", "skip")}


def test_healthy_demo_is_green_and_fast(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    ctx = demo_context(healthy_demo)
    t0 = time.monotonic()
    out = run_checks(ctx, only=MINE, jobs=8)
    took = time.monotonic() - t0
    for cid in MINE:
        assert statuses(out, cid), cid
        assert _bad(out, cid) == {}, (cid, [r.summary for r in results_of(out, cid).values()])
    assert took < 60, f"the parallel run took {took:.1f} s"  # a hang guard
    sh = statuses(out, "http.security_headers")
    assert sh["score"] == "pass" and sh["CSP on /api/docs"] == "pass"
    assert sh["Cache-Control (authenticated)"] == "pass"
    assert results_of(out, "http.security_headers")["score"].measured == 100
    assert statuses(out, "http.cors")["allowed origin"] == "pass"
    assert statuses(out, "http.pagination") == {"/v1/counsel/sessions": "pass"}
    assert statuses(out, "http.docs_exposure")["/api/docs"] == "pass"
    comp = results_of(out, "http.compression")["/v1/counsel/sessions?limit=100"]
    assert comp.status.value == "pass" and comp.evidence["uncompressed_bytes"] > 1024
    # no secret reaches a result
    token = ctx.auth().token
    assert all(token not in r.summary and token not in str(r.evidence) for r in out.results)


def test_docs_reachable_outside_production(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    ctx = demo_context(healthy_demo, production=False)
    out = run_checks(ctx, only=["http.docs_exposure"])
    (r,) = results_of(out, "http.docs_exposure").values()
    assert r.status.value == "pass" and "with the session" in r.summary


@pytest.mark.parametrize(
    "group",
    [
        ("no-security-headers", "cors-wildcard", "no-compression", "unversioned-api"),
        ("server-banner", "stack-traces", "no-pagination-cap", "docs-public"),
    ],
    ids=["headers-cors-compression-versioning", "banner-traces-pagination-docs"],
)
def test_each_fault_turns_exactly_its_check_red(faulty_demo, group) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo(*group)
    out = run_checks(demo_context(demo), only=MINE, jobs=8)
    red = {cid for f in group for cid in FAULT_MAP[f]}
    for cid in MINE:
        bad = _bad(out, cid)
        if cid in red:
            assert "fail" in bad.values(), (cid, statuses(out, cid))
        else:
            assert bad == {}, (cid, bad)
    if "no-security-headers" in group:
        sh = statuses(out, "http.security_headers")
        assert sh["X-Content-Type-Options"] == "fail"
        assert sh["frame-ancestors / X-Frame-Options"] == "fail"
        assert sh["Referrer-Policy"] == "fail"
        assert sh["CSP on /api/docs"] == "fail"
        assert sh["score"] == "fail"
        assert sh["Cache-Control (authenticated)"] == "pass"
        assert results_of(out, "http.security_headers")["score"].measured == 45
    if "cors-wildcard" in group:
        cors = results_of(out, "http.cors")
        assert cors["allowed origin"].status.value == "pass"
        worst = cors["preflight from a foreign origin"]
        assert worst.status.value == "fail" and "WITH credentials" in worst.summary
        assert cors["simple GET from a foreign origin"].status.value == "fail"
    if "unversioned-api" in group:
        assert statuses(out, "http.versioning") == {
            "version prefix /v1": "fail",
            "unknown version /v99": "fail",
            "deprecated versions": "skip",
        }
    if "no-compression" in group:
        (r,) = results_of(out, "http.compression").values()
        assert r.status.value == "fail" and r.measured > 1024
    if "server-banner" in group:
        assert statuses(out, "http.banner") == {"Server": "fail", "X-Powered-By": "fail"}
    if "stack-traces" in group:
        eh = statuses(out, "http.error_hygiene")
        assert eh["malformed JSON"] == "fail" and eh["wrong types"] == "fail"
        assert eh["404 page"] == "pass" and eh["error shape"] == "pass"
    if "no-pagination-cap" in group:
        (r,) = results_of(out, "http.pagination").values()
        assert r.status.value == "fail" and r.measured == 150
    if "docs-public" in group:
        docs = statuses(out, "http.docs_exposure")
        assert docs["/api/docs"] == "fail" and docs["/api/docs-json"] == "fail"
        assert docs["/docs"] == "pass"


def test_explain_prints_the_scoring_table(readyctl) -> None:  # type: ignore[no-untyped-def]
    run = readyctl("explain", "http.security_headers")
    assert run.code == 0, run.both
    for key in ("framing-missing", "csp-unsafe-script", "cache-not-no-store", "-25"):
        assert key in run.out
