"""In-memory fixed-window rate limits with RateLimit-* and Retry-After headers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from readyctl.demo._core import ApiError


@dataclass(frozen=True)
class Limit:
    """A named limit: `limit` requests per `window_s` seconds per key."""

    name: str
    limit: int
    window_s: int


REGISTER = Limit("register", 5, 60)
PASSWORD_RESET = Limit("password-reset", 10, 3600)
COUNSEL_MESSAGE = Limit("counsel-message", 100, 60)


class RateLimiter:
    """Counts hits per (limit, key) in fixed windows that start at the first hit."""

    def __init__(self, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic):
        """Create an empty limiter; a disabled one never limits and sets no headers."""
        self.enabled = enabled
        self.clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._hits = 0

    def hit(self, limit: Limit, key: str) -> dict[str, str]:
        """Count one request; return headers for the response or raise a 429 ApiError."""
        if not self.enabled:
            return {}
        now = self.clock()
        self._hits += 1
        if self._hits % 1000 == 0:
            self._prune(now)
        start, count = self._windows.get((limit.name, key), (now, 0))
        if now - start >= limit.window_s:
            start, count = now, 0
        reset = max(1, math.ceil(start + limit.window_s - now))
        if count >= limit.limit:
            headers = {
                "Retry-After": str(reset),
                "RateLimit-Limit": str(limit.limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-Policy": f"{limit.limit};w={limit.window_s}",
            }
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests; retry in {reset} s.",
                headers=headers,
            )
        count += 1
        self._windows[(limit.name, key)] = (start, count)
        return {
            "RateLimit-Limit": str(limit.limit),
            "RateLimit-Remaining": str(limit.limit - count),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{limit.limit};w={limit.window_s}",
        }

    def _prune(self, now: float) -> None:
        """Forget windows that ended more than an hour ago."""
        stale = [k for k, (start, _) in self._windows.items() if now - start > 7200]
        for k in stale:
            del self._windows[k]
