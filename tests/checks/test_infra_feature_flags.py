"""infra.feature_flags against an Unleash-like flag server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from readyctl.config import Config, Environment
from tests.helpers import make_context, results_of, run_checks
from tests.servers import free_port, serve

TOKEN = "default:production.9f2c4e7a1b3d5f60"


def unleash(flags: list[str]) -> Any:
    """A minimal Unleash client API: GET .../client/features with a token."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        if scope["path"] != "/api/client/features":
            status, body = 404, {"error": "not found"}
        elif headers.get(b"authorization", b"").decode() != TOKEN:
            status, body = 401, {"error": "invalid token"}
        else:
            features = [{"name": f, "enabled": True, "strategies": []} for f in flags]
            status, body = 200, {"version": 2, "features": features}
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def _run(tmp: Path, env_text: str, settings: dict[str, Any] | None = None) -> Any:
    from readyctl.registry import load_catalog

    (tmp / ".env.production").write_text(env_text)
    ctx = make_context(
        config=Config(checks={"infra.feature_flags": settings or {}}),
        environment=Environment(
            env_file=".env.production", production=True, headers={"X-Bypass": "target-only"}
        ),
        base_dir=tmp,
    )
    return run_checks(ctx, [load_catalog().get("infra.feature_flags")])


def _one(out: Any) -> Any:
    (r,) = results_of(out, "infra.feature_flags").values()
    return r


def test_unleash_flag_readable_passes(tmp_path: Path) -> None:
    with serve(unleash(["crisis-detection-v2", "new-onboarding"])) as srv:
        env = f"UNLEASH_URL={srv.url}/api\nUNLEASH_API_TOKEN={TOKEN}\n"
        r = _one(_run(tmp_path, env, {"flag": "crisis-detection-v2"}))
        any_flag = _one(_run(tmp_path, env))
    assert r.status.value == "pass", r
    assert "crisis-detection-v2" in r.summary and "unleash" in r.subject
    assert any_flag.status.value == "pass" and any_flag.measured == 2
    assert TOKEN not in json.dumps([r.summary, dict(r.evidence)])


def test_unleash_wrong_token_missing_flag_or_down_fails(tmp_path: Path) -> None:
    with serve(unleash(["new-onboarding"])) as srv:
        wrong = _one(_run(tmp_path, f"UNLEASH_URL={srv.url}/api\nUNLEASH_API_TOKEN=nope\n"))
        env = f"UNLEASH_URL={srv.url}/api\nUNLEASH_API_TOKEN={TOKEN}\n"
        missing = _one(_run(tmp_path, env, {"flag": "crisis-detection-v2"}))
    with serve(unleash([])) as srv:
        empty = _one(_run(tmp_path, f"UNLEASH_URL={srv.url}/api\nUNLEASH_API_TOKEN={TOKEN}\n"))
    down = _one(_run(tmp_path, f"UNLEASH_URL=http://127.0.0.1:{free_port()}/api\n"))
    assert wrong.status.value == "fail" and "401" in wrong.summary
    assert missing.status.value == "fail" and "crisis-detection-v2" in missing.summary
    assert empty.status.value == "fail"
    assert down.status.value == "fail" and "did not answer" in down.summary


def test_url_setting_with_token_var(tmp_path: Path) -> None:
    with serve(unleash(["a"])) as srv:
        r = _one(
            _run(
                tmp_path,
                f"FLAGS_TOKEN={TOKEN}\n",
                {"url": f"{srv.url}/api", "provider": "unleash", "token_var": "FLAGS_TOKEN"},
            )
        )
    assert r.status.value == "pass", r


def test_declared_only_warns_and_nothing_declared_skips(tmp_path: Path) -> None:
    r = _one(_run(tmp_path, "OPENFEATURE_PROVIDER=configcat\n"))
    assert r.status.value == "warn" and "declared" in r.summary
    r = _one(_run(tmp_path, "NODE_ENV=production\n", {"provider": "unleash"}))
    assert r.status.value == "warn"
    r = _one(_run(tmp_path, "NODE_ENV=production\n"))
    assert r.status.value == "skip" and "not applicable" in (r.reason or "")
