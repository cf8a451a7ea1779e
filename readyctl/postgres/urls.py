"""PostgreSQL URLs: libpq form, parts, ORM parameters, which server a URL reaches."""

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from readyctl import _proc

PRISMA_PARAMS = ("connection_limit", "pool_timeout", "pgbouncer", "schema", "socket_timeout")
"""URL query parameters that belong to Prisma (or other ORMs), not to libpq."""

_DRIVER_PREFIXES = ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql+asyncpg://")


class ScratchError(Exception):
    """A scratch server, database, dump or restore could not be made; the message says why."""


# -- URLs ------------------------------------------------------------------------------------
def strip_prisma_params(url: str) -> str:
    """Return `url` without Prisma-style pool parameters (connection_limit, pool_timeout, ...)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PRISMA_PARAMS
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def libpq_url(url: str) -> str:
    """Return a URL libpq accepts: plain postgresql:// scheme, no ORM-only parameters."""
    url = strip_prisma_params(url.strip())
    for prefix in _DRIVER_PREFIXES:
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


def url_parts(url: str) -> dict[str, str]:
    """Split a database URL into libpq keywords (host, port, user, password, dbname, ...)."""
    parts = urlsplit(libpq_url(url))
    out: dict[str, str] = {}
    if parts.hostname:
        out["host"] = parts.hostname
    if parts.port:
        out["port"] = str(parts.port)
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if dbname:
        out["dbname"] = dbname
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        out[k] = v
    return out


def _client_env(url: str) -> tuple[str, dict[str, str]]:
    """Return (conninfo without password, environment with PGPASSWORD) for a client binary."""
    parts = url_parts(url)
    password = parts.pop("password", None)
    env = _proc.environ_copy("PG")
    if password is not None:
        env["PGPASSWORD"] = password
    conninfo = " ".join(f"{k}='{_escape(v)}'" for k, v in parts.items())
    return conninfo, env


def _escape(value: str) -> str:
    """Escape a libpq conninfo value."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def server_address(url: str) -> tuple[str, int]:
    """(host, port) of a database URL; every local name and socket directory is `localhost`."""
    parts = url_parts(url)
    host = parts.get("host", "").split(",")[0].strip().strip("[]").lower()
    if host in ("", "localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("/"):
        host = "localhost"
    try:
        port = int(parts.get("port", "5432").split(",")[0])
    except ValueError:
        port = 5432
    return host, port


def same_server(url: str, other: str) -> bool:
    """Whether two database URLs name the same host and port (localhost aliases are one)."""
    return server_address(url) == server_address(other)


def quote_ident_url(url: str, dbname: str) -> str:
    """Return `url` pointing at another database on the same server."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
