"""Load runs on locust, always in subprocesses: locust and gevent never enter this process.

readyctl writes a locustfile from a profile spec (weighted tasks, think time or constant
pacing, tokens of users logged in up front) or runs a locustfile the user names; it starts
locust headless, standalone or as a local master with N workers (or N workers that join an
existing master), bounds it in users and time, stops it on cancel or deadline without leaving
a process behind, and reads the stats from locust's CSV output. A small hook file, loaded
into every locust process next to the locustfile, writes each process's own counts and
response-time histograms (used to combine worker stats when the master is not ours) and
makes locust exit if readyctl goes away.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from readyctl import _proc
from readyctl.redact import clip, current_redactor

MAX_USERS = 5000
MAX_DURATION_S = 3600.0
STOP_GRACE_S = 5.0
HOOKS_FILE = "readyctl_locust_hooks.py"
LOCUSTFILE = "readyctl_locustfile.py"
PERCENTILES = (0.5, 0.95, 0.99)


class LoadRunError(Exception):
    """Locust could not run or produced no statistics."""


class LoadCancelled(LoadRunError):
    """The run was cancelled (Ctrl-C) or its deadline passed."""


# -- the files written for locust ------------------------------------------------------------
HOOKS_SOURCE = '''\
"""readyctl hooks: per-process stats for readyctl, and exit when readyctl is gone."""

import json
import os
import time

import gevent
from locust import events

_SPEC_PATH = os.environ.get("READYCTL_LOAD_SPEC", "")
_SPEC = {}
if _SPEC_PATH:
    with open(_SPEC_PATH, encoding="utf-8") as _fh:
        _SPEC = json.load(_fh)
_STATS = {"requests": {}, "seconds": {}}


def _round(ms):
    if ms < 100:
        return int(round(ms))
    if ms < 1000:
        return int(round(ms, -1))
    return int(round(ms, -2))


@events.request.add_listener
def _readyctl_on_request(request_type, name, response_time, exception=None, **kw):
    entry = _STATS["requests"].get(name)
    if entry is None:
        entry = _STATS["requests"][name] = {
            "method": request_type, "count": 0, "failures": 0, "rt": {}
        }
    entry["count"] += 1
    if exception:
        entry["failures"] += 1
    key = _round(response_time or 0)
    rt = entry["rt"]
    rt[key] = rt.get(key, 0) + 1
    now = int(time.time())
    sec = _STATS["seconds"].get(now)
    if sec is None:
        sec = _STATS["seconds"][now] = {}
    sec[key] = sec.get(key, 0) + 1


@events.quitting.add_listener
def _readyctl_on_quit(environment, **kw):
    folder = _SPEC.get("stats_dir")
    role = type(environment.runner).__name__ if environment.runner else "none"
    if not folder or role == "MasterRunner":
        return
    path = os.path.join(folder, "proc-%d.json" % os.getpid())
    data = {"pid": os.getpid(), "role": role, **_STATS}
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(path + ".tmp", path)


@events.init.add_listener
def _readyctl_on_init(environment, **kw):
    parent = _SPEC.get("parent_pid")
    if not parent:
        return

    def watch():
        while True:
            gevent.sleep(1.0)
            if os.getppid() != parent:
                try:
                    environment.runner.quit()
                finally:
                    gevent.sleep(3)
                    os._exit(3)

    gevent.spawn(watch)
'''

LOCUSTFILE_SOURCE = '''\
"""Written by readyctl for one load run; the profiles come from READYCTL_LOAD_SPEC."""

import itertools
import json
import os
import re

import gevent.ssl
from locust import FastHttpUser, between, constant_pacing

with open(os.environ["READYCTL_LOAD_SPEC"], encoding="utf-8") as _fh:
    SPEC = json.load(_fh)
TOKENS = []
if SPEC.get("tokens_file"):
    with open(SPEC["tokens_file"], encoding="utf-8") as _fh:
        TOKENS = json.load(_fh)
_COUNTER = itertools.count(os.getpid() % max(1, len(TOKENS)))
_FIELD = re.compile(r"\\{([A-Za-z_][A-Za-z0-9_]*)\\}")


def _dig(data, path):
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _fill(value, names):
    if isinstance(value, str):
        return _FIELD.sub(lambda m: str(names.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def _ssl_factory():
    if not SPEC.get("ca_bundle"):
        return None

    def factory(*args, **kwargs):
        # trust the target's CA bundle (geventhttpclient passes cafile=None otherwise)
        kwargs["cafile"] = SPEC["ca_bundle"]
        return gevent.ssl.create_default_context(**kwargs)

    return factory


def _prepare(req):
    """Work out once what every send of this request needs."""
    out = dict(req)
    out["name"] = req.get("name") or "%s %s" % (req["method"], req["path"])
    out["templated"] = bool(_FIELD.search(req["path"]))
    out["json_templated"] = "{" in json.dumps(req.get("json"))
    out["simple"] = not req.get("expect") and not req.get("capture")
    return out


class ReadyctlBase(FastHttpUser):
    abstract = True
    insecure = bool(SPEC.get("insecure", False))
    ssl_context_factory = _ssl_factory()
    network_timeout = float(SPEC.get("request_timeout_s", 30))
    connection_timeout = 10.0
    profile = {}

    def on_start(self):
        self.names = {"user": next(_COUNTER)}
        auth = {}
        if TOKENS:
            token = TOKENS[self.names["user"] % len(TOKENS)]
            auth = {SPEC["auth_header"]: (SPEC.get("auth_scheme", "") + " " + token).strip()}
        self.headers = {}
        for req in self.profile["all"]:
            headers = {**(auth if req.get("auth", True) else {}), **req.get("headers", {})}
            self.headers[id(req)] = headers or None
        self.ready = self._steps(self.profile["on_start"])

    def _send(self, req):
        path = req["path"]
        if req["templated"]:
            path = _fill(path, self.names)
            if _FIELD.search(path):
                return False
        kwargs = {"name": req["name"], "headers": self.headers[id(req)]}
        if req.get("json") is not None:
            body = req["json"]
            kwargs["json"] = _fill(body, self.names) if req["json_templated"] else body
        if req["simple"]:
            # locust itself records >= 400 and no-answer as failures
            resp = self.client.request(req["method"], path, **kwargs)
            return 0 < (resp.status_code or 0) < 400
        with self.client.request(req["method"], path, catch_response=True, **kwargs) as resp:
            expect = req.get("expect")
            code = resp.status_code or 0
            ok = code in expect if expect else 0 < code < 400
            if not ok:
                err = getattr(resp, "error", None)
                resp.failure("HTTP %s" % code if code else "no answer: %r" % (err,))
                return False
            for var, where in (req.get("capture") or {}).items():
                try:
                    value = _dig(resp.json(), where)
                except Exception:
                    value = None
                if value is None:
                    resp.failure("no %s in the answer" % where)
                    return False
                self.names[var] = value
            resp.success()
        return True

    def _steps(self, steps):
        for req in steps:
            if not self._send(req):
                return False
        return True

    def _task(self, steps):
        if not self.ready:
            self.ready = self._steps(self.profile["on_start"])
            if not self.ready:
                return
        self._steps(steps)


def _user_class(profile):
    profile = dict(profile)
    profile["on_start"] = [_prepare(r) for r in profile.get("on_start", [])]
    tasks_spec = [
        {"weight": t.get("weight", 1), "steps": [_prepare(r) for r in t["steps"]]}
        for t in profile["tasks"]
    ]
    profile["all"] = profile["on_start"] + [r for t in tasks_spec for r in t["steps"]]
    attrs = {"profile": profile, "fixed_count": int(profile["users"]), "__module__": __name__}
    if profile.get("pacing_s"):
        attrs["wait_time"] = constant_pacing(float(profile["pacing_s"]))
    else:
        low, high = profile.get("think_time_s", [1.0, 2.0])
        attrs["wait_time"] = between(float(low), float(high))
    tasks = {}
    for task in tasks_spec:
        def run(self, steps=task["steps"]):
            self._task(steps)
        tasks[run] = max(1, int(task.get("weight", 1)))
    attrs["tasks"] = tasks
    return type(profile["class_name"], (ReadyctlBase,), attrs)


for _profile in SPEC.get("profiles", []):
    if int(_profile.get("users", 0)) > 0:
        globals()[_profile["class_name"]] = _user_class(_profile)
'''


# -- plan ------------------------------------------------------------------------------------
@dataclasses.dataclass
class LoadPlan:
    """Everything one locust run needs."""

    host: str
    users: int
    spawn_rate: float
    duration_s: float
    profiles: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    locustfile: Path | None = None
    tokens: Sequence[str] = ()
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    ca_bundle: str | None = None
    insecure: bool = False
    workers: int = 0
    master_host: str | None = None
    master_port: int = 5557
    expect_workers_wait_s: float = 20.0
    request_timeout_s: float = 30.0
    python: str = sys.executable

    def validate(self) -> None:
        """Bound users and time; a plan needs profiles or a locustfile."""
        if not 1 <= self.users <= MAX_USERS:
            raise LoadRunError(f"users must be 1..{MAX_USERS}, got {self.users}")
        if not 1 <= self.duration_s <= MAX_DURATION_S:
            raise LoadRunError(f"duration must be 1 s..{MAX_DURATION_S:g} s")
        if self.spawn_rate <= 0:
            raise LoadRunError("spawn rate must be positive")
        if not 0 <= self.workers <= 64:
            raise LoadRunError("workers must be 0..64")
        if self.locustfile is None and not self.profiles:
            raise LoadRunError("nothing to run: no profiles and no locustfile")
        if self.locustfile is not None and not self.locustfile.is_file():
            raise LoadRunError(f"locustfile {self.locustfile} does not exist")

    @property
    def mode(self) -> str:
        """standalone, local master with N workers, or N workers joining a master."""
        if self.master_host:
            return f"{max(1, self.workers)} worker(s) joining {self.master_host}:{self.master_port}"
        if self.workers:
            return f"local master with {self.workers} worker(s)"
        return "standalone"


def profile_users(profiles: Sequence[Mapping[str, Any]]) -> int:
    """Total users of a profile set."""
    return sum(int(p.get("users", 0)) for p in profiles)


# -- stats -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EndpointStats:
    """Counts and latency percentiles of one request name (or of all: 'overall')."""

    name: str
    method: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    rps: float

    @property
    def error_rate(self) -> float:
        """Failures per request (0 when nothing ran)."""
        return self.failures / self.requests if self.requests else 0.0

    def row(self) -> dict[str, Any]:
        """The percentile-table row."""
        return {
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "rps": round(self.rps, 2),
        }


@dataclasses.dataclass
class LoadStats:
    """The combined result of one run."""

    endpoints: dict[str, EndpointStats]
    overall: EndpointStats
    timeline: list[dict[str, Any]]
    wall_s: float
    mode: str
    source: str
    processes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def percentiles(self) -> dict[str, dict[str, Any]]:
        """name -> {requests, failures, p50_ms, p95_ms, p99_ms, rps}, overall last."""
        table = {name: e.row() for name, e in sorted(self.endpoints.items())}
        table["overall"] = self.overall.row()
        return table


def percentile(hist: Mapping[int, int], total: int, q: float) -> int:
    """Locust's percentile over a rounded response-time histogram."""
    target = int(total * q)
    seen = 0
    for rt in sorted(hist, reverse=True):
        seen += hist[rt]
        if total - seen <= target:
            return rt
    return 0


