"""The probes and env checks against the real managed demo: green when healthy, red per fault."""

from __future__ import annotations

from tests.conftest import demo_context
from tests.helpers import run_checks, statuses


def test_healthy_demo_passes_probes_and_env(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["env.*", "http.reachable", "auth.session"])
    bad = [
        (r.check_id, r.subject, r.summary)
        for r in out.results
        if r.status.value not in ("pass", "skip")
    ]
    assert bad == []


def test_env_faults_turn_env_checks_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("missing-env", "env-placeholder", "weak-jwt-secret")
    out = run_checks(demo_context(d), only=["env.*"])
    assert statuses(out, "env.required")["OPENAI_API_KEY"] == "fail"
    assert statuses(out, "env.placeholder")["POSTMARK_API_TOKEN"] == "fail"
    assert statuses(out, "env.secret_strength")["JWT_SECRET"] == "fail"
