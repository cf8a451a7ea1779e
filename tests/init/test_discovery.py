"""`readyctl init --base-url` against the demo's alternate API shape (routes readyctl is not
told): the written map, then `readyctl check --env staging` with the config unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from readyctl.demo.managed import start


@pytest.mark.slow
def test_init_discovers_the_alt_shape_and_check_runs_without_config_errors(
    readyctl: Any, tmp_path: Path
) -> None:
    demo = start((), shape="alt")
    try:
        user = demo.user("member")
        account = {
            "READYCTL_AUTH_USERNAME": user["email"],
            "READYCTL_AUTH_PASSWORD": user["password"],
        }
        root = tmp_path / "api"
        root.mkdir()
        run = readyctl(
            "init", "--base-url", demo.base_url, "--ca-bundle", demo.ca_bundle,
            cwd=root, env=account,
        )  # fmt: skip
        assert run.code == 0, run.both
        text = (root / "readyctl.yaml").read_text()
        api = yaml.safe_load(text)["environments"]["staging"]["api"]
        assert api["login"]["path"] == "/api/v2/auth/token" and api["login"]["body"] == "form"
        assert api["login"]["username_var"] == "READYCTL_AUTH_USERNAME"
        assert api["me"] == "/api/v2/users/me"
        assert api["refresh"]["send"] == "header"
        assert [x["path"] for x in api["lists"]] == ["/api/v2/counsel/sessions"]
        assert api["health"] == {"live": "/healthz", "ready": "/readyz"}
        assert api["prefix"] == "/api/v2"
        # each value says where it came from; what discovery could not find is named
        assert "# oauth metadata" in text and "# openapi (/api/v2/openapi.json)" in text
        assert "# cors_origin:" in text and "# password_reset:" in text
        out = " ".join(run.out.split())
        assert "logged in as the test account" in out
        undetermined = out.split("not determined: ", 1)[1].split(" (", 1)[0].split(", ")
        # the legal pages are looked for at the usual paths when the check runs
        assert set(undetermined) == {
            "password_reset",
            "cors_origin",
            "cacheable",
            "privacy_policy",
            "terms",
        }, undetermined
        assert api["privacy_export"] == {"method": "GET", "path": "/api/v2/users/me/export"}
        assert api["account_delete"] == {"method": "DELETE", "path": "/api/v2/users/me"}
        # nothing secret or machine-specific is written
        assert demo.base_url not in yaml.safe_dump(yaml.safe_load(text))
        assert demo.ca_bundle not in text and user["password"] not in text
        assert user["password"] not in run.both

        # the full check, with the variables the written config reads
        target = {
            **account,
            "STAGING_BASE_URL": demo.base_url,
            "STAGING_CA_BUNDLE": demo.ca_bundle,
        }
        out_dir = tmp_path / "reports"
        run = readyctl(
            "check", "--env", "staging", "--format", "json", "--out", str(out_dir),
            cwd=root, env=target, timeout=600,
        )  # fmt: skip
        assert run.code in (0, 1, 3), run.both
        report = json.loads((out_dir / "readiness.json").read_text())
        errors = [
            (r["id"], r["subject"], r["summary"])
            for r in report["results"]
            if r["status"] == "error"
        ]
        assert errors == [], errors
        values = report["api"]["values"]
        assert values["me"] == {"value": "/api/v2/users/me", "source": "config"}
        by = {(r["id"], r["subject"]): r["status"] for r in report["results"]}
        assert by[("auth.jwt_tampering", "alg-none")] == "pass"
        assert user["password"] not in run.both + json.dumps(report)

        # init --check: the routes agree with what discovery finds now ...
        run = readyctl("init", "--check", cwd=root, env=target)
        assert run.code == 0, run.both
        assert "compared with" in run.out
        # ... and a route that moved is named
        (root / "readyctl.yaml").write_text(text.replace("me: /api/v2/users/me", "me: /api/v2/me"))
        run = readyctl("init", "--check", "--base-url", demo.base_url, cwd=root, env=target)
        assert run.code == 1, run.both
        assert "api.me: readyctl.yaml says /api/v2/me; discovery finds /api/v2/users/me" in run.out

        # without the account: anonymous discovery, and init says what it could not do
        bare = tmp_path / "bare"
        bare.mkdir()
        run = readyctl("init", "--base-url", demo.base_url, "--ca-bundle", demo.ca_bundle, cwd=bare)
        assert run.code == 0, run.both
        out = " ".join(run.out.split())
        assert "READYCTL_AUTH_USERNAME / READYCTL_AUTH_PASSWORD are not set" in out
        bare_api = yaml.safe_load((bare / "readyctl.yaml").read_text())["environments"]["staging"][
            "api"
        ]
        assert bare_api["login"]["path"] == "/api/v2/auth/token"  # public OAuth metadata
        assert "me" not in bare_api  # the document is served only to a session
        # without the CA, the TLS failure is named with the flag that fixes it
        run = readyctl("init", "--dry-run", "--base-url", demo.base_url, cwd=bare)
        assert run.code == 0 and "--ca-bundle" in run.out, run.both
    finally:
        demo.stop()
