"""`uses: migrate`: apply the pending migrations on the target, after lint and a rehearsal;
roll back by downgrade when the rehearsal proved it, else (or when the schema is still not
back) by restoring the backup step's dump."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    NeedsConfirmation,
    StepContext,
    register,
)

KEYS = ("require_rehearsal", "restore", "lint", "project", "step_timeout", "restore_lock_timeout")
REHEARSAL = "migrations.rehearsal"
LINT = "migrations.lint"


@register
class Migrate(Action):
    """Lint, check the rehearsal, record, then apply the pending migrations one at a time.

    `with:` keys:
    - `require_rehearsal` (`required`): the newest `migrations.rehearsal` result in
      .readyctl/history/ must cover every pending revision and have passed (a warn for an
      irreversible revision counts: it applies, and its rollback is a restore); `rehearse`:
      without one, rehearse the pending revisions now (on a scratch copy, kept in history)
      and go on only if that passed; `confirm`: without one, ask a human instead of refusing.
    - `restore` (`confirm`): on rollback, restoring the backup asks first; `auto`: restore
      without asking.
    - `lint` (true): run migrations.lint on the pending revisions first (any fail stops).
    - `project`: settings of the migration project laid over readyctl.yaml's
      `checks.migrations.rehearsal` (alembic_config, version_locations, tool, commands, ...).
    - `step_timeout` (the project's step_timeout_s, 120 s): one migration step's time.
    - `restore_lock_timeout` (60s): how long the restore waits for a table lock.

    Record: `revisions_before`, `pending`, `applied`, `failed` (a revision that failed half
    way), `revisions_after`, `reversible` (revisions the rehearsal proved to round-trip),
    `rehearsal` (which run proved it), `fingerprint` (schema digest before) and
    `fingerprint_file`. Rollback: downgrade every applied revision in reverse when all were
    proven reversible and none failed; then compare the schema fingerprint with the recorded
    one; when it differs, restore the backup step's dump (`pg_restore --clean --if-exists`,
    one transaction), compare again, and say whether the target is back.
    """

    name = "migrate"
    touches = "target-write"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        lint = "lint, " if params.get("lint", True) else ""
        how = params.get("require_rehearsal", "required")
        return (
            f"{lint}require a passing migrations.rehearsal ({how}), record the revision and "
            "schema fingerprint, apply the pending migrations to the target database (writes "
            "the target; rollback: downgrade or restore the backup)"
        )

    # -- run ---------------------------------------------------------------------------------
    def run(self, sc: StepContext) -> ActionResult:
        """Lint, check the rehearsal, record, apply one revision at a time."""
        from readyctl.rehearsal import RehearsalError, StepFailed

        _common.unknown_keys(sc, KEYS)
        policy = str(sc.params.get("require_rehearsal", "required")).lower()
        if policy in ("true", "yes"):
            policy = "required"
        if policy not in ("required", "confirm", "rehearse"):
            raise ActionFailed(
                f"with.require_rehearsal: {policy!r} is not one of required, rehearse, confirm"
            )
        t = _common.target(sc)
        url = _url(t)
        migrator, step_timeout = _migrator(sc, t)
        try:
            before = tuple(migrator.current(url))
            plan = migrator.plan(before)
        except (RehearsalError, StepFailed) as e:
            raise ActionFailed(f"migrate: {_common.redact(e)}") from None
        except Exception as e:  # psycopg: the target cannot be read
            raise ActionFailed(f"migrate: cannot read the target's revision: {_err(e)}") from None
        if plan is None:
            raise ActionFailed(
                f"migrate: {migrator.name} cannot list its pending revisions, so no rehearsal "
                "result can be matched to them"
            )
        pending = [str(r) for r in plan.get("pending") or []]
        fingerprint = _fingerprint(url)
        fp_file = sc.workdir / f"{_safe(sc.step_id)}-fingerprint-before.json"
        _save_fingerprint(fingerprint, fp_file)
        record: dict[str, Any] = {
            "tool": migrator.name,
            "revisions_before": list(before),
            "pending": pending,
            "applied": [],
            "failed": None,
            "reversible": [],
            "fingerprint": fingerprint.schema_digest(),
            "fingerprint_file": str(fp_file),
        }
        at = ", ".join(before) or "no revision"
        if not pending:
            record["revisions_after"] = list(before)
            return ActionResult(f"nothing pending: the target is at {at}", record=record)
        if sc.params.get("lint", True) not in (False, "false", "off", "no"):
            self._lint(sc, t, pending)
        proof = latest_rehearsal(_history_dir(t), pending)
        if not proof.ok and policy == "rehearse":
            sc.log(f"no rehearsal on record for {', '.join(pending)}: rehearsing now")
            project = dict(sc.params.get("project") or {})
            _common.run_checks(
                sc,
                t,
                [REHEARSAL],
                out=sc.workdir / f"{_safe(sc.step_id)}-rehearsal",
                overrides={REHEARSAL: project},
                history=True,
            )
            proof = latest_rehearsal(_history_dir(t), pending)
        record["rehearsal"] = proof.describe()
        record["reversible"] = proof.reversible
        if not proof.ok:
            why = f"{proof.why}; run `readyctl db rehearse` for the target first"
            if policy != "confirm":
                raise ActionFailed(f"migrate: {why}", record=record)
            if not sc.confirm(f"apply {', '.join(pending)} without a passing rehearsal ({why})?"):
                raise ActionFailed(f"migrate: not confirmed ({proof.why})", record=record)
            record["rehearsal"]["confirmed_without"] = True
        for rev in pending:
            sc.check_deadline()
            sc.log(f"applying {rev}")
            try:
                migrator.upgrade(url, rev, step_timeout)
            except StepFailed as e:
                record["failed"] = rev
                record["revisions_after"] = _current_or_none(migrator, url)
                raise ActionFailed(
                    f"migration {rev} failed: {_common.redact(e, 240)}", record=record
                ) from None
            except RehearsalError as e:
                record["failed"] = rev
                raise ActionFailed(f"migrate: {_common.redact(e)}", record=record) from None
            record["applied"].append(rev)
        record["revisions_after"] = _current_or_none(migrator, url)
        now = ", ".join(record["revisions_after"] or ()) or "no revision"
        return ActionResult(
            f"applied {len(pending)} migration(s): {at} -> {now}",
            record=record,
            evidence={"rehearsal": record["rehearsal"]},
        )

    def _lint(self, sc: StepContext, t: _common.Target, pending: Sequence[str]) -> None:
        """migrations.lint through the run pipeline; ActionFailed on any fail or error."""
        from readyctl.pipeline import focused_exit

        overrides = {REHEARSAL: dict(sc.params.get("project") or {})}
        out = sc.workdir / f"{_safe(sc.step_id)}-lint"
        code, report = _common.run_checks(sc, t, [LINT], out=out, overrides=overrides)
        code, why = focused_exit(report, own=[LINT], nothing_is_ok=True)
        if code == 1:
            raise ActionFailed(f"migrations.lint failed: {_common.first_problem(report, [LINT])}")
        if code == 130:
            raise ActionFailed("migrations.lint was interrupted")
        if code != 0:
            raise ActionFailed(f"migrations.lint could not lint {', '.join(pending)}: {why}")
        sc.log(f"migrations.lint passed for {', '.join(pending)}")

    # -- rollback ----------------------------------------------------------------------------
    def rollback(self, sc: StepContext, record: Mapping[str, Any]) -> ActionResult | None:
        """Downgrade (when proven reversible), compare, restore the backup when not back."""
        from readyctl.postgres import fingerprint as fp
        from readyctl.rehearsal import RehearsalError, StepFailed

        applied = [str(r) for r in record.get("applied") or []]
        failed = record.get("failed")
        if "fingerprint" not in record or (not applied and not failed):
            return None
        t = _common.target(sc)
        url = _url(t)
        want = str(record["fingerprint"])
        before = [str(r) for r in record.get("revisions_before") or []]
        reversible = set(record.get("reversible") or [])
        notes: list[str] = []
        downgraded: list[str] = []
        if failed:
            now = _fingerprint(url)
            cur = _current_or_none(_migrator(sc, t)[0], url)
            if not applied and now.schema_digest() == want and cur == before:
                return ActionResult(
                    f"target is back: {failed} failed without leaving a change (schema "
                    f"fingerprint and revision as before the migration)",
                    record={"method": "none", "back": True},
                )
            notes.append(f"{failed} failed half way")
        elif not set(applied) <= reversible:
            unproven = [r for r in applied if r not in reversible]
            notes.append(f"{', '.join(unproven)} not proven reversible")
        else:
            migrator, step_timeout = _migrator(sc, t)
            try:
                for rev in reversed(applied):
                    sc.check_deadline()
                    sc.log(f"downgrading {rev}")
                    migrator.downgrade(url, rev, step_timeout)
                    downgraded.append(rev)
            except (StepFailed, RehearsalError) as e:
                notes.append(f"downgrade of {rev} failed: {_common.redact(e, 160)}")
        now = _fingerprint(url)
        if now.schema_digest() == want and not notes:
            return ActionResult(
                f"target is back: downgraded {', '.join(downgraded) or 'nothing'}, schema "
                f"fingerprint equal to before the migration ({want})",
                record={"method": "downgrade", "downgraded": downgraded, "back": True},
            )
        expected = _load_fingerprint(record.get("fingerprint_file"))
        words = fp.in_words(fp.diff(expected, now, rows=False), 4) if expected else "differs"
        if now.schema_digest() != want:
            notes.append(f"schema differs: {words}")
        backup = sc.record_of("backup")
        if not backup or not backup.get("backup_id"):
            raise ActionFailed(
                f"target NOT back ({'; '.join(notes)}) and no backup step recorded a backup"
            )
        auto = str(sc.params.get("restore", "confirm")).lower() == "auto"
        question = (
            f"restore backup {backup['backup_id']} into the target database ({'; '.join(notes)})?"
        )
        if not auto:
            try:
                yes = sc.confirm(question)
            except NeedsConfirmation:
                raise
            if not yes:
                raise ActionFailed(f"restore declined: target NOT back ({'; '.join(notes)})")
        from readyctl.runbook.actions import backup as _backup

        dump = _backup.fetch(sc, backup)
        drops = _drops_for_extras(expected, now) if expected else []
        lock_s = _common.seconds(sc.params.get("restore_lock_timeout"), 60, "restore_lock_timeout")
        sc.log(f"restoring backup {backup['backup_id']}")
        took = _backup.restore(sc, url, dump, drop_first=drops, lock_timeout_s=lock_s)
        after = _fingerprint(url)
        if after.schema_digest() != want:
            words = fp.in_words(fp.diff(expected, after, rows=False), 4) if expected else ""
            raise ActionFailed(
                f"restored backup {backup['backup_id']} but the target is NOT back: the schema "
                f"still differs ({words or after.schema_digest()})"
            )
        revs = _current_or_none(_migrator(sc, t)[0], url)
        return ActionResult(
            f"target is back: restored backup {backup['backup_id']} in {took:.1f} s "
            f"({'; '.join(notes)}); schema fingerprint equal to before the migration, "
            f"revision {', '.join(revs or []) or 'none'}",
            record={
                "method": "restore",
                "backup_id": backup["backup_id"],
                "downgraded": downgraded,
                "dropped": len(drops),
                "revisions": revs,
                "back": True,
            },
        )


# -- the rehearsal in history ----------------------------------------------------------------
@dataclasses.dataclass
class Proof:
    """What the newest rehearsal in history says about the pending revisions."""

    ok: bool
    why: str
    run: str | None = None
    started_at: str | None = None
    environment: str | None = None
    statuses: dict[str, str] = dataclasses.field(default_factory=dict)
    reversible: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """For the step's record."""
        return {
            "ok": self.ok,
            "why": self.why,
            "run": self.run,
            "started_at": self.started_at,
            "environment": self.environment,
            "statuses": self.statuses,
        }


