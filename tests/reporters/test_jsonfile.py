"""readiness.json and the history are always valid JSON, even with NaN or infinite numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from readyctl import history
from readyctl.config import Config, Environment
from readyctl.redact import Redactor
from readyctl.report import Report, build_report
from readyctl.reporters import jsonfile
from readyctl.result import Curve, Result
from readyctl.runner import RunOutcome
from tests.reporters.conftest import METAS, STARTED


def _strict(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (what other parsers do)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _report() -> Report:
    curve = Curve(good=200, poor=1000)
    results = [
        Result.measure(
            "load.latency",
            "p95 GET /items",
            math.nan,
            curve=curve,
            summary="p95 of GET /items is NaN ms",
            fail_at=1000,
            unit="ms",
        ),
        Result.measure(
            "secrets.rotation",
            "JWT_SECRET",
            math.inf,
            curve=Curve(good=90, poor=365),
            summary="JWT_SECRET was never rotated (infinite age)",
            fail_at=365,
            unit="days",
            evidence={"ratio": -math.inf, "samples": [1.0, math.nan]},
        ),
        Result.passed("http.compression", "GET /", "GET / is compressed", measured=0.25),
    ]
    outcome = RunOutcome(
        results=results,
        started_at=STARTED,
        duration_s=math.nan,
        interrupted=False,
        cleanup_problems=[],
        metas=dict(METAS),
    )
    return build_report(
        outcome,
        config=Config(),
        env_name="staging",
        environment=Environment(base_url="https://api.example.org"),
        redactor=Redactor([]),
    )


def test_non_finite_measurements_write_valid_json(tmp_path: Path) -> None:
    report = _report()
    written = jsonfile.write(report, tmp_path)
    texts = {
        "readiness.json": written.read_text(encoding="utf-8"),
        "to_json": report.to_json(),
        "history": history.save(report.data, tmp_path / "history", 5).read_text("utf-8"),
    }
    for name, text in texts.items():
        data = _strict(text)  # raises on a bare NaN or Infinity
        by_id = {r["id"]: r for r in data["results"]}
        assert by_id["load.latency"]["measured"] is None, name
        assert by_id["secrets.rotation"]["measured"] is None, name
        assert by_id["secrets.rotation"]["evidence"]["ratio"] is None, name
        assert by_id["secrets.rotation"]["evidence"]["samples"] == [1.0, None], name
        assert by_id["http.compression"]["measured"] == 0.25, name


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_helper_turns_non_finite_numbers_into_null(value: float) -> None:
    from readyctl import _json

    assert _strict(_json.dumps({"a": value, "b": [value, 1.5], value: "key"})) == {
        "a": None,
        "b": [None, 1.5],
        str(value): "key",
    }
