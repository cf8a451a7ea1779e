"""API shapes of the demo: the same counseling features behind different routes and auth styles.

`default` is the original API (`/v1/...`, JSON login, `/health/*`, docs at `/api/docs`). The
`alt` shapes serve the same handlers under `/api/v2` with OAuth 2.0 conventions (a form
password login at `/api/v2/auth/token`, refresh by `Authorization: Bearer <refresh token>`,
page/size lists, `/healthz` and `/readyz`, RFC 8414 metadata), so that a client has to learn
the routes by discovery instead of knowing them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

SHAPE_ENV = "READYCTL_DEMO_SHAPE"
DEFAULT_SHAPE = "default"
OAUTH_METADATA_PATH = "/.well-known/oauth-authorization-server"

_V1_VERSIONED = re.compile(r"^/v(\d+)(/.*)?$")
_V1_ROOTS = ("/auth/", "/counsel/", "/billing/", "/admin/", "/account")
_ALT_VERSIONED = re.compile(r"^(/api)?/v(\d+)(/.*)?$")
_ALT_ROOTS = ("/auth/", "/counsel/", "/billing/", "/admin/", "/users")


@dataclass(frozen=True)
class Shape:
    """One API shape: where its routes live and which auth conventions it follows."""

    name: str
    description: str
    alt: bool = False
    refresh: bool = True
    openapi: bool = True

    @property
    def prefix(self) -> str:
        """Prefix of every API route (auth, counsel, admin, billing)."""
        return "/api/v2" if self.alt else "/v1"

    @property
    def version(self) -> str:
        """The API version this shape serves (also the OpenAPI info.version)."""
        return "2.0.0" if self.alt else "1.0.0"

    @property
    def live_path(self) -> str:
        """Liveness probe."""
        return "/healthz" if self.alt else "/health/live"

    @property
    def ready_path(self) -> str:
        """Readiness probe (503 while the database is unreachable)."""
        return "/readyz" if self.alt else "/health/ready"

    @property
    def login_path(self) -> str:
        """Route that exchanges credentials for tokens."""
        return f"{self.prefix}/auth/token" if self.alt else f"{self.prefix}/auth/login"

    @property
    def refresh_path(self) -> str | None:
        """Route that rotates a refresh token (None when the shape has no refresh)."""
        return f"{self.prefix}/auth/refresh" if self.refresh else None

    @property
    def openapi_path(self) -> str | None:
        """Route of the OpenAPI document (None when the shape serves none)."""
        if not self.openapi:
            return None
        return f"{self.prefix}/openapi.json" if self.alt else "/api/docs-json"

    @property
    def docs_path(self) -> str | None:
        """Route of the HTML reference (None when the shape serves none)."""
        if not self.openapi:
            return None
        return f"{self.prefix}/docs" if self.alt else "/api/docs"

    def cacheable(self, path: str) -> bool:
        """Tell whether responses of `path` may be cached (probes and metrics; else no-store)."""
        if self.alt:
            return path in ("/healthz", "/readyz", "/metrics")
        return path.startswith("/health") or path == "/metrics"

    def unversioned_path(self, path: str) -> str | None:
        """Under the unversioned-api fault: the versioned route serving `path`, or None.

        Default shape: `/vN/...` (N != 1) and bare `/auth/...`-style paths map to `/v1/...`.
        Alt shapes: `/api/vN/...` (N != 2), `/vN/...` and bare paths map to `/api/v2/...`.
        """
        if not self.alt:
            m = _V1_VERSIONED.match(path)
            if m:
                return "/v1" + (m.group(2) or "/") if m.group(1) != "1" else None
            return "/v1" + path if path.startswith(_V1_ROOTS) else None
        m = _ALT_VERSIONED.match(path)
        if m:
            if m.group(1) and m.group(2) == "2":
                return None
            return self.prefix + (m.group(3) or "/")
        return self.prefix + path if path.startswith(_ALT_ROOTS) else None


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("default", "The original API: /v1 routes, JSON login, /health probes."),
        Shape(
            "alt",
            "/api/v2 routes, OAuth2 form login and bearer refresh, page/size lists, "
            "/healthz and /readyz, OpenAPI for logged-in callers, RFC 8414 metadata.",
            alt=True,
        ),
        Shape(
            "alt-norefresh",
            "As alt, without refresh tokens or a refresh route.",
            alt=True,
            refresh=False,
        ),
        Shape(
            "alt-noopenapi",
            "As alt, without an OpenAPI document or docs page.",
            alt=True,
            openapi=False,
        ),
    )
}


def validate_shape(name: str | None) -> str:
    """Return the shape name (empty or None: default); raise ValueError for an unknown one."""
    value = (name or "").strip() or DEFAULT_SHAPE
    if value not in SHAPES:
        raise ValueError(f"unknown demo shape {value!r}; valid shapes: {', '.join(SHAPES)}")
    return value


def get_shape(name: str | None) -> Shape:
    """Return the Shape of a name (empty or None: default); raise ValueError when unknown."""
    return SHAPES[validate_shape(name)]


def shape_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Return the shape named by READYCTL_DEMO_SHAPE in the environment (default: default)."""
    env = os.environ if environ is None else environ
    return validate_shape(env.get(SHAPE_ENV))