def latest_rehearsal(history_dir: Path, pending: Sequence[str]) -> Proof:
    """The newest kept run with a migrations.rehearsal result for every pending revision.

    It proves the migration when each is `pass` (round-trips: reversible) or a `warn` on an
    irreversible revision (its upgrade ran; rolling it back needs the backup).
    """
    from readyctl import history

    wanted = set(pending)
    for path, data in reversed(history._runs(history_dir)):
        if data.get("interrupted"):
            continue
        results = {
            str(r.get("subject")): r for r in data.get("results") or [] if r.get("id") == REHEARSAL
        }
        if not wanted <= set(results):
            continue
        statuses = {rev: str(results[rev].get("status")) for rev in pending}
        reversible = [rev for rev in pending if statuses[rev] == "pass"]
        bad = [
            rev
            for rev in pending
            if not (
                statuses[rev] == "pass"
                or (
                    statuses[rev] == "warn"
                    and (results[rev].get("evidence") or {}).get("irreversible")
                )
            )
        ]
        env = (data.get("environment") or {}).get("name")
        base = Proof(
            ok=not bad,
            why="",
            run=path.stem,
            started_at=data.get("started_at"),
            environment=env,
            statuses=statuses,
            reversible=reversible,
        )
        if bad:
            base.why = (
                f"the newest rehearsal of {', '.join(pending)} ({path.stem}) did not pass: "
                + ", ".join(f"{r} {statuses[r]}" for r in bad)
            )
        else:
            base.why = f"rehearsed in {path.stem}"
        return base
    return Proof(
        ok=False, why=f"no migrations.rehearsal result in history for {', '.join(pending)}"
    )


