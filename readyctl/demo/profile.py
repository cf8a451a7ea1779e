"""What readyctl knows about the managed counseling demo's default shape: its API map and the
check settings that exercise its features (rate-limit policies, the load mix, the bundled
smoke suite).

These apply only to `managed: demo` with the default shape; every other target (the demo's
alternate shapes included) gets its routes from readyctl.yaml or discovery. Plain data: no
imports from readyctl, so the demo package stays free of the CLI and the CLI of FastAPI.
"""

from __future__ import annotations

from typing import Any

V1 = "/v1"

# The default shape's API map (readyctl.apimap.ApiConfig's keys).
COUNSELING_MAP: dict[str, Any] = {
    "prefix": V1,
    "login": {
        "method": "POST",
        "path": f"{V1}/auth/login",
        "body": "json",
        "username_field": "email",
        "password_field": "password",
        "access_token": "access_token",
        "refresh_token": "refresh_token",
    },
    "me": f"{V1}/auth/me",
    "refresh": {"method": "POST", "path": f"{V1}/auth/refresh", "send": "json"},
    "logout": {"method": "POST", "path": f"{V1}/auth/logout"},
    "register": {"method": "POST", "path": f"{V1}/auth/register"},
    "password_reset": {"method": "POST", "path": f"{V1}/auth/password-reset/request"},
    "lists": [
        {
            "path": f"{V1}/counsel/sessions",
            "size_param": "limit",
            "offset_param": "offset",
            "items": "items",
            "total": "total",
        }
    ],
    "json_endpoint": {"method": "POST", "path": f"{V1}/auth/login"},
    "health": {"live": "/health/live", "ready": "/health/ready"},
    "docs": ["/api/docs", "/api/docs-json"],
    "metrics": "/metrics",
}

MESSAGE = "Work has been stressful this week and I would like to talk it through."


def rate_limit_policies(api: str, *, register: str, reset: str) -> list[dict[str, Any]]:
    """The counseling API's limits: register 5/1m, password reset 10/1h, messages 100/1m."""
    return [
        {
            "method": "POST",
            "path": register,
            "limit": 5,
            "window": "1m",
            "body": {
                "email": "readyctl-rl-{run}-{n}@example.com",
                "password": "Readyctl-probe-{run}",
                "display_name": "readyctl rate-limit probe",
            },
        },
        {
            "method": "POST",
            "path": reset,
            "limit": 10,
            "window": "1h",
            "body": {"email": "readyctl-rl-{run}-{n}@example.com"},
        },
        {
            "method": "POST",
            "path": f"{api}/counsel/sessions/{{prepared.id}}/messages",
            "limit": 100,
            "window": "1m",
            "auth": True,
            "prepare": {
                "method": "POST",
                "path": f"{api}/counsel/sessions",
                "body": {"title": "readyctl rate-limit probe"},
                "auth": True,
            },
            "body": {"content": "readyctl rate-limit probe message {n}"},
        },
    ]


def load_profiles(api: str, list_query: str) -> list[dict[str, Any]]:
    """Seed item 6 on the counsel flow: 100 users with AI latency, 1000 sessions an hour."""
    return [
        {
            "name": "counsel",
            "users": 100,
            "think_time_s": [1.0, 2.0],
            "on_start": [
                {
                    "method": "POST",
                    "path": f"{api}/counsel/sessions",
                    "json": {"title": "readyctl load"},
                    "expect": [201],
                    "capture": {"session_id": "id"},
                }
            ],
            "tasks": [
                {
                    "weight": 4,
                    "method": "POST",
                    "path": f"{api}/counsel/sessions/{{session_id}}/messages",
                    "json": {"content": MESSAGE},
                    "expect": [201],
                },
                {"weight": 1, "method": "GET", "path": f"{api}/counsel/sessions/{{session_id}}"},
                {"weight": 1, "method": "GET", "path": f"{api}/counsel/sessions?{list_query}"},
            ],
        },
        {
            "name": "sessions",
            "users": 10,
            "arrival": {"sessions_per_hour": 1000, "time_scale": 36},
            "tasks": [
                {
                    "steps": [
                        {
                            "method": "POST",
                            "path": f"{api}/counsel/sessions",
                            "json": {"title": "readyctl arrival"},
                            "expect": [201],
                            "capture": {"session_id": "id"},
                        },
                        {
                            "method": "POST",
                            "path": f"{api}/counsel/sessions/{{session_id}}/messages",
                            "json": {"content": MESSAGE},
                            "expect": [201],
                        },
                    ]
                }
            ],
        },
    ]


def check_defaults() -> dict[str, dict[str, Any]]:
    """Check settings for the default shape (readyctl.yaml's `checks:` wins key by key)."""
    return {
        "ratelimit.policies": {
            "policies": rate_limit_policies(
                V1, register=f"{V1}/auth/register", reset=f"{V1}/auth/password-reset/request"
            )
        },
        "load.thresholds": {"profiles": load_profiles(V1, "limit=20")},
        "smoke.scenarios": {"include_default": True},
    }
