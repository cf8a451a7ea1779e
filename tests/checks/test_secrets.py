"""Secrets checks: moto (server mode) over real boto3, mounted files, real git repos, demos."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from readyctl.config import AwsConfig, Config, EnvConfig, Environment
from tests.conftest import demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

NOW = dt.datetime.now(dt.UTC)
CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# built at runtime so this file holds no secret-shaped literal of its own
FAKE_AWS_KEY = "AKIA" + "Q7T4" * 4
FAKE_VALUE = "sv-" + "k9Qz" * 8


from tests.conftest import aws_client as _boto  # noqa: E402


def _aws_ctx(url: str, settings: dict[str, Any], *, now: dt.datetime | None = None) -> Any:
    env = Environment(aws=AwsConfig(region="us-east-1", endpoint_url=url))
    clock = (lambda: now) if now is not None else None
    kw = {"clock": clock} if clock else {}
    config = Config(env=EnvConfig(preset="counseling"), checks={"secrets.manager": settings})
    return make_context(config=config, environment=env, **kw)


def _texts(outcome: Any) -> str:
    return json.dumps(
        [[r.subject, r.summary, r.reason, dict(r.evidence)] for r in outcome.results], default=str
    )


# -- secrets.manager -------------------------------------------------------------------------
def test_manager_secretsmanager_pass_and_fail(moto: str) -> None:
    sm = _boto(moto, "secretsmanager")
    for name in ("JWT_SECRET", "OPENAI_API_KEY", "DOOMED"):
        sm.create_secret(Name=f"counsel/prod/{name}", SecretString=FAKE_VALUE)
    sm.delete_secret(SecretId="counsel/prod/DOOMED", RecoveryWindowInDays=7)
    settings = {
        "prefix": "counsel/prod/",
        "secrets": ["JWT_SECRET", "OPENAI_API_KEY", "DOOMED", "MISSING"],
    }
    out = run_checks(_aws_ctx(moto, settings), only=["secrets.manager"])
    got = statuses(out, "secrets.manager")
    assert got == {
        "counsel/prod/JWT_SECRET": "pass",
        "counsel/prod/OPENAI_API_KEY": "pass",
        "counsel/prod/DOOMED": "fail",
        "counsel/prod/MISSING": "fail",
    }
    res = results_of(out, "secrets.manager")
    assert "scheduled for deletion" in res["counsel/prod/DOOMED"].summary
    assert "does not exist" in res["counsel/prod/MISSING"].summary
    assert FAKE_VALUE not in _texts(out)  # metadata only: the value is never read

    # the same secrets 100 days later: not rotated within 90 days
    later = run_checks(
        _aws_ctx(moto, settings, now=NOW + dt.timedelta(days=100)), only=["secrets.manager"]
    )
    res = results_of(later, "secrets.manager")
    assert res["counsel/prod/JWT_SECRET"].status.value == "fail"
    assert "last rotated 100" in res["counsel/prod/JWT_SECRET"].summary

    # a new value (rotation) resets the age: the current version's date counts
    sm.put_secret_value(SecretId="counsel/prod/JWT_SECRET", SecretString=FAKE_VALUE + "2")
    ctx = _aws_ctx(moto, {**settings, "secrets": ["JWT_SECRET"]}, now=NOW + dt.timedelta(days=1))
    assert statuses(run_checks(ctx, only=["secrets.manager"]), "secrets.manager") == {
        "counsel/prod/JWT_SECRET": "pass"
    }


def test_manager_defaults_to_required_secret_env_names(moto: str) -> None:
    sm = _boto(moto, "secretsmanager")
    sm.create_secret(Name="JWT_SECRET", SecretString=FAKE_VALUE)
    got = statuses(run_checks(_aws_ctx(moto, {}), only=["secrets.manager"]), "secrets.manager")
    # env.required's secret variables: DATABASE_URL, JWT_SECRET, OPENAI_API_KEY, POSTMARK_API_TOKEN
    assert got == {
        "DATABASE_URL": "fail",
        "JWT_SECRET": "pass",
        "OPENAI_API_KEY": "fail",
        "POSTMARK_API_TOKEN": "fail",
    }


def test_manager_ssm_securestring_pass_plain_string_fails(moto: str) -> None:
    ssm = _boto(moto, "ssm")
    ssm.put_parameter(Name="/counsel/prod/JWT_SECRET", Value=FAKE_VALUE, Type="SecureString")
    ssm.put_parameter(Name="/counsel/prod/OPENAI_API_KEY", Value=FAKE_VALUE, Type="String")
    settings = {
        "provider": "ssm",
        "prefix": "/counsel/prod/",
        "secrets": {"JWT_SECRET": "JWT_SECRET", "OPENAI_API_KEY": "OPENAI_API_KEY", "X": "GONE"},
    }
    out = run_checks(_aws_ctx(moto, settings), only=["secrets.manager"])
    assert statuses(out, "secrets.manager") == {
        "/counsel/prod/JWT_SECRET": "pass",
        "/counsel/prod/OPENAI_API_KEY": "fail",
        "/counsel/prod/GONE": "fail",
    }
    assert (
        "not SecureString"
        in results_of(out, "secrets.manager")["/counsel/prod/OPENAI_API_KEY"].summary
    )
    assert FAKE_VALUE not in _texts(out)
    old = run_checks(
        _aws_ctx(moto, settings, now=NOW + dt.timedelta(days=91)), only=["secrets.manager"]
    )
    assert statuses(old, "secrets.manager")["/counsel/prod/JWT_SECRET"] == "fail"


def test_manager_mounted_files(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "jwt_secret").write_text(FAKE_VALUE)
    (secrets_dir / "openai_api_key").write_text(FAKE_VALUE)
    (secrets_dir / "postmark_api_token").write_text("")
    old = (NOW - dt.timedelta(days=120)).timestamp()
    os.utime(secrets_dir / "openai_api_key", (old, old))
    settings = {
        "secret_dir": str(secrets_dir),
        "secrets": ["jwt_secret", "openai_api_key", "postmark_api_token", "database_url"],
    }
    ctx = make_context(config=Config(checks={"secrets.manager": settings}), base_dir=tmp_path)
    out = run_checks(ctx, only=["secrets.manager"])
    assert statuses(out, "secrets.manager") == {
        "jwt_secret": "pass",
        "openai_api_key": "fail",
        "postmark_api_token": "fail",
        "database_url": "fail",
    }
    assert FAKE_VALUE not in _texts(out)


def _denied_app() -> Any:
    """Every AWS call is refused: JSON protocols get AccessDeniedException, S3 a 403."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = dict(scope["headers"])
        if b"x-amz-target" in headers:
            status, ctype = 400, b"application/x-amz-json-1.1"
            body = b'{"__type":"AccessDeniedException","message":"<b>denied</b>"}'
        else:
            status, ctype = 403, b"application/xml"
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def test_manager_access_denied_is_an_error_with_a_reason_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    with serve(_denied_app()) as srv:
        ctx = _aws_ctx(srv.url, {"secrets": ["JWT_SECRET"]})
        out = run_checks(ctx, only=["secrets.manager", "secrets.no_plain_env"])
    res = results_of(out, "secrets.manager")["JWT_SECRET"]
    assert res.status.value == "error"
    assert res.error_reason is not None and res.error_reason.value == "config"
    assert "AccessDenied" in (res.reason or "") and "permission" in (res.reason or "")
    assert statuses(out, "secrets.no_plain_env")  # the rest of the run still produced results


