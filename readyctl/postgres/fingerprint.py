"""A database's schema fingerprint from the catalog, and the difference between two in words.

The fingerprint covers tables (and views), columns with types, defaults and nullability,
constraints, indexes, sequences and their ownership, functions, triggers, extensions and enum
types, plus a hash of each table's rows (all of them, or a sample). Reading it is read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from readyctl.redact import clip

# Schemas that belong to PostgreSQL, not to the application.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg_temp_%%' AND n.nspname NOT LIKE 'pg_toast_temp_%%'"
)
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"

_QUERIES: dict[str, str] = {
    "table": f"""
        SELECT n.nspname, c.relname,
               CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                    WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                    WHEN 'f' THEN 'foreign table' END,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_NS}
          AND {_NOT_EXT.format(oid="c.oid")}""",
    "column": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
               coll.collname
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
             AND a.attcollation <> 0 AND coll.collname <> 'default'
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_NS}
          AND {_NOT_EXT.format(oid="c.oid")}""",
    "constraint": f"""
        SELECT n.nspname, c.relname, con.conname, con.contype,
               pg_get_constraintdef(con.oid, true), con.convalidated
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NS} AND con.contype <> 'n' AND {_NOT_EXT.format(oid="c.oid")}""",
    "index": f"""
        SELECT n.nspname, c.relname, i.relname,
               pg_get_indexdef(x.indexrelid),
               x.indisvalid
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NS} AND {_NOT_EXT.format(oid="c.oid")}""",
    "sequence": f"""
        SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin,
               s.seqmax, s.seqcycle,
               (SELECT t.relname || '.' || a.attname || ' (' ||
                       CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owned by' END || ')'
                FROM pg_depend d
                JOIN pg_class t ON t.oid = d.refobjid
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                LIMIT 1)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.relkind = 'S' AND {_USER_NS} AND {_NOT_EXT.format(oid="c.oid")}""",
    "function": f"""
        SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               pg_get_function_result(p.oid), l.lanname, md5(coalesce(p.prosrc, '')),
               p.provolatile, p.prosecdef
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE {_USER_NS} AND {_NOT_EXT.format(oid="p.oid")}""",
    "trigger": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid, true), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_USER_NS}""",
    "extension": """
        SELECT e.extname, e.extversion, n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace""",
    "type": f"""
        SELECT n.nspname, t.typname,
               CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'composite' END,
               coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', '
                                           ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid),
                        format_type(t.typbasetype, t.typtypmod) ||
                        CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END, '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd') AND {_USER_NS} AND {_NOT_EXT.format(oid="t.oid")}""",
}

_CONTYPE = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion"}
_TABLES = f"""
    SELECT n.nspname, c.relname,
           array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p') AND {_USER_NS} AND {_NOT_EXT.format(oid="c.oid")}
    GROUP BY 1, 2 ORDER BY 1, 2"""


def _qual(schema: str, name: str) -> str:
    """`name` for the public schema, `schema.name` otherwise."""
    return name if schema == "public" else f"{schema}.{name}"


def _quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@dataclasses.dataclass(frozen=True)
class Column:
    """One column's fingerprinted attributes."""

    type: str
    not_null: bool
    default: str | None
    identity: str
    generated: str
    collation: str | None

    def describe(self) -> str:
        """`text NOT NULL DEFAULT 'x'` style description."""
        out = self.type
        if self.collation:
            out += f' COLLATE "{self.collation}"'
        out += " NOT NULL" if self.not_null else " nullable"
        if self.identity:
            out += " identity " + ("ALWAYS" if self.identity == "a" else "BY DEFAULT")
        if self.default is not None:
            word = "GENERATED" if self.generated else "DEFAULT"
            out += f" {word} {pretty_default(self.default)}"
        return out


