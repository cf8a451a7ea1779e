"""The rehearsal: copy the target's schema and a sample to scratch, then per revision
fingerprint, upgrade, downgrade, compare, upgrade again."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from readyctl.postgres import fingerprint as fp
from readyctl.postgres import scratch
from readyctl.rehearsal.alembic import AlembicMigrator
from readyctl.rehearsal.environ import error_words
from readyctl.rehearsal.errors import MAX_DISCOVERED, RehearsalError, StepFailed
from readyctl.rehearsal.migrator import Migrator
from readyctl.rehearsal.outcome import RehearsalOutcome, RevisionOutcome
from readyctl.rehearsal.sentinel import prove_scratch


@dataclasses.dataclass
class RehearsalSettings:
    """Timeouts, sampling and how far back to go when nothing is pending."""

    last: int = 3
    sample_rows: int = 100
    lock_timeout_s: float = 5.0
    statement_timeout_s: float = 60.0
    step_timeout_s: float = 120.0
    dump_timeout_s: float = 300.0
    exclude_tables: tuple[str, ...] = ()  # more tables to leave out of the comparison

    def session_options(self) -> dict[str, str]:
        """The session settings every migration step runs with."""
        return {
            "lock_timeout": f"{int(self.lock_timeout_s * 1000)}",
            "statement_timeout": f"{int(self.statement_timeout_s * 1000)}",
        }


# -- copying a sample of rows (read-only on the source) -----------------------------------------
def copy_sample(
    source_url: str,
    dest_url: str,
    *,
    limit: int,
    full_tables: Sequence[str],
    timeout_s: float = 60,
) -> int:
    """Copy up to `limit` rows per table (all rows of `full_tables`) from source to dest.

    The source is read in one REPEATABLE READ, READ ONLY transaction with a statement timeout;
    the destination takes the rows with triggers and foreign keys off (replica role).
    """
    import psycopg
    from psycopg import sql

    ms = int(timeout_s * 1000)
    copied = 0
    with (
        psycopg.connect(
            scratch.libpq_url(source_url),
            connect_timeout=10,
            options=f"-c default_transaction_read_only=on -c statement_timeout={ms}",
        ) as src,
        psycopg.connect(scratch.libpq_url(dest_url), connect_timeout=10) as dst,
    ):
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        tables = src.execute(
            "SELECT n.nspname, c.relname, array_agg(quote_ident(a.attname) ORDER BY a.attnum) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attgenerated = '' "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema', 'pg_toast') "
            "AND n.nspname NOT LIKE 'pg_temp%%' AND NOT c.relispartition "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        dst.execute("SET session_replication_role = replica")
        for schema, table, cols in tables:
            full = table in full_tables or f"{schema}.{table}" in full_tables
            if not full and limit <= 0:
                continue
            rel = sql.Identifier(schema, table)
            collist = sql.SQL(", ").join(sql.SQL(c) for c in cols)
            lim = sql.SQL("") if full else sql.SQL(" LIMIT {}").format(sql.Literal(limit))
            out_q = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT").format(collist, rel, lim)
            in_q = sql.SQL("COPY {} ({}) FROM STDIN").format(rel, collist)
            with src.cursor().copy(out_q) as out, dst.cursor().copy(in_q) as inp:
                for chunk in out:
                    inp.write(chunk)
            copied += int(dst.execute(sql.SQL("SELECT count(*) FROM {}").format(rel)).fetchone()[0])  # type: ignore[index]
        # a schema-only dump starts every sequence over: set them where the target's are, so
        # the first row a migration (or the tool's own bookkeeping) inserts gets a fresh id
        # (pg_sequences: NULL for a sequence never used, or one this user may not read)
        for schema, name, last in src.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences "
            "WHERE last_value IS NOT NULL AND schemaname NOT IN "
            "('pg_catalog', 'information_schema')"
        ).fetchall():
            qualified = sql.Identifier(schema, name).as_string(dst)
            try:
                with dst.transaction():  # a savepoint: a sequence scratch lacks is passed over
                    dst.execute("SELECT setval(%s::regclass, %s, true)", (qualified, last))
            except psycopg.Error:
                continue
        dst.commit()
        src.rollback()
    return copied


# -- the rehearsal --------------------------------------------------------------------------------
class _Rehearsal:
    """One rehearsal's state: the scratch database, the migrator, timings, outcomes."""

    def __init__(
        self,
        migrator: Migrator,
        db: scratch.ScratchDatabase,
        server: scratch.ScratchServer,
        settings: RehearsalSettings,
        check_deadline: Callable[[], None],
    ) -> None:
        self.m = migrator
        self.db = db
        self.server = server
        self.s = settings
        self.check_deadline = check_deadline
        self.outcomes: list[RevisionOutcome] = []
        self.exclude = (*migrator.tracking_tables(), *settings.exclude_tables)
        self._conn: Any = None
        self._state: fp.Fingerprint | None = None  # fingerprint of the current state

    # -- helpers ------------------------------------------------------------------------------
    def fingerprint(self) -> fp.Fingerprint:
        """Fingerprint the scratch database (all of its rows); cached until the next step."""
        import psycopg

        if self._state is not None:
            return self._state
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    # autocommit: an idle fingerprint session holds no lock a migration waits on
                    self._conn = psycopg.connect(self.db.url, connect_timeout=10, autocommit=True)
                self._state = fp.take(self._conn, sample_rows=None, exclude_tables=self.exclude)
                return self._state
            except psycopg.OperationalError as e:
                self.close()
                if attempt == 2:
                    raise RehearsalError(
                        f"the scratch database went away: {error_words(e)}", "connectivity"
                    ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the fingerprinting session."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def scratch_alive(self) -> bool:
        """Whether the scratch database still answers."""
        import psycopg

        try:
            with psycopg.connect(self.db.url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def step(self, kind: str, revision: str | None) -> float:
        """Run one upgrade or downgrade; return seconds (StepFailed / RehearsalError)."""
        self.check_deadline()
        self._state = None
        t0 = time.perf_counter()
        try:
            if kind == "up":
                self.m.upgrade(self.db.url, revision, self.s.step_timeout_s)
            else:
                self.m.downgrade(self.db.url, revision, self.s.step_timeout_s)
        except StepFailed as e:
            if not self.scratch_alive():
                raise RehearsalError(
                    f"the scratch database went away during the {kind}grade of "
                    f"{revision or 'the next revision'} ({e})",
                    "connectivity",
                ) from None
            raise
        took = time.perf_counter() - t0
        if revision and self.m.version_table:
            self._verify_moved(kind, revision)
        return took

    def _verify_moved(self, kind: str, revision: str) -> None:
        """The step must have moved the scratch copy's revision; else it ran somewhere else."""
        try:
            applied = self.m.applied(self.db.url)
        except Exception:
            applied = set()
        if applied is None:
            return
        present = revision in applied
        if present != (kind == "up"):
            table = self.m.version_table or "the migration table"
            raise RehearsalError(
                f"the {kind}grade of {revision} did not move the scratch copy's {table}: the "
                "migration ran against another database (the tool must use the connection "
                "readyctl passes: sqlalchemy.url, the variables named in url_env or "
                "connection_env); rehearsal stopped",
                "config",
            )

    def fail(self, rev: str, summary: str, step: str, **kw: Any) -> RevisionOutcome:
        out = RevisionOutcome(rev, "fail", summary, step=step, **kw)
        self.outcomes.append(out)
        return out

    # -- one revision, from the state below it -----------------------------------------------
    def round_trip(
        self,
        rev: str | None,
        above: fp.Fingerprint | None = None,
        walked_below: fp.Fingerprint | None = None,
        down_s: float | None = None,
    ) -> tuple[bool, str | None]:
        """up, down (== before), up (== first up). (ok, revision id).

        `above`/`walked_below`: the states around this revision when it was walked down
        (nothing-pending mode), used only to explain an upgrade that fails after its walk down.
        """
        label = rev or "the next revision"
        if rev is not None and above is None and not self.m.reversible(rev):
            return self.irreversible(rev), rev
        below = self.fingerprint()
        try:
            up_s = self.step("up", rev)
        except StepFailed as e:
            if above is not None:
                walked = walked_below or below
                left = [c for c in fp.diff(above, walked, rows=False) if c.change == "changed"]
                extra = (
                    f"; its downgrade changed instead of removing: {fp.in_words(left)}"
                    if left
                    else ""
                )
                self.fail(
                    label,
                    f"{label}: upgrading again after its downgrade failed ({e}){extra}",
                    "up",
                    difference=[c.words for c in left],
                    down_s=down_s,
                )
            else:
                self.fail(label, f"{label}: the upgrade failed ({e})", "up")
            return False, rev
        if rev is None:
            rev = ",".join(self.m.current(self.db.url)) or "unknown"
            label = rev
        # The state `above` this revision when it was walked down is not compared with: the
        # downs of newer revisions walked before it may have left it wrong, and a fault of
        # theirs would be blamed on this one. Each revision is judged by its own round trip.
        first_up = self.fingerprint()
        try:
            d_s = self.step("down", rev)
        except StepFailed as e:
            self.fail(label, f"{label}: the downgrade failed ({e})", "down", up_s=up_s)
            return False, rev
        after_down = self.fingerprint()
        changes = fp.diff(below, after_down)
        if changes:
            self.fail(
                label,
                f"{label}: the downgrade does not restore the schema: {fp.in_words(changes)}",
                "down",
                difference=[c.words for c in changes],
                up_s=up_s,
                down_s=d_s,
            )
            return False, rev
        try:
            up2_s = self.step("up", rev)
        except StepFailed as e:
            self.fail(
                label,
                f"{label}: the upgrade after a clean downgrade failed ({e})",
                "up again",
                up_s=up_s,
                down_s=d_s,
            )
            return False, rev
        changes = fp.diff(first_up, self.fingerprint(), rows=False)
        if changes:
            self.fail(
                label,
                f"{label}: the second upgrade differs from the first: {fp.in_words(changes)}",
                "up again",
                difference=[c.words for c in changes],
                up_s=up_s,
                down_s=d_s,
                up_again_s=up2_s,
            )
            return False, rev
        self.outcomes.append(
            RevisionOutcome(
                label,
                "pass",
                f"{label} round-trips: up {up_s:.2f} s, down {d_s:.2f} s, up again "
                f"{up2_s:.2f} s; the downgrade restored the schema exactly",
                up_s=up_s,
                down_s=d_s,
                up_again_s=up2_s,
            )
        )
        return True, rev

    def irreversible(self, rev: str) -> bool:
        """Upgrade a revision without a downgrade (its up must still apply); record it as
        irreversible. True when the rehearsal can go on from the state it left."""
        try:
            up_s = self.step("up", rev)
        except StepFailed as e:
            self.fail(rev, f"{rev}: the upgrade failed ({e})", "up")
            return False
        self.outcomes.append(
            RevisionOutcome(
                rev,
                "irreversible",
                f"{rev} is irreversible: its upgrade applied on the scratch copy in "
                f"{up_s:.2f} s, but it has no down migration; rolling back this release needs "
                "a restore from backup",
                up_s=up_s,
                step="down",
            )
        )
        return True

    # -- modes --------------------------------------------------------------------------------
    def pending(self, revisions: Sequence[str]) -> None:
        """Rehearse each pending revision in order; stop at the first failure."""
        for i, rev in enumerate(revisions):
            ok, _ = self.round_trip(rev)
            if not ok:
                self.block(revisions[i + 1 :], rev)
                return

    def discover_pending(self) -> int:
        """Command adapter: apply `up` while the current version moves (bounded)."""
        n = 0
        while n < MAX_DISCOVERED:
            before_rev = self.m.current(self.db.url)
            below = self.fingerprint()
            try:
                self.step("up", None)
            except StepFailed as e:
                self.fail("next revision", f"the next pending migration failed ({e})", "up")
                return n
            after_rev = self.m.current(self.db.url)
            if after_rev == before_rev:
                return n  # nothing was pending
            rev = ",".join(after_rev)
            # undo, then rehearse properly from the state below
            try:
                self.step("down", rev)
            except StepFailed as e:
                self.fail(rev, f"{rev}: the downgrade failed ({e})", "down")
                return n + 1
            changes = fp.diff(below, self.fingerprint())
            if changes:
                self.fail(
                    rev,
                    f"{rev}: the downgrade does not restore the schema: {fp.in_words(changes)}",
                    "down",
                    difference=[c.words for c in changes],
                )
                return n + 1
            ok, _ = self.round_trip(rev)
            n += 1
            if not ok:
                return n
        return n

    def last(self, revisions: Sequence[str] | None, n: int) -> None:
        """Nothing pending: walk down the newest `n` revisions, then rehearse each going up."""
        walked: list[tuple[str, fp.Fingerprint, fp.Fingerprint, float]] = []
        stopped: RevisionOutcome | None = None
        below_it: list[str] = []
        stop_reason: str | None = None
        for i in range(n):
            if revisions is not None:
                if i >= len(revisions):
                    break
                rev = revisions[i]
            else:
                cur = self.m.current(self.db.url)
                if not cur:
                    break
                rev = ",".join(cur)
            if revisions is not None and not self.m.reversible(rev):
                stopped = RevisionOutcome(
                    rev,
                    "irreversible",
                    f"{rev} is irreversible: it has no down migration, so the rehearsal cannot "
                    "walk below it (it is applied already; its upgrade was not rehearsed now); "
                    "rolling back past it needs a restore from backup",
                    step="down",
                )
                self.outcomes.append(stopped)
                below_it = list(revisions[i + 1 : n])
                stop_reason = f"it is older than {rev}, which has no down migration to walk below"
                break
            above = self.fingerprint()
            try:
                d_s = self.step("down", rev if revisions is not None else None)
            except StepFailed as e:
                stopped = self.fail(rev, f"{rev}: the downgrade failed ({e})", "down")
                below_it = list(revisions[i + 1 : n]) if revisions is not None else []
                break
            if revisions is None and self.m.current(self.db.url) == tuple(rev.split(",")):
                break  # the adapter could not go further down
            walked.append((rev, above, self.fingerprint(), d_s))
        for j in range(len(walked) - 1, -1, -1):
            rev, above, below, d_s = walked[j]
            ok, _ = self.round_trip(rev, above, below, down_s=d_s)
            if not ok:
                self.block([w[0] for w in reversed(walked[:j])], rev)
                break
        if stopped is not None:
            # report where the walk stopped (a failed or irreversible downgrade) after
            # the newer ones, then the ones it hides
            self.outcomes.remove(stopped)
            self.outcomes.append(stopped)
            self.block(below_it, stopped.revision, stop_reason)

    def block(self, revisions: Sequence[str], because: str, reason: str | None = None) -> None:
        """Mark revisions as not rehearsed because `because` failed (or for `reason`)."""
        for r in revisions:
            why = reason or f"revision {because} failed first"
            self.outcomes.append(
                RevisionOutcome(
                    r,
                    "not_rehearsed",
                    f"{r} was not rehearsed: {why}",
                    blocked_by=None if reason else because,
                )
            )


def _target_state(url: str, migrator: Migrator) -> tuple[str, tuple[str, ...]]:
    """The target's schema digest and revision, read in a read-only session."""
    import psycopg

    try:
        with psycopg.connect(
            scratch.libpq_url(url),
            connect_timeout=10,
            autocommit=True,
            options="-c default_transaction_read_only=on -c statement_timeout=60000",
        ) as conn:
            digest = fp.take(conn, sample_rows=0).schema_digest()
        # the tool's own read-only reader (alembic: alembic_version; prisma: _prisma_migrations)
        rev = migrator.current(url) if migrator.version_table else ()
    except psycopg.Error as e:
        raise RehearsalError(
            f"could not read the target database: {error_words(e)}", "connectivity"
        ) from None
    return digest, rev


def rehearse(
    migrator: Migrator,
    source_url: str,
    server: scratch.ScratchServer,
    settings: RehearsalSettings | None = None,
    *,
    check_deadline: Callable[[], None] = lambda: None,
    workdir: str | None = None,
) -> RehearsalOutcome:
    """Rehearse the pending revisions (or the last N) of `migrator` on a scratch copy.

    A server that is not running yet is started while the schema is dumped. Raises
    RehearsalError when the rehearsal cannot run (dump refused, scratch server gone,
    migrations unreadable). The scratch database is dropped before returning or raising.
    """
    s = settings or RehearsalSettings()
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="readyctl-rehearsal-", dir=workdir)
    db: scratch.ScratchDatabase | None = None
    run: _Rehearsal | None = None
    starter: threading.Thread | None = None
    start_errors: list[BaseException] = []
    if not server.running:  # start the scratch server while the schema is dumped

        def start() -> None:
            try:
                server.start()
            except BaseException as e:  # handed to the caller below
                start_errors.append(e)

        starter = threading.Thread(target=start, daemon=True, name="readyctl-scratch-start")
        starter.start()
    try:
        check_deadline()
        try:
            dump = scratch.dump_database(
                source_url,
                Path(tmp) / "schema.dump",
                schema_only=True,
                timeout_s=s.dump_timeout_s,
            )
        except scratch.ScratchError as e:
            kind = "connectivity" if "connect" in str(e).lower() else "config"
            raise RehearsalError(f"could not dump the target's schema: {e}", kind) from None
        except Exception as e:  # psycopg errors while reading the server version
            raise RehearsalError(
                f"could not reach the target database: {error_words(e)}", "connectivity"
            ) from None
        check_deadline()
        target_before = _target_state(source_url, migrator)  # the tripwire, read-only
        if isinstance(migrator, AlembicMigrator):  # read-only, while the server starts
            with contextlib.suppress(Exception):  # decided again on the scratch copy below
                migrator.plan(migrator.current(source_url))
        if starter is not None:
            starter.join()
            starter = None
            if start_errors:
                raise start_errors[0]
        try:
            db = server.restore(dump.path, label="rehearsal", schema_only=True)
        except scratch.ScratchError as e:
            raise RehearsalError(f"could not restore the schema into scratch: {e}") from None
        restore_s = server.last_restore_seconds
        tracking = list(migrator.tracking_tables())
        try:
            sampled = copy_sample(
                source_url, db.url, limit=s.sample_rows, full_tables=tracking, timeout_s=60
            )
        except Exception as e:
            raise RehearsalError(
                f"could not copy a sample of rows read-only: {error_words(e)}", "config"
            ) from None
        check_deadline()
        no_sentinel = prove_scratch(migrator, db.url, s.step_timeout_s)  # before any step
        source_rev = migrator.current(db.url)
        run = _Rehearsal(migrator, db, server, s, check_deadline)
        plan = migrator.plan(source_rev)  # cached when the source said the same
        notes: list[str] = [no_sentinel] if no_sentinel else []
        try:
            notes.extend(migrator.state_notes(db.url))  # edited or failed migrations
        except Exception as e:  # a remark only: never stops the rehearsal
            notes.append(f"could not read the migration state for notes: {error_words(e)}")
        mode = "none"
        if plan is not None:
            if plan.get("unknown"):
                raise RehearsalError(
                    f"the database is at revision {', '.join(plan['unknown'])}, which the "
                    "migration scripts do not contain; point alembic_config at this "
                    "project's migrations"
                )
            if plan["pending"]:
                mode = "pending"
                run.pending(plan["pending"])
            elif s.last > 0:
                mode = "last"
                run.last(plan["applied"][: s.last], s.last)
        else:
            n = run.discover_pending()
            if n or run.outcomes:
                mode = "pending"
            elif s.last > 0:
                mode = "last"
                run.last(None, s.last)
        if _target_state(source_url, migrator) != target_before:
            raise RehearsalError(
                "the target database's schema or revision changed while it was rehearsed: "
                "a migration may have run against it (does env.py or the migration command "
                "read a URL other than the one readyctl passes?), or someone deployed meanwhile",
                "config",
            )
        if dump.pg_dump_major != dump.server_major:
            notes.append(
                f"schema dumped with pg_dump {dump.pg_dump_major} from a PostgreSQL "
                f"{dump.server_major} server; rehearsed on PostgreSQL {server.major_version}"
            )
        return RehearsalOutcome(
            mode=mode,
            revisions=run.outcomes,
            source_revision=source_rev,
            tool=migrator.name,
            notes=notes,
            dump_s=dump.seconds,
            restore_s=restore_s,
            total_s=time.perf_counter() - t0,
            scratch_database=db.name,
            sampled_rows=sampled,
        )
    finally:
        if starter is not None:
            starter.join()
        if run is not None:
            run.close()
        if db is not None:
            with contextlib.suppress(Exception):
                server.drop_database(db.name)
        scratch.cleanup_dir(tmp)


@contextlib.contextmanager
def scratch_for_rehearsal(
    register_cleanup: Callable[[Callable[[], None]], None] | None = None,
) -> Iterator[scratch.ScratchServer]:
    """A scratch server closed on exit (and by the run's cleanups); rehearse() starts it."""
    server = scratch.ScratchServer()
    if register_cleanup is not None:
        register_cleanup(server.close)
    try:
        yield server
    finally:
        server.close()
