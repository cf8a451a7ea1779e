"""The files `readyctl init` writes: a commented readyctl.yaml and a GitHub Actions workflow.

Everything secret or environment-specific is a `${VAR}` with a default (`${VAR:-}`, or a
reserved `.invalid` host for base URLs, which never resolves), so the file loads unchanged in
a shell that sets none of them; only settings that exist in readyctl.config and the checks'
Settings are written (the command validates the result before writing it).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import Any

import yaml

from readyctl.init.detect import MigrationTool, Project
from readyctl.init.discover import Discovery

CONFIG_NAME = "readyctl.yaml"
WORKFLOW_PATH = ".github/workflows/readyctl.yml"
STAGING_PLACEHOLDER = "https://staging.invalid"
PRODUCTION_PLACEHOLDER = "https://production.invalid"
# the checks a pull request can run without a deployed API
PR_ONLY = "secrets.*,env.*,migrations.lint,migrations.rehearsal"
REPORT_FORMATS = "terminal,json,junit,markdown,html"
PYTHON_VERSION = "3.12"
NODE_VERSION = "20"
POSTGRES_IMAGE = "postgres:16"
CI_DATABASE_URL = "postgresql://postgres@localhost:5432/app"
# Django fills these after every migrate (post_migrate signals): their rows are not compared
DJANGO_SIGNAL_TABLES = ("django_content_type", "auth_permission")

# variable names that say which environment the app runs in / that it is public
PRODUCTION_VAR_NAMES = (
    "NODE_ENV",
    "APP_ENV",
    "ENVIRONMENT",
    "APP_ENVIRONMENT",
    "ENV",
    "PYTHON_ENV",
    "DJANGO_ENV",
    "FLASK_ENV",
    "RAILS_ENV",
    "RACK_ENV",
)
PUBLIC_URL_WORDS = frozenset({"FRONTEND", "WEB", "APP", "PUBLIC", "SITE", "CLIENT", "WEBSITE"})
DEBUG_WORDS = frozenset({"DEBUG"})

# what each map key is for, for the lines that say what to set
KEY_HINTS = {
    "prefix": ("/v1", "the version prefix of the routes (http.versioning)"),
    "login": (
        "{path: /auth/login, body: json, username_field: email}",
        "the login route of the test account (auth.*)",
    ),
    "token": ("{var: API_TOKEN}", "a static token instead of a login"),
    "me": ("/users/me", "a protected GET answering the current user (auth.*, http.cors)"),
    "refresh": (
        "{path: /auth/refresh, send: json, field: refresh_token}",
        "the token refresh route, or `none` (auth.refresh_reuse)",
    ),
    "logout": ("/auth/logout", "the logout route"),
    "register": ("/users", "the sign-up route"),
    "password_reset": ("/auth/password-reset", "the password-reset request (auth.enumeration)"),
    "lists": (
        "[{path: /items, size_param: limit, offset_param: offset}]",
        "list endpoints and their page parameters (http.pagination, load)",
    ),
    "json_endpoint": ("/items", "an endpoint taking a JSON body (http.error_hygiene)"),
    "health.live": ("/health/live", "the liveness probe (health.endpoints)"),
    "health.ready": ("/health/ready", "the readiness probe (health.endpoints)"),
    "docs": ("[/docs, /openapi.json]", "the API docs paths (http.docs_exposure)"),
    "metrics": ("/metrics", "the metrics endpoint (observability.metrics)"),
    "cacheable": (
        "[/resources/faq]",
        "public GETs whose answers should be cacheable (http.cache_headers)",
    ),
    "cors_origin": (
        "https://app.example.org",
        "an origin the API must accept; never discovered (http.cors)",
    ),
    "verify_email": (
        "/auth/verify-email",
        "the email-verification route a new account posts its token to (compliance.privacy)",
    ),
    "privacy_export": (
        "/users/me/export",
        "the caller's own data export, GET (compliance.privacy)",
    ),
    "account_delete": ("/users/me", "the caller's account deletion, DELETE (compliance.privacy)"),
    "privacy_policy": (
        "https://example.org/legal/privacy",
        "the privacy policy page (compliance.legal_pages)",
    ),
    "terms": (
        "https://example.org/legal/terms",
        "the terms of service page (compliance.legal_pages)",
    ),
}


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line asked for, and where the files go."""

    version: str
    base_url: str | None = None
    ca_bundle: str | None = None
    subdir: str = "."  # the project's directory relative to its git work tree


