"""`readyctl init`: write a readyctl.yaml and a CI workflow that fit an existing project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

HELP = (
    "Adopt readyctl on an existing project: detect the stack, the migration tool and where its "
    "migrations live, the interpreter, and the .env.example; with --base-url, discover the "
    "API map of a running staging API; then write a commented readyctl.yaml (staging, "
    "production, the map, env rules, migration settings; ${VAR}s for everything secret or "
    "environment-specific) and .github/workflows/readyctl.yml (pull requests, and a gate "
    "before deploy). It prints what it found and what you must fill in.\n\n"
    "With --check it writes nothing and reports where the existing readyctl.yaml disagrees "
    "with the project: variables of the env example missing from env.required, a migration "
    "tool the config does not configure, routes discovery now finds elsewhere.\n\n"
    "Examples:\n\n"
    "  readyctl init\n\n"
    "  readyctl init services/api --base-url https://staging.example.org --dry-run\n\n"
    "  readyctl init --check --base-url https://staging.example.org\n\n"
    "  readyctl init --alerts --base-url https://staging.example.org\n\n"
    "Exit codes: 0 written (--check: the config agrees); 1 --check found disagreements; "
    "2 usage error (a file exists without --force, no such directory, a bad flag); "
    "4 internal error (a bug in readyctl)."
)


def register(app: typer.Typer) -> None:
    """Add the `init` command."""
    app.command("init", help=HELP)(init)


def _fail(message: str) -> None:
    from readyctl.redact import global_redactor

    typer.echo(f"error: {global_redactor().text(message)}", err=True)
    raise typer.Exit(2)


def _say(text: str = "") -> None:
    from readyctl.redact import global_redactor

    typer.echo(global_redactor().text(text))


def init(
    directory: Path = typer.Argument(
        Path("."),
        help="The project's directory (default: the current one).",
        show_default=False,
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="A running (staging) API to discover the routes from: OpenAPI, OAuth 2.0 "
        "metadata, the login answer; logs in as READYCTL_AUTH_USERNAME/_PASSWORD when set.",
    ),
    ca_bundle: Path | None = typer.Option(
        None, "--ca-bundle", help="CA file that signs the API's certificate (for --base-url)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite existing files (each old one is kept as FILE.bak)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the files instead of writing them."
    ),
    alerts: bool = typer.Option(
        False,
        "--alerts",
        help="Only write alerts/readyctl-rules.yml (six alert rules for seed item 8, metric "
        "names from --base-url's /metrics) and print the checks.alerts.rules mapping to paste.",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Write nothing: report where the existing readyctl.yaml disagrees with the "
        "project (exit 1 when it does).",
    ),
) -> None:
    import os

    root = directory
    if not root.exists():
        _fail(f"{root}: no such directory")
    if not root.is_dir():
        _fail(f"{root}: not a directory; pass the project's directory")
    if ca_bundle is not None and not ca_bundle.is_file():
        _fail(f"--ca-bundle {ca_bundle}: no such file")
    if ca_bundle is not None and base_url is None and not check:
        _fail("--ca-bundle is for --base-url: pass the API's URL too")
    if check and (force or dry_run):
        _fail("--check writes nothing: drop --force and --dry-run")
    environ = dict(os.environ)
    if alerts:
        if check:
            _fail("--alerts writes the alert rules; --check compares readyctl.yaml: pick one")
        from readyctl.init import alerts as alert_rules

        alert_rules.run(root, base_url, ca_bundle, force, dry_run, _say, _fail)
        return
    if check:
        _check(root, base_url, ca_bundle.resolve() if ca_bundle else None, environ)
        return
    _init(root, base_url, ca_bundle, force, dry_run, environ)


def _git_root(root: Path) -> Path | None:
    for d in (root.resolve(), *root.resolve().parents):
        if (d / ".git").exists():
            return d
    return None


def _validate(config_text: str) -> None:
    """The written config loads and its check settings validate (else it is a readyctl bug)."""
    import tempfile

    from readyctl.cli._run import validate_check_settings
    from readyctl.config import load_config
    from readyctl.errors import ReadyctlError
    from readyctl.registry import load_catalog

    with tempfile.TemporaryDirectory(prefix="readyctl-init-") as tmp:
        path = Path(tmp) / "readyctl.yaml"
        path.write_text(config_text, encoding="utf-8")
        try:
            loaded = load_config(path, environ={})
            validate_check_settings(loaded, loaded.config, load_catalog())
        except ReadyctlError as e:  # what init writes must load: this is a bug in readyctl
            raise RuntimeError(f"readyctl init rendered a config readyctl refuses: {e}") from None


def _row(name: str, text: str, more: list[str] | None = None) -> None:
    import textwrap

    lines = textwrap.wrap(text, width=100, subsequent_indent=" " * 15) or [""]
    _say(f"  {name:<12} " + "\n".join(lines))
    for m in more or []:
        _say(textwrap.fill(m, width=115, initial_indent=" " * 15, subsequent_indent=" " * 17))


def _init(
    root: Path,
    base_url: str | None,
    ca_bundle: Path | None,
    force: bool,
    dry_run: bool,
    environ: dict[str, str],
) -> None:
    from readyctl import __version__
    from readyctl.init import detect, render
    from readyctl.init.discover import Discovery, UsageProblem, discover

    git = _git_root(root)
    base = git if git is not None else root.resolve()
    subdir = root.resolve().relative_to(base).as_posix() if git is not None else "."
    config_path = root / render.CONFIG_NAME
    workflow_path = base / render.WORKFLOW_PATH
    if not force and not dry_run:
        for path in (config_path, workflow_path):
            if path.exists():
                _fail(f"{path} exists; pass --force to overwrite it (the old file is kept as .bak)")
    project = detect.detect(root, environ)
    found: Discovery | None = None
    if base_url is not None:
        try:
            found = discover(
                base_url,
                ca_bundle=ca_bundle.resolve() if ca_bundle else None,
                root=root,
                environ=environ,
            )
        except UsageProblem as e:
            _fail(str(e))
    opts = render.Options(
        version=__version__,
        base_url=base_url,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        subdir=subdir,
    )
    config_text = render.render_config(project, found, opts)
    workflow_text = render.render_workflow(project, opts)
    _validate(config_text)
    _report(project, found, opts, workflow_path.relative_to(base).as_posix())
    files = [(config_path, config_text), (workflow_path, workflow_text)]
    runbook_path = root / "runbooks" / "deploy.yaml"
    if not runbook_path.exists():  # the team's own runbook is never replaced
        from readyctl.runbook.loader import packaged_dir

        files.append((runbook_path, (packaged_dir() / "deploy.yaml").read_text("utf-8")))
    if dry_run:
        for path, text in files:
            exists = " (exists: writing it needs --force)" if path.exists() and not force else ""
            _say(f"\n--- {_shown(path)}{exists} ---")
            _say(text.rstrip("\n"))
        _say("\n(dry run: nothing written)")
    else:
        for path, text in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, text)
    _say("\nTo fill in:")
    for item in render.todo(project, found, opts):
        _say(f"  - {item}")
    _say(
        "\nNext: readyctl check --plan (what would run; contacts nothing), then readyctl "
        "check --env staging"
    )


def _shown(path: Path) -> str:
    """A path as the user would type it from here."""
    import os

    try:
        return os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)


def _write(path: Path, text: str) -> None:
    """Write `path`, keeping an existing file as `path.bak` (nothing is lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(path.read_bytes())
        path.write_text(text, encoding="utf-8")
        _say(f"replaced {_shown(path)} (the old one is {backup.name})")
        return
    path.write_text(text, encoding="utf-8")
    _say(f"wrote {_shown(path)}")


def _report(project: Any, found: Any, opts: Any, workflow_rel: str) -> None:
    """What init looked for and what it found, one row per thing."""
    from readyctl.apimap import KEYS
    from readyctl.config import infer_rules
    from readyctl.init import render

    _say(f"readyctl init: {project.root.resolve()}")
    _row(
        "stack",
        project.stack.words()
        if project.stack.found
        else "unknown: no package.json, pyproject.toml, requirements*.txt, Pipfile or Gemfile",
    )
    if project.migrations:
        first, *others = project.migrations
        more = [f"note: {n}" for n in first.notes]
        if first.tool in render.NATIVE_TOOLS:
            more.append(f"note: readyctl rehearses {first.tool} natively, one migration per step")
        elif first.tool != "alembic":
            more.append(f"note: {render.migration_commands(project, first)[2]}")
        more += [f"also: {t.words()}" for t in others]
        _row("migrations", first.words(), more)
    else:
        _row(
            "migrations",
            "none found (alembic.ini, manage.py, prisma/schema.prisma, a TypeORM data source, "
            "knexfile, flyway.conf, db/migrate)",
        )
    if project.interpreter is None:
        _row("interpreter", "not needed (not a Python project)")
    else:
        interp = project.interpreter
        _row("interpreter", f"{interp.setting}: {interp.how}" if interp.setting else interp.how)
    ex = project.env_example
    if ex is None:
        _row(
            "env example",
            project.env_example_problem
            or "none (.env.example, .env.sample, "
            ".env.template, env-example*): env.required left to fill in",
        )
    else:
        rules = infer_rules(ex.values)
        secret = sum(1 for r in rules.values() if r.secret)
        dsn = sum(1 for r in rules.values() if r.type == "postgres_dsn")
        _row(
            "env example",
            f"{ex.path}: {len(ex.values)} variables ({secret} secret, {dsn} database URL) -> "
            "env.required, env.rules",
        )
    if found is None:
        _row(
            "API map",
            f"not discovered (no --base-url); all {len(KEYS)} keys left to discovery at run time",
        )
    elif not found.answered:
        _row("API map", f"{found.base_url} did not answer: {found.problem}")
    else:
        by_source: dict[str, list[str]] = {}
        for key, src in found.sources.items():
            by_source.setdefault(src, []).append(key)
        got = "; ".join(f"{', '.join(keys)}: {src}" for src, keys in by_source.items())
        more = [f"test account: {found.session}"]
        if found.unknown:
            more.append(f"not determined: {', '.join(found.unknown)} (commented in readyctl.yaml)")
        _row("API map", f"{found.base_url}: found {got or 'nothing'}", more)
    _row(
        "workflow",
        f"{workflow_rel}: pull requests (secrets.*, env.*, migrations.lint, "
        "migrations.rehearsal against a PostgreSQL service; JUnit, step summary, HTML "
        "artifact) and before deploy (readyctl check --env staging)",
    )


def _check(
    root: Path, base_url: str | None, ca_bundle: Path | None, environ: dict[str, str]
) -> None:
    from readyctl.errors import ConfigError
    from readyctl.init import compare, detect, render
    from readyctl.init.discover import UsageProblem

    path = root / render.CONFIG_NAME
    if not path.is_file():
        _fail(f"{path}: no readyctl.yaml to check; run `readyctl init` first")
    try:
        loaded = compare.load_lenient(path, environ)
    except ConfigError as e:
        _fail(str(e))
    cfg = loaded.config
    base = loaded.base_dir
    project = detect.detect(root, environ)
    env_name = "staging" if "staging" in cfg.environments else (cfg.default_environment or "")
    try:
        sections = [
            compare.compare_env(project, cfg, base),
            compare.compare_migrations(project, cfg, base),
            compare.compare_api(cfg, base, environ, base_url, ca_bundle, env_name),
        ]
    except UsageProblem as e:
        _fail(str(e))
    _say(f"readyctl init --check: {path}")
    problems = 0
    for sec in sections:
        _row(sec.name, sec.summary)
        for p in sec.problems:
            _say(f"    - {p}")
        for n in sec.notes:
            _say(f"      ({n})")
        problems += len(sec.problems)
    if problems:
        _say(
            f"{problems} disagreement{'s' if problems != 1 else ''} between {path.name} and "
            "the project"
        )
        raise typer.Exit(1)
    _say(f"{path.name} agrees with the project")
