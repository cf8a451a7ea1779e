"""cache.redis: the app's Redis cache is reachable, authenticated, encrypted and evicts.

Seed item 12 (caching strategy). Applies when the app declares a Redis: a `REDIS_URL`-like
variable in the environment's env file or process environment, or `checks.cache.redis.url`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Literal

from pydantic import Field
from readyctl.checks.cache._resp import (
    Connection,
    ProtocolError,
    RedisUrl,
    RespError,
    info,
    is_redis_url,
    parse_url,
)

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

DEFAULT_VARIABLES = (
    "REDIS_URL",
    "REDIS_TLS_URL",
    "CACHE_REDIS_URL",
    "REDIS_CACHE_URL",
    "CACHE_URL",
)
DEFAULT_QUEUE_VARIABLES = (
    "CELERY_BROKER_URL",
    "BULL_REDIS_URL",
    "QUEUE_REDIS_URL",
    "RQ_REDIS_URL",
    "SIDEKIQ_REDIS_URL",
    "JOB_QUEUE_URL",
    "BROKER_URL",
)
# eviction policies fit for a cache: evict any key by recency or frequency
FIT_POLICIES = ("allkeys-lru", "allkeys-lfu")
# hold, with a smell: volatile-* evict only keys with a TTL (a cache key written without one
# is never evicted, and a full memory then refuses writes as noeviction does); allkeys-random
# evicts hot keys as readily as cold ones
SMELLY_POLICIES = (
    "volatile-lru",
    "volatile-lfu",
    "volatile-ttl",
    "volatile-random",
    "allkeys-random",
)
ASPECTS = ("reachable", "auth", "tls", "eviction", "queue")


class Settings(CheckSettings):
    """Settings of cache.redis."""

    url: str | None = Field(
        None,
        min_length=1,
        description="the cache's redis:// or rediss:// URL (default: the first of `variables` "
        "set in the environment); write a password as ${VAR}",
    )
    variables: tuple[str, ...] = Field(
        DEFAULT_VARIABLES, description="environment variables that declare the cache's Redis URL"
    )
    queue_urls: tuple[str, ...] = Field(
        (), description="job-queue Redis URLs the cache must not share a database with"
    )
    queue_variables: tuple[str, ...] = Field(
        DEFAULT_QUEUE_VARIABLES,
        description="environment variables holding a job queue's Redis URL",
    )
    require_tls: Literal["outside_localhost", "always", "never"] = Field(
        "outside_localhost",
        description="when rediss:// is required: for any host but this machine, always or never",
    )
    ca_bundle: str | None = Field(
        None,
        min_length=1,
        description="a CA file to verify a rediss:// server with (default: the system's CAs)",
    )
    timeout_s: float = Field(5.0, gt=0, le=60, description="connect and reply timeout, seconds")


class RedisCache(Check):
    """Reachable (PING), refuses unauthenticated clients (NOAUTH), TLS outside localhost, a
    memory limit with an eviction policy fit for a cache, and not the job queue's database.

    Settings: `url` (default: the first of `variables` set: REDIS_URL, REDIS_TLS_URL,
    CACHE_REDIS_URL, REDIS_CACHE_URL, CACHE_URL), `queue_urls` / `queue_variables`
    (CELERY_BROKER_URL, BULL_REDIS_URL, QUEUE_REDIS_URL, ...), `require_tls`, `ca_bundle`,
    `timeout_s`. No Redis declared: skipped as not applicable. The password is never shown.
    Eviction: allkeys-lru/lfu pass; volatile-* and allkeys-random warn; noeviction or no
    maxmemory fails.
    """

    meta = CheckMeta(
        id="cache.redis",
        title="Redis cache is private, encrypted and evicts",
        failure_title="Redis cache is exposed or cannot evict",
        description=(
            "A cache that accepts anyone, travels in clear text, or refuses writes when full "
            "(noeviction) turns a performance aid into a data leak or an outage; sharing a "
            "database with the job queue lets cache eviction or a FLUSHDB drop jobs. See "
            "https://redis.io/docs/latest/develop/reference/eviction/."
        ),
        remediation=RemediationSpec(
            text="Require a password (requirepass or an ACL user), connect with rediss:// to "
            "any non-local Redis, set maxmemory with maxmemory-policy allkeys-lru (or "
            "allkeys-lfu), and give the job queue its own database or instance.",
            snippet=(
                "requirepass <long random secret>\n"
                "maxmemory 256mb\n"
                "maxmemory-policy allkeys-lru\n"
                "# app: REDIS_URL=rediss://:<secret>@cache.internal:6380/0\n"
                "#      CELERY_BROKER_URL=rediss://:<secret>@queue.internal:6380/0"
            ),
            link="https://redis.io/docs/latest/develop/reference/eviction/",
        ),
        category=Category.OPERATIONS,
        severity=Severity.MEDIUM,
        requires=(Capability.ENV,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("cache", "redis", "seed"),
        refs=("12",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per aspect (reachable, auth, tls, eviction, queue)."""
        s: Settings = ctx.settings()
        src = ctx.env_source()
        declared = self._declared(s, src.values)
        if declared is None:
            names = ", ".join(s.variables)
            yield self.skipped(
                "redis",
                f"not applicable: no Redis declared (none of {names} holds a redis:// URL in "
                f"{src.origin}, and checks.cache.redis.url is not set)",
            )
            return
        name, value = declared
        try:
            url = parse_url(value)
        except ValueError as e:
            yield self.failed(name, f"{name} is declared but is not a usable Redis URL: {e}")
            return
        if url.password:
            ctx.redactor.add(url.password)
        where = url.where
        timeout = ctx.timeout(s.timeout_s)
        ca = str(ctx.resolve(s.ca_bundle)) if s.ca_bundle else None
        reachable, memory = self._reachable(url, name, timeout, ca)
        yield reachable
        if memory is None:
            for aspect in ASPECTS[1:]:
                yield self.blocked(
                    f"{where} {aspect}", f"{self.id} {where} reachable: {reachable.summary}"
                )
            return
        yield self._auth(url, timeout, ca)
        yield self._tls(url, s)
        yield self._eviction(url, memory)
        yield from self._queues(ctx, url, s, src.values, memory)

    # -- declaration ------------------------------------------------------------------------
    def _declared(self, s: Settings, values: dict[str, str]) -> tuple[str, str] | None:
        """(where it is declared, URL) of the cache's Redis, or None."""
        if s.url:
            return f"checks.{self.id}.url", s.url
        for var in s.variables:
            value = (values.get(var) or "").strip()
            if value and is_redis_url(value):
                return var, value
        return None

    # -- aspects ----------------------------------------------------------------------------
    def _reachable(
        self, url: RedisUrl, name: str, timeout: float, ca: str | None
    ) -> tuple[Result, dict[str, str] | None]:
        """PING with the declared credentials (the positive control), then INFO memory."""
        subject = f"{url.where} reachable"
        try:
            with Connection(url, timeout=timeout, ca_file=ca) as conn:
                if url.password is not None:
                    creds = [url.username, url.password] if url.username else [url.password]
                    conn.command("AUTH", *creds)
                if url.db:
                    conn.command("SELECT", str(url.db))
                pong = conn.command("PING")
                memory = info(str(conn.command("INFO", "memory")))
                server = info(str(conn.command("INFO", "server")))
        except RespError as e:
            if e.code == "NOAUTH":
                why = f"requires a password but {name} carries none"
            elif e.code in ("WRONGPASS", "ERR") and "pass" in str(e).lower():
                why = f"refused the credentials in {name} ({e.code})"
            else:
                why = f"answered an error: {e.code}"
            return self.failed(subject, f"Redis at {url.where} {why}"), None
        except ssl.SSLError as e:
            reason = getattr(e, "reason", None) or type(e).__name__
            return self.failed(
                subject, f"TLS to Redis at {url.where} failed: {reason}", evidence={"tls": True}
            ), None
        except (OSError, ProtocolError) as e:
            what = "did not answer in time" if isinstance(e, TimeoutError) else type(e).__name__
            return self.failed(
                subject, f"could not talk to Redis at {url.where} ({name}): {what}"
            ), None
        version = server.get("redis_version", "?")
        return self.passed(
            subject,
            f"Redis {version} at {url.where} answered PING ({pong}) with the declared credentials",
            evidence={"declared_in": name, "scheme": url.scheme, "redis_version": version},
        ), memory

    def _auth(self, url: RedisUrl, timeout: float, ca: str | None) -> Result:
        """An unauthenticated connection must be refused (NOAUTH)."""
        subject = f"{url.where} auth"
        bare = RedisUrl(url.raw, url.tls, url.host, url.port, 0, None, None)
        try:
            with Connection(bare, timeout=timeout, ca_file=ca) as conn:
                answer = conn.command("PING")
        except RespError as e:
            if e.code in ("NOAUTH", "DENIED"):
                return self.passed(
                    subject,
                    f"Redis at {url.where} refuses a client without a password ({e.code})",
                    measured=e.code,
                )
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"an unauthenticated PING to {url.where} answered {e.code}, not NOAUTH",
            )
        except (OSError, ProtocolError) as e:
            return self.errored(
                subject,
                ErrorReason.CONNECTIVITY,
                f"the unauthenticated probe of {url.where} failed: {type(e).__name__}",
            )
        return self.failed(
            subject,
            f"Redis at {url.where} answers an unauthenticated client ({answer}): anyone who "
            "reaches the port reads and writes the cache",
            measured="no auth",
            threshold="NOAUTH",
        )

    def _tls(self, url: RedisUrl, s: Settings) -> Result:
        """rediss:// outside localhost (per `require_tls`)."""
        subject = f"{url.where} tls"
        if url.tls:
            return self.passed(subject, f"the cache at {url.where} is reached over TLS (rediss://)")
        if s.require_tls == "never":
            return self.skipped(subject, "checks.cache.redis.require_tls is never")
        if s.require_tls == "outside_localhost" and url.local:
            return self.skipped(
                subject, f"not applicable: {url.host} is this machine (TLS required elsewhere)"
            )
        return self.failed(
            subject,
            f"the cache at {url.where} is reached over plain redis://: the password and every "
            "cached value cross the network in clear text",
            measured="redis://",
            threshold="rediss://",
        )

    def _eviction(self, url: RedisUrl, memory: dict[str, str]) -> Result:
        """A memory limit, and a policy that evicts any key."""
        subject = f"{url.where} eviction"
        policy = memory.get("maxmemory_policy")
        limit = memory.get("maxmemory")
        if policy is None or limit is None:
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"INFO memory of {url.where} names no maxmemory / maxmemory_policy",
            )
        human = memory.get("maxmemory_human", limit)
        ev = {"maxmemory": limit, "maxmemory_policy": policy}
        threshold = " or ".join(FIT_POLICIES)
        if policy == "noeviction":
            return self.failed(
                subject,
                f"Redis at {url.where} has maxmemory-policy noeviction: when full it refuses "
                "writes instead of evicting cache entries",
                measured=policy,
                threshold=threshold,
                evidence=ev,
            )
        if limit == "0":
            return self.failed(
                subject,
                f"Redis at {url.where} has no maxmemory: it grows until the host runs out of "
                f"memory and never evicts ({policy} never applies)",
                measured="maxmemory 0",
                threshold="maxmemory set",
                evidence=ev,
            )
        if policy in FIT_POLICIES:
            return self.passed(
                subject,
                f"Redis at {url.where} evicts by {policy} within maxmemory {human}",
                measured=policy,
                threshold=threshold,
                evidence=ev,
            )
        why = (
            "evicts only keys with a TTL: cache keys written without one fill memory"
            if policy.startswith("volatile-")
            else "evicts hot keys as readily as cold ones"
        )
        return self.warned(
            subject,
            f"Redis at {url.where} has maxmemory-policy {policy} (maxmemory {human}): it {why}",
            measured=policy,
            threshold=threshold,
            evidence=ev,
        )

    def _queues(
        self,
        ctx: Context,
        url: RedisUrl,
        s: Settings,
        values: dict[str, str],
        memory: dict[str, str],
    ) -> Iterator[Result]:
        """The cache is not the job queue's database (nor, with allkeys eviction, its server)."""
        found: list[tuple[str, str]] = [
            (f"checks.{self.id}.queue_urls[{i}]", u) for i, u in enumerate(s.queue_urls)
        ]
        for var in s.queue_variables:
            value = (values.get(var) or "").strip()
            if value and is_redis_url(value):
                found.append((var, value))
        if not found:
            yield self.skipped(
                f"{url.where} queue",
                "not applicable: no Redis job queue declared "
                f"({', '.join(s.queue_variables)} or checks.cache.redis.queue_urls)",
            )
            return
        policy = memory.get("maxmemory_policy", "")
        for name, value in found:
            subject = f"{url.where} queue {name}"
            try:
                queue = parse_url(value)
            except ValueError as e:
                yield self.errored(
                    subject, ErrorReason.CONFIG, f"{name} is not a usable Redis URL: {e}"
                )
                continue
            if queue.password:
                ctx.redactor.add(queue.password)
            if not queue.same_instance(url):
                yield self.passed(
                    subject, f"the job queue {name} is on another server ({queue.where})"
                )
            elif queue.db == url.db:
                yield self.failed(
                    subject,
                    f"the job queue {name} shares database {url.db} of {url.where} with the "
                    "cache: eviction or a cache flush drops jobs",
                    measured=queue.where,
                    threshold=f"not {url.where}",
                )
            elif policy.startswith("allkeys-"):
                yield self.warned(
                    subject,
                    f"the job queue {name} uses database {queue.db} of the cache's server; "
                    f"{policy} eviction is server-wide and can evict queued jobs",
                    measured=queue.where,
                )
            else:
                yield self.passed(
                    subject,
                    f"the job queue {name} uses database {queue.db}, the cache {url.db} "
                    f"(eviction {policy or '?'} spares keys without a TTL)",
                    measured=queue.where,
                )
