"""The load run shared by load.thresholds and load.regression: profiles, logins, one locust run."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationError

from readyctl.apimap import ListSpec, LoginSpec, RouteUnknown
from readyctl.check import CheckSettings
from readyctl.context import LOGIN_MAX_BODY, Context, login_body, token_paths
from readyctl.httpread import BodyTooLarge
from readyctl.loadrun import (
    MAX_DURATION_S,
    MAX_USERS,
    LoadPlan,
    LoadRunError,
    LoadStats,
    profile_users,
)
from readyctl.loadrun import run as run_locust

SETTINGS_ID = "load.thresholds"
CACHE_KEY = "load.stats"
DEFAULT_DURATION_S = 8.0
DEFAULT_SPAWN_RATE = 50.0

# with no profiles configured: a read-only mix derived from the API map, this many users
# (the `users` setting scales it), each list's first page of this size
DERIVED_USERS = 10
DERIVED_PAGE_SIZE = 20


def _dig(data: Any, path: str) -> Any:
    """Follow a dotted path into JSON."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


class LoadConfigError(ValueError):
    """The load settings are wrong (reported as a config error)."""


def seconds(value: Any, default: float) -> float:
    """'30s', '2m', 45 -> seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not m:
        raise LoadConfigError(f"duration {value!r} is not a duration like 30s or 2m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


# -- settings (load.thresholds' Settings extend LoadSettings; load.regression reads them) ------
Scalar = str | int | float | bool
NonNegative = Annotated[float, Field(ge=0)]


def _duration_ok(value: float | str) -> float | str:
    """A duration `seconds()` understands, between 1 s and the load run's maximum."""
    if not 1 <= seconds(value, DEFAULT_DURATION_S) <= MAX_DURATION_S:
        raise LoadConfigError(f"duration must be between 1 s and {MAX_DURATION_S:g} s")
    return value


class LoadRequest(CheckSettings):
    """One request of a load profile."""

    method: str = Field("GET", description="HTTP method")
    path: str = Field(pattern=r"^/", description="path starting with /; may use {captured} fields")
    name: str | None = Field(
        None, description="name in the stats (default: METHOD and the path without its query)"
    )
    auth: bool = Field(True, description="send the load user's token")
    json_: Any = Field(None, alias="json", description="JSON body")
    headers: dict[str, Scalar] = Field(default_factory=dict, description="extra headers")
    expect: int | tuple[int, ...] | None = Field(
        None, description="status code(s) that count as success (default: any under 400)"
    )
    capture: dict[str, str] = Field(
        default_factory=dict,
        description="variable -> dotted JSON path of the answer, for later {variable} paths",
    )


class LoadTask(LoadRequest):
    """A task of one request."""

    weight: int = Field(1, ge=1, description="how often the task is picked, relative to others")


class LoadSteps(CheckSettings):
    """A task of several requests in order."""

    weight: int = Field(1, ge=1, description="how often the task is picked, relative to others")
    steps: tuple[LoadRequest, ...] = Field(min_length=1, description="the requests, in order")


def _task_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "task of steps" if "steps" in value else "task of one request"
    return "task of steps" if isinstance(value, LoadSteps) else "task of one request"


LoadTaskItem = Annotated[
    Annotated[LoadSteps, Tag("task of steps")] | Annotated[LoadTask, Tag("task of one request")],
    Discriminator(_task_kind),
]


class LoadArrival(CheckSettings):
    """Constant arrival pacing instead of think time."""

    sessions_per_hour: float = Field(1000.0, gt=0, description="task runs per hour in total")
    time_scale: float = Field(1.0, gt=0, description="compress time: 36 runs an hour in 100 s")


class LoadProfile(CheckSettings):
    """One user class of the load run."""

    name: str | None = Field(None, description="profile name (default: profileN)")
    users: int = Field(10, ge=0, description="concurrent users of this profile")
    think_time_s: NonNegative | tuple[NonNegative, NonNegative] = Field(
        (1.0, 2.0), description="seconds between tasks: [min, max] or one value"
    )
    arrival: LoadArrival | None = Field(
        None, description="pace task runs at a constant rate instead of think time"
    )
    on_start: tuple[LoadRequest, ...] = Field(
        (), description="requests each user sends once when it starts"
    )
    tasks: tuple[LoadTaskItem, ...] = Field(
        min_length=1, description="requests ({weight, method, path, ...}) or {weight, steps}"
    )


