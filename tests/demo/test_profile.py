"""The managed demo's profile: its check defaults are valid settings, and the alt fragment
holds the same limits and load mix on the alternate routes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from readyctl.apimap import ApiConfig
from readyctl.check import check_class, settings_problem
from readyctl.config import Config
from readyctl.demo import profile
from readyctl.demo.faults import ALERT_FAULTS, FAULTS, SHAPE_NOT_APPLICABLE
from tests.helpers import make_context

DEMO = Path(__file__).resolve().parents[2] / "readyctl" / "demo"


@pytest.mark.parametrize("faults", [(), ALERT_FAULTS])
def test_default_shape_check_settings_are_valid(faults: tuple[str, ...]) -> None:
    for cid, raw in profile.check_defaults(faults).items():
        cls = check_class(cid)
        assert cls is not None, cid
        assert settings_problem(cls, raw) is None, (cid, settings_problem(cls, raw))


@pytest.mark.parametrize(
    ("faults", "rules", "routing"),
    [
        ((), "rules.yml", "alertmanager.yml"),
        (("alert-rules-loose",), "rules-loose.yml", "alertmanager.yml"),
        (("alerts-unrouted",), "rules.yml", "alertmanager-unrouted.yml"),
        (ALERT_FAULTS, "rules-loose.yml", "alertmanager-unrouted.yml"),
    ],
)
def test_alert_faults_pick_the_shipped_file_the_checks_read(
    tmp_path: Path, faults: tuple[str, ...], rules: str, routing: str
) -> None:
    """The managed handle's faults reach the alerts checks' settings, as absolute paths to
    files in the package (the run's base directory plays no part)."""
    handle = SimpleNamespace(shape="default", faults=faults)
    ctx = make_context(base_dir=tmp_path, managed=handle)
    (rule_file,) = ctx.settings("alerts.rules").rule_files
    am = ctx.settings("alerts.routing").alertmanager_config
    assert Path(rule_file) == DEMO / "alerts" / rules and Path(rule_file).is_file()
    assert Path(am) == DEMO / "alerts" / routing and Path(am).is_file()
    assert ctx.resolve(am) == Path(am)
    # readyctl.yaml wins key by key; other shapes and unmanaged targets get nothing
    own = Config(checks={"alerts.routing": {"alertmanager_config": "am.yml"}})
    ctx = make_context(config=own, base_dir=tmp_path, managed=handle)
    assert ctx.settings("alerts.routing").alertmanager_config == "am.yml"
    alt = make_context(base_dir=tmp_path, managed=SimpleNamespace(shape="alt", faults=faults))
    assert alt.settings("alerts.rules").rule_files == ()
    assert make_context(base_dir=tmp_path).settings("alerts.routing").alertmanager_config is None


def test_alert_faults_are_registered_and_leave_the_alt_shapes_alone() -> None:
    assert FAULTS["alert-rules-loose"].checks == ["alerts.rules"]
    assert FAULTS["alerts-unrouted"].checks == ["alerts.routing"]
    for shape, names in SHAPE_NOT_APPLICABLE.items():
        assert set(ALERT_FAULTS) <= set(names), shape


def test_default_shape_map_is_a_valid_api_config() -> None:
    api = ApiConfig.model_validate(profile.COUNSELING_MAP)
    assert api.login is not None and api.login.path == "/v1/auth/login"


def test_alt_fragment_is_the_same_policy_on_other_routes() -> None:
    checks = yaml.safe_load((DEMO / "alt.readyctl.yaml").read_text())["checks"]
    for cid, raw in checks.items():
        cls = check_class(cid)
        assert cls is not None and settings_problem(cls, raw) is None, cid
    assert checks["ratelimit.policies"]["policies"] == profile.rate_limit_policies(
        "/api/v2", register="/api/v2/users", reset="/api/v2/auth/password-reset/request"
    )
    assert checks["load.thresholds"]["profiles"] == profile.load_profiles(
        "/api/v2", "page=1&size=20"
    )
    assert (DEMO / checks["smoke.scenarios"]["suite"]).is_file()
    assert checks["alerts.rules"]["conditions"] == profile.ALERT_CONDITIONS
    assert [(DEMO / f).is_file() for f in checks["alerts.rules"]["rule_files"]] == [True]
    assert (DEMO / checks["alerts.routing"]["alertmanager_config"]).is_file()
