"""indexes.foreign_keys: every foreign key's columns lead some index on the referencing table."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field
from readyctl.checks.database._db import connect, error_words

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

_FKS = """
SELECT n.nspname, t.relname, c.conname, rn.nspname, r.relname,
       array_agg(a.attname::text ORDER BY k.ord),
       t.reltuples::bigint,
       (SELECT i2.relname FROM pg_index i JOIN pg_class i2 ON i2.oid = i.indexrelid
         WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
           AND i.indnkeyatts >= cardinality(c.conkey)
           AND (SELECT array_agg(x ORDER BY x)
                FROM unnest((i.indkey::int2[])[0:cardinality(c.conkey) - 1]) x)
             = (SELECT array_agg(x ORDER BY x) FROM unnest(c.conkey) x)
         ORDER BY i.indnkeyatts LIMIT 1)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.contype = 'f'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
GROUP BY n.nspname, t.relname, c.conname, rn.nspname, r.relname, t.reltuples, c.conrelid,
         c.conkey
ORDER BY 1, 2, 3
"""


def _qual(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


class Settings(CheckSettings):
    """Settings of indexes.foreign_keys."""

    ignore: tuple[str, ...] = Field(
        (), description='foreign keys to skip: constraint names or "table(col, ...)"'
    )


class ForeignKeyIndexes(Check):
    """Each foreign key's columns are the leading columns of a valid, non-partial index.

    Settings: `ignore`: foreign keys to skip, as constraint names or "table(col, ...)".
    """

    meta = CheckMeta(
        id="indexes.foreign_keys",
        title="Foreign keys have supporting indexes",
        failure_title="Foreign keys without a supporting index",
        description=(
            "PostgreSQL does not index referencing columns: joins on the key and every delete "
            "or key update on the referenced table then scan the whole referencing table, "
            "under lock. See https://www.postgresql.org/docs/current/ddl-constraints.html"
            "#DDL-CONSTRAINTS-FK."
        ),
        remediation=RemediationSpec(
            text="Create an index whose leading columns are the foreign key's columns, "
            "concurrently so the table stays writable.",
            snippet="CREATE INDEX CONCURRENTLY ix_refresh_tokens_user_id ON refresh_tokens "
            "(user_id);",
            link="https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK",
        ),
        category=Category.DATABASE,
        severity=Severity.MEDIUM,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=60,
        tags=("database", "indexes", "seed"),
        refs=("11",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per foreign key."""
        import psycopg

        s: Settings = ctx.settings()
        ignore = set(s.ignore)
        try:
            with connect(ctx, statement_timeout_s=20) as conn:
                rows = conn.execute(_FKS).fetchall()
        except psycopg.Error as e:
            yield self.errored(
                "foreign keys",
                ErrorReason.CONNECTIVITY,
                f"catalog read failed: {error_words(ctx, e)}",
            )
            return
        if not rows:
            yield self.skipped("foreign keys", "the database has no foreign keys")
            return
        for schema, table, con, rschema, rtable, cols, tuples, index in rows:
            subject = f"{_qual(schema, table)}({', '.join(cols)})"
            target = _qual(rschema, rtable)
            if con in ignore or subject in ignore:
                yield self.skipped(subject, f"{con} is ignored by settings")
                continue
            ev = {"constraint": con, "references": target, "estimated_rows": max(0, tuples)}
            if index:
                yield self.passed(
                    subject,
                    f"foreign key {subject} -> {target} is served by index {index}",
                    evidence={**ev, "index": index},
                )
            else:
                yield self.failed(
                    subject,
                    f"foreign key {subject} -> {target} has no index leading with its "
                    f"column(s): deletes on {target} and joins scan {_qual(schema, table)}",
                    evidence={
                        **ev,
                        "fix": f"CREATE INDEX CONCURRENTLY ON {_qual(schema, table)} "
                        f"({', '.join(cols)});",
                    },
                )
