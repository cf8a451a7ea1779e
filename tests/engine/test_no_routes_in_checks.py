"""No check knows a route: every path comes from the API map (ctx.api()) or a setting.

A check that guessed a route (the bundled demo's /v1/counsel/sessions, /health, ...) answered
ERROR with a 404 on every other API; this test keeps such literals out of checks/.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

CHECKS = ROOT / "checks"
# a string that is entirely a URL path (with an optional query): "/health", "/v1/x?limit=20"
ROUTE = re.compile(r"^/[A-Za-z0-9_.~{}\-]+(/[A-Za-z0-9_.~{}\-]*)*(\?.*)?$")
# the base URL itself, and readyctl's own probe paths (which must not exist on the target)
ALLOWED_PREFIX = "/readyctl-"
# keyword arguments whose string values are not routes (a result's unit: "/100")
NOT_ROUTES = frozenset({"unit"})
MESSAGE = "routes come from the API map (ctx.api()) or a setting"


def _exempt(tree: ast.AST) -> set[int]:
    """ids of the constants passed as keyword arguments that never hold a route."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg in NOT_ROUTES
    }


def route_literals(source: str, filename: str = "<check>") -> list[tuple[int, str]]:
    """(line, value) of every string constant that is entirely a URL path, the constant parts
    of f-strings included (ast keeps them as Constant nodes inside JoinedStr), by line."""
    tree = ast.parse(source, filename)
    exempt = _exempt(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        value = node.value
        if id(node) in exempt or value == "/" or value.startswith(ALLOWED_PREFIX):
            continue
        if ROUTE.match(value):
            found.append((node.lineno, value))
    return sorted(found)


def test_the_detector_finds_routes_and_leaves_the_rest() -> None:
    source = (
        'DEFAULT = ("/health", "/")\n'
        'LIST = "/v1/counsel/sessions?limit=20"\n'
        "def f(api):\n"
        '    a = f"{api}/counsel/sessions/{{session_id}}"\n'
        '    b = f"/readyctl-404-{api}"\n'
        '    c = "GET /health answered 404"\n'
        "    d = \"@app.get('/health/ready')\\nasync def ready(): ...\"\n"
        '    e = Result(unit="/100", path="/metrics")\n'
        '    g = f"{api}?{q}"\n'
    )
    found = list(route_literals(source))
    assert found == [
        (1, "/health"),
        (2, "/v1/counsel/sessions?limit=20"),
        (4, "/counsel/sessions/{session_id}"),
        (8, "/metrics"),
    ], found


def test_no_check_module_holds_a_route_literal() -> None:
    modules = sorted(CHECKS.rglob("*.py"))
    assert len(modules) > 40, f"no check modules under {CHECKS}"
    offenders = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {value!r}"
        for path in modules
        for line, value in route_literals(path.read_text(encoding="utf-8"), str(path))
    ]
    assert not offenders, (
        f"{len(offenders)} route literal(s) in checks/: {MESSAGE} (a check whose route is "
        "unknown raises RouteUnknown via api.need(key) and is skipped naming the key); only "
        f'"/" and readyctl\'s own "{ALLOWED_PREFIX}..." probe paths may be written out:\n'
        + "\n".join(offenders)
    )
