"""maintenance: on/off through a command and through HTTP, the bypass by name, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readyctl.config import Environment
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions.base import ActionFailed
from tests.runbook._actions_helpers import LocalServer, make_sc, ok_json, with_uses

SECRET = "bypass-6f1c9e2a7b4d"


def test_command_on_off_and_rollback(tmp_path: Path) -> None:
    flag = tmp_path / "maintenance.flag"
    action = REGISTRY["maintenance"]()
    params = {
        "mode": "on",
        "run": f'echo "$READYCTL_MAINTENANCE" > {flag}',
        "off": {"run": f"rm -f {flag}"},
        "bypass_header": "X-Maintenance-Bypass",
        "bypass_secret_env": "BYPASS_SECRET",
    }
    sc = make_sc(tmp_path, params, environ={"BYPASS_SECRET": SECRET})
    res = action.run(sc)
    assert flag.read_text().strip() == "on"
    assert res.record == {
        "mode": "on",
        "how": "command",
        "bypass_header": "X-Maintenance-Bypass",
        "bypass_secret_env": "BYPASS_SECRET",
    }
    assert SECRET not in json.dumps(res.record) + res.summary
    assert sc.bypass_headers == {"X-Maintenance-Bypass": SECRET}
    back = action.rollback(sc, res.record)
    assert back is not None and "off" in back.summary
    assert not flag.exists()
    # `off` has nothing to undo
    assert action.rollback(sc, {"mode": "off"}) is None


def test_missing_secret_and_failing_command(tmp_path: Path) -> None:
    action = REGISTRY["maintenance"]()
    sc = make_sc(
        tmp_path,
        {"mode": "on", "run": "true", "bypass_header": "X-B", "bypass_secret_env": "NOPE"},
    )
    with pytest.raises(ActionFailed, match="NOPE"):
        action.run(sc)
    sc = make_sc(tmp_path, {"mode": "on", "run": "echo broken >&2; exit 4"})
    with pytest.raises(ActionFailed, match="exited with 4: broken"):
        action.run(sc)
    with pytest.raises(ActionFailed, match="mode must be on or off"):
        action.run(make_sc(tmp_path, {"mode": "maybe", "run": "true"}))


def test_http_on_off_with_bypass_for_later_steps(tmp_path: Path) -> None:
    def handler(req, n):  # type: ignore[no-untyped-def]
        return (200 if req.path.startswith("/admin/") else 404), ok_json(), 0

    with LocalServer(handler) as srv:
        target = Environment(base_url=srv.url)
        params = {
            "mode": "on",
            "http": {
                "method": "POST",
                "url": "/admin/maintenance",
                "headers": {"Authorization": "Bearer admintoken-9d8e7f"},
                "json": {"enabled": True},
            },
            "off": {"http": {"method": "DELETE", "url": f"{srv.url}/admin/maintenance"}},
            "bypass_header": "X-Maintenance-Bypass",
            "bypass_secret_env": "BYPASS_SECRET",
        }
        action = REGISTRY["maintenance"]()
        sc = make_sc(tmp_path, params, target=target, environ={"BYPASS_SECRET": SECRET})
        res = action.run(sc)
        on = srv.seen[0]
        assert (on.method, on.path) == ("POST", "/admin/maintenance")
        assert json.loads(on.body) == {"enabled": True}
        assert on.headers["authorization"] == "Bearer admintoken-9d8e7f"
        assert res.record["how"] == "http" and SECRET not in json.dumps(res.record)
        # a later step (a fresh context) gets the bypass from the record, by variable name
        from readyctl.runbook.actions import _common

        later = make_sc(
            tmp_path,
            records={"maint": with_uses("maintenance", res.record)},
            environ={"BYPASS_SECRET": SECRET},
        )
        assert _common.bypass_headers(later) == {"X-Maintenance-Bypass": SECRET}
        action.rollback(sc, res.record)
        off = srv.seen[-1]
        assert (off.method, off.path) == ("DELETE", "/admin/maintenance")
        bad = make_sc(tmp_path, {"mode": "on", "http": {"url": "/nope"}}, target=target)
        with pytest.raises(ActionFailed, match="answered 404"):
            action.run(bad)
