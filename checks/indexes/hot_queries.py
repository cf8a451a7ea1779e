"""indexes.hot_queries: configured hot queries can use an index (EXPLAIN, seq scans disabled)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

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
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

# The counseling API's hot query: a user's sessions filtered by status, newest first.
DEFAULT_QUERIES = (
    {
        "name": "sessions by user and status",
        "sql": (
            "SELECT id, title, status, created_at FROM counseling_sessions "
            "WHERE user_id = '00000000-0000-0000-0000-000000000000' AND status = 'active' "
            "ORDER BY created_at DESC, id LIMIT 20"
        ),
    },
)
_PARAM = re.compile(r"\$\d+")
SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan")


def plan_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scan node of an EXPLAIN (FORMAT JSON) plan that reads a relation."""
    out: list[dict[str, Any]] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") and node.get("Node Type") in SCANS:
            out.append(node)
        stack.extend(node.get("Plans", ()))
    return out


def index_names(plan: dict[str, Any]) -> list[str]:
    """Every index a plan uses."""
    names: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Index Name"):
            names.add(str(node["Index Name"]))
        stack.extend(node.get("Plans", ()))
    return sorted(names)


def unusable(node: dict[str, Any]) -> str | None:
    """Why a scan node shows no usable index (None when an index condition drives it)."""
    rel = node.get("Relation Name")
    kind = node.get("Node Type")
    if kind == "Seq Scan":
        return f"sequential scan on {rel}"
    if kind in ("Index Scan", "Index Only Scan") and not node.get("Index Cond"):
        flt = node.get("Filter")
        return f"full scan of index {node.get('Index Name')} on {rel}" + (
            f" filtering {flt}" if flt else ""
        )
    return None


