"""`readyctl baseline`: pin the run `--baseline last` and load.regression compare with."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from readyctl.cli._common import CONFIG_OPT, ENV_OPT

baseline_app = typer.Typer(
    help=(
        "The baseline runs compare with: the newest run whose gate passed, or a pinned one.\n\n"
        "Examples:\n\n"
        "  readyctl baseline show --env staging\n\n"
        "  readyctl baseline pin 20261129T101500-staging --env staging\n\n"
        "  readyctl baseline unpin --env staging"
    ),
    no_args_is_help=True,
)

ONLY_OPT = typer.Option(
    [],
    "--only",
    help="The selection, as `readyctl check --only` was given (repeat); part of the key.",
)
SKIP_OPT = typer.Option(
    [],
    "--skip",
    help="The selection, as `readyctl check --skip` was given (repeat); part of the key.",
)
PIN_HINT = "pin one with `readyctl baseline pin RUN`"


def register(app: typer.Typer) -> None:
    """Add the command group."""
    app.add_typer(baseline_app, name="baseline")


def _fail(message: str) -> typer.Exit:
    from readyctl.redact import global_redactor

    typer.echo(f"error: {global_redactor().text(message)}", err=True)
    return typer.Exit(2)


def _selection(
    config: Path | None, env: str | None, only: list[str], skip: list[str]
) -> tuple[Path, str, str]:
    """(history directory, environment name, selection key) as `readyctl check` computes them."""
    from readyctl import history
    from readyctl.config import load_config
    from readyctl.errors import ReadyctlError
    from readyctl.registry import load_catalog
    from readyctl.runner import unknown_patterns

    try:
        loaded = load_config(config)
        cfg = loaded.config
        env_name, _ = loaded.environment(env)
    except ReadyctlError as e:
        raise _fail(str(e)) from None
    if only or skip:
        catalog = load_catalog()
        for flag, patterns in (("--only", only), ("--skip", skip)):
            bad = unknown_patterns(catalog, patterns)
            if bad:
                raise _fail(
                    f"{flag} {bad[0]!r} matches no check id, tag or category; "
                    "see `readyctl list` for the ids"
                )
    sel_only = list(only) or list(cfg.only)
    sel_skip = list(skip) + list(cfg.skip)
    key = history.selection_key(env_name, sel_only, sel_skip)
    return loaded.resolve_path(cfg.report.history_dir), env_name, key


def _label(key: str) -> str:
    env, _, rest = key.partition("|")
    return f"environment {env} ({rest.replace('|', ', ')})"


def _unpin(directory: Path, key: str) -> None:
    from readyctl import history

    try:
        entry = history.unpin(directory, key)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from None
    if entry is None:
        typer.echo(f"nothing was pinned for {_label(key)}")
    else:
        typer.echo(
            f"unpinned run {entry.get('run')} for {_label(key)}; --baseline last now uses "
            "the newest passing run"
        )


@baseline_app.command(
    "pin",
    help=(
        "Pin the run `--baseline last` and load.regression (`baseline: last`) compare with, "
        "for one environment and selection. RUN is a history run id (a file name under "
        ".readyctl/history without .json), a path to a readiness.json, or 'last' (the newest "
        "run whose gate passed). The report is copied, so pruning the history keeps it.\n\n"
        "Examples:\n\n"
        "  readyctl baseline pin 20261129T101500-staging --env staging\n\n"
        "  readyctl baseline pin reports/readiness.json --only 'env.*'\n\n"
        "  readyctl baseline pin last --env staging\n\n"
        "  readyctl baseline pin --unpin --env staging\n\n"
        "Exit codes: 0 pinned; 2 unknown run, not a readyctl report, or usage error; "
        "4 internal error (a bug in readyctl)."
    ),
)
def pin(
    run: str | None = typer.Argument(
        None,
        metavar="RUN",
        help="A history run id, a readiness.json path, or 'last' (newest passing run).",
    ),
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    only: list[str] = ONLY_OPT,
    skip: list[str] = SKIP_OPT,
    unpin: bool = typer.Option(
        False, "--unpin", help="Remove the pin instead (the newest passing run is used again)."
    ),
) -> None:
    from readyctl import history

    if unpin and run is not None:
        raise _fail("--unpin takes no RUN; it removes the pin of the chosen environment/selection")
    if not unpin and run is None:
        raise _fail("missing RUN: a history run id, a readiness.json path or 'last'")
    directory, env_name, key = _selection(config, env, only, skip)
    if unpin:
        _unpin(directory, key)
        return
    assert run is not None
    try:
        if run == "last":
            found = history.newest_passing(directory, lambda d: d.get("selection_key") == key)
            if found is None:
                raise _fail(f"no passing run of {_label(key)} in {directory} to pin")
        else:
            found = history.resolve_run(directory, run)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from None
    ran = found.data.get("environment")
    ran_env = ran.get("name") if isinstance(ran, dict) else None
    if ran_env is not None and ran_env != env_name:
        raise _fail(
            f"run {found.run} ran environment {ran_env!r}, not {env_name!r}; "
            f"pass --env {ran_env} to pin it for that environment"
        )
    ran_key = found.data.get("selection_key")
    if isinstance(ran_key, str) and ran_key != key:
        raise _fail(
            f"run {found.run} ran another selection ({ran_key}); runs compare only within one "
            f"selection: pass the same --only/--skip it ran with (key {key})"
        )
    if found.data.get("interrupted") or not history.gate_passed(found.data):
        typer.echo(
            f"note: run {found.run} did not pass its gate (verdict "
            f"{found.data.get('verdict')}); pinned as asked",
            err=True,
        )
    try:
        pinned = history.pin(directory, key, found.path, found.data, found.run)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from None
    info = pinned.describe()
    typer.echo(
        f"pinned run {info['run']} ({info['started_at']}, score {info['score']}, verdict "
        f"{info['verdict']}) as the baseline of {_label(key)}; kept at {info['path']}"
    )


@baseline_app.command(
    "unpin",
    help=(
        "Remove the pin of one environment and selection; `--baseline last` then uses the "
        "newest run whose gate passed.\n\n"
        "Examples:\n\n  readyctl baseline unpin --env staging\n\n"
        "  readyctl baseline unpin --only 'env.*'"
    ),
)
def unpin_cmd(
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    only: list[str] = ONLY_OPT,
    skip: list[str] = SKIP_OPT,
) -> None:
    directory, _, key = _selection(config, env, only, skip)
    _unpin(directory, key)


@baseline_app.command(
    "show",
    help=(
        "Show which run `--baseline last` would compare with now for one environment and "
        "selection (the pinned run, else the newest run whose gate passed), or that there is "
        "none.\n\n"
        "Examples:\n\n  readyctl baseline show\n\n"
        "  readyctl baseline show --env staging --only 'load.*' --format json"
    ),
)
def show(
    config: Path | None = CONFIG_OPT,
    env: str | None = ENV_OPT,
    only: list[str] = ONLY_OPT,
    skip: list[str] = SKIP_OPT,
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    from readyctl import history

    if format not in ("text", "json"):
        raise _fail(f"--format {format!r}: choose text or json")
    directory, env_name, key = _selection(config, env, only, skip)
    try:
        found = history.find_last(directory, key)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from None
    info = None if found is None else found.describe()
    if format == "json":
        out = {"environment": env_name, "selection_key": key, "baseline": info}
        typer.echo(json.dumps(out, indent=2))
        return
    if info is None:
        typer.echo(f"no baseline for {_label(key)}: no passing run was found yet; {PIN_HINT}")
        return
    how = "pinned" if info["pinned"] else "newest passing"
    typer.echo(f"baseline for {_label(key)}: run {info['run']} ({how})")
    typer.echo(f"  started_at {info['started_at']}")
    typer.echo(f"  score      {info['score']}")
    typer.echo(f"  verdict    {info['verdict']}")
    typer.echo(f"  path       {info['path']}")