# -- YAML pieces -----------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Floats that are whole numbers as ints (rules' min/max)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def flow(key: str, value: Any) -> str:
    """`key: value` on one line, in YAML flow style (quoted where YAML needs it)."""
    text = yaml.safe_dump(
        {key: _plain(value)}, default_flow_style=True, width=10**6, sort_keys=False
    ).strip()
    return text[1:-1]


def entry(key: str, value: str, indent: str) -> list[str]:
    """`key: value` for a shell command: a literal block when YAML would have to escape it."""
    line = flow(key, value)
    if "''" in line or '\\"' in line:
        return [f"{indent}{key}: |-", f"{indent}  {value}"]
    return [f"{indent}{line}"]


def scalar(value: str) -> str:
    """A string as one YAML scalar."""
    return flow("k", value)[len("k: ") :]


def _comment_lines(text: str, indent: str, width: int = 96) -> list[str]:
    """`text` as `# ` comment lines at `indent`, wrapped."""
    import textwrap

    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(text, width=width - len(indent) - 2, break_on_hyphens=False)
    ]


# -- migrations ------------------------------------------------------------------------------
def _interpreter_cmd(p: Project) -> str:
    """How a command runs the project's Python (`python` when no project venv)."""
    setting = p.interpreter.setting if p.interpreter else None
    return setting if setting and "/" in setting else "python"


def _typeorm_cli(t: MigrationTool) -> str:
    ds = t.config_file or "src/data-source.ts"
    if ds.endswith((".ts", ".mts", ".cts")):
        cli = "typeorm-ts-node-esm" if t.module_type == "module" else "typeorm-ts-node-commonjs"
    else:
        cli = "typeorm"
    return f"npx {cli} -d {shlex.quote(ds)}"


NATIVE_TOOLS = ("django", "typeorm", "prisma")  # rehearsed by readyctl.rehearsal's modules


def native_tool_lines(p: Project, t: MigrationTool) -> list[str]:
    """`tool:` and the tool's own settings, for a tool readyctl drives one step at a time."""
    out = [f"    tool: {t.tool}   # readyctl runs it one migration per step"]
    if t.tool == "django":
        out.append(f"    {flow('manage_py', t.config_file or 'manage.py')}")
        interp = p.interpreter
        if interp is not None and interp.setting:
            out.append(f"    {flow('python', interp.setting)}   # {interp.how.split(' (')[0]}")
        else:
            out += _comment_lines(
                "python: the interpreter that imports the project (unset: readyctl's own)",
                "    ",
            )
    elif t.tool == "typeorm":
        ds = t.config_file or "src/data-source.ts"
        out.append(f"    {flow('data_source', ds)}")
        if ds.endswith((".ts", ".mts", ".cts")):
            out += _comment_lines(
                "a TypeScript data source runs through ts-node from the project's node_modules "
                "(npm i -D ts-node typescript), or point data_source at the compiled .js",
                "    ",
            )
    elif t.tool == "prisma":
        location = (t.location or "prisma/migrations").split(",")[0].strip()
        out.append(f"    {flow('migrations_dir', location)}")
        out += _comment_lines(
            "readyctl applies migration.sql files as `prisma migrate deploy` does and reverts "
            "each with the down.sql beside it; a migration without one is reported irreversible",
            "    ",
        )
    return out


