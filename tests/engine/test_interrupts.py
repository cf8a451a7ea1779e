"""SIGINT/SIGTERM to readyctl's pid alone (as CI cancels and container stops send them).

Every case starts a real command in its own session, waits until a known child of the run is
up (a pg_dump on the target, a scratch postgres, locust, the managed demo), waits a seeded
extra delay, signals the readyctl pid only (`os.kill`, never the group), sometimes twice, and
then proves: exit code 130, a report marked interrupted in every requested format, no process
of the run left (walking /proc: descendants, process groups and sessions of the run, an
environment marker, the run's temporary directory), no scratch directory left, and the
target database's fingerprint unchanged.

`READYCTL_INTERRUPT_SEED` replays a failure (the seed is printed in every assertion);
`READYCTL_INTERRUPT_CASES=N` runs N cases instead of the default 8 (4 commands x 2 signals).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.helpers import snapshot

pytestmark = pytest.mark.slow

FORMATS = "json,junit,markdown,html"
REPORT_FILES = ("readiness.json", "readiness.xml", "readiness.md", "readiness.html")
COMMANDS = ("db rehearse", "db restore-drill", "load", "check")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
BASE_SEED = int(os.environ.get("READYCTL_INTERRUPT_SEED") or random.SystemRandom().randrange(10**6))
N_CASES = max(1, int(os.environ.get("READYCTL_INTERRUPT_CASES") or 8))
HANG_GUARD_S = 90.0  # waiting for a wait point, and for the exit after the signal

ENDLESS_LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Endless(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def hit(self):
        self.client.get("/health", name="GET /health")
"""


# -- processes of a run ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks since boot: tells a reused pid apart
    state: str
    cmd: str
    marked: bool


def _read_proc(pid: int, mark: bytes) -> Proc | None:
    base = Path("/proc") / str(pid)
    try:
        stat = (base / "stat").read_text()
        cmd = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    try:
        marked = mark in (base / "environ").read_bytes()
    except OSError:
        marked = False
    fields = stat.rsplit(")", 1)[-1].split()
    return Proc(
        pid,
        int(fields[1]),
        int(fields[2]),
        int(fields[3]),
        int(fields[19]),
        fields[0],
        cmd.strip(),
        marked,
    )


def _all_procs(mark: bytes) -> dict[int, Proc]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            p = _read_proc(int(entry.name), mark)
            if p is not None:
                out[p.pid] = p
    return out


