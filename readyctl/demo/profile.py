"""What readyctl knows about the managed counseling demo's default shape: its API map and the
check settings that exercise its features (rate-limit policies, the load mix, the bundled
smoke suite, the shipped alert rules and Alertmanager config).

These apply only to `managed: demo` with the default shape; every other target (the demo's
alternate shapes included) gets its routes from readyctl.yaml or discovery. Plain data: no
imports from readyctl, so the demo package stays free of the CLI and the CLI of FastAPI.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

V1 = "/v1"
# The demo's alert rules and Alertmanager config (shipped in the wheel); the alert faults
# only switch which file the checks read, the server is not involved.
ALERTS_DIR = Path(__file__).resolve().parent / "alerts"

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
    "cacheable": [f"{V1}/resources/crisis-lines"],
    "privacy_export": {"method": "GET", "path": f"{V1}/account/export"},
    "account_delete": {"method": "DELETE", "path": f"{V1}/account"},
    "verify_email": {"method": "POST", "path": f"{V1}/auth/verify-email"},
    "privacy_policy": "/legal/privacy-policy",
    "terms": "/legal/terms-of-service",
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


# The seed's six conditions -> the alerts of alerts/rules.yml and the series they read (what
# `readyctl init --alerts` proposed from the demo's /metrics: http_requests_total{status} and
# its request-duration histogram; the database, disk, memory and health-check alerts read
# postgres_exporter, node_exporter and Prometheus series the demo does not expose itself).
ALERT_CONDITIONS: dict[str, dict[str, Any]] = {
    "error_rate": {
        "alert": "HighErrorRate",
        "kind": "counter_ratio",
        "metric": "http_requests_total",
        "error_labels": {"status": "500"},
        "ok_labels": {"status": "200"},
    },
    "response_time": {
        "alert": "SlowResponses",
        "kind": "histogram",
        "metric": "http_request_duration_seconds",
        "buckets": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        "statistic": "p95",
    },
    "db_connection_failures": {
        "alert": "DatabaseConnectionFailures",
        "kind": "up",
        "metric": "pg_up",
    },
    "disk_space": {
        "alert": "DiskSpaceLow",
        "kind": "bytes",
        "metric": "node_filesystem_avail_bytes",
        "total_metric": "node_filesystem_size_bytes",
        "measures": "free",
        "labels": {"mountpoint": "/", "fstype": "ext4"},
    },
    "memory_usage": {
        "alert": "MemoryUsageHigh",
        "kind": "bytes",
        "metric": "node_memory_MemAvailable_bytes",
        "total_metric": "node_memory_MemTotal_bytes",
        "measures": "free",
    },
    "failed_health_checks": {"alert": "HealthCheckFailing", "kind": "up", "metric": "up"},
}


def alert_settings(faults: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """alerts.rules / alerts.routing on the shipped files, as absolute paths (a relative one
    would be joined to the run's base directory). `alert-rules-loose` swaps in the rules
    whose error-rate alert waits for 20%; `alerts-unrouted` the config routing to nobody."""
    on = set(faults)
    rules = "rules-loose.yml" if "alert-rules-loose" in on else "rules.yml"
    routing = "alertmanager-unrouted.yml" if "alerts-unrouted" in on else "alertmanager.yml"
    return {
        "alerts.rules": {
            "rule_files": [str(ALERTS_DIR / rules)],
            "conditions": copy.deepcopy(ALERT_CONDITIONS),
        },
        "alerts.routing": {"alertmanager_config": str(ALERTS_DIR / routing)},
    }


def check_defaults(faults: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Check settings for the default shape (readyctl.yaml's `checks:` wins key by key); the
    demo's `faults` pick which alert files the alerts checks read."""
    return {
        "ratelimit.policies": {
            "policies": rate_limit_policies(
                V1, register=f"{V1}/auth/register", reset=f"{V1}/auth/password-reset/request"
            )
        },
        "load.thresholds": {"profiles": load_profiles(V1, "limit=20")},
        "smoke.scenarios": {"include_default": True},
        **alert_settings(faults),
    }
