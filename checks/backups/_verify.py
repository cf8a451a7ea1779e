"""Per-table facts of a database (row count, newest timestamps) and their comparison."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

TABLES_SQL = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY n.nspname, c.relname
"""
TIME_COLUMNS_SQL = """
SELECT a.attrelid, a.attname
FROM pg_attribute a
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype, 'date'::regtype)
ORDER BY a.attrelid, a.attnum
"""
MAX_SHOWN = 20


@dataclasses.dataclass(frozen=True)
class TableFacts:
    """One table: its row count and the newest value of each timestamp/date column (as text)."""

    rows: int
    newest: dict[str, str | None]


def collect(
    conn: Any, check_deadline: Any = None, cutoff: dt.datetime | None = None
) -> dict[str, TableFacts]:
    """Facts of every user table, keyed `schema.table` (the session should be in UTC).

    With `cutoff` (a stored backup's time), each timestamp column's newest value is taken
    among rows at or before the cutoff: what the backup must contain.
    """
    from psycopg import sql

    tables = conn.execute(TABLES_SQL).fetchall()
    columns: dict[int, list[str]] = {}
    for relid, name in conn.execute(TIME_COLUMNS_SQL).fetchall():
        columns.setdefault(int(relid), []).append(str(name))
    out: dict[str, TableFacts] = {}
    for relid, schema, table in tables:
        if check_deadline is not None:
            check_deadline()
        cols = columns.get(int(relid), [])
        parts = [sql.SQL("count(*)")]
        if cutoff is None:
            parts += [sql.SQL("max({})::text").format(sql.Identifier(c)) for c in cols]
        else:
            parts += [
                sql.SQL("(max({}) FILTER (WHERE {} <= {}))::text").format(
                    sql.Identifier(c), sql.Identifier(c), sql.Literal(cutoff)
                )
                for c in cols
            ]
        query = sql.SQL("SELECT {} FROM {}.{}").format(
            sql.SQL(", ").join(parts), sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        out[f"{schema}.{table}"] = TableFacts(int(row[0]), dict(zip(cols, row[1:], strict=True)))
    return out


def _parse(value: str | None) -> dt.datetime | None:
    """A timestamp/date text from PostgreSQL (UTC session) as an aware datetime."""
    if value is None:
        return None
    text = value.strip()
    for candidate in (text, text + ":00"):
        try:
            parsed = dt.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


MIN_ROWS_TO_JUDGE = 20


def compare(
    source: dict[str, TableFacts],
    restored: dict[str, TableFacts],
    *,
    exact: bool,
    row_tolerance: float = 0.0,
    max_lag: dt.timedelta | None = None,  # kept for callers; the cutoff query replaces it
) -> list[str]:
    """Sentences naming each difference; empty when the restore matches the source.

    exact: counts and newest values must be equal (a dump taken in the same snapshot).
    Otherwise (a stored backup, older than the live source, which has changed since): a table
    fails only when it restored with fewer than (1 - `row_tolerance`) of the source's rows and
    the source holds at least `MIN_ROWS_TO_JUDGE` rows (small tables churn too much to judge),
    and each column's restored newest value must reach the source's newest value at or before
    the backup's time (see `collect(cutoff=)`). More rows in the backup than live is not a loss.
    """
    problems: list[str] = []
    for name, src in source.items():
        got = restored.get(name)
        if got is None:
            problems.append(f"{name} is missing from the restore")
            continue
        if exact:
            if got.rows != src.rows:
                problems.append(f"{name} has {got.rows} rows restored, {src.rows} in the source")
        else:
            floor = (1 - row_tolerance) * src.rows
            if src.rows >= MIN_ROWS_TO_JUDGE and got.rows < floor:
                problems.append(
                    f"{name} has {got.rows} rows restored, {src.rows} in the source "
                    f"(more than {row_tolerance:.0%} fewer)"
                )
        for col, src_value in src.newest.items():
            got_value = got.newest.get(col)
            if exact:
                if got_value != src_value:
                    problems.append(
                        f"{name}.{col} newest is {got_value} restored, {src_value} in the source"
                    )
                continue
            # a stored backup: `src_value` is the source's newest value at or before the
            # backup's time; the restore must reach it
            s, g = _parse(src_value), _parse(got_value)
            if s is None:
                continue
            if g is None:
                problems.append(
                    f"{name}.{col} has no value restored, but the source has rows from "
                    f"{src_value}, before the backup was taken"
                )
            elif g < s:
                problems.append(
                    f"{name}.{col} newest is {got_value} restored, but the source had "
                    f"{src_value} before the backup was taken"
                )
    return problems
