"""Baselines: only a run whose gate passed (or a pinned one) is compared with (issue 10.5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from readyctl.checks.load._run import CACHE_KEY, Measured
from readyctl.checks.load.regression import LoadRegression

from readyctl.config import Config
from readyctl.loadrun import EndpointStats, LoadStats
from tests.conftest import GOOD_ENV
from tests.helpers import make_context

LOAD_RUN = {"users": 110, "profiles": {"counsel": {"users": 100}, "sessions": {"users": 10}}}
ENV_KEY = "prod|only=env.*|skip="
SLOW_ENV = GOOD_ENV.replace("NODE_ENV=production", "NODE_ENV=development")


def write_run(
    history: Path,
    stamp: str,
    *,
    env: str = "prod",
    passed: bool,
    score: float | None = None,
    results: list[dict[str, Any]] | None = None,
    key: str = ENV_KEY,
    interrupted: bool = False,
) -> Path:
    """A readiness.json as `readyctl check` keeps it under the history directory.

    `stamp` is like 20261129T101500; the file is `{stamp}-{env}.json` (its run id).
    """
    history.mkdir(parents=True, exist_ok=True)
    started = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
    verdict = "ready" if passed else "not_ready"
    data = {
        "schema_version": 1,
        "tool": {"name": "readyctl", "version": "test"},
        "score": score if score is not None else (100.0 if passed else 60.0),
        "grade": "A" if passed else "F",
        "verdict": verdict,
        "exit_code": 0 if passed else 1,
        "gate": {
            "passed": passed,
            "reasons": [] if passed else [{"code": "score", "message": "score under fail_under"}],
        },
        "environment": {"name": env, "production": True},
        "target": {},
        "started_at": started + "+00:00",
        "duration_s": 1.0,
        "interrupted": interrupted,
        "selection_key": key,
        "results": results or [],
        "baseline": None,
        "history": [],
    }
    path = history / f"{stamp}-{env}.json"
    path.write_text(json.dumps(data))
    return path


def load_results(p95_ms: float) -> list[dict[str, Any]]:
    """load.thresholds' results as a run with this overall p95 leaves them."""
    status = "pass" if p95_ms <= 1000 else "fail"
    return [
        {
            "id": "load.thresholds",
            "subject": "overall/p95_ms",
            "status": status,
            "measured": p95_ms,
            "evidence": {"run": LOAD_RUN},
        },
        {"id": "load.thresholds", "subject": "overall/error_rate", "status": "pass", "measured": 0},
    ]


def measured(p95_ms: float) -> Measured:
    """This run's load measurement (as load.thresholds leaves it for load.regression)."""
    overall = EndpointStats(
        name="overall",
        method="",
        requests=600,
        failures=0,
        p50_ms=p95_ms / 3,
        p95_ms=p95_ms,
        p99_ms=p95_ms * 1.2,
        avg_ms=p95_ms / 2,
        max_ms=p95_ms * 1.5,
        rps=40.0,
    )
    stats = LoadStats(
        endpoints={}, overall=overall, timeline=[], wall_s=8.0, mode="standalone", source="test"
    )
    return Measured(stats, dict(LOAD_RUN), None)


def regression_results(tmp_path: Path, p95_ms: float) -> dict[str, Any]:
    """Run load.regression (`baseline: last`) against this run's measurement."""
    ctx = make_context(config=Config(), env_name="prod", base_dir=tmp_path)
    ctx.state.cache[CACHE_KEY] = measured(p95_ms)
    view = ctx.for_check("load.regression", 60, None)
    return {r.subject: r for r in LoadRegression().run(view)}


def test_load_regression_compares_with_the_newest_passing_run_not_a_slow_failing_one(
    tmp_path: Path,
) -> None:
    history = tmp_path / ".readyctl" / "history"
    good = write_run(history, "20261129T100000", passed=True, results=load_results(1000))
    write_run(history, "20261129T110000", passed=False, score=55, results=load_results(3000))
    got = regression_results(tmp_path, 3000)
    p95 = got["overall/p95_ms"]
    assert p95.evidence["baseline_report"] == good.name
    assert p95.evidence["baseline"] == 1000 and p95.evidence["baseline_pinned"] is False
    assert p95.status.value == "fail", p95.summary  # 3000 ms against 1000 ms: regressed
    # with no passing run at all, load.regression skips and says how to pin one
    (history / good.name).unlink()
    (skip,) = regression_results(tmp_path, 3000).values()
    assert skip.status.value == "skip"
    assert "no passing run" in skip.summary and "readyctl baseline pin" in skip.summary


