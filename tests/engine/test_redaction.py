"""Canary secrets planted in inputs never reach the terminal, the log, the JSON or errors."""

from __future__ import annotations

from pathlib import Path

from readyctl.redact import MASK, Redactor

CANARIES = {
    "jwt": "CanaryJwtSecret-7f3a9b2c4d6e8f0a1b3c5d7e9f",
    "dbpw": "CanaryDbPw-44a1b2",
    "openai": "sk-CanaryOpenAi-9d8c7b6a5f4e3d2c1b0a",
    "private": "CanaryPrivate-0011223344",
    "license": "CanaryLicense-5566",
}


def test_redactor_unit() -> None:
    r = Redactor()
    r.add_env(
        {
            "JWT_SECRET": "abcd1234efgh",
            "PLAIN": "visible-value",
            "DATABASE_URL": "postgresql://u:pw-xyz-1@h/db",
        },
        secret_names=[],
    )
    text = r.text(
        "jwt abcd1234efgh plain visible-value pw-xyz-1 "
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_sig_sig "
        "https://user:other-pw@host/x?token=qwerty123&x=1"
    )
    assert "abcd1234efgh" not in text and "pw-xyz-1" not in text and "other-pw" not in text
    assert "visible-value" in text and "eyJhbGci" not in text and "qwerty123" not in text
    assert r.value({"api_key": "zzz-zzz", "nested": [{"password": "p4ss-word"}]}) == {
        "api_key": MASK,
        "nested": [{"password": MASK}],
    }


def test_canaries_never_reach_any_output(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = tmp_path / ".env.production"
    env.write_text(
        "NODE_ENV=production\n"
        f"DATABASE_URL=postgresql://app:{CANARIES['dbpw']}@db.internal:5432/counsel\n"
        f"JWT_SECRET={CANARIES['jwt']}\n"
        f"OPENAI_API_KEY={CANARIES['openai']}\n"
        "POSTMARK_API_TOKEN=changeme\n"
        "FROM_EMAIL=care@counsel.example.org\n"
        "WEB_APP_URL=http://counsel.example.org\n"
        f"MY_PRIVATE_THING={CANARIES['private']}\n"
        f"LICENSE_CODE={CANARIES['license']}\n"
    )
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  prod:\n    env_file: .env.production\n    production: true\n"
        "env:\n  rules:\n"
        "    LICENSE_CODE: {type: int, secret: true}\n"
        "    JWT_SECRET: {type: int, secret: true}\n"
        "    DATABASE_URL: {type: email}\n"
    )
    log = tmp_path / "readyctl.log"
    r = readyctl(
        "check",
        "--format",
        "terminal,json",
        "--out",
        str(tmp_path / "out"),
        env={"READYCTL_LOG": str(log)},
    )
    assert r.code == 1, r.both
    outputs = {
        "stdout": r.out,
        "stderr": r.err,
        "json": (tmp_path / "out" / "readiness.json").read_text(),
        "log": log.read_text() if log.exists() else "",
    }
    assert "env.format" in outputs["stdout"]
    for where, text in outputs.items():
        for name, canary in CANARIES.items():
            assert canary not in text, f"{name} canary leaked into {where}"


def test_config_error_does_not_echo_url_password(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  s:\n    base_url: 'ftp://u:CanaryUrlPw99@host'\n"
    )
    r = readyctl("check")
    assert r.code == 2 and "CanaryUrlPw99" not in r.both and "base_url" in r.err


def test_short_secret_never_mangles_words_or_json(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from readyctl.report import Report
    from readyctl.reporters import jsonfile
    from readyctl.reporters.jsonfile import write

    private = Redactor()
    monkeypatch.setattr(jsonfile, "global_redactor", lambda: private)

    r = Redactor(["secret", "a-much-longer-secret-value"])
    assert r.text("secrets category; value=secret; x=a-much-longer-secret-value!") == (
        "secrets category; value=****; x=****!"
    )
    private.add("secret")
    out = write(Report({"category": "secrets", "summary": "JWT_SECRET=secret"}), tmp_path)
    data = json.loads(out.read_text())
    assert data == {"category": "secrets", "summary": "JWT_SECRET=****"}
