"""smoke: the configured scenarios through the run pipeline, past maintenance; fails on a fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from readyctl.config import Environment
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions.base import ActionFailed
from tests.runbook._actions_helpers import LocalServer, make_sc, ok_json, with_uses

CONFIG = """version: 2
environments:
  stage:
    base_url: http://127.0.0.1:9
checks:
  smoke.scenarios:
    scenarios:
      - name: ops
        steps:
          - {name: health, path: /health, expect: {status: 200}}
          - {name: items, path: /items, expect: {status: 200}}
"""


def test_smoke_passes_past_maintenance_and_fails_on_a_broken_path(tmp_path: Path) -> None:
    broken = {"items": False}

    def handler(req, n):  # type: ignore[no-untyped-def]
        if req.headers.get("x-maintenance-bypass") != "byp-77a1c":
            return 503, ok_json({"maintenance": True}), 0
        if req.path == "/items" and broken["items"]:
            return 500, ok_json({"error": "boom"}), 0
        return 200, ok_json(), 0

    config = tmp_path / "readyctl.yaml"
    config.write_text(CONFIG)
    maint = with_uses(
        "maintenance",
        {"mode": "on", "bypass_header": "X-Maintenance-Bypass", "bypass_secret_env": "BYP"},
    )
    with LocalServer(handler) as srv:

        def sc():  # type: ignore[no-untyped-def]
            return make_sc(
                tmp_path,
                {},
                step_id="smoke",
                config_path=config,
                env_name="stage",
                target=Environment(base_url=srv.url),
                records={"maint": maint},
                environ={"BYP": "byp-77a1c"},
            )

        res = REGISTRY["smoke"]().run(sc())
        assert res.record["exit_code"] == 0 and res.record["counts"]["pass"] >= 2
        assert Path(res.record["report"]).is_file()
        broken["items"] = True
        with pytest.raises(ActionFailed, match=r"smoke failed: smoke.scenarios ops/items"):
            REGISTRY["smoke"]().run(sc())
        assert "byp-77a1c" not in Path(res.record["report"]).read_text()


def test_smoke_max_ms_fails_a_slow_release_and_checks_its_value(tmp_path: Path) -> None:
    """A release that answers, but slowly: with `max_ms` the smoke step fails naming the step
    and its time; without it the same release passes (slowly)."""

    def handler(req, n):  # type: ignore[no-untyped-def]
        return 200, ok_json(), 0.6 if req.path == "/items" else 0

    config = tmp_path / "readyctl.yaml"
    config.write_text(CONFIG)
    with LocalServer(handler) as srv:

        def sc(params):  # type: ignore[no-untyped-def]
            return make_sc(
                tmp_path,
                params,
                step_id="smoke",
                config_path=config,
                env_name="stage",
                target=Environment(base_url=srv.url),
            )

        assert REGISTRY["smoke"]().run(sc({})).record["exit_code"] == 0
        assert REGISTRY["smoke"]().run(sc({"max_ms": ""})).record["exit_code"] == 0
        with pytest.raises(ActionFailed, match=r"ops/items.*more than 300 ms"):
            REGISTRY["smoke"]().run(sc({"max_ms": 300}))
        with pytest.raises(ActionFailed, match=r"max_ms"):
            REGISTRY["smoke"]().run(sc({"max_ms": "fast"}))
