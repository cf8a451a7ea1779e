"""Fault switches of the demo: each one breaks exactly one readiness property."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

FAULTS_ENV = "READYCTL_DEMO_FAULTS"


@dataclass(frozen=True)
class Fault:
    """One fault switch: its name, what it breaks and the checks that must turn red."""

    name: str
    description: str
    checks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Return the stable JSON shape {"name", "description", "checks"}."""
        return {"name": self.name, "description": self.description, "checks": list(self.checks)}


_ALL: tuple[Fault, ...] = (
    Fault("no-hsts", "HTTPS responses carry no Strict-Transport-Security header.", []),
    Fault(
        "no-security-headers",
        "No X-Content-Type-Options, X-Frame-Options, Referrer-Policy or Content-Security-Policy.",
        [],
    ),
    Fault(
        "server-banner",
        "Responses disclose the stack: 'Server: uvicorn/<version>' and 'X-Powered-By'.",
        [],
    ),
    Fault(
        "cors-wildcard",
        "CORS reflects any Origin and allows credentials.",
        [],
    ),
    Fault(
        "no-https-redirect",
        "The plain-HTTP port serves the API instead of redirecting to HTTPS.",
        [],
    ),
    Fault("no-rate-limit", "No per-endpoint rate limits (register, password reset, counsel).", []),
    Fault(
        "unversioned-api",
        "Routes are served without the /v1 prefix and unknown versions (/v2) are not rejected.",
        [],
    ),
    Fault("docs-public", "/api/docs and /api/docs-json are served without authentication.", []),
    Fault("ready-ignores-db", "/health/ready answers 200 even when the database is down.", []),
    Fault("stack-traces", "500 and 422 error bodies include a traceback with file paths.", []),
    Fault("no-compression", "Large responses are not gzip-compressed.", []),
    Fault(
        "no-cache-validators",
        "The public crisis-lines list is sent no-store, with no ETag and never a 304.",
        [],
    ),
    Fault("no-pagination-cap", "The session list returns as many rows as 'limit' asks for.", []),
    Fault(
        "user-enumeration",
        "Login, register and password reset reveal whether an account exists.",
        [],
    ),
    Fault("jwt-none-alg", "Access tokens signed with alg 'none' are accepted.", []),
    Fault("jwt-no-expiry-check", "Expired access tokens are accepted.", []),
    Fault(
        "refresh-reuse",
        "A refresh token can be used again; reuse neither fails nor revokes the family.",
        [],
    ),
    Fault(
        "weak-jwt-secret",
        "JWT_SECRET in the env file is short and low-entropy; the startup guard is off.",
        [],
    ),
    Fault(
        "missing-env",
        "OPENAI_API_KEY is missing from the env file; the startup guard is off.",
        [],
    ),
    Fault(
        "env-placeholder",
        "POSTMARK_API_TOKEN in the env file is the placeholder 'changeme'; the guard is off.",
        [],
    ),
    Fault(
        "pool-defaults",
        "DATABASE_URL has no connection_limit or pool_timeout (driver defaults).",
        [],
    ),
    Fault("irreversible-migration", "The newest migration's downgrade raises.", []),
    Fault(
        "lossy-migration",
        "The newest migration's downgrade succeeds but leaves the schema different.",
        [],
    ),
    Fault(
        "unsafe-migration",
        "A pending migration builds an index without CONCURRENTLY on an existing table.",
        [],
    ),
    Fault(
        "missing-index",
        "A migration drops the (user_id, status) index: the hot session query seq-scans.",
        [],
    ),
    Fault("no-backup", "No logical backup is written to the backup location.", []),
    Fault("stale-backup", "The only backup is 3 days old (older than the RPO).", []),
    Fault("slow-counsel", "Every simulated AI reply takes 3 s.", []),
    Fault(
        "error-burst",
        "Exactly 1 in 5 counsel requests answers 500 (per access token: the 1st, 6th, ...).",
        [],
    ),
    Fault(
        "crisis-detection-off",
        "Crisis messages are not flagged and replies carry no crisis resources.",
        [],
    ),
    Fault("email-broken", "Emails are silently not delivered to the mail provider.", []),
    Fault("webhook-unsigned", "The billing webhook accepts unsigned or forged events.", []),
    Fault("cross-tenant", "A user can read another organization's counseling session.", []),
    Fault(
        "no-graceful-shutdown",
        "On SIGTERM the server exits at once, dropping in-flight requests.",
        [],
    ),
    Fault("no-metrics", "/metrics answers 404.", []),
    Fault(
        "alert-rules-loose",
        "The shipped error-rate alert fires only over 20% errors (the seed says 5%).",
        [],
    ),
    Fault(
        "alerts-unrouted",
        "The shipped Alertmanager config routes every alert to a receiver that notifies nobody.",
        [],
    ),
    Fault(
        "privacy-export-broken",
        "The data export answers 200 but holds none of the caller's data.",
        [],
    ),
    Fault(
        "privacy-delete-noop",
        "Account deletion answers 204 but deletes nothing: the account can still log in.",
        [],
    ),
    Fault("no-privacy-policy", "The privacy policy page answers 404.", []),
)

