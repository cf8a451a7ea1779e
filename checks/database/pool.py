"""database.pool: explicit pool size and timeout, a connection budget, TLS mode and timeouts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, Field
from readyctl.checks.database._db import connect, error_words, host_of, is_local, target_url

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
from readyctl.postgres import scratch
from readyctl.result import ErrorReason, Result

POOL_SIZE_VARS = ("DB_POOL_SIZE", "DATABASE_POOL_SIZE", "DB_POOL_MAX", "PG_POOL_MAX")
POOL_TIMEOUT_VARS = ("DB_POOL_TIMEOUT", "DATABASE_POOL_TIMEOUT", "DB_POOL_TIMEOUT_S")
STRICT_SSLMODES = ("require", "verify-ca", "verify-full")
TIMEOUTS = ("statement_timeout", "idle_in_transaction_session_timeout")
_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, "": 1}


def parse_pg_duration_ms(value: str) -> float | None:
    """A PostgreSQL duration setting ('10s', '5000', '1min') in milliseconds, None if unparsable."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*", str(value))
    if not m:
        return None
    return float(m.group(1)) * _UNITS_MS[m.group(2) or ""]


def options_settings(options: str) -> dict[str, str]:
    """`-c name=value` pairs of a libpq `options` string."""
    found = re.findall(r"(?:-c\s*|--)([a-z_]+)=(\S+)", options or "")
    return {k.replace("-", "_"): v for k, v in found}


def _pg_duration(value: float | str) -> float | str:
    """A declared timeout must read as a PostgreSQL duration."""
    if parse_pg_duration_ms(str(value)) is None:
        raise ValueError(
            f"{value!r} is not a PostgreSQL duration (milliseconds, or e.g. '15s', '1min')"
        )
    return value


# milliseconds as a number, or a PostgreSQL duration ('15s', '1min')
PgDuration = Annotated[float | str, AfterValidator(_pg_duration)]


class Settings(CheckSettings):
    """Settings of database.pool (all optional; the defaults fit the counseling API)."""

    url_var: str = Field(
        "DATABASE_URL",
        min_length=1,
        description="the app's variable holding its database URL (falls back to the "
        "environment's database_url)",
    )
    pool_size: float | None = Field(
        None, description="pool size the app sets outside the URL (in code)"
    )
    pool_timeout_s: float | None = Field(
        None, description="pool timeout in seconds the app sets outside the URL (in code)"
    )
    pool_size_vars: tuple[str, ...] = Field(
        POOL_SIZE_VARS, description="variables that may carry the pool size"
    )
    pool_timeout_vars: tuple[str, ...] = Field(
        POOL_TIMEOUT_VARS, description="variables that may carry the pool timeout"
    )
    instances: int | None = Field(
        None,
        ge=1,
        description="app instances sharing the database (default: the environment's instances)",
    )
    extra_connections: int = Field(
        0, ge=0, description="connections of other clients (workers, cron)"
    )
    max_share: float = Field(
        0.8, gt=0, le=1, description="share of the usable connections the pools may take"
    )
    statement_timeout_ms: PgDuration | None = Field(
        None, description="statement_timeout the app sets in code"
    )
    idle_in_transaction_session_timeout_ms: PgDuration | None = Field(
        None, description="idle_in_transaction_session_timeout the app sets in code"
    )