def migration_commands(p: Project, t: MigrationTool) -> tuple[dict[str, str], bool, str]:
    """({up, down, current}, whether to write them active, a comment line) for a tool."""
    if t.tool == "django":
        py = _interpreter_cmd(p)
        manage = f"{py} {shlex.quote(t.config_file or 'manage.py')}"
        plan = f"{manage} showmigrations --plan"
        return (
            {
                # the first unapplied migration of the plan, as `migrate APP NAME`
                "up": f"{manage} migrate $({plan} | grep -F -m 1 '[ ]' | awk '{{print $NF}}' "
                "| tr . ' ')",
                # the newest applied one back to its predecessor in the same app (or zero)
                "down": f"{plan} | grep -F '[X]' | awk '{{print $NF}}' | awk -F. "
                '\'{a[NR]=$1; m[NR]=$2} END {p="zero"; for (i=1; i<NR; i++) if (a[i]==a[NR]) '
                f"p=m[i]; print a[NR], p}}' | xargs {manage} migrate",
                "current": f"{plan} | grep -F '[X]' | tail -n 1 | awk '{{print $NF}}'",
            },
            True,
            "Django, one migration per step (showmigrations --plan gives the order)",
        )
    if t.tool == "typeorm":
        cli = _typeorm_cli(t)
        return (
            {
                "up": cli.replace(" -d ", " migration:run -d ", 1),
                "down": cli.replace(" -d ", " migration:revert -d ", 1),
                "current": cli.replace(" -d ", " migration:show -d ", 1)
                + " | grep -F '[X]' | tail -n 1",
            },
            True,
            "TypeORM: migration:run applies every pending migration at once, so the rehearsal "
            "is exact when one is pending (the usual pull request)",
        )
    if t.tool == "knex":
        return (
            {
                "up": "npx knex migrate:up",
                "down": "npx knex migrate:down",
                "current": "npx knex migrate:currentVersion",
            },
            True,
            "Knex, one migration per step",
        )
    if t.tool == "prisma":
        return (
            {
                "up": "npx prisma migrate deploy",
                "down": "<a command that undoes the newest migration>",
                "current": "npx prisma migrate status",
            },
            False,
            "Prisma has no down migrations: write a down command to rehearse them, e.g. a "
            "script running `prisma migrate diff ... --script | prisma db execute --stdin`",
        )
    if t.tool == "flyway":
        return (
            {
                "up": "flyway -target=next migrate",
                "down": "flyway undo",
                "current": "flyway info",
            },
            False,
            "Flyway: `undo` needs Flyway Teams; with another down command these work",
        )
    return (
        {
            "up": "bin/rails db:migrate:up VERSION=<next>",
            "down": "bin/rails db:rollback STEP=1",
            "current": "bin/rails db:version",
        },
        False,
        "Rails: check these before turning them on",
    )


def _url_env(t: MigrationTool) -> list[str]:
    """Variables (besides DATABASE_URL) the tool reads its database URL from."""
    return (
        [v for v in t.url_vars if v != "DATABASE_URL"] if t.tool != "alembic" else list(t.url_vars)
    )


_PART_ROLES = (
    ("host", ("HOST", "SERVER", "HOSTNAME")),
    ("port", ("PORT",)),
    ("user", ("USER", "USERNAME")),
    ("password", ("PASSWORD", "PASS", "PASSWD", "PWD")),
    ("dbname", ("DB", "NAME", "DATABASE", "DBNAME")),
)