class LoadSettings(CheckSettings):
    """The load run's settings, under load.thresholds (load.regression shares the run)."""

    profiles: tuple[LoadProfile, ...] = Field(
        (),
        description="user classes (default: a read-only mix derived from the API map: GET the "
        "first page of each api.lists route and api.me, 10 users; the managed demo brings its "
        "counsel flow)",
    )
    users: int | None = Field(
        None,
        ge=1,
        le=MAX_USERS,
        description="scale the profiles to this many users in total (a locustfile: 10)",
    )
    spawn_rate: float = Field(DEFAULT_SPAWN_RATE, gt=0, description="users started per second")
    duration: Annotated[float | str, AfterValidator(_duration_ok)] = Field(
        DEFAULT_DURATION_S, description="how long the load runs: seconds, or 30s, 2m, 1h"
    )
    max_users: int = Field(1000, ge=1, description="refuse profiles asking for more users")
    workers: int = Field(
        0, ge=0, description="0: one locust process; N: a local master and N workers"
    )
    master_host: str | None = Field(
        None,
        description="join this existing locust master with `workers` local workers instead",
    )
    master_port: int = Field(5557, ge=1, le=65535, description="the locust master's port")
    locustfile: str | None = Field(None, description="run this locustfile instead of the profiles")
    login: bool | None = Field(
        None,
        description="log users in up front (default: true with profiles, false with a locustfile)",
    )
    users_file: str | None = Field(
        None, description="CSV email,password or JSON users to log in up front"
    )
    logins: int | None = Field(
        None,
        ge=1,
        description="how many users to log in (default: enough to keep each under "
        "requests_per_login_per_minute)",
    )
    requests_per_login_per_minute: float = Field(
        100.0, gt=0, description="per-user request budget the logins are sized for"
    )
    min_logins: int = Field(8, ge=0, description="log in at least this many users")
    max_logins: int = Field(50, ge=1, description="log in at most this many users")
    request_timeout_s: float | None = Field(
        None,
        gt=0,
        description="a request taking longer counts as failed (default: half the duration, "
        "5..30 s)",
    )


def _request(raw: LoadRequest) -> dict[str, Any]:
    method = raw.method.upper()
    path = raw.path
    req: dict[str, Any] = {
        "method": method,
        "path": path,
        "name": raw.name or f"{method} {path.split('?', 1)[0]}",
        "auth": raw.auth,
    }
    if raw.json_ is not None:
        req["json"] = raw.json_
    if raw.headers:
        req["headers"] = {k: str(v) for k, v in raw.headers.items()}
    if raw.expect:
        exp = raw.expect
        req["expect"] = list(exp) if isinstance(exp, tuple) else [exp]
    if raw.capture:
        req["capture"] = dict(raw.capture)
    return req


def normalize_profiles(
    raw: Sequence[LoadProfile | Mapping[str, Any]], users: int | None
) -> list[dict[str, Any]]:
    """Validate profiles, scale them to `users` in total, and work out arrival pacing."""
    if not raw:
        raise LoadConfigError("profiles is empty")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        try:
            p = item if isinstance(item, LoadProfile) else LoadProfile.model_validate(item)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise LoadConfigError(f"profile {i + 1}: {where}: {first['msg']}") from None
        name = p.name or f"profile{i + 1}"
        tasks = [
            {
                "weight": t.weight,
                "steps": [_request(s) for s in (t.steps if isinstance(t, LoadSteps) else (t,))],
            }
            for t in p.tasks
        ]
        think = p.think_time_s
        low, high = think if isinstance(think, tuple) else (think, think)
        prof: dict[str, Any] = {
            "name": name,
            "class_name": "Readyctl_" + re.sub(r"[^A-Za-z0-9_]", "_", name),
            "users": p.users,
            "think_time_s": [float(low), float(high)],
            "on_start": [_request(s) for s in p.on_start],
            "tasks": tasks,
        }
        if p.arrival is not None and p.arrival.model_fields_set:  # `arrival: {}` is no pacing
            per_hour = p.arrival.sessions_per_hour
            scale = p.arrival.time_scale
            prof["arrival_per_s"] = per_hour * scale / 3600
            prof["sessions_per_hour"] = per_hour
            prof["time_scale"] = scale
        out.append(prof)
    if users is not None:
        _scale(out, users)
    for prof in out:
        if "arrival_per_s" in prof and prof["users"] > 0:
            prof["pacing_s"] = round(prof["users"] / prof["arrival_per_s"], 3)
    out = [p for p in out if p["users"] > 0]
    if not out:
        raise LoadConfigError("no profile has users")
    return out