class Tracker:
    """Every process that belongs to one readyctl run, sampled while it runs and after."""

    def __init__(self, root: int, mark: str, tmp: Path) -> None:
        self.root = root
        self.mark = mark.encode()
        self.tmp = str(tmp)
        self.seen: dict[int, Proc] = {}
        self.current: dict[int, Proc] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def related(self, procs: dict[int, Proc]) -> dict[int, Proc]:
        """The run's processes: marked, in its tmp dir, in a group or session of the run, or
        descended from any of those (the test process itself is never one)."""
        known = set(self.seen) | {self.root}
        mine = {
            pid: p
            for pid, p in procs.items()
            if pid != os.getpid()
            and (
                pid == self.root
                or p.marked
                or self.tmp in p.cmd
                or p.pgid in known
                or p.sid in known
                or (pid in self.seen and self.seen[pid].start == p.start)
            )
        }
        grew = True
        while grew:  # descendants
            grew = False
            for pid, p in procs.items():
                if pid not in mine and p.ppid in mine and pid != os.getpid():
                    mine[pid] = p
                    grew = True
        return mine

    def scan(self) -> dict[int, Proc]:
        """Sample /proc once; remember what belongs to the run."""
        mine = self.related(_all_procs(self.mark))
        for pid, p in mine.items():
            self.seen.setdefault(pid, p)
        self.current = mine
        return mine

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.scan()
            time.sleep(0.05)

    def __enter__(self) -> Tracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def leftovers(self) -> list[Proc]:
        """Live (non-zombie) processes of the run, readyctl itself excluded."""
        now = _all_procs(self.mark)
        left = self.related(now)
        for pid, p in self.seen.items():  # reparented orphans seen while the run was alive
            q = now.get(pid)
            if q is not None and q.start == p.start:
                left[pid] = q
        return [p for pid, p in left.items() if pid != self.root and p.state not in ("Z", "X")]

    def kill_everything(self) -> None:
        """The hang guard's broom: SIGKILL whatever of the run is still alive."""
        for p in [*self.leftovers(), *(q for q in [self.seen.get(self.root)] if q)]:
            with contextlib.suppress(OSError):
                os.killpg(p.pgid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(p.pid, signal.SIGKILL)


# -- targets -----------------------------------------------------------------------------------
# the target's proof of "unchanged": the same snapshot the migration tests take
fingerprint = snapshot


@pytest.fixture
def demo_like_db(shared_pg, tmp_path: Path) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A database migrated like the demo (with rows), and its alembic.ini."""
    from readyctl.demo.migrate import upgrade_for_start, write_alembic_ini

    name = f"irq_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = shared_pg.create_database(name)
    upgrade_for_start(url, ())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE irq_rows (id serial PRIMARY KEY, body text)")
        conn.execute(
            "INSERT INTO irq_rows (body) SELECT 'row ' || g FROM generate_series(1, 2000) g"
        )
    ini = write_alembic_ini(tmp_path / "alembic.ini", ())
    try:
        yield url, ini
    finally:
        shared_pg.drop_database(name)


class TableLock:
    """Hold ACCESS EXCLUSIVE on a table of the target: pg_dump waits for it (up to its
    --lock-wait-timeout), so a pg_dump reading the target is reliably caught mid-run."""

    def __init__(self, url: str, table: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


# -- one case ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    index: int
    command: str
    sig: signal.Signals
    seed: int

    @property
    def id(self) -> str:
        return f"{self.command.replace(' ', '-')}-{self.sig.name}-{self.index}"


def _cases() -> list[Case]:
    out = []
    for i in range(N_CASES):
        command = COMMANDS[i % len(COMMANDS)]
        sig = SIGNALS[(i // len(COMMANDS)) % len(SIGNALS)]
        out.append(Case(i, command, signal.Signals(sig), BASE_SEED + 7919 * i))
    return out


def _argv0(p: Proc) -> str:
    return os.path.basename(p.cmd.split(" ", 1)[0]) if p.cmd else ""


def _reached(what: str, procs: list[Proc], tmp: str) -> bool:
    """Whether the run has reached a wait point, judged by its processes."""
    postmasters = [p for p in procs if _argv0(p) == "postgres" and tmp in p.cmd]
    if what == "pg_dump":
        return any(_argv0(p) == "pg_dump" for p in procs)
    if what == "scratch postgres":
        return bool(postmasters)
    if what == "locust":
        return any("-m locust" in p.cmd for p in procs)
    if what == "demo postgres":  # the managed demo is starting
        return bool(postmasters)
    if what == "a check's scratch postgres":  # the demo's and a rehearsal's or drill's
        return len(postmasters) >= 2
    raise AssertionError(what)


# what to wait for, per command: (wait point, extra delay range in seconds, release).
# On the database commands a table lock on the target holds pg_dump (and so the run) until
# the signal; with `release` it is let go first, so the signal lands in the restore, the
# sample copy or the migration round trips instead (each takes longer than the delay).
WAIT_POINTS: dict[str, list[tuple[str, tuple[float, float], bool]]] = {
    "db rehearse": [("pg_dump", (0.0, 1.0), False), ("scratch postgres", (0.0, 0.4), True)],
    "db restore-drill": [("pg_dump", (0.0, 1.5), False), ("scratch postgres", (0.0, 0.3), True)],
    "load": [("locust", (0.0, 2.0), False)],
    "check": [
        ("demo postgres", (0.0, 1.0), False),
        ("a check's scratch postgres", (0.0, 3.0), False),
    ],
}


def run_case(case: Case, tmp_path: Path, argv: list[str], *, target: str | None) -> None:
    """Start readyctl, signal it at the case's seeded point, check everything afterwards."""
    rng = random.Random(case.seed)
    point, (lo, hi), release = rng.choice(WAIT_POINTS[case.command])
    delay = round(rng.uniform(lo, hi), 2)
    twice = rng.random() < 0.5
    where = (
        f"[{case.id}: seed={case.seed} (READYCTL_INTERRUPT_SEED={BASE_SEED} replays the run), "
        f"{case.sig.name} {delay}s after {point}{' and the lock' if release else ''}"
        f"{', twice' if twice else ''}]"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    mark = f"READYCTL_IRQ_{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_DEMO_")}
    env.update(
        COLUMNS="160",
        NO_COLOR="1",
        TMPDIR=str(tmp),
        READYCTL_PG_NO_SHM="1",  # scratch data dirs under tmp: provably removed
        READYCTL_IRQ_MARK=mark,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    before = fingerprint(target) if target else None
    lock = TableLock(target, "irq_rows") if case.command.startswith("db ") and target else None
    cmd = [sys.executable, "-m", "readyctl", *argv, "--out", str(out), "--format", FORMATS]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C would hit the group: this test must not
    )
    stdout = stderr = ""
    with Tracker(proc.pid, mark, tmp) as tracker:
        try:
            deadline = time.monotonic() + HANG_GUARD_S
            while not _reached(point, list(tracker.current.values()), str(tmp)):
                if proc.poll() is not None:
                    o, e = proc.communicate()
                    pytest.fail(f"{where} readyctl exited ({proc.returncode}) first:\n{o}\n{e}")
                assert time.monotonic() < deadline, f"{where} {point} never started"
                time.sleep(0.02)
            if release and lock is not None:
                lock.release()
            time.sleep(delay)
            assert proc.poll() is None, f"{where} readyctl finished before the signal"
            seen_at_signal = sorted({p.cmd.split(" ")[0] for p in tracker.scan().values()})
            signalled = time.monotonic()
            os.kill(proc.pid, case.sig)  # the pid alone, as CI and container runtimes do
            if twice:
                time.sleep(rng.uniform(0.05, 0.8))
                if proc.poll() is None:
                    os.kill(proc.pid, case.sig)
            stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
            took = time.monotonic() - signalled
        finally:
            if lock is not None:
                lock.release()
            if proc.poll() is None:
                tracker.kill_everything()
                proc.kill()
                proc.communicate()
    both = f"{where}\nrunning at the signal: {seen_at_signal}\n{stdout}\n{stderr}"
    assert proc.returncode == 130, both
    assert "Traceback" not in stdout + stderr, both
    assert took < 30 + 10, f"{where} took {took:.1f} s after the signal"

    # no process of the run is left (a killed postmaster's children may take a moment)
    left = tracker.leftovers()
    until = time.monotonic() + 5
    while left and time.monotonic() < until:
        time.sleep(0.1)
        left = tracker.leftovers()
    if left:
        tracker.kill_everything()
    assert not left, f"{where} left running: {[(p.pid, p.cmd[:120]) for p in left]}\n{both}"

    # the report, marked interrupted, in every requested format
    for name in REPORT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{where} no {name}"
    data = json.loads((out / "readiness.json").read_text())
    assert data["interrupted"] is True, where
    assert data["exit_code"] == 130, where
    assert "interrupted" in (out / "readiness.md").read_text(), where
    assert 'name="interrupted" value="true"' in (out / "readiness.xml").read_text(), where

    # nothing of the run left on disk, the target unchanged
    until = time.monotonic() + 3
    while list(tmp.iterdir()) and time.monotonic() < until:
        time.sleep(0.1)
    assert list(tmp.iterdir()) == [], f"{where} left behind: {list(tmp.iterdir())}"
    if target and before is not None:
        after = fingerprint(target)
        assert after[:3] == before[:3], f"{where} the target's schema, rows or revision changed"
        assert after[3] == before[3], f"{where} databases were created or dropped on the target"


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_signal_to_the_pid_alone_exits_130_with_a_report_and_nothing_left(  # type: ignore[no-untyped-def]
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if case.command in ("db rehearse", "db restore-drill"):
        url, ini = request.getfixturevalue("demo_like_db")
        if case.command == "db rehearse":
            # rehearse the last revision (nothing is pending on a demo-like database)
            (tmp_path / "readyctl.yaml").write_text(
                json.dumps({"version": 2, "checks": {"migrations.rehearsal": {"last": 1}}})
            )
            argv = ["db", "rehearse", "--database-url", url, "--alembic-config", ini]
        else:
            (tmp_path / "readyctl.yaml").write_text(
                json.dumps({"version": 2, "checks": {"backups.restore_drill": {"source": "dump"}}})
            )
            argv = ["db", "restore-drill", "--database-url", url]
        run_case(case, tmp_path, argv, target=url)
    elif case.command == "load":
        demo = request.getfixturevalue("healthy_demo")
        (tmp_path / "scenario.py").write_text(ENDLESS_LOCUSTFILE)
        cfg = {
            "version": 1,
            "default_environment": "target",
            "environments": {"target": {"base_url": demo.base_url, "ca_bundle": demo.ca_bundle}},
            "checks": {
                "load.thresholds": {"locustfile": "scenario.py", "users": 2, "duration": "60s"}
            },
        }
        (tmp_path / "readyctl.yaml").write_text(json.dumps(cfg))
        run_case(case, tmp_path, ["load"], target=demo.database_url)
    else:
        argv = ["check", "--config", str(ROOT / "readyctl.yaml"), "--no-history", "--quiet"]
        run_case(case, tmp_path, argv, target=None)


# -- the bounds: a second signal is deferred, a third one or the budget ends it ----------------
HANGING_PLUGIN = """
import os, pathlib, time
from readyctl.check import Check, CheckMeta, RemediationSpec, Category, Severity

class Hangs(Check):
    meta = CheckMeta(id="hang_plugin.ops.hangs", title="Cleans up fast",
                     failure_title="Cleans up slowly", description="A plugin check used in tests.",
                     remediation=RemediationSpec(text="Hurry."), category=Category.OPERATIONS,
                     severity=Severity.LOW, timeout_s=120)

    def run(self, ctx):
        marker = pathlib.Path(ctx.environ["HANG_MARKER"])
        ctx.add_cleanup(lambda: time.sleep(600))  # a cleanup that never ends
        marker.write_text("running")
        for _ in range(2400):
            ctx.check_deadline()
            time.sleep(0.05)
        yield self.passed("nap", "slept")
"""


def _start_hanging(tmp_path: Path, budget_s: float) -> tuple[subprocess.Popen[str], Path]:
    site = tmp_path / "site"
    (site / "hang_plugin").mkdir(parents=True)
    (site / "hang_plugin" / "__init__.py").write_text(HANGING_PLUGIN)
    dist = site / "hang_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hang-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[readyctl.checks]\nhang = hang_plugin\n")
    marker = tmp_path / "marker"
    env = dict(
        os.environ,
        PYTHONPATH=f"{site}{os.pathsep}{ROOT}",
        HANG_MARKER=str(marker),
        READYCTL_INTERRUPT_BUDGET_S=str(budget_s),
        NO_COLOR="1",
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "readyctl", "check", "--only", "hang_plugin.*"),
            *("--out", str(tmp_path / "out"), "--format", FORMATS, "--no-history"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + HANG_GUARD_S
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the plugin check never ran"
        time.sleep(0.05)
    return proc, marker


def _catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for `sig` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) & (1 << (sig - 1)))


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str, float]:
    t0 = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"readyctl did not exit within {timeout} s:\n{out}\n{err}")
    return out, err, time.monotonic() - t0