def connection_env(part_vars: Sequence[str]) -> dict[str, str]:
    """`connection_env` for a tool that builds its URL from parts (POSTGRES_SERVER, ...):
    each variable's role from its last word; a role seen twice is left out (ambiguous)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name in part_vars:
        last = name.upper().rsplit("_", 1)[-1]
        for role, words in _PART_ROLES:
            if last in words:
                if role in seen:
                    out.pop(role, None)
                else:
                    out[role] = name
                seen.add(role)
                break
    return out


def _tool_env_lines(t: MigrationTool, url_env: list[str], prefix: str) -> list[str]:
    """url_env, connection_env, Django's signal tables and stand-in `env:` for a tool run as a
    subprocess (`prefix`: indentation, plus `# ` when the block is a commented hint)."""
    out: list[str] = []
    if url_env:
        out.append(f"{prefix}{flow('url_env', url_env)}   # the tool reads the URL from these")
    parts = connection_env(t.part_vars) if not t.url_vars and t.tool != "prisma" else {}
    if parts:
        out.append(f"{prefix}{flow('connection_env', parts)}   # the URL is built from these")
    if t.tool == "django":
        out.append(
            f"{prefix}{flow('exclude_tables', list(DJANGO_SIGNAL_TABLES))}   # rows written "
            "by post_migrate signals, not by migrations"
        )
    if t.import_vars:
        out += _comment_lines(
            f"the settings demand {', '.join(t.import_vars)} at import; the migrations get "
            "stand-in values (never the target's), not used to reach anything:",
            "    ",
        )
        stand_in = {n: "readyctl-rehearsal" for n in t.import_vars}
        out.append(f"{prefix}{flow('env', stand_in)}")
    return out


def migrations_block(p: Project) -> list[str]:
    """`checks:` with migrations.rehearsal's project settings (lint and pending read them)."""
    t = p.primary
    out: list[str] = []
    if t is None:
        out += [
            "# Migrations: none found (no alembic.ini, manage.py, prisma/schema.prisma, TypeORM",
            "# data source, knexfile or flyway.conf). migrations.rehearsal round-trips each",
            "# pending migration on a scratch copy of the database once it knows how to run them:",
            "# checks:",
            "#   migrations.rehearsal:",
            "#     alembic_config: alembic.ini",
            "#     # or, for another stack (one migration per step):",
            "#     # commands: {up: ..., down: ..., current: ...}",
        ]
        return out
    out += [
        "# Migrations (seed item 2): migrations.rehearsal upgrades, downgrades and upgrades each",
        "# pending migration on a scratch copy of the database (the database itself is only",
        "# read); migrations.lint and migrations.pending read the same project settings.",
        "checks:",
        "  migrations.rehearsal:",
        f"    # {t.words()}",
    ]
    for note in t.notes:
        out += _comment_lines(f"note: {note}", "    ")
    url_env = _url_env(t)
    if t.tool == "alembic":
        out.append(f"    {flow('alembic_config', t.config_file)}")
        interp = p.interpreter
        if interp is not None and interp.setting:
            out.append(f"    {flow('python', interp.setting)}   # {interp.how.split(' (')[0]}")
        else:
            out += _comment_lines(
                "python: the interpreter that imports the app (env.py imports its models); "
                "unset, alembic runs in readyctl's own",
                "    ",
            )
        if url_env:
            out.append(f"    {flow('url_env', url_env)}   # env.py reads the URL from these")
        parts = connection_env(t.part_vars) if not t.url_vars else {}
        if parts:
            out.append(
                f"    {flow('connection_env', parts)}   # env.py builds the URL from these: "
                "they get the scratch copy's parts"
            )
    elif t.tool in NATIVE_TOOLS:
        out += native_tool_lines(p, t)
        if t.sql_glob and t.tool != "prisma":
            out.append(f"    {flow('sql_files', t.sql_glob)}   # linted by migrations.lint")
        # prisma: readyctl applies the SQL itself, through its own connection to scratch
        out += _tool_env_lines(t, url_env if t.tool != "prisma" else [], "    ")
    else:
        if t.sql_glob:
            out.append(f"    {flow('sql_files', t.sql_glob)}   # linted by migrations.lint")
        cmds, active, why = migration_commands(p, t)
        prefix = "    " if active else "    # "
        out += _comment_lines(why, "    ")
        out.append(f"{prefix}commands:")
        for k in ("up", "down", "current"):
            out += entry(k, cmds[k], f"{prefix}  ")
        out += _tool_env_lines(t, url_env, prefix)
    for other in p.migrations[1:]:
        out += _comment_lines(
            f"also found {other.words()}: configure it here instead if it is the one you "
            "deploy with",
            "    ",
        )
    return out


# -- env rules ------------------------------------------------------------------------------
def env_settings(p: Project) -> dict[str, Any]:
    """The `env:` settings from the env example (only keys EnvConfig has)."""
    from readyctl.config import EnvConfig, infer_rules
    from readyctl.secretnames import name_words

    ex = p.env_example
    if ex is None:
        return {}
    names = list(ex.values)
    rules = infer_rules(ex.values)
    out: dict[str, Any] = {"example_file": ex.path, "required": names}
    if rules:
        out["rules"] = {n: r.model_dump(exclude_defaults=True) for n, r in rules.items()}
    production = [n for n in PRODUCTION_VAR_NAMES if n in ex.values]
    if production:
        out["production_vars"] = production
    public = []
    for n in names:
        words = name_words(n)
        rule = rules.get(n)
        if (
            words
            and words[-1] == "URL"
            and rule is not None
            and rule.type == "url"
            and PUBLIC_URL_WORDS & set(words[:-1])
        ):
            public.append(n)
    if public:
        out["public_url_vars"] = public
    defaults = EnvConfig().debug_vars
    debug = [n for n in names if DEBUG_WORDS & set(name_words(n)) and n not in defaults]
    if debug:
        out["debug_vars"] = [*defaults, *debug]
    EnvConfig.model_validate(out)
    return out


