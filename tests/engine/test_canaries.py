"""Canary secrets planted in an env file and the config never reach any output (issue 11).

Each canary is built at runtime (so the repository holds no secret-shaped literal), unique to
the test run, and long. After `readyctl env validate` and `readyctl check` with every report
format, the log (READYCTL_LOG) and the history on, stdout, stderr, every report file, the
history directory and the log are searched for each canary and for every 12-character
substring of its secret part: zero hits.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from readyctl.redact import MASK

WINDOW = 12
HANG_GUARD_S = 60  # a hang guard for a CLI run (start-up included), not a timing assertion
ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class Canary:
    """A planted value: the variable, the whole value, and the parts that must never show."""

    name: str
    value: str
    secret_parts: tuple[str, ...]


def build_canaries() -> list[Canary]:
    """One of each secret the issue lists, unique to this run."""
    tag = _rand(6, string.ascii_lowercase)
    long_pw = _rand(70)  # longer than any truncation (env.format cut at 60)
    raw_a, raw_b, raw_c = _rand(18), _rand(18), _rand(18)
    raw_pw = f"{raw_a}/{raw_b}@{raw_c}:{_rand(14)}"
    enc_pw = f"{_rand(18)}/{_rand(18)}@{_rand(18)}"
    stripe = _rand(40)
    whsec = _rand(40)
    aws_id = _rand(16, string.ascii_uppercase + "234567")
    aws_secret = _rand(20) + "/" + _rand(9) + "+" + _rand(10)
    github = _rand(36)
    slack_token = f"{_rand(12, string.digits)}-{_rand(13, string.digits)}-{_rand(24)}"
    slack_hook = (
        f"T{_rand(10, string.ascii_uppercase)}/B{_rand(10, string.ascii_uppercase)}/{_rand(24)}"
    )
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": _rand(20)}).encode())
    payload = _b64url(json.dumps({"sub": _rand(24), "iat": 1700000000}).encode())
    jwt = f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"
    return [
        Canary("WEB_APP_URL", f"https://admin:{long_pw}@app-{tag}.example.org:99999/", (long_pw,)),
        Canary(
            "CACHE_URL",
            f"redis://cache:{raw_pw}@cache-{tag}.example.org:6379/0",
            (raw_pw, raw_a, raw_b, raw_c),
        ),
        Canary(
            "QUEUE_URL",
            f"amqp://queue:{quote(enc_pw, safe='')}@mq-{tag}.example.org:5672/jobs",
            (quote(enc_pw, safe=""), enc_pw),
        ),
        Canary("PAYMENT_PROVIDER", "sk" + "_live_" + stripe, (stripe,)),
        Canary("WEBHOOK_SIGNING", "wh" + "sec_" + whsec, (whsec,)),
        Canary("STORAGE_A", "AK" + "IA" + aws_id, (aws_id,)),
        Canary("STORAGE_B", aws_secret, (aws_secret,)),
        Canary("CI_HELPER", "gh" + "p_" + github, (github,)),
        Canary(
            "NOTIFY",
            f"xo{'xb'}-{slack_token} https://hooks.slack.com/services/{slack_hook}",
            (slack_token, slack_hook),
        ),
        Canary("SESSION_SAMPLE", jwt, (header, payload, jwt)),
    ]


def _dotenv(canaries: list[Canary], extra: str = "") -> str:
    lines = ["NODE_ENV=production", "FROM_EMAIL=care@counsel.example.org"]
    lines += [f'{c.name}="{c.value}"' for c in canaries]
    return "\n".join(lines) + "\n" + extra


def _windows(part: str) -> Iterator[str]:
    if len(part) <= WINDOW:
        yield part
        return
    for i in range(len(part) - WINDOW + 1):
        yield part[i : i + WINDOW]


def _outputs(tmp_path: Path, stdout: str, stderr: str, skip: set[Path]) -> dict[str, str]:
    found = {"stdout": stdout, "stderr": stderr}
    for p in sorted(tmp_path.rglob("*")):
        if p.is_file() and p not in skip:
            found[str(p.relative_to(tmp_path))] = p.read_text(errors="replace")
    return found


def assert_no_canary(canaries: list[Canary], outputs: dict[str, str]) -> None:
    """No canary, and no 12-character piece of a canary's secret part, anywhere."""
    leaks = []
    for c in canaries:
        needles = {c.value, *(w for part in c.secret_parts for w in _windows(part))}
        for where, text in outputs.items():
            hits = [n for n in needles if n in text]
            if hits:
                leaks.append(f"{c.name} leaked into {where}: {hits[0]!r}")
    assert not leaks, "\n".join(leaks[:20])


