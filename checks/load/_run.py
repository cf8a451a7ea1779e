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
from typing import Any

import httpx

from readyctl.context import Context
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

MESSAGE = "Work has been stressful this week and I would like to talk it through."
DEFAULT_PROFILES: tuple[dict[str, Any], ...] = (
    {
        # seed item 6: 100 concurrent users on the counsel flow, AI latency included
        "name": "counsel",
        "users": 100,
        "think_time_s": [1.0, 2.0],
        "on_start": [
            {
                "method": "POST",
                "path": "/v1/counsel/sessions",
                "json": {"title": "readyctl load"},
                "expect": [201],
                "capture": {"session_id": "id"},
            }
        ],
        "tasks": [
            {
                "weight": 4,
                "method": "POST",
                "path": "/v1/counsel/sessions/{session_id}/messages",
                "json": {"content": MESSAGE},
                "expect": [201],
            },
            {"weight": 1, "method": "GET", "path": "/v1/counsel/sessions/{session_id}"},
            {"weight": 1, "method": "GET", "path": "/v1/counsel/sessions?limit=20"},
        ],
    },
    {
        # seed item 6: 1000 sessions an hour, constant pacing, an hour compressed 36x
        "name": "sessions",
        "users": 10,
        "arrival": {"sessions_per_hour": 1000, "time_scale": 36},
        "tasks": [
            {
                "steps": [
                    {
                        "method": "POST",
                        "path": "/v1/counsel/sessions",
                        "json": {"title": "readyctl arrival"},
                        "expect": [201],
                        "capture": {"session_id": "id"},
                    },
                    {
                        "method": "POST",
                        "path": "/v1/counsel/sessions/{session_id}/messages",
                        "json": {"content": MESSAGE},
                        "expect": [201],
                    },
                ]
            }
        ],
    },
)


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