def env_block(p: Project) -> list[str]:
    """`env:` from the env example, or a commented example when there is none."""
    ex = p.env_example
    if ex is None:
        why = p.env_example_problem or (
            "no .env.example (or .env.sample, .env.template, env-example*) found"
        )
        return [
            *_comment_lines(
                f"Environment variables (seed item 1): {why}. Without a list, readyctl infers "
                "format and secret rules from the names of the variables set, and env.required "
                "skips saying what to set. List them (or add a .env.example and rerun init):",
                "",
            ),
            "# env:",
            "#   required: [DATABASE_URL, JWT_SECRET]",
            "#   rules:",
            "#     JWT_SECRET: {min_length: 32, secret: true}",
        ]
    s = env_settings(p)
    out = [
        f"# Environment variables (seed item 1), from {ex.path} ({len(ex.values)} variables):",
        "# every documented variable is required; the rules are inferred from the names",
        "# (secrets, URLs, a database URL as a PostgreSQL DSN, emails, ports). Tighten them:",
        "# min_length, type: https_url / enum / duration, values, entropy_min.",
        "env:",
        f"  {flow('example_file', s['example_file'])}",
    ]
    if s["required"]:
        out.append("  required:")
        out += [f"    - {scalar(n)}" for n in s["required"]]
    else:
        out.append("  required: []")
    if s.get("rules"):
        out.append("  rules:")
        out += [f"    {flow(n, r)}" for n, r in s["rules"].items()]
    if "production_vars" in s:
        out.append(
            f"  {flow('production_vars', s['production_vars'])}   # say the app runs in production"
        )
    if "public_url_vars" in s:
        out.append(
            f"  {flow('public_url_vars', s['public_url_vars'])}   # must be https in production"
        )
    if "debug_vars" in s:
        out.append(f"  {flow('debug_vars', s['debug_vars'])}   # must be off in production")
    return out


# -- the API map ----------------------------------------------------------------------------
def api_block(d: Discovery | None, indent: str) -> list[str]:
    """`api:` with what discovery found (a source per value) and what to set."""
    out: list[str] = []
    user = flow(
        "login",
        {"username_var": "READYCTL_AUTH_USERNAME", "password_var": "READYCTL_AUTH_PASSWORD"},
    )
    if d is None or not d.answered:
        why = (
            "no --base-url was given to `readyctl init`"
            if d is None
            else f"{d.base_url} did not answer ({d.problem})"
        )
        out += _comment_lines(
            f"The API map: where the routes are. Not discovered: {why}. readyctl discovers it "
            "at run time (the OpenAPI document, anonymously and as the test account, and OAuth "
            "2.0 metadata); a check whose route stays unknown skips, naming the key to set "
            "(`readyctl init --check --base-url URL` compares later).",
            indent,
        )
        out.append(f"{indent}api:")
        out.append(f"{indent}  openapi: auto   # or off, a file in the repository, or a URL")
        out.append(f"{indent}  {user}   # the test account's variables")
        return out
    out += _comment_lines(
        f"The API map, discovered by `readyctl init` at {d.base_url} (the source follows each "
        "value). What the config says wins; readyctl still discovers at run time whatever is "
        "not written here. A check whose route stays unknown skips, naming the key to set.",
        indent,
    )
    out.append(f"{indent}api:")
    out.append(f"{indent}  openapi: auto")
    values = dict(d.values)
    if "login" not in values and "token" not in values:
        out.append(f"{indent}  {user}   # the test account's variables")
    for key, value in values.items():
        out += _value_lines(key, value, f"{indent}  ", d.sources.get(key, "discovery"))
    if d.unknown:
        out.append(
            f"{indent}  # Not determined by discovery; set these for the checks that need them:"
        )
        for key in d.unknown:
            example, why = KEY_HINTS.get(key, ("...", ""))
            name = key.split(".")[-1] if key.startswith("health.") else key
            if key.startswith("health."):
                out.append(f"{indent}  # health: {{{name}: {example}}}   # {why}")
            else:
                out.append(f"{indent}  # {key}: {example}   # {why}")
    return out


def _value_lines(key: str, value: Any, indent: str, comment: str) -> list[str]:
    """`key: value  # comment`; a long mapping or list in block style under the key."""
    line = f"{indent}{flow(key, value)}   # {comment}"
    if len(line) <= 100 or not isinstance(value, dict | list):
        return [line]
    body = yaml.safe_dump(
        _plain(value),
        default_flow_style=False if isinstance(value, dict) else None,
        width=10**6,
        sort_keys=False,
    )
    return [f"{indent}{key}:   # {comment}"] + [
        f"{indent}  {row}" for row in body.splitlines() if row.strip()
    ]


