"""The CLI end to end in subprocesses: exit codes, one-line errors, plan, catalog, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GOOD_ENV, ROOT


def test_env_validate_without_config(readyctl, env_file) -> None:  # type: ignore[no-untyped-def]
    # no readyctl.yaml and no .env.example: nothing says what is required ...
    f = env_file()
    r = readyctl("env", "validate", "--env-file", str(f))
    assert "env.required" in r.out and ".env.example" in r.out, r.both
    # ... the project's .env.example does
    documented = "".join(
        f"{line.split('=')[0]}=\n" for line in GOOD_ENV.splitlines() if "=" in line
    )
    f = env_file(example=documented)
    r = readyctl("env", "validate", "--env-file", str(f))
    assert r.code == 0, r.both
    assert "READY" in r.out and "Traceback" not in r.both
    bad = env_file(
        GOOD_ENV.replace(
            "JWT_SECRET=9fK2vQ7xLm4ZpR8tW1yB6nC3hJ5sD0gE-aU_kX", "JWT_SECRET=changeme"
        ),
        name=".env.bad",
    )
    r = readyctl("env", "validate", "--env-file", str(bad))
    assert r.code == 1 and "env.placeholder" in r.out and "NOT READY" in r.out


def test_env_validate_usage_errors(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = readyctl("env", "validate", "--env-file", str(tmp_path / "nope.env"))
    assert r.code == 2 and r.err.startswith("error:") and "Traceback" not in r.both
    assert len(r.err.strip().splitlines()) == 1
    r = readyctl("env", "validate")
    assert r.code == 2 and "--env-file" in r.err


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("version: 1\nenvironments:\n  s:\n    base_url: [x\n", "YAML syntax error"),
        ("version: 1\nenvironments:\n  s:\n    colour: blue\n", "environments.s.colour"),
        ("version: 1\nrunner:\n  jobs: many\n", "runner.jobs"),
        ("version: 1\nonly: [no.such_check]\n", "only.0"),
        ("version: 1\nenvironments:\n  s:\n    env_file: .env.missing\n", "env_file"),
    ],
)
def test_bad_config_is_one_line_exit_2(
    readyctl,
    tmp_path: Path,
    yaml_text: str,  # type: ignore[no-untyped-def]
    needle: str,
) -> None:
    (tmp_path / "readyctl.yaml").write_text(yaml_text)
    r = readyctl("check")
    assert r.code == 2, r.both
    assert "Traceback" not in r.both
    line = r.err.strip()
    assert "\n" not in line and needle in line and "readyctl.yaml:" in line


def test_unknown_only_flag_and_format(readyctl, env_file) -> None:  # type: ignore[no-untyped-def]
    f = env_file()
    r = readyctl("check", "--env-file", str(f), "--only", "nothing.here")
    assert r.code == 2 and "matches no check" in r.err
    r = readyctl("check", "--env-file", str(f), "--format", "pdf")
    assert r.code == 2 and "unknown format" in r.err
    r = readyctl("check", "--env-file", str(f), "--deadline", "soon")
    assert r.code == 2 and "duration" in r.err


def test_check_writes_json_contract(readyctl, env_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = env_file(example=GOOD_ENV)
    r = readyctl("check", "--env-file", str(f), "--out", str(tmp_path / "out"), "--quiet")
    # everything it looked at holds, but an env file alone verifies few checklist items
    assert r.code == 3, r.both
    data = json.loads((tmp_path / "out" / "readiness.json").read_text())
    for key in (
        "schema_version",
        "score",
        "grade",
        "verdict",
        "gate",
        "environment",
        "target",
        "started_at",
        "duration_s",
        "results",
        "checklist",
    ):
        assert key in data
    assert data["verdict"] == "inconclusive" and data["score"] == 100 and data["grade"] == "A+"
    res = data["results"][0]
    for key in (
        "id",
        "subject",
        "title",
        "category",
        "severity",
        "status",
        "score",
        "summary",
        "reason",
        "measured",
        "threshold",
        "evidence",
        "remediation",
        "duration_ms",
        "attempts",
        "waiver",
    ):
        assert key in res
    assert r.out.startswith("INCONCLUSIVE")


def test_plan_contacts_nothing(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  prod:\n    base_url: https://203.0.113.1\n    production: true\n"
        "    database_url: postgresql://u:PlanCanary77@203.0.113.1/db\n"
    )
    t0 = time.monotonic()
    r = readyctl("check", "--plan")
    assert r.code == 0, r.both
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target
    assert "env.required" in r.out and "nothing was contacted" in r.out
    assert "PlanCanary77" not in r.both
    assert not (tmp_path / "reports").exists()


def test_list_and_explain(readyctl) -> None:  # type: ignore[no-untyped-def]
    r = readyctl("list", "--format", "json")
    rows = json.loads(r.out)
    ids = {row["id"] for row in rows}
    assert {"env.required", "env.format", "env.placeholder"} <= ids
    for row in rows:
        assert {
            "id",
            "title",
            "failure_title",
            "severity",
            "category",
            "requires",
            "safety",
        } <= row.keys()
    r = readyctl("explain", "env.secret_strength")
    assert r.code == 0 and "RFC 7518" in r.out and "Seed items" in r.out
    r = readyctl("explain", "env.secret_strenght")
    assert r.code == 2 and "env.secret_strength" in r.err


def test_help_documents_exit_codes(readyctl) -> None:  # type: ignore[no-untyped-def]
    r = readyctl("check", "--help")
    text = " ".join(r.out.split())
    assert "130 interrupted" in text and "3 inconclusive" in text
    assert "4 internal error" in text
    r = readyctl("--version")
    assert r.code == 0 and r.out.startswith("readyctl ")


PLUGIN = """
import time, pathlib
from readyctl.check import Check, CheckMeta, RemediationSpec, Category, Severity