class DatabasePool(Check):
    """Pool size and timeout explicit, connections within the server's budget, TLS, timeouts.

    Settings (all optional; defaults fit the counseling API):
    - `url_var`: the app's variable holding its database URL (default DATABASE_URL; falls back
      to the environment's database_url).
    - `pool_size`, `pool_timeout_s`: declare values set outside the URL (in code).
    - `pool_size_vars`, `pool_timeout_vars`: variables that carry them (DB_POOL_SIZE, ...).
    - `instances`: app instances sharing the database (default: the environment's `instances`);
      `extra_connections`: other clients (workers, cron; default 0).
    - `max_share`: share of usable connections the pools may take (default 0.8).
    - `statement_timeout_ms`, `idle_in_transaction_session_timeout_ms`: declare timeouts the
      app sets in code; otherwise they must come from the URL's options or the server's
      role/database settings.
    """

    meta = CheckMeta(
        id="database.pool",
        title="Connection pool is sized and bounded",
        failure_title="Connection pool is unbounded or oversized",
        description=(
            "Driver defaults size pools by CPU count and wait forever for a connection; several "
            "instances then exhaust max_connections, and a stuck transaction holds locks for "
            "good. See https://www.prisma.io/docs/orm/prisma-client/setup-and-configuration/"
            "databases-connections/connection-pool."
        ),
        remediation=RemediationSpec(
            text="Set an explicit pool size and pool timeout, keep instances x pool size under "
            "80% of the usable connections, require TLS to remote hosts, and set "
            "statement_timeout and idle_in_transaction_session_timeout.",
            snippet=(
                "DATABASE_URL=postgresql://app:...@db.internal:5432/app?connection_limit=10"
                "&pool_timeout=10&sslmode=require\n"
                "ALTER ROLE app SET statement_timeout = '15s';\n"
                "ALTER ROLE app SET idle_in_transaction_session_timeout = '60s';"
            ),
            link="https://www.prisma.io/docs/orm/prisma-client/setup-and-configuration/"
            "databases-connections/connection-pool",
        ),
        category=Category.DATABASE,
        severity=Severity.HIGH,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("database", "seed"),
        refs=("4",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per property: pool size, pool timeout, budget, sslmode, two timeouts."""
        settings: Settings = ctx.settings()
        values = ctx.env_source().values
        url_var = settings.url_var
        app_url = values.get(url_var) or target_url(ctx) or ""
        origin = url_var if values.get(url_var) else "database_url"
        if values.get(url_var):
            ctx.redactor.add(scratch.url_parts(app_url).get("password"))
        # the raw query: libpq_url() would already have stripped connection_limit/pool_timeout
        query = dict(parse_qsl(urlsplit(app_url).query, keep_blank_values=True))

        size, size_src = self._explicit(
            query,
            values,
            "connection_limit",
            ("pool_size", settings.pool_size),
            settings.pool_size_vars,
        )
        timeout, timeout_src = self._explicit(
            query,
            values,
            "pool_timeout",
            ("pool_timeout_s", settings.pool_timeout_s),
            settings.pool_timeout_vars,
        )
        yield from self._pool_size(size, size_src, origin)
        yield from self._pool_timeout(timeout, timeout_src, origin)

        import psycopg

        try:
            conn = connect(ctx, statement_timeout_s=None)
            with conn:
                server = self._server_facts(conn)
        except psycopg.Error as e:
            yield self.errored(
                "connection budget",
                ErrorReason.CONNECTIVITY,
                f"could not read the server's settings: {error_words(ctx, e)}",
            )
            return
        yield self._budget(ctx, settings, size, server)
        yield self._sslmode(app_url, query, origin)
        declared_opts = options_settings(query.get("options", ""))
        for name in TIMEOUTS:
            yield self._timeout(name, settings, declared_opts, server, origin)

    # -- pieces -------------------------------------------------------------------------------
    @staticmethod
    def _explicit(
        query: dict[str, str],
        values: dict[str, str],
        url_key: str,
        setting: tuple[str, float | None],
        variables: tuple[str, ...],
    ) -> tuple[float | None, str]:
        """A pool value from the URL, a declared setting, or a variable; with its origin."""
        if query.get(url_key, "").strip():
            return _number(query[url_key]), f"{url_key} in the URL"
        setting_key, declared = setting
        if declared is not None:
            return declared, f"setting {setting_key}"
        for var in variables:
            if values.get(var, "").strip():
                return _number(values[var]), f"variable {var}"
        return None, ""

    def _pool_size(self, size: float | None, src: str, origin: str) -> Iterator[Result]:
        if size is None:
            yield self.failed(
                "pool size",
                f"{origin} sets no pool size (connection_limit): the driver default applies "
                "(Prisma: 2 x CPUs + 1 per instance)",
            )
        elif size < 1:
            yield self.failed("pool size", f"pool size is {size:g} ({src}), not a positive limit")
        else:
            yield self.passed(
                "pool size", f"pool size is {size:g} ({src})", measured=size, unit=" connections"
            )

    def _pool_timeout(self, timeout: float | None, src: str, origin: str) -> Iterator[Result]:
        if timeout is None:
            yield self.failed(
                "pool timeout",
                f"{origin} sets no pool timeout (pool_timeout): requests wait for a "
                "connection as long as the driver default says",
            )
        elif timeout <= 0:
            yield self.failed(
                "pool timeout", f"pool timeout is {timeout:g} ({src}): requests wait forever"
            )
        else:
            yield self.passed(
                "pool timeout",
                f"pool timeout is {timeout:g} s ({src})",
                measured=timeout,
                unit=" s",
            )

    @staticmethod
    def _server_facts(conn: Any) -> dict[str, Any]:
        """max_connections, reserved slots, the role's connection limit and the timeouts."""
        row = conn.execute(
            "SELECT current_setting('max_connections')::int, "
            "current_setting('superuser_reserved_connections')::int, "
            "coalesce(current_setting('reserved_connections', true), '0')::int, "
            "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user), "
            "(SELECT datconnlimit FROM pg_database WHERE datname = current_database()), "
            "current_setting('statement_timeout'), "
            "current_setting('idle_in_transaction_session_timeout')"
        ).fetchone()
        return {
            "max_connections": row[0],
            "superuser_reserved_connections": row[1],
            "reserved_connections": row[2],
            "role_limit": row[3],
            "database_limit": row[4],
            "statement_timeout": row[5],
            "idle_in_transaction_session_timeout": row[6],
        }

    def _budget(
        self, ctx: Context, settings: Settings, size: float | None, server: dict[str, Any]
    ) -> Result:
        usable = (
            server["max_connections"]
            - server["superuser_reserved_connections"]
            - server["reserved_connections"]
        )
        limits = [
            f"max_connections {server['max_connections']} - reserved "
            f"{server['superuser_reserved_connections'] + server['reserved_connections']}"
        ]
        for key, word in (("role_limit", "role"), ("database_limit", "database")):
            if server[key] is not None and server[key] >= 0 and server[key] < usable:
                usable = server[key]
                limits.append(f"{word} connection limit {server[key]}")
        share = settings.max_share
        instances = settings.instances or ctx.environment.instances
        extra = settings.extra_connections
        evidence = {**server, "usable": usable, "instances": instances, "share": share}
        if size is None:
            return self.failed(
                "connection budget",
                f"{instances} instance(s) with the driver's default pool size cannot be checked "
                f"against {usable} usable connections; set an explicit pool size",
                evidence=evidence,
            )
        total = instances * size + extra
        limit = share * usable
        summary = (
            f"{instances} instance(s) x pool {size:g}"
            + (f" + {extra} other" if extra else "")
            + f" = {total:g} connections vs {share:.0%} of {usable} usable ({limits[-1]})"
        )
        if total > limit:
            return self.failed(
                "connection budget", summary, measured=total, threshold=limit, evidence=evidence
            )
        return self.passed(
            "connection budget", summary, measured=total, threshold=limit, evidence=evidence
        )

    def _sslmode(self, url: str, query: dict[str, str], origin: str) -> Result:
        host = host_of(url) if url else ""
        mode = (query.get("sslmode") or "").lower()
        if is_local(host):
            return self.skipped("sslmode", f"the database host {host or 'socket'} is local")
        if mode in STRICT_SSLMODES:
            return self.passed("sslmode", f"{origin} connects to {host} with sslmode={mode}")
        if (query.get("ssl") or "").lower() in ("true", "1", "require"):
            return self.passed("sslmode", f"{origin} connects to {host} with ssl=true")
        shown = f"sslmode={mode}" if mode else "no sslmode (libpq default: prefer)"
        return self.failed(
            "sslmode",
            f"{origin} connects to the remote host {host} with {shown}: traffic may be "
            "unencrypted or downgraded",
            measured=mode or "prefer",
            threshold="require",
        )

    def _timeout(
        self,
        name: str,
        settings: Settings,
        url_opts: dict[str, str],
        server: dict[str, Any],
        origin: str,
    ) -> Result:
        declared = {
            "statement_timeout": settings.statement_timeout_ms,
            "idle_in_transaction_session_timeout": settings.idle_in_transaction_session_timeout_ms,
        }[name]
        if name in url_opts:
            value, src = url_opts[name], f"{origin} options"
        elif declared is not None:
            value, src = str(declared), f"setting {name}_ms"
        else:
            value, src = str(server[name]), "server (role/database/postgresql.conf)"
        ms = parse_pg_duration_ms(value)
        if ms is None:
            return self.warned(name, f"{name} is {value!r} ({src}), which is not a duration")
        if ms <= 0:
            return self.failed(
                name,
                f"{name} is not set in {origin}'s options nor for the role or database on "
                f"the server (effective value 0 = unlimited); without it a runaway query or an "
                f"abandoned transaction holds connections and locks indefinitely (if the app "
                f"sets it in code, declare it as {name}_ms)",
                measured=0,
                unit=" ms",
                evidence={"source": src},
            )
        return self.passed(name, f"{name} is {ms:g} ms ({src})", measured=ms, unit=" ms")


def _number(text: str) -> float | None:
    """A number, or None."""
    try:
        return float(str(text).strip())
    except ValueError:
        return None