def _select_only(sql: str) -> str | None:
    """Why `sql` is not one plain SELECT (None when it is)."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    try:
        stmts = parse_sql(sql)
    except ParseError as e:
        return f"does not parse: {e}"
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.SelectStmt):
        return "is not a single SELECT statement"
    if stmts[0].stmt.withClause is not None:
        for cte in stmts[0].stmt.withClause.ctes or ():
            if not isinstance(cte.ctequery, ast.SelectStmt):
                return "has a data-modifying WITH clause"
    return None


class HotQuery(CheckSettings):
    """One hot query of indexes.hot_queries."""

    name: str | None = Field(
        None, description="the result's subject (default: the first 40 characters of the SQL)"
    )
    sql: str = Field(description="one SELECT statement with literal values (or $n on PG 16+)")


class Settings(CheckSettings):
    """Settings of indexes.hot_queries."""

    queries: tuple[HotQuery, ...] | dict[str, str] = Field(
        DEFAULT_QUERIES,
        validate_default=True,
        description="hot queries: a list of {name, sql} or a name -> sql map (default: the "
        "counseling API's sessions-by-user-and-status query)",
    )
    explain_analyze: bool = Field(
        False,
        description="run EXPLAIN ANALYZE (executes the SELECT in a read-only transaction) "
        "instead of planning only",
    )


class HotQueryIndexes(Check):
    """EXPLAIN each hot query with enable_seqscan off in a read-only transaction, rolled back.

    A sequential scan (or a full index scan with only a filter) that remains means no index
    can serve the query. Settings: `queries`: a list of {name, sql} (or a name -> sql map;
    default: the counseling API's sessions-by-user-and-status query); `explain_analyze`
    (default false: the query is planned, never executed; true runs EXPLAIN ANALYZE of the
    SELECT inside the read-only transaction). ANALYZE (statistics) is never run.
    """

    meta = CheckMeta(
        id="indexes.hot_queries",
        title="Hot queries can use an index",
        failure_title="A hot query has no usable index",
        description=(
            "A query on the request path that cannot use an index reads the whole table, and "
            "gets slower with every row; it is the usual cause of a database pinned at 100% "
            "CPU. See https://www.postgresql.org/docs/current/using-explain.html."
        ),
        remediation=RemediationSpec(
            text="Create an index whose leading columns match the query's equality filters "
            "(then its sort), concurrently.",
            snippet="CREATE INDEX CONCURRENTLY ix_counseling_sessions_user_id_status\n"
            "    ON counseling_sessions (user_id, status);",
            link="https://www.postgresql.org/docs/current/using-explain.html",
        ),
        category=Category.DATABASE,
        severity=Severity.HIGH,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=60,
        tags=("database", "indexes", "seed"),
        refs=("11",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per configured query."""
        import psycopg

        s: Settings = ctx.settings()
        if isinstance(s.queries, dict):
            queries = [HotQuery(name=k, sql=v) for k, v in s.queries.items()]
        else:
            queries = list(s.queries)
        if not queries:
            yield self.skipped("hot queries", "no hot queries configured (queries: [])")
            return
        analyze = s.explain_analyze
        defaults = "queries" not in s.model_fields_set
        for q in queries:
            name, sql = q.name or ctx.redactor.clip(q.sql, 40), q.sql
            ctx.check_deadline()
            bad = _select_only(sql)
            if bad:
                yield self.errored(name, ErrorReason.CONFIG, f"hot query {name!r} {bad}")
                continue
            try:
                plan = self._explain(ctx, sql, analyze)
            except psycopg.errors.UndefinedTable as e:
                if defaults:
                    yield self.skipped(
                        name,
                        f"the default hot query does not fit this schema ({error_words(ctx, e)});"
                        " configure checks.indexes.hot_queries.queries",
                    )
                else:
                    yield self.errored(name, ErrorReason.CONFIG, error_words(ctx, e))
                continue
            except ValueError as e:
                yield self.errored(name, ErrorReason.CONFIG, f"hot query {name!r} {e}")
                continue
            except psycopg.errors.QueryCanceled:
                yield self.errored(name, ErrorReason.TIMEOUT, f"EXPLAIN of {name!r} timed out")
                continue
            except psycopg.Error as e:
                yield self.errored(
                    name, ErrorReason.CONNECTIVITY, f"EXPLAIN failed: {error_words(ctx, e)}"
                )
                continue
            yield self._judge(name, sql, plan)

    def _explain(self, ctx: Context, sql: str, analyze: bool) -> dict[str, Any]:
        """The JSON plan, from a READ ONLY transaction that is rolled back."""
        opts = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        conn = connect(ctx, statement_timeout_s=20, autocommit=False)
        if _PARAM.search(sql):  # $1-style parameters: plan generically (PostgreSQL 16+)
            if conn.info.server_version < 160000 or analyze:
                conn.close()
                raise ValueError(
                    "uses $n parameters: write literal values (generic plans need PostgreSQL "
                    "16+ and no explain_analyze)"
                )
            opts = "GENERIC_PLAN, FORMAT JSON"
        with conn:
            try:
                conn.execute("SET TRANSACTION READ ONLY")
                conn.execute("SET LOCAL enable_seqscan = off")
                row = conn.execute(f"EXPLAIN ({opts}) {sql}").fetchone()  # type: ignore[arg-type]
            finally:
                conn.rollback()
        data = row[0] if row else []
        if isinstance(data, str):
            import json

            data = json.loads(data)
        return dict(data[0]["Plan"]) if data else {}

    def _judge(self, name: str, sql: str, plan: dict[str, Any]) -> Result:
        scans = plan_scans(plan)
        ev: dict[str, Any] = {
            "query": clip(sql, 300),
            "scans": [
                {
                    k: n.get(k)
                    for k in ("Node Type", "Relation Name", "Index Name", "Index Cond", "Filter")
                    if n.get(k)
                }
                for n in scans
            ],
            "total_cost": plan.get("Total Cost"),
        }
        if not scans:
            return self.errored(
                name,
                ErrorReason.INCONCLUSIVE,
                f"the plan of {name!r} reads no table, so index use cannot be judged",
                evidence=ev,
            )
        problems = [p for p in (unusable(n) for n in scans) if p]
        if problems:
            return self.failed(
                name,
                f"{name}: {problems[0]} remains with enable_seqscan=off: no usable index",
                evidence=ev,
            )
        used = index_names(plan)
        return self.passed(name, f"{name} uses index {', '.join(used)}", evidence=ev)
