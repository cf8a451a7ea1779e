"""The runner with synthetic checks: deadlines, errors, dependencies, safety, retries, selection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.config import Environment
from readyctl.context import Context
from readyctl.errors import CheckDefinitionError
from readyctl.result import Result
from readyctl.runner import plan, run, select
from tests.helpers import make_context


def meta(cid: str, **kw: object) -> CheckMeta:
    base: dict[str, object] = dict(
        id=cid,
        title="It holds",
        failure_title="It does not hold",
        description="Why it matters.",
        remediation=RemediationSpec(text="Fix it."),
        category=Category.OPERATIONS,
        severity=Severity.HIGH,
    )
    base.update(kw)
    return CheckMeta(**base)  # type: ignore[arg-type]


def make(cid: str, fn, **kw: object) -> type[Check]:  # type: ignore[no-untyped-def]
    cls = type(cid.replace(".", "_"), (Check,), {"meta": meta(cid, **kw), "run": fn})
    return cls


def ok(self: Check, ctx: Context) -> Iterator[Result]:
    yield self.passed("s", "fine")


def bad(self: Check, ctx: Context) -> Iterator[Result]:
    yield self.failed("s", "broken")


def _go(checks: list[type[Check]], env: Environment | None = None, **kw: object):
    ctx = make_context(environment=env)
    catalog = {c.meta.id: c for c in checks}
    return run(ctx, plan(ctx, checks, catalog), **kw)  # type: ignore[arg-type]


def by_id(outcome):  # type: ignore[no-untyped-def]
    return {r.check_id: r for r in outcome.results}


def test_stuck_check_times_out_and_is_abandoned() -> None:
    release = threading.Event()

    def stuck(self: Check, ctx: Context) -> Iterator[Result]:
        release.wait(30)
        yield self.passed("s", "late")

    t0 = time.monotonic()
    out = _go([make("t.stuck", stuck, timeout_s=0.5), make("t.ok", ok)])
    took = time.monotonic() - t0
    release.set()
    r = by_id(out)
    assert took < 30  # the 0.5 s timeout abandoned the stuck check (a hang guard)
    assert r["t.stuck"].status.value == "error" and r["t.stuck"].error_reason.value == "timeout"
    assert r["t.ok"].status.value == "pass"


def test_run_deadline_cuts_everything() -> None:
    def slow(self: Check, ctx: Context) -> Iterator[Result]:
        while True:
            ctx.check_deadline()
            time.sleep(0.02)
        yield  # pragma: no cover

    out = _go([make("t.slow", slow, timeout_s=60)], deadline_s=0.4)
    (r,) = out.results
    assert r.error_reason.value == "timeout"


def test_exception_becomes_error_with_trace_and_connectivity_is_classified() -> None:
    def boom(self: Check, ctx: Context) -> Iterator[Result]:
        raise ZeroDivisionError("division by zero")
        yield  # pragma: no cover

    def refused(self: Check, ctx: Context) -> Iterator[Result]:
        raise ConnectionRefusedError("connection refused")
        yield  # pragma: no cover

    out = by_id(_go([make("t.boom", boom), make("t.net", refused)]))
    assert out["t.boom"].error_reason.value == "bug" and "ZeroDivisionError" in out["t.boom"].trace
    assert out["t.net"].error_reason.value == "connectivity"


def test_no_result_is_an_error() -> None:
    def nothing(self: Check, ctx: Context) -> Iterator[Result]:
        return iter(())

    (r,) = _go([make("t.none", nothing)]).results
    assert r.status.value == "error" and "no result" in r.summary


def test_dependency_failure_blocks_with_root_cause() -> None:
    out = by_id(
        _go(
            [
                make("t.root", bad),
                make("t.mid", ok, depends_on=("t.root",)),
                make("t.leaf", ok, depends_on=("t.mid",)),
            ]
        )
    )
    assert out["t.mid"].status.value == "blocked" and "t.root fail: broken" in out["t.mid"].reason
    assert out["t.leaf"].status.value == "blocked" and out["t.leaf"].reason == out["t.mid"].reason


def test_capability_probe_blocks_dependents() -> None:
    probe = make("http.reachable", bad, requires=(Capability.HTTP,))
    user = make("t.user", ok, requires=(Capability.HTTP,))
    out = by_id(_go([probe, user], env=Environment(base_url="https://127.0.0.1:9")))
    assert out["t.user"].status.value == "blocked"
    assert out["t.user"].reason.startswith("http.reachable fail")


def test_unconfigured_capability_skips_with_reason() -> None:
    (r,) = _go([make("t.db", ok, requires=(Capability.DB,))]).results
    assert r.status.value == "skip" and "database_url" in r.reason


def test_exclusive_checks_run_alone_after_parallel_phase() -> None:
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def rec(name: str, delay: float):  # type: ignore[no-untyped-def]
        def fn(self: Check, ctx: Context) -> Iterator[Result]:
            with lock:
                log.append(("start", name))
            time.sleep(delay)
            with lock:
                log.append(("end", name))
            yield self.passed("s", "ok")

        return fn

    checks = [
        make("t.p1", rec("p1", 0.2)),
        make("t.p2", rec("p2", 0.2)),
        make("t.x1", rec("x1", 0.05), exclusive=True),
        make("t.x2", rec("x2", 0.05), exclusive=True),
    ]
    _go(checks, jobs=4)
    first_x = log.index(("start", "x1"))
    assert ("end", "p1") in log[:first_x] and ("end", "p2") in log[:first_x]
    assert log.index(("end", "x1")) < log.index(("start", "x2"))
    # the parallel phase really was parallel
    assert log.index(("start", "p2")) < log.index(("end", "p1"))


def test_production_refuses_mutating_and_load_unless_allowed() -> None:
    mut = make("t.mut", ok, safety=Safety.MUTATING)
    load = make("t.load", ok, safety=Safety.LOAD)
    ro = make("t.ro", ok, safety=Safety.READ_ONLY)
    out = by_id(_go([mut, load, ro], env=Environment(production=True, allow=["t.load"])))
    assert out["t.mut"].status.value == "skip" and "allow:" in out["t.mut"].reason
    assert out["t.load"].status.value == "pass" and out["t.ro"].status.value == "pass"
    out = by_id(_go([mut], env=Environment(production=False)))
    assert out["t.mut"].status.value == "pass"


def test_retryable_check_passes_on_retry() -> None:
    calls = {"n": 0}

    def flaky(self: Check, ctx: Context) -> Iterator[Result]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionResetError("reset by peer")
        yield self.passed("s", "ok")

    (r,) = _go([make("t.flaky", flaky, retryable=True)]).results
    assert r.status.value == "pass" and r.attempts == 2 and r.passed_on_retry
    calls["n"] = 0
    (r,) = _go([make("t.flaky", flaky, retryable=False)]).results
    assert r.status.value == "error" and r.attempts == 1


def test_selection_by_glob_tag_and_category() -> None:
    a = make("web.tls", ok, tags=("tls",), category=Category.TRANSPORT)
    b = make("web.cors", ok, category=Category.HTTP)
    c = make("db.pool", ok, category=Category.DATABASE)
    assert [x.meta.id for x in select([a, b, c], ["web.*"])] == ["web.cors", "web.tls"]
    assert [x.meta.id for x in select([a, b, c], ["tls"])] == ["web.tls"]
    assert [x.meta.id for x in select([a, b, c], ["category:database"])] == ["db.pool"]
    assert [x.meta.id for x in select([a, b, c], [], ["web"])] == ["db.pool"]


def test_results_are_redacted_and_cleanups_run() -> None:
    cleaned: list[str] = []

    def leaky(self: Check, ctx: Context) -> Iterator[Result]:
        ctx.redactor.add("CanarySecretValue42")
        ctx.add_cleanup(lambda: cleaned.append("x"))
        yield self.failed(
            "s",
            "saw CanarySecretValue42 in postgres://u:pw9999@h/db",
            evidence={"api_key": "abc12345", "body": "CanarySecretValue42"},
        )

    (r,) = _go([make("t.leak", leaky)]).results
    text = r.summary + str(r.evidence)
    assert "CanarySecretValue42" not in text and "pw9999" not in text and "abc12345" not in text
    assert cleaned == ["x"]


def test_metadata_is_validated_at_import() -> None:
    with pytest.raises(ValueError):
        meta("NoDots")
    with pytest.raises(ValueError):
        meta("a.b", title="x" * 80)
    with pytest.raises(ValueError):
        meta("a.b", severity="urgent")
    from readyctl.check import register

    class One(Check):
        meta: ClassVar[CheckMeta] = meta("dup.one")

    class Two(Check):
        meta: ClassVar[CheckMeta] = meta("dup.one")

    register(One)
    with pytest.raises(CheckDefinitionError):
        register(Two)