RULES = """\
env:
  rules:
    # secret: false makes env.format echo each value: redaction alone must mask them
    WEB_APP_URL: {type: https_url, secret: false}
    CACHE_URL: {type: email, secret: false}
    QUEUE_URL: {type: email, secret: false}
    PAYMENT_PROVIDER: {type: enum, values: [stripe, adyen], secret: false}
    WEBHOOK_SIGNING: {type: email, secret: false}
    STORAGE_A: {type: int, secret: false}
    STORAGE_B: {type: email, secret: false}
    CI_HELPER: {type: url, secret: false}
    NOTIFY: {type: url, secret: false}
    SESSION_SAMPLE: {type: duration, secret: false}
"""


@pytest.fixture
def canaries() -> list[Canary]:
    return build_canaries()


def _run_and_collect(
    readyctl: Callable[..., object], tmp_path: Path, *args: str
) -> tuple[int, dict[str, str], str]:
    log = tmp_path / "readyctl.log"
    env_file = tmp_path / "app.env"
    r = readyctl(
        *args,
        "--env-file",
        str(env_file),
        "--format",
        "terminal,json,html,junit,markdown",
        "--out",
        str(tmp_path / "reports"),
        env={"READYCTL_LOG": str(log)},
        timeout=HANG_GUARD_S,
    )
    outputs = _outputs(tmp_path, r.out, r.err, skip={env_file, tmp_path / "readyctl.yaml"})  # type: ignore[attr-defined]
    return r.code, outputs, r.both  # type: ignore[attr-defined]


def _assert_reports_written(tmp_path: Path, outputs: dict[str, str]) -> None:
    for name in ("readiness.json", "readiness.html", "readiness.xml", "readiness.md"):
        assert (tmp_path / "reports" / name).is_file(), name
    assert any(k.startswith(".readyctl/history/") for k in outputs), sorted(outputs)
    assert outputs.get("readyctl.log"), "the log was not written"


def test_env_validate_without_config_leaks_no_canary(readyctl, tmp_path: Path, canaries) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "app.env").write_text(_dotenv(canaries))
    code, outputs, both = _run_and_collect(readyctl, tmp_path, "env", "validate")
    assert code in (0, 1, 3), both
    _assert_reports_written(tmp_path, outputs)
    assert "env.format" in outputs["stdout"]
    assert_no_canary(canaries, outputs)


def test_env_validate_echoing_every_value_leaks_no_canary(
    readyctl, tmp_path: Path, canaries
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "app.env").write_text(_dotenv(canaries))
    (tmp_path / "readyctl.yaml").write_text(RULES)
    code, outputs, both = _run_and_collect(readyctl, tmp_path, "env", "validate")
    assert code == 1, both
    _assert_reports_written(tmp_path, outputs)
    report = json.loads(outputs["reports/readiness.json"])
    fmt = {r["subject"]: r for r in report["results"] if r["id"] == "env.format"}
    # the values were echoed (masked): the check did fail on each of them
    for c in canaries:
        assert fmt[c.name]["status"] == "fail", (c.name, fmt.get(c.name))
    assert_no_canary(canaries, outputs)
    assert MASK in fmt["WEB_APP_URL"]["summary"] and MASK in fmt["STORAGE_B"]["summary"]


def test_check_with_env_file_leaks_no_canary_and_big_values_pass(  # type: ignore[no-untyped-def]
    readyctl, tmp_path: Path, canaries
) -> None:
    huge = "a" * (120 * 1024)  # the 120 KB env value (28 s of backtracking before)
    (tmp_path / "app.env").write_text(_dotenv(canaries, extra=f"HUGE_SETTING={huge}\n"))
    reason = f"see {canaries[0].value} " + "w" * (100 * 1024)  # a 100 KB waiver reason
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    (tmp_path / "readyctl.yaml").write_text(
        RULES
        + "    HUGE_SETTING: {type: email}\n"
        + "waivers:\n"
        + "  - {check: env.format, subject: HUGE_SETTING, owner: ops, "
        + f"expires: {until}, reason: '{reason}'}}\n"
    )
    code, outputs, both = _run_and_collect(
        readyctl, tmp_path, "check", "--only", "env.*,secrets.no_plain_env"
    )
    assert code in (1, 3), both
    _assert_reports_written(tmp_path, outputs)
    report = json.loads(outputs["reports/readiness.json"])
    assert any(r["subject"] == "HUGE_SETTING" and r.get("waiver") for r in report["results"])
    assert_no_canary(canaries, outputs)
