"""Proof that the tool reads the scratch copy before any step runs."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from readyctl.redact import clip
from readyctl.rehearsal.alembic import AlembicMigrator
from readyctl.rehearsal.environ import NO_MODULE, SEALED_HINT, error_words
from readyctl.rehearsal.errors import RehearsalError
from readyctl.rehearsal.migrator import Migrator, ToolReading

# -- the sentinel: the tool must read the scratch copy, not the target ---------------------------
SENTINEL_PREFIX = "readyctl_sentinel_"
NOT_SCRATCH_HINT = (
    "it probably builds its URL from variables readyctl does not set: map them with "
    "connection_env (checks.migrations.rehearsal.connection_env: {host: POSTGRES_SERVER, "
    "port: POSTGRES_PORT, user: POSTGRES_USER, password: POSTGRES_PASSWORD, dbname: "
    "POSTGRES_DB}, any subset) or url_env"
)


def _regclass(conn: Any, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return bool(row and row[0] is not None)


def _qualified(conn: Any, table: str) -> str | None:
    """`schema.table` of a table found through the search path (None when it does not exist)."""
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()
    return f"{row[0]}.{row[1]}" if row else None


def _ident(table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*table.split("."))


def prove_scratch(migrator: Migrator, url: str, timeout_s: float = 120) -> str | None:
    """Prove the tool reads the scratch copy at `url` before any step runs; restore after.

    Alembic (a known version table, or an `alembic_version` a command tool keeps): the
    table's rows are replaced by one sentinel revision (the table is created when missing)
    and the tool's `current` must name it (alembic's CLI names it in its error too). Other
    tools: their tracking tables that hold rows are swapped for empty copies and `current`
    must say something else than before. The scratch copy's state is restored either way.
    Raises RehearsalError (before any step) when the tool read another database or could
    not start; returns a note when no sentinel could be placed (a command tool on a
    database without migration state).
    """
    import psycopg
    from psycopg import sql

    alembic_table = migrator.version_table if isinstance(migrator, AlembicMigrator) else None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise RehearsalError(
            f"could not connect to the scratch copy: {error_words(e)}", "connectivity"
        ) from None
    with conn:
        if alembic_table is None and _regclass(conn, "alembic_version"):
            alembic_table = "alembic_version"
        if alembic_table is not None:
            reading, holds = _alembic_sentinel(conn, migrator, alembic_table, url, timeout_s)
            if reading is None:
                return None
        else:
            tables = [
                q
                for q in (_qualified(conn, t) for t in migrator.tracking_tables())
                if q is not None
                and conn.execute(
                    sql.SQL("SELECT EXISTS (SELECT FROM {})").format(_ident(q))
                ).fetchone()[0]  # type: ignore[index]
            ]
            if not tables:
                return (
                    "no sentinel: the database has no migration state to hide from the tool, "
                    "so only the target's fingerprint afterwards shows where it ran"
                )
            before = migrator.tool_current(url, timeout_s)
            during = _hidden_tables(conn, migrator, tables, url, timeout_s)
            if (during.ok, during.said) != (before.ok, before.said):
                return None
            reading = during
            names = ", ".join(t.split(".", 1)[1] for t in tables)
            holds = f"no rows in {names} (it said the same with them)"
    if not reading.ok and NO_MODULE.search(reading.said):
        hint = "" if isinstance(migrator, AlembicMigrator) else f" ({SEALED_HINT})"
        raise RehearsalError(
            f"the migration tool could not start: {reading.said}{hint}; nothing was migrated",
            "config",
        )
    saw = f"said {clip(reading.said, 300)}" if reading.ok else f"failed ({clip(reading.said, 300)})"
    elsewhere = (
        f" (or env.py keeps its revision in another table than {alembic_table}: set "
        "checks.migrations.rehearsal.version_table)"
        if isinstance(migrator, AlembicMigrator)
        else ""
    )
    raise RehearsalError(
        f"the migration tool did not read the scratch database: its `current` {saw} where "
        f"scratch holds {holds}; {NOT_SCRATCH_HINT}"
        f"{elsewhere}; nothing was migrated",
        "config",
    )


def _alembic_sentinel(
    conn: Any, migrator: Migrator, table: str, url: str, timeout_s: float
) -> tuple[ToolReading | None, str]:
    """Put a sentinel revision in `table`, read `current`, restore. (None when it saw it.)"""
    from psycopg import sql

    sentinel = SENTINEL_PREFIX + secrets.token_hex(6)  # 30 characters: fits varchar(32)
    ident = _ident(table)
    existed = _regclass(conn, table)
    saved: list[str] = []
    try:
        with conn.transaction():
            if existed:
                saved = [
                    str(r[0])
                    for r in conn.execute(
                        sql.SQL("SELECT version_num FROM {}").format(ident)
                    ).fetchall()
                ]
                conn.execute(sql.SQL("DELETE FROM {}").format(ident))
            else:
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (version_num varchar(32) NOT NULL PRIMARY KEY)"
                    ).format(ident)
                )
            conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(ident), (sentinel,))
    except Exception as e:
        raise RehearsalError(
            f"could not place the sentinel revision in the scratch copy's {table}: {error_words(e)}"
        ) from None
    try:
        reading = migrator.tool_current(url, timeout_s)
    finally:
        try:
            with conn.transaction():
                if existed:
                    conn.execute(sql.SQL("DELETE FROM {}").format(ident))
                    for v in saved:
                        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(ident), (v,))
                else:
                    conn.execute(sql.SQL("DROP TABLE {}").format(ident))
        except Exception as e:
            raise RehearsalError(
                f"could not restore the scratch copy's {table} after the sentinel: {error_words(e)}"
            ) from None
    if reading.ok and sentinel in reading.text.split():
        return None, ""
    if not reading.ok and sentinel in reading.text:  # alembic's CLI: "Can't locate revision"
        return None, ""
    return reading, f"revision {sentinel} in {table}"


def _hidden_tables(
    conn: Any, migrator: Migrator, tables: Sequence[str], url: str, timeout_s: float
) -> ToolReading:
    """Read `current` while each of `tables` is swapped for an empty copy; swap them back."""
    from psycopg import sql

    hidden: list[tuple[str, str]] = []
    try:
        with conn.transaction():
            for t in tables:
                parts = t.split(".")
                aside = f"readyctl_hidden_{secrets.token_hex(4)}"
                conn.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(_ident(t), sql.Identifier(aside))
                )
                full_aside = ".".join([*parts[:-1], aside])
                conn.execute(
                    sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                        _ident(t), _ident(full_aside)
                    )
                )
                hidden.append((t, aside))
    except Exception as e:
        raise RehearsalError(
            f"could not hide the scratch copy's migration state: {error_words(e)}"
        ) from None
    try:
        return migrator.tool_current(url, timeout_s)
    finally:
        try:
            with conn.transaction():
                for t, aside in hidden:
                    parts = t.split(".")
                    conn.execute(sql.SQL("DROP TABLE {}").format(_ident(t)))
                    conn.execute(
                        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                            _ident(".".join([*parts[:-1], aside])), sql.Identifier(parts[-1])
                        )
                    )
        except Exception as e:
            raise RehearsalError(
                f"could not restore the scratch copy's migration state: {error_words(e)}"
            ) from None