# -- helpers ---------------------------------------------------------------------------------
def _safe(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "step"


def _err(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return _common.redact(first, 200)


def _url(t: _common.Target) -> str:
    url = t.env.database_url
    if not url:
        raise ActionFailed("migrate: the target environment has no database_url")
    return str(url)


def _history_dir(t: _common.Target) -> Path:
    return Path(t.loaded.resolve_path(t.config.report.history_dir))


def _migrator(sc: StepContext, t: _common.Target) -> tuple[Any, float]:
    """The project's migrator (readyctl.yaml's migrations.rehearsal + `with: project`) with
    the rehearsal's session settings (lock and statement timeouts), and the step timeout."""
    from readyctl.checks.migrations._project import find_migrator
    from readyctl.checks.migrations.rehearsal import rehearsal_settings
    from readyctl.errors import ConfigError
    from readyctl.rehearsal import RehearsalError

    project = sc.params.get("project") or {}
    if not isinstance(project, Mapping):
        raise ActionFailed("with.project: must be a mapping of migrations.rehearsal settings")
    ctx = _common.context(sc, t, {REHEARSAL: dict(project)})
    try:
        own = ctx.settings(REHEARSAL)
        s = rehearsal_settings(own)
        migrator = find_migrator(ctx, s.session_options())
    except (RehearsalError, ConfigError) as e:
        raise ActionFailed(f"migrate: {_common.redact(e)}") from None
    if isinstance(migrator, str):
        raise ActionFailed(f"migrate: {migrator}")
    step = _common.seconds(sc.params.get("step_timeout"), s.step_timeout_s, "step_timeout")
    return migrator, step


def _current_or_none(migrator: Any, url: str) -> list[str] | None:
    try:
        return [str(r) for r in migrator.current(url)]
    except Exception:  # a broken target: the record says unknown
        return None


def _fingerprint(url: str) -> Any:
    """The target's schema fingerprint (catalog only, no rows; read-only session)."""
    import psycopg

    from readyctl.postgres import fingerprint as fp
    from readyctl.postgres.urls import libpq_url

    try:
        with psycopg.connect(
            libpq_url(url),
            connect_timeout=10,
            autocommit=True,
            options="-c default_transaction_read_only=on",
        ) as conn:
            return fp.take(conn, sample_rows=0)
    except psycopg.Error as e:
        raise ActionFailed(f"migrate: cannot fingerprint the target: {_err(e)}") from None


def _save_fingerprint(f: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "objects": f.objects,
        "columns": {k: dataclasses.asdict(v) for k, v in f.columns.items()},
    }
    path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")


def _load_fingerprint(path: Any) -> Any:
    """A fingerprint saved by _save_fingerprint, or None when the file is gone."""
    from readyctl.postgres import fingerprint as fp

    if not path:
        return None
    try:
        data = json.loads(Path(str(path)).read_text(encoding="utf-8"))
        cols = {k: fp.Column(**v) for k, v in data["columns"].items()}
        return fp.Fingerprint(data["objects"], cols, {}, {})
    except (OSError, ValueError, KeyError, TypeError):
        return None


_DROP = {
    "table": "TABLE",
    "sequence": "SEQUENCE",
    "function": "FUNCTION",
    "type": "TYPE",
}


def _ident(qualified: str) -> str:
    """`name` or `schema.name` as a quoted SQL identifier."""
    parts = qualified.split(".", 1)
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _drops_for_extras(expected: Any, now: Any) -> list[str]:
    """DROP statements for objects the target has and the recorded state had not (a table a
    failed migration created): pg_restore --clean only drops the backup's own objects."""
    out: list[str] = []
    for kind, word in _DROP.items():
        have, had = now.objects.get(kind, {}), expected.objects.get(kind, {})
        for name in sorted(set(have) - set(had)):
            desc = str(have[name])
            if kind == "table":
                word = {
                    "view": "VIEW",
                    "materialized view": "MATERIALIZED VIEW",
                    "foreign table": "FOREIGN TABLE",
                }.get(desc.split(" AS ")[0], "TABLE")
            if kind == "type" and desc.startswith("domain"):
                word = "DOMAIN"
            if kind == "function":
                head, _, args = name.partition("(")
                target = f"{_ident(head)}({args}"
            else:
                target = _ident(name)
            out.append(f"DROP {word} IF EXISTS {target} CASCADE")
            word = _DROP[kind]
    return out