def test_manager_unreachable_endpoint_is_a_connectivity_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.servers import free_port

    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    ctx = _aws_ctx(f"http://127.0.0.1:{free_port()}", {"provider": "ssm", "secrets": ["A"]})
    out = run_checks(ctx, only=["secrets.manager"])
    res = results_of(out, "secrets.manager")["A"]
    assert res.status.value == "error" and res.error_reason is not None
    assert res.error_reason.value == "connectivity" and "could not reach" in (res.reason or "")


def test_manager_skips_when_nothing_is_configured(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["secrets.manager"])
    assert statuses(out, "secrets.manager") == {"*": "skip"}


# -- secrets.no_plain_env --------------------------------------------------------------------
def test_no_plain_env_passes_on_the_managed_demo(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "pass", res.summary
    assert "platform-rendered" in res.summary


def test_no_plain_env_fails_when_the_rendered_file_is_readable_by_others(
    healthy_demo,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    copy = tmp_path / "rendered.env"
    shutil.copyfile(healthy_demo.env_file, copy)
    copy.chmod(0o644)
    out = run_checks(demo_context(healthy_demo, env_file=str(copy)), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "fail"
    assert "0644" in res.summary
    assert healthy_demo.mail_token not in _texts(out)


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)
    return path


def _prod_ctx(tmp_path: Path, env_file: Path | None, settings: dict[str, Any] | None = None) -> Any:
    env = Environment(
        production=True,
        env_file=str(env_file) if env_file else None,
        env_source="file" if env_file else "process",
    )
    cfg = Config(checks={"secrets.no_plain_env": settings or {}})
    return make_context(config=cfg, environment=env, env_name="production", base_dir=tmp_path)


def _env_text() -> str:
    return f"NODE_ENV=production\nJWT_SECRET={FAKE_VALUE}\nFROM_EMAIL=a@b.org\n"


def test_no_plain_env_fails_for_a_plain_env_file(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "project")
    inside = repo / ".env.production"
    inside.write_text(_env_text())
    inside.chmod(0o600)
    out = run_checks(_prod_ctx(repo, inside), only=["secrets.no_plain_env"])
    res = results_of(out, "secrets.no_plain_env")["env file"]
    assert res.status.value == "fail" and "git work tree" in res.summary
    assert "JWT_SECRET" in res.summary and FAKE_VALUE not in _texts(out)

    outside = tmp_path / "etc" / "app.env"
    outside.parent.mkdir()
    outside.write_text(_env_text())
    outside.chmod(0o600)
    out = run_checks(_prod_ctx(tmp_path, outside), only=["secrets.no_plain_env"])
    assert statuses(out, "secrets.no_plain_env") == {"env file": "fail"}
    # declared as rendered by the platform (0600, outside a work tree): accepted
    out = run_checks(
        _prod_ctx(tmp_path, outside, {"platform_rendered": True}), only=["secrets.no_plain_env"]
    )
    assert statuses(out, "secrets.no_plain_env") == {"env file": "pass"}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600


def test_no_plain_env_passes_without_secrets_or_file_and_skips_outside_production(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "app.env"
    plain.write_text("NODE_ENV=production\nFROM_EMAIL=a@b.org\n")
    out = run_checks(_prod_ctx(tmp_path, plain), only=["secrets.no_plain_env"])
    assert statuses(out, "secrets.no_plain_env") == {"env file": "pass"}
    out = run_checks(_prod_ctx(tmp_path, None), only=["secrets.no_plain_env"])
    assert statuses(out, "secrets.no_plain_env") == {"env file": "pass"}
    env = Environment(production=False, env_file=str(plain))
    ctx = make_context(environment=env, env_name="staging", base_dir=tmp_path)
    assert statuses(run_checks(ctx, only=["secrets.no_plain_env"]), "secrets.no_plain_env") == {
        "env file": "skip"
    }


# -- secrets.git_tracked_env -----------------------------------------------------------------
def _repo_ctx(repo: Path, check: str, settings: dict[str, Any] | None = None) -> Any:
    cfg = Config(checks={check: settings or {}})
    return make_context(config=cfg, base_dir=repo)


def _track(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "--", *files], check=True, capture_output=True)


def test_git_tracked_env(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "project")
    _track(repo, {".env.example": "JWT_SECRET=changeme\n", "app.py": "print(1)\n"})
    (repo / ".env").write_text(_env_text())  # present but untracked: fine
    out = run_checks(_repo_ctx(repo, "secrets.git_tracked_env"), only=["secrets.git_tracked_env"])
    assert statuses(out, "secrets.git_tracked_env") == {"repository": "pass"}

    _track(repo, {"deploy/.env.production": _env_text()})
    out = run_checks(_repo_ctx(repo, "secrets.git_tracked_env"), only=["secrets.git_tracked_env"])
    assert statuses(out, "secrets.git_tracked_env") == {"deploy/.env.production": "fail"}
    allowed = _repo_ctx(repo, "secrets.git_tracked_env", {"allow": ["deploy/.env.production"]})
    out = run_checks(allowed, only=["secrets.git_tracked_env"])
    assert statuses(out, "secrets.git_tracked_env") == {"repository": "pass"}


def test_repo_checks_skip_on_the_managed_demo_and_outside_git(
    healthy_demo,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    only = ["secrets.git_tracked_env", "secrets.committed_literals"]
    ctx = demo_context(healthy_demo)
    ctx.base_dir = tmp_path
    _git_repo(tmp_path)  # even with a git repository at the config's directory
    out = run_checks(ctx, only=only)
    for cid in only:
        assert statuses(out, cid) == {"repository": "skip"}
        assert "managed demo" in results_of(out, cid)["repository"].summary
    plain = make_context(base_dir=tmp_path / "nogit")
    (tmp_path / "nogit").mkdir()
    out = run_checks(plain, only=only)
    for cid in only:
        assert statuses(out, cid) == {"*": "skip"}


# -- secrets.committed_literals --------------------------------------------------------------
def test_committed_literals(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "project")
    _track(
        repo,
        {
            "app/settings.py": f'AWS_KEY_ID = "{FAKE_AWS_KEY}"\nDEBUG = False\n',
            "README.md": "# project\n",
        },
    )
    cid = "secrets.committed_literals"
    out = run_checks(_repo_ctx(repo, cid), only=[cid])
    assert statuses(out, cid) == {"app/settings.py": "fail"}
    res = results_of(out, cid)["app/settings.py"]
    assert "line 1" in res.summary and "AWS Access Key" in res.summary
    assert FAKE_AWS_KEY not in _texts(out)
    hashed = res.evidence["findings"][0]["sha1"]
    assert len(hashed) == 40

    # accepted through the allow-list, a baseline, or by excluding the path
    for settings in ({"allow_hashes": [hashed]}, {"exclude": ["app/**"]}, {"exclude": ["app"]}):
        out = run_checks(_repo_ctx(repo, cid, settings), only=[cid])
        assert statuses(out, cid) == {"repository": "pass"}, settings
    baseline = {
        "version": "1.5.0",
        "results": {"app/settings.py": [{"type": "AWS Access Key", "hashed_secret": hashed}]},
    }
    (repo / ".secrets.baseline").write_text(json.dumps(baseline))
    out = run_checks(_repo_ctx(repo, cid), only=[cid])
    assert statuses(out, cid) == {"repository": "pass"}
    assert "1 accepted" in results_of(out, cid)["repository"].summary


def test_committed_literals_clean_repo_and_broken_baseline(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "project")
    _track(repo, {"main.py": "import os\nTOKEN = os.environ['API_TOKEN']\n"})
    cid = "secrets.committed_literals"
    out = run_checks(_repo_ctx(repo, cid), only=[cid])
    assert statuses(out, cid) == {"repository": "pass"}
    out = run_checks(_repo_ctx(repo, cid, {"baseline": "missing.baseline"}), only=[cid])
    res = results_of(out, cid)["repository"]
    assert res.status.value == "error" and "baseline" in (res.reason or "")