# -- readyctl.yaml ---------------------------------------------------------------------------
def render_config(p: Project, d: Discovery | None, opts: Options) -> str:
    """The commented readyctl.yaml."""
    found = [f"stack: {p.stack.words()}"]
    found.append(
        "migrations: " + (", ".join(t.words() for t in p.migrations) if p.migrations else "none")
    )
    env_vars = [
        "STAGING_BASE_URL, STAGING_DATABASE_URL, STAGING_ENV_FILE, STAGING_CA_BUNDLE",
        "PRODUCTION_BASE_URL, PRODUCTION_DATABASE_URL, PRODUCTION_ENV_FILE, PRODUCTION_CA_BUNDLE",
    ]
    lines = [
        f"# readyctl.yaml for {p.name}, written by `readyctl init` (readyctl {opts.version}).",
        *[f"# Found {f}." for f in found],
        "# A starting point: edit freely; `readyctl init --check` reports where this file and the",
        "# project disagree. Schema for editors: `readyctl schema > readyctl.schema.json`.",
        "#",
        "# Every ${VAR} is read from the environment when readyctl loads this file; the",
        "# `:-default` parts let it load in a shell that sets none of them (`readyctl check",
        "# --plan` works as is). Set them where readyctl runs (your shell; CI secrets, variables):",
        *[f"#   {v}" for v in env_vars],
        "#   READYCTL_AUTH_USERNAME, READYCTL_AUTH_PASSWORD: the test account readyctl logs in as",
        "#   GATE_REQUIRE: none for a run without a deployed API (the pull-request job)",
        "version: 2",
        "default_environment: staging",
        "",
        "environments:",
        "  staging:",
        "    description: Staging, gated before every deploy.",
        "    # The deployed API. Unset, the reserved .invalid host never resolves: http.reachable",
        "    # fails naming it and the checks that need the API are blocked.",
        f"    base_url: ${{STAGING_BASE_URL:-{STAGING_PLACEHOLDER}}}",
    ]
    if opts.ca_bundle:
        lines.append(
            "    # The CA that signs the API's certificate (`readyctl init` was given one);"
        )
        lines.append("    # empty: the system's trust store.")
    else:
        lines.append(
            "    # A file with the CA that signs the API's certificate; empty: the system's."
        )
    lines += [
        "    ca_bundle: ${STAGING_CA_BUNDLE:-}",
        "    # The database, only ever read (rehearsals and restore drills work on scratch",
        "    # copies); empty: the database and migration checks skip, naming this key.",
        "    database_url: ${STAGING_DATABASE_URL:-}",
        "    # The env file the API runs with (rendered at deploy time); empty: the process",
        "    # environment is checked instead.",
        "    env_file: ${STAGING_ENV_FILE:-}",
        *api_block(d, "    "),
        "",
        "  production:",
        "    extends: staging",
        "    description: Production, read-only checks; only the smoke suite may write.",
        "    production: true",
        f"    base_url: ${{PRODUCTION_BASE_URL:-{PRODUCTION_PLACEHOLDER}}}",
        "    ca_bundle: ${PRODUCTION_CA_BUNDLE:-}",
        "    database_url: ${PRODUCTION_DATABASE_URL:-}",
        "    env_file: ${PRODUCTION_ENV_FILE:-}",
        "    # Production refuses mutating and load checks unless named here.",
        '    allow: ["smoke.*"]',
        "",
        "  # Pull requests (.github/workflows/readyctl.yml): no deployed API. The database is",
        "  # the job's PostgreSQL service (rehearsals run on a scratch copy of it), and the env",
        "  # file is rendered from the STAGING_ENV secret, so a variable the pull request adds",
        "  # to the example but staging lacks fails env.required there.",
        "  ci:",
        "    description: Pull requests, the checks that need no deployed API.",
        "    database_url: ${CI_DATABASE_URL:-}",
        "    env_file: ${CI_ENV_FILE:-}",
        "",
        *env_block(p),
        "",
        *migrations_block(p),
        "",
        "gate:",
        "  block_on: high        # an unwaived fail at or above this severity blocks",
        "  # Checklist items at or above this priority must be verified, else the verdict is",
        "  # INCONCLUSIVE (exit 3). The pull-request job sets GATE_REQUIRE=none: it runs only the",
        "  # checks that need no deployed API, so the deploy-time items stay unverified there.",
        "  require: ${GATE_REQUIRE:-high}",
        "  fail_under: 80        # minimum score",
        "  max_regression: 5     # overall points against the baseline",
        "",
        "# Checklist items that do not apply, with who decided and why (shown in every report):",
        "# not_applicable:",
        '#   - {item: "19", reason: "internal API behind the corporate VPN", owner: platform-team}',
        "",
        "report:",
        "  out: reports",
        "  formats: [terminal, json]",
    ]
    return "\n".join(lines) + "\n"