def _assert_interrupted_report(out_dir: Path, detail: str) -> dict[str, Any]:
    for name in REPORT_FILES:
        assert (out_dir / name).is_file(), f"no {name}: {detail}"
    data = json.loads((out_dir / "readiness.json").read_text())
    assert data["interrupted"] is True, detail
    return data


def test_a_hanging_cleanup_is_cut_off_by_the_budget(tmp_path: Path) -> None:
    proc, _ = _start_hanging(tmp_path, budget_s=6)
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)  # the second is deferred: the report still comes
    out, err, took = _finish(proc, 30)
    assert proc.returncode == 130, out + err
    assert took < 6 + 4, f"took {took:.1f} s"
    data = _assert_interrupted_report(tmp_path / "out", out + err)
    assert any("did not finish within" in p for p in data["cleanup_problems"]), data
    assert data["results"][0]["status"] == "skip"


def test_a_third_signal_exits_at_once_with_a_report(tmp_path: Path) -> None:
    proc, _ = _start_hanging(tmp_path, budget_s=60)
    for _ in range(3):
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.3)
    out, err, took = _finish(proc, 20)
    assert proc.returncode == 130, out + err
    assert took < 10, f"took {took:.1f} s"
    assert "exiting now" in err
    _assert_interrupted_report(tmp_path / "out", out + err)


