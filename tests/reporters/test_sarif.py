"""readiness.sarif: SARIF 2.1.0 that validates against the schema, names the files and lines,
and never carries a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema

from tests.checks.test_secrets import FAKE_AWS_KEY, _git_repo

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-2.1.0.json"
MIGRATION = """-- add a lookup index
ALTER TABLE users ADD COLUMN nickname text;
CREATE INDEX users_nickname_idx ON users (nickname);
"""


def _project(tmp_path: Path) -> Path:
    repo = _git_repo(tmp_path / "project")
    files = {
        "app/settings.py": f'DEBUG = False\nAWS_KEY_ID = "{FAKE_AWS_KEY}"\n',
        "db/migrations/0002_nickname.sql": MIGRATION,
        "readyctl.yaml": (
            "environments:\n  ci: {}\n"
            "checks:\n  migrations.lint: {sql_files: 'db/migrations/*.sql'}\n"
        ),
    }
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "--", *files], check=True, capture_output=True)
    return repo


def test_sarif_names_the_secret_and_the_migration_and_validates(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    repo = _project(tmp_path)
    only = "secrets.committed_literals,migrations.lint"
    r = readyctl("check", "--only", only, "--format", "json,sarif", "--no-history", cwd=repo)
    assert r.code == 1, r.out + r.err
    text = (repo / "reports" / "readiness.sarif").read_text()
    assert FAKE_AWS_KEY not in text
    doc = json.loads(text)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (run,) = doc["runs"]
    rules = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert rules == {"secrets.committed_literals", "migrations.lint"}
    places = {
        (
            res["ruleId"],
            res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            res["locations"][0]["physicalLocation"].get("region", {}).get("startLine"),
        )
        for res in run["results"]
    }
    # the secret's file and line; the migration file and the line of the unsafe statement
    assert ("secrets.committed_literals", "app/settings.py", 2) in places
    assert ("migrations.lint", "db/migrations/0002_nickname.sql", 3) in places
    for res in run["results"]:
        loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert loc["uriBaseId"] == "%SRCROOT%"
        assert res["level"] == "error"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.resolve().as_uri() + "/"


def test_sarif_of_a_clean_run_has_no_results(tmp_path: Path, readyctl) -> None:  # type: ignore[no-untyped-def]
    repo = _project(tmp_path)
    (repo / "app" / "settings.py").write_text("DEBUG = False\n")
    (repo / "db" / "migrations" / "0002_nickname.sql").write_text(
        "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN nickname text;\n"
    )
    only = "secrets.committed_literals,migrations.lint"
    r = readyctl("check", "--only", only, "--format", "json,sarif", "--no-history", cwd=repo)
    assert r.code in (0, 3), r.out + r.err  # nothing fails (no database: lint judges files)
    report = json.loads((repo / "reports" / "readiness.json").read_text())
    assert {x["status"] for x in report["results"]} == {"pass"}, report["results"]
    doc = json.loads((repo / "reports" / "readiness.sarif").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["runs"][0]["results"] == []
