"""deploy: the deploy command detached, the ready wait, the rollback to the previous release."""

from __future__ import annotations

from pathlib import Path

import pytest

from readyctl.config import Environment
from readyctl.runbook.actions import REGISTRY
from readyctl.runbook.actions.base import ActionFailed
from tests.runbook._actions_helpers import LocalServer, make_sc, ok_json


def test_deploy_waits_ready_and_rolls_back(tmp_path: Path) -> None:
    served = tmp_path / "release.txt"
    state = {"ready_after": 3}

    def handler(req, n):  # type: ignore[no-untyped-def]
        if req.path == "/health/ready":
            state["ready_after"] -= 1
            return (200 if state["ready_after"] <= 0 else 503), ok_json(), 0
        return 404, b"{}", 0

    with LocalServer(handler) as srv:
        target = Environment(base_url=srv.url, api={"health": {"ready": "/health/ready"}})
        params = {
            "command": f"echo ${{release}} > {served}; echo deployed $READYCTL_RELEASE",
            "ready_timeout": "10s",
        }
        action = REGISTRY["deploy"]()
        sc = make_sc(tmp_path, params, target=target, release="v2", previous_release="v1")
        res = action.run(sc)
        assert served.read_text().strip() == "v2"
        assert res.record["release"] == "v2" and res.record["previous_release"] == "v1"
        assert "deployed v2" in Path(res.record["log"]).read_text()
        assert res.record["ready_url"] == f"{srv.url}/health/ready"
        # the engine may have expanded ${release} already: the rollback swaps the word
        expanded = make_sc(tmp_path, {**params, "command": f"echo v2 > {served}"}, target=target)
        back = action.rollback(expanded, res.record)
        assert back is not None and "v1" in back.summary
        assert served.read_text().strip() == "v1"
        action.rollback(sc, res.record)  # with the placeholder
        assert served.read_text().strip() == "v1"


def test_previous_release_command_and_failures(tmp_path: Path) -> None:
    def handler(req, n):  # type: ignore[no-untyped-def]
        return (503 if req.path == "/health" else 404), b"{}", 0

    with LocalServer(handler) as srv:
        target = Environment(base_url=srv.url)
        action = REGISTRY["deploy"]()
        sc = make_sc(
            tmp_path,
            {"command": "echo oops >&2; exit 3", "previous_release_command": "echo v0"},
            target=target,
            release="v2",
        )
        with pytest.raises(ActionFailed, match="exited with 3: oops") as err:
            action.run(sc)
        assert err.value.record["previous_release"] == "v0"
        sc = make_sc(tmp_path, {"command": "true", "ready_timeout": 1}, target=target, release="v2")
        with pytest.raises(ActionFailed, match=r"not ready.*HTTP 503"):
            action.run(sc)
        with pytest.raises(ActionFailed, match="no previous release"):
            action.rollback(sc, {"release": "v2", "previous_release": None})