def test_a_pinned_run_wins_for_load_regression(tmp_path: Path) -> None:
    from readyctl import history

    folder = tmp_path / ".readyctl" / "history"
    old = write_run(folder, "20261129T080000", passed=True, results=load_results(1000))
    newer = write_run(folder, "20261129T090000", passed=True, results=load_results(2900))
    got = regression_results(tmp_path, 3000)["overall/p95_ms"]
    assert got.evidence["baseline_report"] == newer.name and got.status.value == "pass"
    history.pin(folder, "prod|only=load.*|skip=", old, history.load_baseline(old), old.stem)
    got = regression_results(tmp_path, 3000)["overall/p95_ms"]
    assert got.evidence["baseline_report"] == old.name and got.evidence["baseline_pinned"]
    assert got.status.value == "fail"


# -- `--baseline last` and `readyctl baseline` through the CLI --------------------------------
def env_results(node_env: str) -> list[dict[str, Any]]:
    """The one env.* result these tests compare: NODE_ENV passes only when it is production."""
    status = "pass" if node_env == "production" else "fail"
    return [{"id": "env.production", "subject": "NODE_ENV", "status": status}]


def setup_prod(tmp_path: Path, env_text: str, extra: str = "") -> Path:
    (tmp_path / ".env.production").write_text(env_text)
    (tmp_path / "readyctl.yaml").write_text(
        "environments:\n  prod:\n    env_file: .env.production\n    production: true\n" + extra
    )
    return tmp_path / ".readyctl" / "history"


def report_json(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "reports" / "readiness.json").read_text())


def test_find_last_skips_failing_interrupted_and_other_selections(tmp_path: Path) -> None:
    from readyctl import history

    folder = tmp_path / "h"
    assert history.find_last(folder, ENV_KEY) is None
    good = write_run(folder, "20261129T080000", passed=True)
    write_run(folder, "20261129T090000", passed=False)
    write_run(folder, "20261129T100000", passed=True, interrupted=True)
    write_run(folder, "20261129T110000", passed=True, key="prod|only=|skip=")
    write_run(folder, "20261129T120000", env="staging", passed=True, key="staging|only=|skip=")
    found = history.find_last(folder, ENV_KEY)
    assert found is not None and found.path == good and not found.pinned
    assert found.describe()["run"] == "20261129T080000-prod"
    assert found.describe()["selected_by"] == "newest_passing"


