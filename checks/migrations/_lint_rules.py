"""Migration lint rules over pglast's PostgreSQL parse tree: locks, rewrites and drops."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from readyctl.redact import clip

RECIPES: dict[str, str] = {
    "index-not-concurrent": (
        "Build the index with CREATE INDEX CONCURRENTLY outside a transaction (alembic: "
        "`with op.get_context().autocommit_block(): op.create_index(..., "
        "postgresql_concurrently=True)`); a plain CREATE INDEX blocks every write to the table "
        "for the whole build."
    ),
    "concurrently-in-transaction": (
        "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block: wrap it in "
        "alembic's `op.get_context().autocommit_block()`."
    ),
    "add-column-not-null-no-default": (
        "Add the column nullable (or with a constant DEFAULT), backfill in batches, add "
        "CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL; adding it "
        "NOT NULL without a default fails on a non-empty table."
    ),
    "column-type-change": (
        "Changing a column's type rewrites the table under an ACCESS EXCLUSIVE lock: add a new "
        "column, backfill and dual-write, switch reads, then drop the old column in a later "
        "release (only binary-coercible changes such as varchar(n) -> text are free)."
    ),
    "drop-column": (
        "Deploy code that no longer reads or writes the column first (running instances still "
        "select it), back it up, and drop it in a later release."
    ),
    "drop-table": (
        "Deploy code that no longer uses the table first, back it up (or rename it and wait), "
        "and drop it in a later release."
    ),
    "constraint-without-not-valid": (
        "Add CHECK and FOREIGN KEY constraints as NOT VALID (no full scan under a strong lock), "
        "then VALIDATE CONSTRAINT in a separate step; for UNIQUE/PRIMARY KEY build the index "
        "CONCURRENTLY and ADD CONSTRAINT ... USING INDEX."
    ),
    "set-not-null": (
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: add CHECK (col IS "
        "NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan)."
    ),
    "missing-lock-timeout": (
        'Start the migration with SET lock_timeout (alembic: op.execute("SET LOCAL '
        "lock_timeout = '5s'\")) and retry on timeout, so a migration waiting behind a long "
        "transaction does not queue every other query behind its lock."
    ),
}
WARN_RULES = frozenset({"drop-column", "drop-table"})


@dataclasses.dataclass(frozen=True)
class Finding:
    """One unsafe statement in one revision, with the safe recipe."""

    rule: str
    revision: str
    statement: str
    table: str | None
    message: str

    @property
    def recipe(self) -> str:
        """How to do it safely."""
        return RECIPES[self.rule]

    @property
    def severity(self) -> str:
        """fail or warn."""
        return "warn" if self.rule in WARN_RULES else "fail"


def _relname(rel: Any) -> str | None:
    """`schema.name` (or `name`) of a pglast RangeVar."""
    if rel is None:
        return None
    name = str(rel.relname)
    return f"{rel.schemaname}.{name}" if getattr(rel, "schemaname", None) else name


def _bare(name: str | None) -> str:
    return (name or "").split(".")[-1].lower()


def _value_of(arg: Any) -> str:
    """The literal of a SET argument."""
    val = getattr(arg, "val", None)
    for attr in ("sval", "ival", "fval"):
        if val is not None and getattr(val, attr, None) is not None:
            return str(getattr(val, attr))
    return str(arg)


class Linter:
    """Lints a stream of revisions in apply order, remembering tables they create."""

    def __init__(self, ignore: Iterable[str] = ()) -> None:
        """`ignore`: rule ids to silence."""
        self.created: set[str] = set()
        self.ignore = set(ignore)

    def lint(self, revision: str, sql: str) -> list[Finding]:
        """Every finding in one revision's SQL (ParseError propagates)."""
        from pglast import ast, parse_sql
        from pglast.enums import AlterTableType, ConstrType, ObjectType, TransactionStmtKind

        findings: list[Finding] = []
        lock_timeout = False
        in_txn = False
        locking: list[tuple[str, str]] = []  # (statement, table)

        def add(rule: str, stmt: str, table: str | None, message: str) -> None:
            if rule not in self.ignore:
                findings.append(Finding(rule, revision, stmt, table, message))

        for raw in parse_sql(sql):
            node = raw.stmt
            start = raw.stmt_location or 0
            text = sql[start : start + raw.stmt_len] if raw.stmt_len else sql[start:]
            text = " ".join(text.split())
            short = clip(text, 200)  # redacted before it is shortened
            if isinstance(node, ast.TransactionStmt):
                if node.kind in (
                    TransactionStmtKind.TRANS_STMT_BEGIN,
                    TransactionStmtKind.TRANS_STMT_START,
                ):
                    in_txn = True
                elif node.kind in (
                    TransactionStmtKind.TRANS_STMT_COMMIT,
                    TransactionStmtKind.TRANS_STMT_ROLLBACK,
                ):
                    in_txn = False
                continue
            if isinstance(node, ast.VariableSetStmt):
                if (node.name or "").lower() == "lock_timeout" and node.args:
                    lock_timeout = _value_of(node.args[0]).strip("'") not in ("0", "")
                continue
            if isinstance(node, ast.CreateStmt):
                self.created.add(_bare(_relname(node.relation)))
                continue
            if isinstance(node, ast.IndexStmt):
                table = _relname(node.relation)
                existing = _bare(table) not in self.created
                if node.concurrent and in_txn:
                    add(
                        "concurrently-in-transaction",
                        short,
                        table,
                        f"CREATE INDEX CONCURRENTLY on {table} inside a transaction block fails",
                    )
                if not node.concurrent and existing:
                    add(
                        "index-not-concurrent",
                        short,
                        table,
                        f"index built without CONCURRENTLY on the existing table {table}",
                    )
                    locking.append((short, table or ""))
                continue
            if isinstance(node, ast.AlterTableStmt):
                table = _relname(node.relation)
                existing = _bare(table) not in self.created
                if not existing:
                    continue
                locking.append((short, table or ""))
                for cmd in node.cmds or ():
                    self._alter_cmd(cmd, table, short, add, AlterTableType, ConstrType, ast)
                continue
            if isinstance(node, ast.DropStmt):
                names = [
                    ".".join(str(getattr(p, "sval", p)) for p in obj)
                    if isinstance(obj, tuple)
                    else str(obj)
                    for obj in (node.objects or ())
                ]
                if node.removeType == ObjectType.OBJECT_TABLE:
                    for n in names:
                        if _bare(n) not in self.created:
                            add("drop-table", short, n, f"table {n} is dropped")
                            locking.append((short, n))
                elif node.removeType == ObjectType.OBJECT_INDEX:
                    if node.concurrent and in_txn:
                        add(
                            "concurrently-in-transaction",
                            short,
                            None,
                            "DROP INDEX CONCURRENTLY inside a transaction block fails",
                        )
                    if not node.concurrent:
                        locking.append((short, names[0] if names else ""))
                continue
            if isinstance(node, ast.RenameStmt | ast.TruncateStmt):
                locking.append((short, ""))
        if locking and not lock_timeout:
            stmt, table = locking[0]
            add(
                "missing-lock-timeout",
                stmt,
                table or None,
                f"no lock_timeout before locking {table or 'an existing table'}: the migration "
                "can queue every query on it while it waits",
            )
        return findings

    @staticmethod
    def _alter_cmd(
        cmd: Any,
        table: str | None,
        stmt: str,
        add: Any,
        at: Any,
        ct: Any,
        ast: Any,
    ) -> None:
        """Findings of one ALTER TABLE sub-command on an existing table."""
        sub = cmd.subtype
        if sub == at.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            kinds = {c.contype for c in (cmd.def_.constraints or ())}
            has_value = bool(kinds & {ct.CONSTR_DEFAULT, ct.CONSTR_IDENTITY, ct.CONSTR_GENERATED})
            if ct.CONSTR_NOTNULL in kinds and not has_value:
                add(
                    "add-column-not-null-no-default",
                    stmt,
                    table,
                    f"column {table}.{cmd.def_.colname} is added NOT NULL without a default",
                )
        elif sub == at.AT_AlterColumnType:
            add("column-type-change", stmt, table, f"column {table}.{cmd.name} changes type")
        elif sub == at.AT_DropColumn:
            add("drop-column", stmt, table, f"column {table}.{cmd.name} is dropped")
        elif sub == at.AT_SetNotNull:
            add("set-not-null", stmt, table, f"column {table}.{cmd.name} is set NOT NULL")
        elif sub == at.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            con = cmd.def_
            if con.contype in (ct.CONSTR_CHECK, ct.CONSTR_FOREIGN) and not con.skip_validation:
                add(
                    "constraint-without-not-valid",
                    stmt,
                    table,
                    f"constraint {con.conname or ''} on {table} is added without NOT VALID "
                    "(validated under a strong lock)".replace("  ", " "),
                )
            elif con.contype in (ct.CONSTR_UNIQUE, ct.CONSTR_PRIMARY) and not con.indexname:
                add(
                    "constraint-without-not-valid",
                    stmt,
                    table,
                    f"unique/primary key constraint on {table} builds its index under an "
                    "ACCESS EXCLUSIVE lock",
                )