@dataclasses.dataclass
class Fingerprint:
    """Everything compared between two states of a database schema (and sampled rows)."""

    objects: dict[str, dict[str, str]]  # kind -> name -> description
    columns: dict[str, Column]  # "table.column" -> attributes
    rows: dict[str, str]  # table -> hash of the sampled rows
    row_counts: dict[str, int]

    def schema_digest(self) -> str:
        """A short stable hash of the schema part."""
        data = {
            "objects": self.objects,
            "columns": {k: dataclasses.asdict(v) for k, v in sorted(self.columns.items())},
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def rows_digest(self) -> str:
        """A short stable hash of the sampled rows."""
        return hashlib.sha256(json.dumps(self.rows, sort_keys=True).encode()).hexdigest()[:16]

    def digest(self) -> str:
        """A short stable hash of schema and rows."""
        return hashlib.sha256((self.schema_digest() + self.rows_digest()).encode()).hexdigest()[:16]

    def tables(self) -> set[str]:
        """The tables (and views) in this fingerprint."""
        return set(self.objects.get("table", {}))


def pretty_default(expr: str) -> str:
    """`'active'::text` -> `'active'`; keeps function defaults such as nextval(...) readable."""
    out = re.sub(r"::(text|character varying|varchar|regclass|bpchar)\b", "", expr)
    return out.strip()


def take(
    conn: Any,
    *,
    sample_rows: int | None = 0,
    exclude_tables: Iterable[str] = (),
    row_tables: Iterable[str] | None = None,
) -> Fingerprint:
    """Fingerprint the database of `conn` (a psycopg connection) from the catalog.

    sample_rows: rows hashed per table (None = all rows, 0 = no row hashes). Ordered by the
    row's text form, so the hash does not depend on physical order. Excluded tables (a
    migration tool's own bookkeeping, such as alembic_version) are left out entirely.
    """
    objects: dict[str, dict[str, str]] = {k: {} for k in _QUERIES if k != "column"}
    columns: dict[str, Column] = {}
    for kind, query in _QUERIES.items():
        for row in conn.execute(query.replace("%%", "%")).fetchall():
            if kind == "column":
                schema, table, col, typ, notnull, default, ident, gen, coll = row
                columns[f"{_qual(schema, table)}.{col}"] = Column(
                    typ, bool(notnull), default, ident or "", gen or "", coll
                )
            elif kind == "table":
                schema, table, relkind, viewdef = row
                desc = relkind + (f" AS {' '.join(viewdef.split())}" if viewdef else "")
                objects[kind][_qual(schema, table)] = desc
            elif kind == "constraint":
                schema, table, name, contype, definition, valid = row
                desc = f"{_CONTYPE.get(contype, contype)} {definition}"
                objects[kind][f"{_qual(schema, table)}.{name}"] = desc + (
                    "" if valid else " NOT VALID"
                )
            elif kind == "index":
                schema, table, name, definition, valid = row
                key = f"{_qual(schema, table)}.{name}"
                objects[kind][key] = definition + ("" if valid else " (INVALID)")
            elif kind == "sequence":
                schema, name, typ, inc, lo, hi, cycle, owner = row
                desc = f"{typ} increment {inc} min {lo} max {hi}{' cycle' if cycle else ''}"
                objects[kind][_qual(schema, name)] = desc + (f", {owner}" if owner else "")
            elif kind == "function":
                schema, sig, result, lang, src, volatile, secdef = row
                desc = f"returns {result} language {lang} volatility {volatile} body {src[:12]}"
                objects[kind][_qual(schema, sig)] = desc + (" SECURITY DEFINER" if secdef else "")
            elif kind == "trigger":
                schema, table, name, definition, enabled = row
                objects[kind][f"{_qual(schema, table)}.{name}"] = f"{definition} [{enabled}]"
            elif kind == "extension":
                name, version, schema = row
                objects[kind][name] = f"version {version} in schema {schema}"
            elif kind == "type":
                schema, name, typtype, detail = row
                objects[kind][_qual(schema, name)] = f"{typtype} {detail}"
    excluded = set(exclude_tables)
    if excluded:
        _drop_tables(objects, columns, excluded)
    rows: dict[str, str] = {}
    counts: dict[str, int] = {}
    if sample_rows != 0:
        wanted = set(row_tables) if row_tables is not None else None
        for schema, table, cols in conn.execute(_TABLES).fetchall():
            name = _qual(schema, table)
            if name in excluded or (wanted is not None and name not in wanted):
                continue
            rows[name], counts[name] = _hash_rows(conn, schema, table, cols or [], sample_rows)
    return Fingerprint(objects, columns, rows, counts)


def _owner_table(kind: str, key: str, desc: str) -> str | None:
    """The table an object belongs to (None for free-standing objects)."""
    if kind in ("constraint", "trigger", "index"):
        return key.rsplit(".", 1)[0]
    if kind == "table":
        return key
    if kind == "sequence" and desc.endswith(")") and ", " in desc:
        owner = desc.rsplit(", ", 1)[1]  # "table.column (owned by)"
        return owner.split(" (", 1)[0].rsplit(".", 1)[0]
    return None


def _drop_tables(
    objects: dict[str, dict[str, str]], columns: dict[str, Column], tables: set[str]
) -> None:
    """Remove every object of `tables` from a fingerprint in place."""
    for kind, items in objects.items():
        for key in [k for k, d in items.items() if _owner_table(kind, k, d) in tables]:
            del items[key]
    for key in [k for k in columns if k.rsplit(".", 1)[0] in tables]:
        del columns[key]


def _hash_rows(
    conn: Any, schema: str, table: str, cols: list[str], limit: int | None
) -> tuple[str, int]:
    """md5 over the text form of (a sample of) a table's rows, in text order."""
    rel = f"{_quote_ident(schema)}.{_quote_ident(table)}"
    collist = ", ".join(_quote_ident(c) for c in cols) or "1"
    lim = "" if limit is None else f" LIMIT {int(limit)}"
    query = (
        f"SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')), count(*) FROM "
        f'(SELECT (ROW({collist}))::text COLLATE "C" AS x FROM {rel} '
        f"ORDER BY 1{lim}) s"
    )
    digest, count = conn.execute(query).fetchone()
    return str(digest), int(count)


# -- differences in words ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Change:
    """One difference: what it is about, how it changed (added/removed/changed), in words."""

    kind: str
    name: str
    change: str  # "extra" (in actual, not expected) | "missing" | "changed"
    words: str


_KIND_WORD = {
    "constraint": "constraint",
    "index": "index",
    "sequence": "sequence",
    "function": "function",
    "trigger": "trigger",
    "extension": "extension",
    "type": "type",
}


def _column_changes(name: str, old: Column, new: Column) -> list[str]:
    """Words for how one column changed from `old` to `new`."""
    out: list[str] = []
    if old.type != new.type:
        out.append(f"{name} changed type from {old.type} to {new.type}")
    if old.not_null and not new.not_null:
        out.append(f"{name} became nullable")
    elif new.not_null and not old.not_null:
        out.append(f"{name} became NOT NULL")
    if old.default != new.default:
        if new.default is None:
            out.append(f"{name} lost its default {pretty_default(old.default or '')}")
        elif old.default is None:
            out.append(f"{name} gained the default {pretty_default(new.default)}")
        else:
            out.append(
                f"{name} default changed from {pretty_default(old.default)} to "
                f"{pretty_default(new.default)}"
            )
    if old.identity != new.identity:
        out.append(
            f"{name} identity changed from {old.identity or 'none'} to {new.identity or 'none'}"
        )
    if old.generated != new.generated:
        out.append(f"{name} generated-column setting changed")
    if old.collation != new.collation:
        out.append(f"{name} collation changed from {old.collation} to {new.collation}")
    return out


def diff(expected: Fingerprint, actual: Fingerprint, *, rows: bool = True) -> list[Change]:
    """The changes that turn `expected` into `actual`, each in words, schema first."""
    changes: list[Change] = []
    exp_tables, act_tables = expected.tables(), actual.tables()
    for t in sorted(act_tables - exp_tables):
        cols = [c.split(".")[-1] for c in actual.columns if c.rsplit(".", 1)[0] == t]
        changes.append(
            Change("table", t, "extra", f"table {t} is left over ({', '.join(cols[:6])})")
        )
    for t in sorted(exp_tables - act_tables):
        changes.append(Change("table", t, "missing", f"table {t} is missing"))
    for t in sorted(exp_tables & act_tables):
        if expected.objects["table"][t] != actual.objects["table"][t]:
            changes.append(Change("table", t, "changed", f"{t} changed its definition"))
    # columns of tables present in both
    for name in sorted(set(actual.columns) - set(expected.columns)):
        if name.rsplit(".", 1)[0] in exp_tables:
            desc = actual.columns[name].describe()
            changes.append(Change("column", name, "extra", f"column {name} is left over ({desc})"))
    for name in sorted(set(expected.columns) - set(actual.columns)):
        if name.rsplit(".", 1)[0] in act_tables:
            desc = expected.columns[name].describe()
            changes.append(Change("column", name, "missing", f"column {name} is missing ({desc})"))
    for name in sorted(set(expected.columns) & set(actual.columns)):
        for words in _column_changes(name, expected.columns[name], actual.columns[name]):
            changes.append(Change("column", name, "changed", words))
    for kind in _KIND_WORD:
        exp, act = expected.objects.get(kind, {}), actual.objects.get(kind, {})
        word = _KIND_WORD[kind]
        for n in sorted(set(act) - set(exp)):
            if _owner_table(kind, n, act[n]) in act_tables - exp_tables:
                continue  # belongs to a left-over table, already reported
            changes.append(
                Change(kind, n, "extra", f"{word} {n} is left over ({clip(act[n], 120)})")
            )
        for n in sorted(set(exp) - set(act)):
            if _owner_table(kind, n, exp[n]) in exp_tables - act_tables:
                continue  # belongs to a missing table, already reported
            changes.append(
                Change(kind, n, "missing", f"{word} {n} is missing ({clip(exp[n], 120)})")
            )
        for n in sorted(set(exp) & set(act)):
            if exp[n] != act[n]:
                changes.append(
                    Change(
                        kind,
                        n,
                        "changed",
                        f"{word} {n} changed from {clip(exp[n], 100)} to {clip(act[n], 100)}",
                    )
                )
    if rows:
        for t in sorted(set(expected.rows) & set(actual.rows)):
            if expected.rows[t] != actual.rows[t]:
                before, after = expected.row_counts.get(t, 0), actual.row_counts.get(t, 0)
                detail = (
                    f"{before} -> {after} rows" if before != after else "same count, other values"
                )
                changes.append(Change("rows", t, "changed", f"rows of {t} changed ({detail})"))
    return changes


def in_words(changes: Iterable[Change], limit: int = 6) -> str:
    """The first `limit` changes joined into one readable phrase."""
    items = [c.words for c in changes]
    if not items:
        return "no difference"
    head = "; ".join(items[:limit])
    return head + (f"; and {len(items) - limit} more" if len(items) > limit else "")