# -- the workflow ---------------------------------------------------------------------------
def _install_steps(p: Project) -> list[str]:
    """Steps that install the project where its migration tool runs."""
    steps: list[str] = []
    if p.node:
        steps += [
            "      - uses: actions/setup-node@v5",
            "        with:",
            f'          node-version: "{NODE_VERSION}"',
            "      - name: Install the project",
            f"        run: {p.node_install or 'npm ci'}",
        ]
    if p.python and p.python_install:
        setting = p.interpreter.setting if p.interpreter else None
        venv = setting.split("/bin/")[0] if setting and "/bin/" in setting else None
        req = p.python_install
        if req == "uv.lock":
            install = (
                ["uv sync --frozen"]
                if venv == ".venv"
                else [
                    "uv export --frozen --no-hashes -o requirements.ci.txt",
                    f"{_pip(venv)} -r requirements.ci.txt",
                ]
            )
        elif req == "pyproject.toml":  # an application: its dependencies, not a build of it
            install = [f"{_pip(venv)} -r pyproject.toml"]
        else:
            install = [f"{_pip(venv)} -r {shlex.quote(req)}"]
        steps += ["      - name: Install the project's dependencies", "        run: |"]
        steps.append("          python -m pip install uv")
        if venv and not (req == "uv.lock" and venv == ".venv"):
            steps.append(f"          uv venv {venv}")
        steps += [f"          {line}" for line in install]
    return steps


def _pip(venv: str | None) -> str:
    """uv's pip into the project's venv, or into the interpreter readyctl runs in."""
    return f"uv pip install --python {venv}/bin/python" if venv else "uv pip install --system"


def _job_steps(
    p: Project, opts: Options, *, env_file_var: str, check: str, artifact: str
) -> list[str]:
    wd = opts.subdir
    reports = "reports/" if wd == "." else f"{wd}/reports/"
    return [
        "    steps:",
        "      - uses: actions/checkout@v5",
        "      - uses: actions/setup-python@v6",
        "        with:",
        f'          python-version: "{PYTHON_VERSION}"',
        *_install_steps(p),
        "      - name: Install readyctl",
        f'        run: python -m pip install "readyctl=={opts.version}"',
        "      - name: Write the env file from the STAGING_ENV secret",
        "        env:",
        "          STAGING_ENV: ${{ secrets.STAGING_ENV }}",
        "        run: |",
        "          umask 077",
        '          printf \'%s\\n\' "$STAGING_ENV" > "$RUNNER_TEMP/app.env"',
        f'          echo "{env_file_var}=$RUNNER_TEMP/app.env" >> "$GITHUB_ENV"',
        "      - name: readyctl check",
        f"        run: {check}",
        "      - name: Upload the reports",
        "        if: ${{ !cancelled() }}",
        "        uses: actions/upload-artifact@v6",
        "        with:",
        f"          name: {artifact}",
        f"          path: {reports}",
    ]