class Sleepy(Check):
    meta = CheckMeta(id="sleepy_plugin.ops.sleepy", title="Sleeps well",
                     failure_title="Sleeps badly", description="A plugin check used in tests.",
                     remediation=RemediationSpec(text="Wake up."), category=Category.OPERATIONS,
                     severity=Severity.LOW, timeout_s=60)

    def run(self, ctx):
        marker = pathlib.Path(ctx.environ["SLEEPY_MARKER"])
        ctx.add_cleanup(lambda: marker.write_text("cleaned"))
        marker.write_text("running")
        for _ in range(600):
            ctx.check_deadline()
            time.sleep(0.05)
        yield self.passed("nap", "slept")

class Quick(Check):
    meta = CheckMeta(id="sleepy_plugin.ops.quick", title="Is quick", failure_title="Is slow",
                     description="A plugin check used in tests.",
                     remediation=RemediationSpec(text="Hurry."), category=Category.OPERATIONS,
                     severity=Severity.LOW)

    def run(self, ctx):
        pathlib.Path(ctx.environ["SLEEPY_MARKER"] + ".quick").write_text("done")
        yield self.passed("q", "quick")
"""


def make_plugin(site: Path) -> Path:
    """A real entry-point plugin, importable through PYTHONPATH (no pip needed)."""
    pkg = site / "sleepy_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN)
    dist = site / "sleepy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sleepy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[readyctl.checks]\nsleepy = sleepy_plugin\n")
    return site


def test_ctrl_c_cleans_up_writes_partial_report_and_exits_130(tmp_path: Path) -> None:
    site = make_plugin(tmp_path / "site")
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}", SLEEPY_MARKER=str(marker))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "readyctl",
            "check",
            "--only",
            "sleepy_plugin.*",
            "--out",
            str(tmp_path / "out"),
            "--no-color",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # interrupt once the sleepy check runs (and its cleanup is registered), however loaded
    # the machine is; the bound is a hang guard only
    quick = Path(f"{marker}.quick")
    for _ in range(1200):
        if (marker.exists() and quick.exists()) or proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the quick check's result reaches the runner
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert marker.read_text() == "cleaned"
    data = json.loads((tmp_path / "out" / "readiness.json").read_text())
    assert data["interrupted"] is True
    got = {r["id"]: r["status"] for r in data["results"]}
    assert got["sleepy_plugin.ops.quick"] == "pass"
    assert got["sleepy_plugin.ops.sleepy"] == "skip"


def test_internal_error_is_exit_4_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in readyctl is not a verdict: exit 4 (not 3, inconclusive), one line, no trace."""
    import readyctl.cli as cli
    from readyctl.scoring import EXIT_INCONCLUSIVE, EXIT_INTERNAL

    def broken(**kw: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.delenv("READYCTL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == EXIT_INTERNAL == 4 != EXIT_INCONCLUSIVE
    err = capsys.readouterr().err
    assert err == (
        "internal error: RuntimeError: boom (set READYCTL_DEBUG=1 for the traceback); "
        "please report it\n"
    )
    monkeypatch.setenv("READYCTL_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main()