def _scale(profiles: list[dict[str, Any]], total: int) -> None:
    """Share `total` users across profiles in proportion to their own counts."""
    base = sum(p["users"] for p in profiles) or 1
    shares = [total * p["users"] / base for p in profiles]
    counts = [math.floor(s) for s in shares]
    rest = total - sum(counts)
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)[:rest]:
        counts[i] += 1
    for p, n in zip(profiles, counts, strict=True):
        p["users"] = n


def expected_rps(profiles: Sequence[Mapping[str, Any]], latency_s: float = 0.1) -> float:
    """Requests per second the profiles aim at (think-time users and paced arrivals)."""
    total = 0.0
    for p in profiles:
        weights = [t["weight"] for t in p["tasks"]]
        steps = sum(t["weight"] * len(t["steps"]) for t in p["tasks"]) / max(1, sum(weights))
        if p.get("pacing_s"):
            total += p["users"] / max(p["pacing_s"], latency_s * steps) * steps
        else:
            think = sum(p["think_time_s"]) / 2
            total += p["users"] / (think + latency_s * steps) * steps
    return total


# -- credentials -----------------------------------------------------------------------------
def _users_file(ctx: Context, path: str) -> list[tuple[str, str]]:
    """email,password rows from a CSV file, or a JSON list of {email|username, password}."""
    p = ctx.resolve(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise LoadConfigError(f"users_file {p}: {e.strerror or e}") from None
    out: list[tuple[str, str]] = []
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            raise LoadConfigError(f"users_file {p} is not valid JSON") from None
        for row in data if isinstance(data, list) else []:
            if isinstance(row, Mapping):
                user = row.get("email") or row.get("username")
                if user and row.get("password"):
                    out.append((str(user), str(row["password"])))
    else:
        for row in csv.reader(text.splitlines()):
            if len(row) >= 2 and row[0].strip() and not row[0].startswith("#"):
                if row[0].strip().lower() in ("email", "username"):
                    continue
                out.append((row[0].strip(), row[1].strip()))
    if not out:
        raise LoadConfigError(f"users_file {p} has no email,password rows")
    return out


def credentials(ctx: Context, s: LoadSettings, login: LoginSpec) -> list[tuple[str, str]]:
    """Seeded users to log in up front (the managed demo's, a users file, or the test account)."""
    me = ctx.environ.get(login.username_var, "")
    if s.users_file:
        creds = _users_file(ctx, s.users_file)
    elif ctx.managed is not None and getattr(ctx.managed, "users", None):
        users = list(ctx.managed.users)
        org = next((u["org_id"] for u in users if u.get("email") == me), None)
        creds = [
            (u["email"], u["password"])
            for u in users
            if u.get("role") == "member" and (org is None or u.get("org_id") == org)
        ]
        # leave the run's own test account to the other checks (its counsel budget)
        creds = [c for c in creds if c[0] != me] or creds
    else:
        password = ctx.environ.get(login.password_var, "")
        creds = [(me, password)] if me and password else []
    for _, password in creds:
        ctx.redactor.add(password)
    return creds


def logins_needed(profiles: Sequence[Mapping[str, Any]], duration_s: float, s: LoadSettings) -> int:
    """Enough distinct users that none exceeds a per-user budget in a one-minute window."""
    if s.logins:
        return s.logins
    per_login = s.requests_per_login_per_minute
    wanted = math.ceil(expected_rps(profiles) * min(duration_s, 60.0) / max(1.0, per_login))
    wanted = max(s.min_logins, wanted)
    return min(wanted, s.max_logins, profile_users(profiles))


def login_all(
    ctx: Context, login: LoginSpec, creds: Sequence[tuple[str, str]], workers: int = 8
) -> tuple[list[str], list[str]]:
    """Log the users in at the API map's login route (in parallel); tokens and one line per
    failure."""
    path = login.path
    assert path is not None
    form = (login.body or "json") == "form"
    client = ctx.http(timeout=30, max_body=LOGIN_MAX_BODY)

    def one(cred: tuple[str, str]) -> str:
        user, password = cred
        body = login_body(login, user, password)
        if form:
            resp = client.request(login.method, path, data=body, timeout=ctx.timeout(30))
        else:
            resp = client.request(login.method, path, json=body, timeout=ctx.timeout(30))
        if resp.status_code >= 400:
            raise LoadRunError(f"login of {user} answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            data = None
        where, _ = token_paths(login, data)
        token = _dig(data, where) if where else None
        if not isinstance(token, str) or not token:
            raise LoadRunError(f"login of {user} returned no token at {where or 'any token key'!r}")
        ctx.redactor.add(token)
        return token

    tokens: list[str] = []
    problems: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max(1, min(workers, len(creds)))) as pool:
        for fut in [pool.submit(one, c) for c in creds]:
            try:
                tokens.append(fut.result())
            except (LoadRunError, BodyTooLarge) as e:
                problems.append(str(e))
            except httpx.HTTPError as e:
                problems.append(type(e).__name__)
    return tokens, problems


# -- the profiles readyctl derives from the API map ---------------------------------------------
def first_page(spec: ListSpec, size: int = DERIVED_PAGE_SIZE) -> str:
    """A list route's first page (the server's default page, `size` rows when it takes a size)."""
    return f"{spec.path}?{spec.size_param}={size}" if spec.size_param else spec.path


def derived_profiles(ctx: Context, session: bool) -> list[dict[str, Any]]:
    """A read-only mix from the API map: GET each list's first page and the current user.

    Raises RouteUnknown("lists") when the map has neither: readyctl does not guess what to load.
    """
    api = ctx.api()
    tasks: list[dict[str, Any]] = [
        {"method": "GET", "path": first_page(spec), "auth": session}
        for spec in api.lists
        if "{" not in spec.path  # a path parameter readyctl has no value for
    ]
    if api.me and session:
        tasks.append({"method": "GET", "path": api.me, "auth": True})
    if not tasks:
        why = "nor me" if session else "and no session for me"
        raise RouteUnknown("lists", ctx.env_name, f"{why}: nothing to load read-only")
    return [{"name": "read", "users": DERIVED_USERS, "think_time_s": [1.0, 2.0], "tasks": tasks}]


# -- the run ---------------------------------------------------------------------------------
class Measured:
    """One load run's stats plus what was asked for (for summaries and evidence)."""

    def __init__(self, stats: LoadStats, info: dict[str, Any], expected_rps: float | None):
        self.stats = stats
        self.info = info
        self.expected_rps = expected_rps


def build_plan(ctx: Context, s: LoadSettings) -> tuple[LoadPlan, dict[str, Any], float | None]:
    """The locust plan from settings (logging users in when the profiles need it)."""
    env = ctx.environment
    if not env.base_url:
        raise LoadConfigError("no base_url to load")
    duration = seconds(s.duration, DEFAULT_DURATION_S)
    if not 1 <= duration <= MAX_DURATION_S:
        raise LoadConfigError(f"duration must be between 1 s and {MAX_DURATION_S:g} s")
    max_users = s.max_users
    users = s.users
    if users is not None and not 1 <= users <= min(max_users, MAX_USERS):
        raise LoadConfigError(f"users must be between 1 and {min(max_users, MAX_USERS)}")
    locustfile = s.locustfile
    api = ctx.api()
    profiles: list[dict[str, Any]] = []
    expected: float | None = None
    if locustfile:
        total = users or 10
        needs_login = bool(s.login)
    else:
        raw: Sequence[LoadProfile | Mapping[str, Any]] = s.profiles
        needs_login = s.login is not False
        if not raw:
            # no profiles: the map's read-only mix, with the session when there is a login
            has_login = api.token is not None or (api.login is not None and bool(api.login.path))
            needs_login = needs_login and (has_login or s.login is True)
            raw = derived_profiles(ctx, session=needs_login)
        profiles = normalize_profiles(raw, users)
        total = profile_users(profiles)
        if total > max_users:
            raise LoadConfigError(f"the profiles ask for {total} users, more than max_users")
        expected = expected_rps(profiles)
    tokens: list[str] = []
    info: dict[str, Any] = {
        "users": total,
        "duration_s": duration,
        "spawn_rate": s.spawn_rate,
    }
    if profiles:
        info["profiles"] = {
            p["name"]: {
                "users": p["users"],
                **({"pacing_s": p["pacing_s"]} if p.get("pacing_s") else {}),
                **(
                    {"sessions_per_hour": p["sessions_per_hour"], "time_scale": p["time_scale"]}
                    if p.get("sessions_per_hour")
                    else {"think_time_s": p["think_time_s"]}
                ),
            }
            for p in profiles
        }
    if needs_login and api.token is not None:
        token = ctx.environ.get(api.token.var, "")
        if not token:
            raise LoadConfigError(f"the API map's token variable {api.token.var} is not set")
        ctx.redactor.add(token)
        tokens = [token]
    elif needs_login:
        login = api.login
        if login is None or not login.path:
            raise RouteUnknown("login", ctx.env_name, "to log the load users in")
        creds = credentials(ctx, s, login)
        if not creds:
            raise LoadConfigError(
                "no users to log in: set users_file, or the test account variables "
                f"({login.username_var}, {login.password_var})"
            )
        wanted = logins_needed(profiles, duration, s) if profiles else min(len(creds), 10)
        t0 = time.monotonic()
        tokens, problems = login_all(ctx, login, creds[: max(1, wanted)])
        info["logins"] = len(tokens)
        info["login_s"] = round(time.monotonic() - t0, 2)
        if problems:
            info["login_failures"] = problems[:5]
        if not tokens:
            raise LoadRunError(f"no load user could log in: {problems[0] if problems else '?'}")
    workers = s.workers
    master_host = s.master_host or None
    plan = LoadPlan(
        host=env.base_url,
        users=total,
        spawn_rate=info["spawn_rate"],
        duration_s=duration,
        profiles=profiles,
        locustfile=ctx.resolve(locustfile) if locustfile else None,
        tokens=tokens,
        auth_header=api.header,
        auth_scheme=api.scheme,
        ca_bundle=str(ctx.resolve(env.ca_bundle)) if env.ca_bundle else None,
        workers=workers,
        master_host=master_host,
        master_port=s.master_port,
        request_timeout_s=s.request_timeout_s or min(30.0, max(5.0, duration / 2)),
    )
    info["mode"] = plan.mode
    if plan.master_host:
        # the master decides users, spawn rate and run time; ours are only the deadline
        for key in ("users", "spawn_rate", "profiles"):
            info.pop(key, None)
        info["master"] = f"{plan.master_host}:{plan.master_port}"
    return plan, info, expected


def measure(ctx: Context) -> Measured:
    """Run the load once per readyctl run (both load checks share it); raises on failure."""
    with ctx.state.lock:
        cached = ctx.state.cache.get(CACHE_KEY)
    if isinstance(cached, Measured):
        return cached
    if isinstance(cached, Exception):
        raise cached
    try:
        result = _measure(ctx)
    except (LoadConfigError, LoadRunError) as e:
        with ctx.state.lock:
            ctx.state.cache[CACHE_KEY] = e
        raise
    with ctx.state.lock:
        ctx.state.cache[CACHE_KEY] = result
    return result


def _measure(ctx: Context) -> Measured:
    s: LoadSettings = ctx.settings(SETTINGS_ID)
    plan, info, expected = build_plan(ctx, s)
    plan.validate()
    stats = run_locust(
        plan,
        deadline=time.monotonic() + max(1.0, ctx.remaining() - 2.0),
        should_stop=ctx.state.cancelled.is_set,
        on_start=lambda lr: ctx.add_cleanup(lr.cleanup),
    )
    return Measured(stats, info, expected)


def history_dir(ctx: Context) -> Path:
    """Where `readyctl check` keeps past runs."""
    return ctx.resolve(ctx.config.report.history_dir)