def render_workflow(p: Project, opts: Options) -> str:
    """.github/workflows/readyctl.yml: pull requests, and the gate before deploy."""
    branch = p.default_branch
    pr_check = f"readyctl check --env ci --only '{PR_ONLY}' --format {REPORT_FORMATS} --out reports"
    deploy_check = f"readyctl check --env staging --format {REPORT_FORMATS} --out reports"
    lines = [
        f"# readyctl for {p.name}, written by `readyctl init` (readyctl {opts.version}).",
        "# Pull requests run the checks that need no deployed API: committed secrets, the env",
        "# rules (against the STAGING_ENV secret) and the migrations (linted, and rehearsed on a",
        "# scratch copy of the job's PostgreSQL service). A push to the default branch, or a",
        "# manual run, gates staging before deploy with the full checklist.",
        "# Each run writes JUnit (reports/readiness.xml), the step summary (Markdown) and an HTML",
        "# report (uploaded as an artifact). Set, in Settings > Secrets and variables > Actions:",
        "#   secrets: STAGING_ENV (the env file staging runs with), STAGING_DATABASE_URL,",
        "#            READYCTL_AUTH_USERNAME, READYCTL_AUTH_PASSWORD (the test account),",
        "#            STAGING_BASE_URL"
        + (", STAGING_CA_BUNDLE (a CA file's path)" if opts.ca_bundle else ""),
        "name: readyctl",
        "",
        "on:",
        "  pull_request:",
        "  push:",
        f"    branches: [{branch}]",
        "  workflow_dispatch:",
        "",
        "permissions:",
        "  contents: read",
        "",
    ]
    if opts.subdir != ".":
        lines += ["defaults:", "  run:", f"    working-directory: {opts.subdir}", ""]
    lines += [
        "jobs:",
        "  pull-request:",
        "    name: Repository, env rules and migrations",
        "    if: github.event_name == 'pull_request'",
        "    runs-on: ubuntu-latest",
        "    services:",
        "      postgres:",
        f"        image: {POSTGRES_IMAGE}",
        "        env:",
        "          POSTGRES_DB: app",
        "          POSTGRES_USER: postgres",
        "          POSTGRES_HOST_AUTH_METHOD: trust",
        "        ports:",
        '          - "5432:5432"',
        "        options: >-",
        '          --health-cmd "pg_isready -U postgres"',
        "          --health-interval 5s",
        "          --health-timeout 5s",
        "          --health-retries 10",
        "    env:",
        f"      CI_DATABASE_URL: {CI_DATABASE_URL}",
        "      GATE_REQUIRE: none   # deploy-time items cannot be verified without a deployed API",
        *_job_steps(
            p, opts, env_file_var="CI_ENV_FILE", check=pr_check, artifact="readyctl-pull-request"
        ),
        "",
        "  before-deploy:",
        "    name: Gate staging before deploy",
        "    if: github.event_name != 'pull_request'",
        "    runs-on: ubuntu-latest",
        "    env:",
        "      STAGING_BASE_URL: ${{ secrets.STAGING_BASE_URL }}",
        "      STAGING_DATABASE_URL: ${{ secrets.STAGING_DATABASE_URL }}",
        "      READYCTL_AUTH_USERNAME: ${{ secrets.READYCTL_AUTH_USERNAME }}",
        "      READYCTL_AUTH_PASSWORD: ${{ secrets.READYCTL_AUTH_PASSWORD }}",
    ]
    if opts.ca_bundle:
        lines.append("      STAGING_CA_BUNDLE: ${{ secrets.STAGING_CA_BUNDLE }}")
    lines += _job_steps(
        p, opts, env_file_var="STAGING_ENV_FILE", check=deploy_check, artifact="readyctl-staging"
    )
    lines += [
        "",
        "  # deploy:",
        "  #   needs: before-deploy   # deploy only when staging is READY (exit 0)",
    ]
    return "\n".join(lines) + "\n"


# -- what the user must do ------------------------------------------------------------------
def todo(p: Project, d: Discovery | None, opts: Options) -> list[str]:
    """What `readyctl init` could not fill in, as instructions."""
    out = [
        "export STAGING_BASE_URL (and STAGING_DATABASE_URL, STAGING_ENV_FILE"
        + (", STAGING_CA_BUNDLE" if opts.ca_bundle else "")
        + ") before `readyctl check --env staging`",
        "export READYCTL_AUTH_USERNAME / READYCTL_AUTH_PASSWORD: a test account on staging",
        "in GitHub: secrets STAGING_ENV, STAGING_DATABASE_URL, READYCTL_AUTH_USERNAME, "
        "READYCTL_AUTH_PASSWORD, STAGING_BASE_URL"
        + (", STAGING_CA_BUNDLE" if opts.ca_bundle else ""),
    ]
    if p.env_example is None:
        out.append("list the required variables under env: (or add a .env.example and rerun)")
    out.append(
        "set environments.production.deploy.vars.deploy_command (your deploy hook, with "
        "$${release}) for `readyctl deploy`; runbooks/deploy.yaml holds the steps "
        "(`readyctl deploy --env production --release R --plan` shows them)"
    )
    t = p.primary
    if t is None:
        out.append(
            "tell checks.migrations.rehearsal how to run the migrations "
            "(alembic_config, or commands)"
        )
    else:
        native = t.tool == "alembic" or t.tool in NATIVE_TOOLS
        _, active, _ = ({}, True, "") if native else migration_commands(p, t)
        if not active:
            out.append(f"write checks.migrations.rehearsal.commands for {t.tool} (a down step)")
        if t.part_vars and not t.url_vars and len(connection_env(t.part_vars)) < 5:
            out.append(
                f"check checks.migrations.rehearsal.connection_env: {t.tool} builds its URL "
                f"from {', '.join(t.part_vars)}, and not every part's role was clear"
            )
    if p.interpreter is not None and p.interpreter.setting is None and t and t.tool == "alembic":
        out.append("set checks.migrations.rehearsal.python to an interpreter that imports the app")
    if d is None or not d.answered:
        out.append(
            "the API map: rerun with --base-url URL against staging, or set "
            "environments.staging.api.*"
        )
    else:
        for key in d.unknown:
            out.append(f"set environments.staging.api.{key} ({KEY_HINTS.get(key, ('', ''))[1]})")
    return out