def test_a_signal_before_the_first_check_still_writes_an_empty_interrupted_report(
    tmp_path: Path,
) -> None:
    # signalled while readyctl loads its config and catalog: nothing ran, the report says so
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "readyctl", "check", "--only", "env.*", "--no-history"),
            *("--out", str(tmp_path / "out"), "--format", FORMATS),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # as soon as readyctl catches SIGTERM (before that, in Python's own start-up, the
    # interpreter's default dispositions apply): it is still importing its CLI
    deadline = time.monotonic() + 20
    while not _catches(proc.pid, signal.SIGTERM):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGTERM)
    out, err, _ = _finish(proc, 30)
    assert proc.returncode == 130, out + err
    data = _assert_interrupted_report(tmp_path / "out", out + err)
    assert data["results"] == [], data["results"]


# -- the process registry itself ---------------------------------------------------------------
def _group_members(pgid: int) -> list[int]:
    procs = _all_procs(b"-")
    return [p.pid for p in procs.values() if p.pgid == pgid and p.state not in ("Z", "X")]


def test_run_kills_the_whole_group_on_timeout() -> None:
    from readyctl import _proc

    nap = f"sleep {60 + random.random():.4f}"  # a command line no other process has
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        # the shell's background child is in the same group: it goes too
        _proc.run(["sh", "-c", f"{nap} & {nap}"], timeout=1, capture_output=True)
    assert time.monotonic() - t0 < 10
    left = [p for p in _all_procs(b"-").values() if p.cmd == nap and p.state not in ("Z", "X")]
    assert left == []
    # a tool that returns normally leaves nothing running in its group either
    assert _proc.run(["sh", "-c", f"{nap} &"], timeout=10).returncode == 0
    time.sleep(0.2)
    left = [p for p in _all_procs(b"-").values() if p.cmd == nap and p.state not in ("Z", "X")]
    assert left == []


def test_a_closed_scope_stops_its_children_and_refuses_new_ones() -> None:
    from readyctl import _proc

    with _proc.scope() as s:
        p = _proc.popen(["sh", "-c", "sleep 60 & sleep 60"], stdout=subprocess.DEVNULL)
        time.sleep(0.2)
        assert len(_group_members(p.pid)) >= 2  # its own group, not the test's
        assert os.getpgid(p.pid) == p.pid != os.getpgid(0)
        _proc.close_scope(s, grace=1)
        assert p.returncode is not None and _group_members(p.pid) == []
        with pytest.raises(_proc.ProcessesStopped):
            _proc.popen(["true"])
    # outside the closed scope, children start again (the next run in this process)
    assert _proc.run(["true"], timeout=10).returncode == 0
