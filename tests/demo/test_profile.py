"""The managed demo's profile: its check defaults are valid settings, and the alt fragment
holds the same limits and load mix on the alternate routes."""

from __future__ import annotations

from pathlib import Path

import yaml

from readyctl.apimap import ApiConfig
from readyctl.check import check_class, settings_problem
from readyctl.demo import profile

DEMO = Path(__file__).resolve().parents[2] / "readyctl" / "demo"


def test_default_shape_check_settings_are_valid() -> None:
    for cid, raw in profile.check_defaults().items():
        cls = check_class(cid)
        assert cls is not None, cid
        assert settings_problem(cls, raw) is None, (cid, settings_problem(cls, raw))


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