def test_baseline_last_ignores_a_failing_newest_run_and_a_pass_to_fail_is_a_regression(
    readyctl, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from readyctl.report_schema import BASELINE_SCHEMA

    folder = setup_prod(tmp_path, SLOW_ENV)
    write_run(folder, "20261129T090000", passed=True, results=env_results("production"))
    # the newest run already failed the same way: comparing with it would hide the regression
    write_run(folder, "20261129T100000", passed=False, results=env_results("development"))
    r = readyctl("check", "--baseline", "last", "--only", "env.*")
    assert r.code == 1, r.both
    data = report_json(tmp_path)
    base = data["baseline"]
    assert base["run"] == "20261129T090000-prod" and base["verdict"] == "ready"
    assert base["pinned"] is False and base["selected_by"] == "newest_passing"
    assert base["started_at"] == "2026-11-29T09:00:00+00:00" and base["score"] == 100
    assert {"id": "env.production", "subject": "NODE_ENV", "from": "pass", "to": "fail"} in (
        base["changes"]
    )
    regression = [g for g in data["gate"]["reasons"] if g["code"] == "regression"]
    assert any(g["check_id"] == "env.production" for g in regression), regression
    assert (
        "compared with run 20261129T090000-prod (2026-11-29T09:00:00+00:00, score 100, "
        "newest passing)" in r.out
    )
    import jsonschema

    jsonschema.validate(base, BASELINE_SCHEMA)
    # Markdown and HTML name the run too
    from readyctl.report import Report
    from readyctl.reporters import html, markdown

    report = Report(data)
    assert "Compared with run 20261129T090000-prod (" in markdown.render(report)
    assert "Compared with run 20261129T090000-prod (" in html.render(report)


def test_no_passing_run_means_no_baseline_and_says_how_to_pin(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = setup_prod(tmp_path, SLOW_ENV)
    write_run(folder, "20261129T100000", passed=False, results=env_results("development"))
    r = readyctl("check", "--baseline", "last", "--only", "env.*")
    assert report_json(tmp_path)["baseline"] is None
    assert "no passing run" in r.err and "readyctl baseline pin" in r.err
    show = readyctl("baseline", "show", "--env", "prod", "--only", "env.*")
    assert show.code == 0 and "no passing run was found yet" in show.out


def test_pin_by_id_and_path_show_unpin_and_pins_survive_pruning(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from readyctl import history

    folder = setup_prod(tmp_path, SLOW_ENV)
    sel = ("--env", "prod", "--only", "env.*")
    old = write_run(folder, "20261129T080000", passed=True, score=97, results=env_results("x"))
    write_run(folder, "20261129T090000", passed=True, results=env_results("production"))
    r = readyctl("baseline", "pin", "20261129T080000-prod", *sel)
    assert r.code == 0 and "pinned run 20261129T080000-prod" in r.out, r.both
    assert (folder / history.PINS_FILE).is_file()
    show = json.loads(readyctl("baseline", "show", *sel, "--format", "json").out)
    assert show["selection_key"] == ENV_KEY
    assert show["baseline"]["run"] == "20261129T080000-prod" and show["baseline"]["pinned"]
    assert show["baseline"]["score"] == 97 and show["baseline"]["verdict"] == "ready"
    text = readyctl("baseline", "show", *sel).out
    assert "run 20261129T080000-prod (pinned)" in text and "score      97" in text
    # pruning (history_keep) deletes the pinned run's file, not the pin's copy
    original = history.load_baseline(old)
    for i in range(3):
        data = dict(original)
        data["started_at"] = f"2026-11-29T1{i}:00:00+00:00"
        history.save(data, folder, keep=1)
    assert not old.exists() and len(list(folder.glob("*.json"))) == 2  # one run + the pins
    show = json.loads(readyctl("baseline", "show", *sel, "--format", "json").out)
    assert show["baseline"]["run"] == "20261129T080000-prod"
    pinned_copy = Path(show["baseline"]["path"])
    assert pinned_copy.is_file() and pinned_copy.parent.parent == folder / "pinned"
    # the pin wins over the newest passing run for --baseline last
    r = readyctl("check", "-q", "--baseline", "last", "--only", "env.*")
    base = report_json(tmp_path)["baseline"]
    assert base["run"] == "20261129T080000-prod" and base["pinned"] is True, r.both
    assert base["selected_by"] == "pin"
    full = readyctl("report", "render", str(tmp_path / "reports" / "readiness.json"))
    assert "compared with run 20261129T080000-prod" in full.out and "pinned)" in full.out
    # a report file pins by its path; pinning again replaces the pin
    kept = tmp_path / "kept-readiness.json"
    kept.write_text(pinned_copy.read_text())
    r = readyctl("baseline", "pin", str(kept), *sel)
    assert r.code == 0, r.both
    show = json.loads(readyctl("baseline", "show", *sel, "--format", "json").out)
    assert show["baseline"]["run"] == str(kept) and show["baseline"]["pinned"]
    # unpin (both spellings): back to the newest passing run
    assert readyctl("baseline", "pin", "--unpin", *sel).code == 0
    show = json.loads(readyctl("baseline", "show", *sel, "--format", "json").out)
    assert show["baseline"]["pinned"] is False
    assert show["baseline"]["run"] != "20261129T080000-prod"
    r = readyctl("baseline", "unpin", *sel)
    assert r.code == 0 and "nothing was pinned" in r.out
    assert not list((folder / "pinned").rglob("*.json"))


def test_bad_input_is_one_line_and_exit_2(readyctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = setup_prod(tmp_path, SLOW_ENV)
    write_run(folder, "20261129T080000", passed=True, results=env_results("production"))
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    (tmp_path / "garbage.txt").write_text("not json at all")
    for args in (
        ("baseline", "pin", "20261129T999999-prod", "--env", "prod", "--only", "env.*"),
        ("baseline", "pin", str(tmp_path / "notes.json"), "--env", "prod"),
        ("baseline", "pin", str(tmp_path / "garbage.txt"), "--env", "prod"),
        ("baseline", "pin", str(tmp_path / "missing.json"), "--env", "prod"),
        # the run is of another selection than the one asked for
        ("baseline", "pin", "20261129T080000-prod", "--env", "prod"),
        ("check", "--baseline", "no-such-run", "--only", "env.*"),
    ):
        r = readyctl(*args)
        assert r.code == 2, (args, r.both)
        assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("error: "), r.err
        assert "Traceback" not in r.both
    r = readyctl("baseline", "pin", "20261129T999999-prod", "--env", "prod", "--only", "env.*")
    assert "unknown run id '20261129T999999-prod'" in r.err
    r = readyctl("baseline", "pin", str(tmp_path / "notes.json"), "--env", "prod")
    assert "is not a readyctl report" in r.err