def _num(value: str | None) -> float | None:
    if value is None or value.strip() in ("", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def read_csv_stats(prefix: Path) -> tuple[dict[str, EndpointStats], EndpointStats] | None:
    """Parse locust's <prefix>_stats.csv: per name and the Aggregated row."""
    path = Path(f"{prefix}_stats.csv")
    if not path.is_file():
        return None
    endpoints: dict[str, EndpointStats] = {}
    overall: EndpointStats | None = None
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            stats = EndpointStats(
                name=row.get("Name") or "",
                method=row.get("Type") or "",
                requests=int(_num(row.get("Request Count")) or 0),
                failures=int(_num(row.get("Failure Count")) or 0),
                p50_ms=_num(row.get("50%")),
                p95_ms=_num(row.get("95%")),
                p99_ms=_num(row.get("99%")),
                avg_ms=_num(row.get("Average Response Time")),
                max_ms=_num(row.get("Max Response Time")),
                rps=_num(row.get("Requests/s")) or 0.0,
            )
            if stats.name == "Aggregated" and not stats.method:
                overall = dataclasses.replace(stats, name="overall")
            else:
                endpoints[stats.name] = stats
    if overall is None:
        return None
    return endpoints, overall


def read_csv_timeline(prefix: Path) -> list[dict[str, Any]]:
    """p50/p95 over the run from <prefix>_stats_history.csv (the Aggregated rows)."""
    path = Path(f"{prefix}_stats_history.csv")
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    first: float | None = None
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") != "Aggregated":
                continue
            ts = _num(row.get("Timestamp"))
            p50, p95 = _num(row.get("50%")), _num(row.get("95%"))
            total = _num(row.get("Total Request Count")) or 0
            if ts is None or p50 is None or p95 is None or total <= 0 or p95 <= 0:
                continue
            first = ts if first is None else first
            rows.append(
                {
                    "t_s": round(ts - first, 1),
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "users": int(_num(row.get("User Count")) or 0),
                    "rps": round(_num(row.get("Requests/s")) or 0.0, 2),
                }
            )
    # one row per second: keep the last row of each timestamp
    by_t: dict[float, dict[str, Any]] = {}
    for r in rows:
        by_t[r["t_s"]] = r
    return [by_t[t] for t in sorted(by_t)]


def read_csv_failures(prefix: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The most frequent failures from <prefix>_failures.csv."""
    path = Path(f"{prefix}_failures.csv")
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.append(
                {
                    "name": f"{row.get('Method', '')} {row.get('Name', '')}".strip(),
                    "error": clip(row.get("Error") or "", 200),
                    "occurrences": int(_num(row.get("Occurrences")) or 0),
                }
            )
    out.sort(key=lambda r: -r["occurrences"])
    return out[:limit]


def read_process_stats(folder: Path) -> list[dict[str, Any]]:
    """The per-process files the hooks wrote (one per worker or standalone process)."""
    out = []
    for p in sorted(folder.glob("proc-*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def combine_processes(
    procs: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, EndpointStats], EndpointStats, list[dict[str, Any]]]:
    """Merge per-process histograms into per-name and overall stats and a timeline."""
    per_name: dict[str, dict[str, Any]] = {}
    seconds: dict[int, dict[int, int]] = {}
    for proc in procs:
        for name, e in (proc.get("requests") or {}).items():
            acc = per_name.setdefault(
                name, {"method": e.get("method", ""), "count": 0, "failures": 0, "rt": {}}
            )
            acc["count"] += int(e.get("count", 0))
            acc["failures"] += int(e.get("failures", 0))
            for rt, n in (e.get("rt") or {}).items():
                acc["rt"][int(rt)] = acc["rt"].get(int(rt), 0) + int(n)
        for sec, hist in (proc.get("seconds") or {}).items():
            bucket = seconds.setdefault(int(sec), {})
            for rt, n in hist.items():
                bucket[int(rt)] = bucket.get(int(rt), 0) + int(n)
    span = (max(seconds) - min(seconds) + 1) if seconds else 1

    def stats(name: str, method: str, count: int, failures: int, hist: dict[int, int]) -> Any:
        total_ms = sum(rt * n for rt, n in hist.items())
        return EndpointStats(
            name=name,
            method=method,
            requests=count,
            failures=failures,
            p50_ms=float(percentile(hist, count, 0.5)) if count else None,
            p95_ms=float(percentile(hist, count, 0.95)) if count else None,
            p99_ms=float(percentile(hist, count, 0.99)) if count else None,
            avg_ms=round(total_ms / count, 1) if count else None,
            max_ms=float(max(hist)) if hist else None,
            rps=count / span,
        )

    endpoints = {
        n: stats(n, a["method"], a["count"], a["failures"], a["rt"]) for n, a in per_name.items()
    }
    all_hist: dict[int, int] = {}
    for a in per_name.values():
        for rt, n in a["rt"].items():
            all_hist[rt] = all_hist.get(rt, 0) + n
    overall = stats(
        "overall",
        "",
        sum(a["count"] for a in per_name.values()),
        sum(a["failures"] for a in per_name.values()),
        all_hist,
    )
    timeline = []
    if seconds:
        t0 = min(seconds)
        for sec in sorted(seconds):
            hist = seconds[sec]
            n = sum(hist.values())
            timeline.append(
                {
                    "t_s": float(sec - t0),
                    "p50_ms": float(percentile(hist, n, 0.5)),
                    "p95_ms": float(percentile(hist, n, 0.95)),
                    "rps": float(n),
                }
            )
    return endpoints, overall, timeline


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env(spec_path: Path) -> dict[str, str]:
    env = _proc.environ_copy("LOCUST_")
    env["READYCTL_LOAD_SPEC"] = str(spec_path)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


class LocustRun:
    """One locust run: its work directory, its processes, and how to stop them all."""

    def __init__(self, plan: LoadPlan, *, workdir: Path | None = None) -> None:
        plan.validate()
        self.plan = plan
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="readyctl-load-"))
        self.stats_dir = self.dir / "procs"
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = self.dir / "stats"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started = 0.0
        self._stopped = False
        self._write_files()

    # -- files --------------------------------------------------------------------------
    def _write_private(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)

    def _write_files(self) -> None:
        plan = self.plan
        tokens_file = None
        if plan.tokens:
            tokens_file = self.dir / "tokens.json"
            self._write_private(tokens_file, json.dumps(list(plan.tokens)))
        spec = {
            "profiles": plan.profiles,
            "tokens_file": str(tokens_file) if tokens_file else None,
            "auth_header": plan.auth_header,
            "auth_scheme": plan.auth_scheme,
            "ca_bundle": plan.ca_bundle,
            "insecure": plan.insecure,
            "request_timeout_s": plan.request_timeout_s,
            "stats_dir": str(self.stats_dir),
            "parent_pid": os.getpid(),
            "host": plan.host,
        }
        self.spec_path = self.dir / "spec.json"
        self._write_private(self.spec_path, json.dumps(spec, indent=1))
        (self.dir / HOOKS_FILE).write_text(HOOKS_SOURCE, encoding="utf-8")
        if plan.locustfile is not None:
            user_file = self.dir / ("user_" + re.sub(r"[^A-Za-z0-9_]", "_", plan.locustfile.stem))
            user_file = user_file.with_suffix(".py")
            shutil.copyfile(plan.locustfile, user_file)
            self.locustfiles = [user_file, self.dir / HOOKS_FILE]
        else:
            (self.dir / LOCUSTFILE).write_text(LOCUSTFILE_SOURCE, encoding="utf-8")
            self.locustfiles = [self.dir / LOCUSTFILE, self.dir / HOOKS_FILE]

    # -- processes ----------------------------------------------------------------------
    def _spawn(self, role: str, args: list[str]) -> None:
        plan = self.plan
        files = ",".join(str(f) for f in self.locustfiles)
        cmd = [plan.python, "-m", "locust", "-f", files, "--loglevel", "WARNING", *args]
        log = open(self.dir / f"{role}.log", "wb")  # noqa: SIM115 - closed in stop()
        try:
            proc = _proc.popen(
                cmd,
                name=f"locust {role}",
                cwd=str(self.dir),
                env=_child_env(self.spec_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.procs.append((role, proc))

    def _run_args(self) -> list[str]:
        plan = self.plan
        return [
            "--headless",
            "--host",
            plan.host,
            "-u",
            str(plan.users),
            "-r",
            f"{plan.spawn_rate:g}",
            "-t",
            f"{max(1, round(plan.duration_s))}s",
            "--csv",
            str(self.prefix),
            "--csv-full-history",
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ]

    def start(self) -> None:
        """Start the locust processes for the plan's mode."""
        plan = self.plan
        self.started = time.monotonic()
        if plan.master_host:
            for i in range(max(1, plan.workers)):
                self._spawn(
                    f"worker{i + 1}",
                    [
                        "--worker",
                        "--master-host",
                        plan.master_host,
                        "--master-port",
                        str(plan.master_port),
                    ],
                )
            return
        if plan.workers:
            port = free_port()
            self._spawn(
                "master",
                [
                    "--master",
                    "--master-bind-host",
                    "127.0.0.1",
                    "--master-bind-port",
                    str(port),
                    "--expect-workers",
                    str(plan.workers),
                    "--expect-workers-max-wait",
                    str(int(plan.expect_workers_wait_s)),
                    *self._run_args(),
                ],
            )
            for i in range(plan.workers):
                self._spawn(
                    f"worker{i + 1}",
                    ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                )
            return
        self._spawn("standalone", self._run_args())

    def budget_s(self) -> float:
        """How long the run may take before it counts as stuck."""
        extra = (
            self.plan.expect_workers_wait_s if (self.plan.workers or self.plan.master_host) else 0
        )
        return self.plan.duration_s + 20.0 + extra

    def wait(self, deadline: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Wait until every process exits; stop them all on cancel or at `deadline`."""
        while True:
            if all(p.poll() is not None for _, p in self.procs):
                return
            if should_stop():
                self.stop()
                raise LoadCancelled("the load run was cancelled")
            if time.monotonic() >= deadline:
                self.stop()
                raise LoadCancelled("the load run did not finish before its deadline")
            if self.plan.workers and not self.plan.master_host:
                master = self.procs[0][1]
                if master.poll() is not None:
                    # the master is done: give workers a moment, then make sure they go
                    self._reap_workers(time.monotonic() + STOP_GRACE_S)
                    return
            time.sleep(0.1)

    def _reap_workers(self, until: float) -> None:
        for _, p in self.procs[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, until - time.monotonic()))
        _proc.stop_many([p for _, p in self.procs[1:]], grace=STOP_GRACE_S, sig=signal.SIGTERM)

    def stop(self) -> None:
        """Stop every locust process group (TERM, then KILL) and reap them. Idempotent."""
        _proc.stop_many([p for _, p in self.procs], grace=STOP_GRACE_S, sig=signal.SIGTERM)

    def cleanup(self) -> None:
        """Stop the processes and delete the work directory (tokens included)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """Process ids of the locust processes started."""
        return [p.pid for _, p in self.procs]

    def log_tail(self, chars: int = 600) -> str:
        """The end of the first log with something in it (for error messages)."""
        for role, _ in self.procs:
            try:
                text = (self.dir / f"{role}.log").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            lines = [ln for ln in text.strip().splitlines() if ln.strip()]
            if lines:
                return current_redactor().tail("\n".join(lines), chars)
        return ""

    # -- results ------------------------------------------------------------------------
    def stats(self) -> LoadStats:
        """The run's combined stats: locust's CSV when ours, else the workers' own files."""
        wall = round(time.monotonic() - self.started, 2)
        procs = read_process_stats(self.stats_dir)
        processes = [
            {
                "pid": p.get("pid"),
                "role": "worker" if p.get("role") == "WorkerRunner" else "standalone",
                "requests": sum(int(e.get("count", 0)) for e in (p.get("requests") or {}).values()),
            }
            for p in procs
        ]
        if not self.plan.master_host:
            parsed = read_csv_stats(self.prefix)
            if parsed is not None and parsed[1].requests > 0:
                endpoints, overall = parsed
                # per-second percentiles from the processes' own histograms when there are
                # any (locust's history rows are a 10 s sliding window)
                timeline = combine_processes(procs)[2] if procs else []
                source = "locust CSV; timeline per second from each locust process"
                if len(timeline) < 2:
                    timeline, source = read_csv_timeline(self.prefix), "locust CSV"
                return LoadStats(
                    endpoints=endpoints,
                    overall=overall,
                    timeline=timeline,
                    wall_s=wall,
                    mode=self.plan.mode,
                    source=source,
                    processes=processes,
                    failures=read_csv_failures(self.prefix),
                )
        if procs:
            endpoints, overall, timeline = combine_processes(procs)
            if overall.requests > 0:
                return LoadStats(
                    endpoints=endpoints,
                    overall=overall,
                    timeline=timeline,
                    wall_s=wall,
                    mode=self.plan.mode,
                    source="readyctl hooks in each locust process",
                    processes=processes,
                )
        codes = [p.returncode for _, p in self.procs]
        tail = self.log_tail()
        if tail:
            last = clip(tail.splitlines()[-1], 300)
            raise LoadRunError(f"locust recorded no requests (exit codes {codes}): {last}")
        raise LoadRunError(
            f"locust recorded no requests in the {self.plan.duration_s:g} s run (exit codes "
            f"{codes}); the target may not answer within the request timeout"
        )


def run(
    plan: LoadPlan,
    *,
    deadline: float,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[LocustRun], None] | None = None,
    workdir: Path | None = None,
) -> LoadStats:
    """Run locust for the plan and return its stats; every process is gone when this returns."""
    lr = LocustRun(plan, workdir=workdir)
    try:
        if on_start is not None:
            on_start(lr)
        lr.start()
        lr.wait(min(deadline, time.monotonic() + lr.budget_s()), should_stop)
        return lr.stats()
    finally:
        lr.cleanup()


def locust_available(python: str = sys.executable) -> bool:
    """Whether `python -m locust` can run (checked without importing locust here)."""
    if python == sys.executable:
        import importlib.util

        return importlib.util.find_spec("locust") is not None
    return shutil.which(python) is not None
