"""`readyctl gate -- CMD`: CMD runs only on READY, and its exit code is passed on."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.engine.test_verdicts import _env_only

MARK = "cmd-ran.txt"


def _cmd(tmp_path: Path, code: int) -> list[str]:
    """A command that leaves a file behind (proof it ran) and exits with `code`."""
    script = f"open({str(tmp_path / MARK)!r}, 'w').write('x'); raise SystemExit({code})"
    return [sys.executable, "-c", script]


def test_ready_runs_the_command_and_passes_its_exit_code(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path, "gate: {require: none}\n")
    r = readyctl("gate", "--format", "json", "--", *_cmd(tmp_path, 7))
    assert r.code == 7, r.out + r.err
    assert (tmp_path / MARK).exists()
    assert "gate: READY: running" in r.err
    assert (tmp_path / "reports" / "readiness.json").is_file()  # the verdict is on record


def test_inconclusive_does_not_run_the_command(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path)  # nothing but an env file: required checklist items unverified
    r = readyctl("gate", "--format", "json", "--", *_cmd(tmp_path, 0))
    assert r.code == 3, r.out + r.err
    assert not (tmp_path / MARK).exists()
    assert "was not run" in r.err and "INCONCLUSIVE" in r.err


def test_not_ready_does_not_run_the_command(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path, "gate: {require: none}\n")
    (tmp_path / ".env.production").write_text("DEBUG=true\n")  # required variables missing
    r = readyctl("gate", "--format", "json", "--", *_cmd(tmp_path, 0))
    assert r.code == 1, r.out + r.err
    assert not (tmp_path / MARK).exists()
    assert "NOT READY" in r.err


def test_no_command_and_a_missing_program_are_usage_errors(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    _env_only(tmp_path, "gate: {require: none}\n")
    r = readyctl("gate", "--format", "json")
    assert r.code == 2 and "write it after --" in r.err and "Traceback" not in r.err
    r = readyctl("gate", "--format", "json", "--", str(tmp_path / "no-such-deploy.sh"))
    assert r.code == 2 and "cannot run" in r.err and "Traceback" not in r.err