# Which checks each fault must turn red (and no others): plain data, kept in step with the
# checks by tests/test_fault_matrix.py.
FAULT_CHECKS: dict[str, list[str]] = {
    "email-broken": ["smoke.scenarios"],
    "crisis-detection-off": ["smoke.scenarios"],
    "webhook-unsigned": ["smoke.scenarios"],
    "cross-tenant": ["smoke.scenarios"],
    "slow-counsel": ["load.thresholds"],
    "error-burst": ["load.thresholds", "smoke.scenarios"],
    "pool-defaults": ["database.pool"],
    "irreversible-migration": ["migrations.rehearsal"],
    "lossy-migration": ["migrations.rehearsal"],
    "unsafe-migration": ["migrations.lint", "migrations.pending"],
    "missing-index": ["indexes.foreign_keys", "indexes.hot_queries"],
    "no-backup": ["backups.freshness", "backups.restore_drill"],
    "stale-backup": ["backups.freshness"],
    "no-rate-limit": ["ratelimit.policies"],
    "ready-ignores-db": ["health.db_outage"],
    "user-enumeration": ["auth.enumeration"],
    "jwt-none-alg": ["auth.jwt_tampering"],
    "jwt-no-expiry-check": ["auth.jwt_tampering"],
    "refresh-reuse": ["auth.refresh_reuse"],
    "no-graceful-shutdown": ["ops.graceful_shutdown"],
    "no-metrics": ["observability.metrics"],
    "no-hsts": ["tls.hsts"],
    "no-https-redirect": ["tls.https_redirect"],
    "no-security-headers": ["http.security_headers"],
    "server-banner": ["http.banner"],
    "cors-wildcard": ["http.cors"],
    "stack-traces": ["http.error_hygiene"],
    "no-compression": ["http.compression"],
    "no-cache-validators": ["http.cache_headers"],
    "no-pagination-cap": ["http.pagination"],
    "unversioned-api": ["http.versioning"],
    "docs-public": ["http.docs_exposure"],
    "missing-env": ["env.required", "env.example_drift"],
    "env-placeholder": ["env.placeholder", "env.secret_strength"],
    "weak-jwt-secret": ["env.secret_strength"],
    "alert-rules-loose": ["alerts.rules"],
    "alerts-unrouted": ["alerts.routing"],
    "privacy-export-broken": ["compliance.privacy"],
    "privacy-delete-noop": ["compliance.privacy"],
    "no-privacy-policy": ["compliance.legal_pages"],
}

