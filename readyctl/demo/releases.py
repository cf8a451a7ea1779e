"""Releases of the demo API: v1 (the app as it always was) and v2 (a migration and a feature).

v2 adds an optional `mood` to counseling sessions (a nullable column, migration
0005_session_mood, whose version location only v2's alembic ini lists), serves
`GET <prefix>/version` and marks every response with `X-Release: v2`. The release a server
process runs comes from READYCTL_DEMO_RELEASE (unset: v1).
"""

from __future__ import annotations

RELEASE_ENV = "READYCTL_DEMO_RELEASE"
DEFAULT_RELEASE = "v1"
RELEASES: dict[str, str] = {
    "v1": "The counseling API as it always was (schema head 0004_billing).",
    "v2": "Sessions take an optional mood (migration 0005_session_mood); X-Release: v2.",
}
RELEASE_HEADS: dict[str, str] = {"v1": "0004_billing", "v2": "0005_session_mood"}
RELEASE_HEADER = "X-Release"

MAINTENANCE_FILE_ENV = "READYCTL_DEMO_MAINTENANCE_FILE"
MAINTENANCE_SECRET_ENV = "READYCTL_DEMO_MAINTENANCE_SECRET"
"""How the server process gets the bypass secret (never written to the env file)."""
BYPASS_HEADER = "X-Maintenance-Bypass"
BYPASS_SECRET_ENV = "READYCTL_MAINTENANCE_BYPASS_SECRET"
"""Where readyctl (checks, runbook actions) finds the bypass secret of a managed demo."""
MAINTENANCE_RETRY_AFTER_S = 30


def validate_release(release: str | None) -> str:
    """Return the release name (None or empty: v1); raise ValueError on an unknown one."""
    name = (release or DEFAULT_RELEASE).strip()
    if name not in RELEASES:
        raise ValueError(f"unknown demo release {name!r}; valid releases: {', '.join(RELEASES)}")
    return name