def _request(raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or "path" not in raw:
        raise LoadConfigError("every request needs a path")
    method = str(raw.get("method", "GET")).upper()
    path = str(raw["path"])
    if not path.startswith("/"):
        raise LoadConfigError(f"request path {path!r} must start with /")
    req: dict[str, Any] = {
        "method": method,
        "path": path,
        "name": str(raw.get("name") or f"{method} {path.split('?', 1)[0]}"),
        "auth": bool(raw.get("auth", True)),
    }
    if raw.get("json") is not None:
        req["json"] = raw["json"]
    if raw.get("headers"):
        req["headers"] = {str(k): str(v) for k, v in raw["headers"].items()}
    if raw.get("expect"):
        exp = raw["expect"]
        req["expect"] = [int(x) for x in (exp if isinstance(exp, list) else [exp])]
    if raw.get("capture"):
        req["capture"] = {str(k): str(v) for k, v in raw["capture"].items()}
    return req


def normalize_profiles(raw: Sequence[Mapping[str, Any]], users: int | None) -> list[dict[str, Any]]:
    """Validate profiles, scale them to `users` in total, and work out arrival pacing."""
    if not raw:
        raise LoadConfigError("profiles is empty")
    out: list[dict[str, Any]] = []
    for i, p in enumerate(raw):
        if not isinstance(p, Mapping):
            raise LoadConfigError(f"profile {i + 1} is not a mapping")
        name = str(p.get("name") or f"profile{i + 1}")
        tasks = []
        for t in p.get("tasks") or []:
            steps = t.get("steps") if isinstance(t, Mapping) and "steps" in t else [t]
            tasks.append({"weight": int(t.get("weight", 1)), "steps": [_request(s) for s in steps]})
        if not tasks:
            raise LoadConfigError(f"profile {name} has no tasks")
        think = p.get("think_time_s", [1.0, 2.0])
        if isinstance(think, int | float):
            think = [float(think), float(think)]
        prof: dict[str, Any] = {
            "name": name,
            "class_name": "Readyctl_" + re.sub(r"[^A-Za-z0-9_]", "_", name),
            "users": int(p.get("users", 10)),
            "think_time_s": [float(think[0]), float(think[1])],
            "on_start": [_request(s) for s in p.get("on_start") or []],
            "tasks": tasks,
        }
        if p.get("arrival"):
            arr = p["arrival"]
            per_hour = float(arr.get("sessions_per_hour", 1000))
            scale = float(arr.get("time_scale", 1))
            if per_hour <= 0 or scale <= 0:
                raise LoadConfigError(f"profile {name}: arrival rate and time_scale must be > 0")
            prof["arrival_per_s"] = per_hour * scale / 3600
            prof["sessions_per_hour"] = per_hour
            prof["time_scale"] = scale
        if prof["users"] < 0:
            raise LoadConfigError(f"profile {name}: users must be >= 0")
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


def credentials(ctx: Context, s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Seeded users to log in up front (the managed demo's, a users file, or the test account)."""
    auth = ctx.environment.auth
    me = ctx.environ.get(auth.username_var if auth else "READYCTL_AUTH_USERNAME", "")
    if s.get("users_file"):
        creds = _users_file(ctx, str(s["users_file"]))
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
        password = ctx.environ.get(auth.password_var if auth else "READYCTL_AUTH_PASSWORD", "")
        creds = [(me, password)] if me and password else []
    for _, password in creds:
        ctx.redactor.add(password)
    return creds


def logins_needed(
    profiles: Sequence[Mapping[str, Any]], duration_s: float, s: Mapping[str, Any]
) -> int:
    """Enough distinct users that none exceeds a per-user budget in a one-minute window."""
    if s.get("logins"):
        return max(1, int(s["logins"]))
    per_login = float(s.get("requests_per_login_per_minute", 100))
    wanted = math.ceil(expected_rps(profiles) * min(duration_s, 60.0) / max(1.0, per_login))
    wanted = max(int(s.get("min_logins", 8)), wanted)
    return min(wanted, int(s.get("max_logins", 50)), profile_users(profiles))


def login_all(
    ctx: Context, creds: Sequence[tuple[str, str]], workers: int = 8
) -> tuple[list[str], list[str]]:
    """Log the users in (in parallel); tokens and one line per failure."""
    auth = ctx.environment.auth
    if auth is None:
        raise LoadConfigError("logging in load users needs auth: on the environment")
    client = ctx.http(timeout=30)

    def one(cred: tuple[str, str]) -> str:
        user, password = cred
        body = {auth.username_field: user, auth.password_field: password}
        if auth.body_format == "json":
            resp = client.request(auth.method, auth.path, json=body, timeout=ctx.timeout(30))
        else:
            resp = client.request(auth.method, auth.path, data=body, timeout=ctx.timeout(30))
        if resp.status_code >= 400:
            raise LoadRunError(f"login of {user} answered {resp.status_code}")
        try:
            token = _dig(resp.json(), auth.token_path)
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise LoadRunError(f"login of {user} returned no token at {auth.token_path!r}")
        ctx.redactor.add(token)
        return token

    tokens: list[str] = []
    problems: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max(1, min(workers, len(creds)))) as pool:
        for fut in [pool.submit(one, c) for c in creds]:
            try:
                tokens.append(fut.result())
            except (LoadRunError, httpx.HTTPError) as e:
                problems.append(str(e) if isinstance(e, LoadRunError) else type(e).__name__)
    return tokens, problems


# -- the run ---------------------------------------------------------------------------------
class Measured:
    """One load run's stats plus what was asked for (for summaries and evidence)."""

    def __init__(self, stats: LoadStats, info: dict[str, Any], expected_rps: float | None):
        self.stats = stats
        self.info = info
        self.expected_rps = expected_rps


def build_plan(ctx: Context, s: Mapping[str, Any]) -> tuple[LoadPlan, dict[str, Any], float | None]:
    """The locust plan from settings (logging users in when the profiles need it)."""
    env = ctx.environment
    if not env.base_url:
        raise LoadConfigError("no base_url to load")
    duration = seconds(s.get("duration"), DEFAULT_DURATION_S)
    if not 1 <= duration <= MAX_DURATION_S:
        raise LoadConfigError(f"duration must be between 1 s and {MAX_DURATION_S:g} s")
    max_users = int(s.get("max_users", 1000))
    users = s.get("users")
    users = int(users) if users is not None else None
    if users is not None and not 1 <= users <= min(max_users, MAX_USERS):
        raise LoadConfigError(f"users must be between 1 and {min(max_users, MAX_USERS)}")
    locustfile = s.get("locustfile")
    profiles: list[dict[str, Any]] = []
    expected: float | None = None
    if locustfile:
        total = users or 10
        needs_login = bool(s.get("login", False))
    else:
        profiles = normalize_profiles(s.get("profiles") or DEFAULT_PROFILES, users)
        total = profile_users(profiles)
        if total > max_users:
            raise LoadConfigError(f"the profiles ask for {total} users, more than max_users")
        expected = expected_rps(profiles)
        needs_login = bool(s.get("login", True))
    tokens: list[str] = []
    info: dict[str, Any] = {
        "users": total,
        "duration_s": duration,
        "spawn_rate": float(s.get("spawn_rate", DEFAULT_SPAWN_RATE)),
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
    auth = env.auth
    if needs_login and auth is not None and auth.kind == "token":
        token = ctx.environ.get(auth.token_var or "READYCTL_AUTH_TOKEN", "")
        if not token:
            raise LoadConfigError("auth kind token: the token variable is not set")
        ctx.redactor.add(token)
        tokens = [token]
    elif needs_login:
        creds = credentials(ctx, s)
        if not creds:
            raise LoadConfigError(
                "no users to log in: set users_file, or the test account variables"
            )
        wanted = logins_needed(profiles, duration, s) if profiles else min(len(creds), 10)
        t0 = time.monotonic()
        tokens, problems = login_all(ctx, creds[: max(1, wanted)])
        info["logins"] = len(tokens)
        info["login_s"] = round(time.monotonic() - t0, 2)
        if problems:
            info["login_failures"] = problems[:5]
        if not tokens:
            raise LoadRunError(f"no load user could log in: {problems[0] if problems else '?'}")
    workers = int(s.get("workers", 0) or 0)
    master_host = s.get("master_host") or None
    plan = LoadPlan(
        host=env.base_url,
        users=total,
        spawn_rate=info["spawn_rate"],
        duration_s=duration,
        profiles=profiles,
        locustfile=ctx.resolve(str(locustfile)) if locustfile else None,
        tokens=tokens,
        auth_header=auth.header if auth else "Authorization",
        auth_scheme=auth.scheme if auth else "Bearer",
        ca_bundle=str(ctx.resolve(env.ca_bundle)) if env.ca_bundle else None,
        workers=workers,
        master_host=str(master_host) if master_host else None,
        master_port=int(s.get("master_port", 5557)),
        request_timeout_s=float(s.get("request_timeout_s", min(30.0, max(5.0, duration / 2)))),
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
    s = ctx.settings(SETTINGS_ID)
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