# Checks a fault may leave inconclusive (an `error` result, never a `fail`) as an honest side
# effect: a 3 s AI reply makes a 100-per-minute limit unreachable within one window, and
# ratelimit.policies then says it could not tell. Fault-matrix groups keep these apart too.
FAULT_INCIDENTAL: dict[str, list[str]] = {
    "slow-counsel": ["ratelimit.policies"],
}

# Faults that only switch which shipped alert file the alerts checks read (profile.py's
# alert_settings, applied to the default shape's check settings): the server never sees them.
ALERT_FAULTS = ("alert-rules-loose", "alerts-unrouted")

# Faults that break nothing on an API shape (there is nothing of theirs to break): the
# fault matrix leaves them out for that shape. The alert faults act through the default
# shape's check settings only; on the alt shapes the settings come from readyctl.yaml.
# The crisis-lines route (no-cache-validators) exists on the default shape only.
SHAPE_NOT_APPLICABLE: dict[str, list[str]] = {
    "alt": [*ALERT_FAULTS, "no-cache-validators"],
    # no refresh flow to reuse a token on
    "alt-norefresh": [*ALERT_FAULTS, "no-cache-validators", "refresh-reuse"],
    "alt-noopenapi": [*ALERT_FAULTS, "no-cache-validators", "docs-public"],  # no docs to expose
}

FAULTS: dict[str, Fault] = {
    f.name: Fault(f.name, f.description, sorted(FAULT_CHECKS.get(f.name, []))) for f in _ALL
}

# Faults that change the env file and switch off the startup guard.
ENV_FAULTS = frozenset({"weak-jwt-secret", "missing-env", "env-placeholder"})
# Faults that add a migration version location (see migrate.py).
MIGRATION_FAULTS = frozenset(
    {"irreversible-migration", "lossy-migration", "unsafe-migration", "missing-index"}
)


# Release faults: they break nothing `readyctl check` sees on the running release (v1); they
# affect `readyctl deploy --release v2` (the v2 release or its migration). Kept apart from
# FAULTS so the check fault matrix never runs them.
RELEASE_FAULT_TARGET = "readyctl deploy --release v2"
RELEASE_FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "bad-release",
            "Release v2 answers 500 when a counseling session is created (a smoke path).",
            [],
        ),
        Fault(
            "slow-release",
            "Release v2 adds 2.5 s to every request but the health probes (p95 over 2 s).",
            [],
        ),
        Fault(
            "failing-migration",
            "Release v2's migration fails half way: a concurrent index built outside the "
            "transaction stays, the rest rolls back and the revision stays at v1's head.",
            [],
        ),
    )
}
ALL_FAULT_NAMES: tuple[str, ...] = (*FAULTS, *RELEASE_FAULTS)


def validate_faults(faults: Iterable[str]) -> tuple[str, ...]:
    """Return the faults de-duplicated in registry order; raise ValueError on unknown names.

    Release faults (RELEASE_FAULTS) are valid too; they come after the check faults.
    """
    wanted = [f.strip() for f in faults if f and f.strip()]
    unknown = sorted({f for f in wanted if f not in FAULTS and f not in RELEASE_FAULTS})
    if unknown:
        raise ValueError(
            f"unknown demo fault(s): {', '.join(unknown)}; valid faults: "
            f"{', '.join(ALL_FAULT_NAMES)}"
        )
    chosen = set(wanted)
    return tuple(name for name in ALL_FAULT_NAMES if name in chosen)


def parse_faults(value: str | None) -> tuple[str, ...]:
    """Parse a comma-separated fault list such as READYCTL_DEMO_FAULTS."""
    return validate_faults((value or "").split(","))


def faults_from_env(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Return the faults named by READYCTL_DEMO_FAULTS in the environment."""
    env = os.environ if environ is None else environ
    return parse_faults(env.get(FAULTS_ENV))


def as_json_list() -> list[dict[str, object]]:
    """Return every fault as {"name", "description", "checks"} for `demo faults --format json`."""
    return [f.as_dict() for f in FAULTS.values()]
