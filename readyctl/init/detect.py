"""What a repository is made of: its stack, migration tool, interpreter and env example.

Everything here reads files only (bounded: a few directory levels, small files); nothing is
imported or run from the project.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

# directories never worth reading: dependencies, virtualenvs, build output, VCS data
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "env",
        ".env",
        "__pycache__",
        "dist",
        "build",
        "out",
        "coverage",
        "site-packages",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".next",
        ".nuxt",
        ".turbo",
        ".cache",
        ".idea",
        ".vscode",
        ".readyctl",
        "reports",
        "vendor",
        "tmp",
        "log",
    }
)
MAX_DEPTH = 4  # directory levels below the project root
MAX_ENTRIES = 20_000  # directory entries looked at, in all
MAX_READ = 256 * 1024  # bytes read from one file

# env example files, in the order they are preferred
EXAMPLE_NAMES = (".env.example", ".env.sample", ".env.template", ".env.dist", "example.env")
EXAMPLE_PREFIX = "env-example"

# dependency name -> what it is (frameworks, then database libraries)
NODE_FRAMEWORKS = {"express": "Express", "fastify": "Fastify"}
NODE_LIBRARIES = {
    "prisma": "Prisma",
    "@prisma/client": "Prisma",
    "typeorm": "TypeORM",
    "knex": "Knex",
}
PY_FRAMEWORKS = {"fastapi": "FastAPI", "django": "Django", "flask": "Flask"}
PY_LIBRARIES = {"sqlalchemy": "SQLAlchemy", "sqlmodel": "SQLModel", "alembic": "alembic"}
RUBY_FRAMEWORKS = {"rails": "Rails"}

# words that make a variable one part of a database connection (POSTGRES_USER, DB_HOST, ...)
_PART_WORDS = frozenset(
    {
        "USER",
        "USERNAME",
        "PASSWORD",
        "PASS",
        "PWD",
        "HOST",
        "HOSTNAME",
        "SERVER",
        "PORT",
        "DB",
        "NAME",
        "DATABASE",
        "DBNAME",
    }
)
_URL_WORDS = frozenset({"URL", "URI", "DSN"})
_PY_ENV = re.compile(
    r"""os\.(?:environ\.get|getenv)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"""
    r"""|env(?:\.str|\.db|\.db_url)?\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)
_PY_REQUIRED_ENV = re.compile(r"""os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]""")
_JS_ENV = re.compile(
    r"""process\.env\.([A-Za-z_][A-Za-z0-9_]*)|process\.env\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)


@dataclasses.dataclass(frozen=True)
class Stack:
    """The languages, frameworks and database libraries the dependency files name."""

    languages: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # the files read

    @property
    def found(self) -> bool:
        """Whether any dependency file was read."""
        return bool(self.sources)

    def words(self) -> str:
        """`FastAPI, SQLAlchemy, alembic (pyproject.toml)`, or `unknown`."""
        names = [*self.frameworks, *self.libraries] or list(self.languages)
        if not names:
            return "unknown"
        return f"{', '.join(names)} ({', '.join(self.sources)})"


@dataclasses.dataclass(frozen=True)
class MigrationTool:
    """One migration tool found in the repository, and where its migrations are."""

    tool: str  # alembic, django, prisma, typeorm, knex, flyway, rails
    config_file: str | None  # alembic.ini, manage.py, prisma/schema.prisma, src/data-source.ts
    location: str | None  # the migrations directory (or directories), relative
    count: int  # migration files found
    url_vars: tuple[str, ...] = ()  # variables the tool reads the database URL from
    part_vars: tuple[str, ...] = ()  # variables it builds the URL from (user, host, ...)
    sql_glob: str | None = None  # SQL migration files (Prisma, Flyway), for migrations.lint
    notes: tuple[str, ...] = ()
    module_type: str | None = None  # package.json "type" (TypeORM under ESM)
    import_vars: tuple[str, ...] = ()  # variables the app's settings demand at import time

    def words(self) -> str:
        """`alembic: alembic.ini -> alembic/versions (3 migrations)`."""
        where = self.config_file or ""
        if self.location:
            where += f" -> {self.location}" if where else self.location
        n = f"{self.count} migration{'s' if self.count != 1 else ''}"
        return f"{self.tool}: {where} ({n})" if where else f"{self.tool} ({n})"


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """The Python interpreter that can import the app (for alembic's env.py)."""

    setting: str | None  # what `python:` is set to, None: not set
    how: str  # where it came from, in words


@dataclasses.dataclass(frozen=True)
class EnvExample:
    """The project's documented variables."""

    path: str  # relative to the project root
    values: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Project:
    """Everything `readyctl init` found in a repository."""

    root: Path
    name: str
    stack: Stack
    migrations: tuple[MigrationTool, ...]
    interpreter: Interpreter | None  # None: not a Python project
    env_example: EnvExample | None
    env_example_problem: str | None = None
    node: bool = False
    python: bool = False
    python_install: str | None = None  # requirements.txt or pyproject.toml
    node_install: str | None = None  # npm ci, npm install, ...
    default_branch: str = "main"

    @property
    def primary(self) -> MigrationTool | None:
        """The migration tool the config is written for (the first found)."""
        return self.migrations[0] if self.migrations else None


# -- walking ---------------------------------------------------------------------------------
def walk(root: Path) -> list[PurePosixPath]:
    """Files under `root` (relative, POSIX), shallow first, bounded in depth and count."""
    out: list[PurePosixPath] = []
    seen = 0
    level: list[Path] = [root]
    for _depth in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for d in level:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    return out
                try:
                    if e.is_dir(follow_symlinks=False):
                        if e.name not in SKIP_DIRS and not e.name.endswith(".egg-info"):
                            below.append(Path(e.path))
                    elif e.is_file():
                        out.append(PurePosixPath(Path(e.path).relative_to(root).as_posix()))
                except OSError:
                    continue
        level = below
    return out


def read_text(path: Path) -> str:
    """The start of a text file ("" when it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _norm(name: str) -> str:
    return re.split(r"[\s\[<>=!~;@(]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


# -- the stack -------------------------------------------------------------------------------
def _package_json(root: Path) -> dict[str, object] | None:
    path = root / "package.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(read_text(path))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _node_deps(pkg: dict[str, object]) -> set[str]:
    deps: set[str] = set()
    for key in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        section = pkg.get(key)
        if isinstance(section, dict):
            deps.update(str(k).lower() for k in section)
    return deps


def _requirement_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def _toml_requirements(data: dict[str, object]) -> Iterator[str]:
    project = data.get("project")
    if isinstance(project, dict):
        yield from (str(r) for r in project.get("dependencies") or [])
        for reqs in (project.get("optional-dependencies") or {}).values():
            yield from (str(r) for r in reqs or [])
    for reqs in (data.get("dependency-groups") or {}).values():  # type: ignore[union-attr]
        yield from (r for r in reqs or [] if isinstance(r, str))
    poetry = (data.get("tool") or {}).get("poetry")  # type: ignore[union-attr]
    if isinstance(poetry, dict):
        yield from (str(k) for k in poetry.get("dependencies") or {})
        yield from (str(k) for k in poetry.get("dev-dependencies") or {})
        for group in (poetry.get("group") or {}).values():
            if isinstance(group, dict):
                yield from (str(k) for k in group.get("dependencies") or {})
    for key in ("packages", "dev-packages"):  # a Pipfile
        section = data.get(key)
        if isinstance(section, dict):
            yield from (str(k) for k in section)


def _python_deps(root: Path) -> tuple[set[str], list[str]]:
    deps: set[str] = set()
    sources: list[str] = []
    for name in ("pyproject.toml", "Pipfile"):
        path = root / name
        if path.is_file():
            try:
                data = tomllib.loads(read_text(path))
            except (tomllib.TOMLDecodeError, ValueError):
                continue
            found = {_norm(r) for r in _toml_requirements(data)}
            if found or name == "pyproject.toml":
                deps |= found
                sources.append(name)
    reqs = sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt"))
    for path in reqs:
        deps |= {_norm(line) for line in _requirement_lines(read_text(path))}
        sources.append(path.relative_to(root).as_posix())
    return deps, sources


def _gems(root: Path) -> set[str] | None:
    path = root / "Gemfile"
    if not path.is_file():
        return None
    return {
        m.group(1).lower()
        for m in re.finditer(r"""^\s*gem\s+["']([\w.-]+)["']""", read_text(path), re.M)
    }


def detect_stack(root: Path) -> tuple[Stack, dict[str, object] | None]:
    """The stack from package.json, pyproject.toml / requirements*.txt / Pipfile, Gemfile."""
    languages: list[str] = []
    frameworks: list[str] = []
    libraries: list[str] = []
    sources: list[str] = []

    def add(into: list[str], name: str) -> None:
        if name not in into:
            into.append(name)

    pkg = _package_json(root)
    if pkg is not None:
        deps = _node_deps(pkg)
        languages.append("node")
        sources.append("package.json")
        if any(d.startswith("@nestjs/") for d in deps):
            add(frameworks, "NestJS")
        for dep, name in NODE_FRAMEWORKS.items():
            if dep in deps:
                add(frameworks, name)
        for dep, name in NODE_LIBRARIES.items():
            if dep in deps:
                add(libraries, name)
    py_deps, py_sources = _python_deps(root)
    if py_sources:
        languages.append("python")
        sources += py_sources
        for dep, name in PY_FRAMEWORKS.items():
            if dep in py_deps:
                add(frameworks, name)
        for dep, name in PY_LIBRARIES.items():
            if dep in py_deps:
                add(libraries, name)
    gems = _gems(root)
    if gems is not None:
        languages.append("ruby")
        sources.append("Gemfile")
        for dep, name in RUBY_FRAMEWORKS.items():
            if dep in gems:
                add(frameworks, name)
    return Stack(tuple(languages), tuple(frameworks), tuple(libraries), tuple(sources)), pkg


# -- variables a file reads ---------------------------------------------------------------------
def _words(name: str) -> list[str]:
    return [w for w in name.upper().split("_") if w]


def split_vars(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(URL variables, connection-part variables) among the names a file reads."""
    urls: list[str] = []
    parts: list[str] = []
    for name in dict.fromkeys(names):
        words = _words(name)
        if not words:
            continue
        if words[-1] in _URL_WORDS:
            urls.append(name)
        elif words[-1] in _PART_WORDS or (len(words) == 1 and name.upper().startswith("PG")):
            parts.append(name)
    return tuple(urls), tuple(parts)


def python_env_names(text: str) -> list[str]:
    """Variables a Python file reads (os.environ, os.getenv, django-environ's env(...))."""
    return [next(g for g in m.groups() if g) for m in _PY_ENV.finditer(text)]


def js_env_names(text: str) -> list[str]:
    """Variables a JavaScript or TypeScript file reads (process.env)."""
    return [next(g for g in m.groups() if g) for m in _JS_ENV.finditer(text)]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def _parts_note(file: str, parts: tuple[str, ...], how: str) -> str:
    return (
        f"{file} builds its database URL from {', '.join(parts)}: readyctl gives the migration "
        f"tool the scratch database as {how}, not as parts; make it use that when set (or the "
        "rehearsal may reach the database those variables name, which readyctl refuses)"
    )


# -- migration tools ---------------------------------------------------------------------------
def _alembic(root: Path, files: list[PurePosixPath]) -> MigrationTool | None:
    inis = [f for f in files if f.name == "alembic.ini"]
    if not inis:
        return None
    ini_rel = inis[0]
    ini = root / ini_rel
    parser = configparser.ConfigParser(interpolation=None)
    notes: list[str] = []
    try:
        parser.read_string(read_text(ini))
        location = parser.get("alembic", "script_location", fallback="alembic")
    except configparser.Error as e:
        notes.append(f"{ini_rel}: cannot be read ({type(e).__name__}); script_location unknown")
        location = "alembic"
    location = location.replace("%(here)s", ".").strip()
    script = (ini.parent / location) if ":" not in location else None
    versions = script / "versions" if script is not None else None
    count = 0
    if versions is not None and versions.is_dir():
        count = sum(1 for p in versions.glob("*.py") if p.name != "__init__.py")
    url_vars: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    if script is not None and (script / "env.py").is_file():
        env_py = script / "env.py"
        text = read_text(env_py)
        url_vars, parts = split_vars(python_env_names(text))
        rel = _rel(env_py, root)
        if parts and not url_vars:
            notes.append(_parts_note(rel, parts, "sqlalchemy.url and DATABASE_URL"))
        elif "set_main_option" in text and "sqlalchemy.url" in text and not url_vars:
            notes.append(
                f"{rel} sets sqlalchemy.url itself: make it keep a URL that is already set "
                "(readyctl sets it to the scratch database)"
            )
    elif script is not None:
        notes.append(f"no env.py in {_rel(script, root)}: is script_location right?")
    return MigrationTool(
        tool="alembic",
        config_file=ini_rel.as_posix(),
        location=_rel(versions, root) if versions is not None else location,
        count=count,
        url_vars=url_vars,
        part_vars=parts,
        notes=tuple(notes),
    )


def _settings_files(base: Path, module: str | None) -> list[Path]:
    """The Django settings module's files (a module or a package), else any settings.py."""
    if module:
        mod = base / Path(*module.split("."))
        if mod.with_suffix(".py").is_file():
            return [mod.with_suffix(".py")]
        if mod.is_dir():
            return sorted(mod.glob("*.py"))
    return sorted(base.glob("*/settings.py")) + sorted(base.glob("*/settings/*.py"))


def _django(root: Path, files: list[PurePosixPath]) -> MigrationTool | None:
    manages = [f for f in files if f.name == "manage.py"]
    if not manages:
        return None
    manage_rel = manages[0]
    base = (root / manage_rel).parent
    m = re.search(
        r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)['\"]", read_text(root / manage_rel)
    )
    module = m.group(1) if m else None
    prefix = manage_rel.parent.as_posix()
    dirs: dict[str, int] = {}
    for f in files:
        if f.parent.name == "migrations" and re.match(r"^\d{4}_\w+\.py$", f.name):
            if prefix not in (".", "") and not f.as_posix().startswith(prefix + "/"):
                continue
            key = f.parent.as_posix()
            dirs[key] = dirs.get(key, 0) + 1
    text = "\n".join(read_text(p) for p in _settings_files(base, module))
    names = python_env_names(text)
    url_vars, parts = split_vars(names)
    demanded = [
        n for n in dict.fromkeys(_PY_REQUIRED_ENV.findall(text)) if n not in (*url_vars, *parts)
    ]
    if not url_vars and ("dj_database_url" in text or "env.db(" in text):
        url_vars = ("DATABASE_URL",)
    notes: list[str] = []
    if parts and not url_vars:
        notes.append(_parts_note(f"{module or 'the settings'}", parts, "DATABASE_URL"))
    if not dirs:
        notes.append("no app has a migrations/ directory with migrations yet")
    return MigrationTool(
        tool="django",
        config_file=manage_rel.as_posix(),
        location=", ".join(sorted(dirs)) or None,
        count=sum(dirs.values()),
        url_vars=url_vars,
        part_vars=parts,
        notes=tuple(notes),
        import_vars=tuple(demanded),
    )


def _prisma(
    root: Path, files: list[PurePosixPath], pkg: dict[str, object] | None
) -> MigrationTool | None:
    configured = None
    if pkg and isinstance(pkg.get("prisma"), dict):
        configured = pkg["prisma"].get("schema")  # type: ignore[union-attr]
    schemas = [f for f in files if f.name == "schema.prisma"]
    if isinstance(configured, str) and (root / configured).is_file():
        schema_rel = PurePosixPath(Path(configured).as_posix())
    elif schemas:
        schema_rel = schemas[0]
    else:
        return None
    text = read_text(root / schema_rel)
    notes: list[str] = []
    block = re.search(r"datasource\s+\w+\s*\{(.*?)\}", text, re.S)
    url_vars: tuple[str, ...] = ()
    if block:
        provider = re.search(r"provider\s*=\s*\"(\w+)\"", block.group(1))
        if provider and provider.group(1) not in ("postgresql", "postgres"):
            notes.append(f"the datasource provider is {provider.group(1)}, not postgresql")
        url_vars = tuple(
            m.group(1)
            for m in re.finditer(
                r"\b(?:url|directUrl)\s*=\s*env\(\s*\"(\w+)\"\s*\)", block.group(1)
            )
        )
    migrations = (root / schema_rel).parent / "migrations"
    count = len(list(migrations.glob("*/migration.sql"))) if migrations.is_dir() else 0
    rel = _rel(migrations, root)
    return MigrationTool(
        tool="prisma",
        config_file=schema_rel.as_posix(),
        location=rel,
        count=count,
        url_vars=url_vars,
        sql_glob=f"{rel}/*/migration.sql",
        notes=tuple(notes),
    )


def _glob_dir(glob: str) -> str:
    """The directory part of a migrations glob, before any wildcard."""
    head = re.split(r"[*?{\[]", glob, maxsplit=1)[0]
    return head[: head.rfind("/")] if "/" in head else ""


def _typeorm(
    root: Path, files: list[PurePosixPath], pkg: dict[str, object] | None
) -> MigrationTool | None:
    candidates = [
        f
        for f in files
        if f.suffix in (".ts", ".js", ".mts", ".cts", ".mjs", ".cjs")
        and not f.name.endswith(".d.ts")
        and not any(p in ("test", "tests", "__tests__") for p in f.parts)
    ]
    candidates.sort(
        key=lambda f: (not re.search(r"data-?source|ormconfig", f.name, re.I), len(f.parts))
    )
    found: tuple[PurePosixPath, str] | None = None
    for f in candidates[:2000]:
        text = read_text(root / f)
        if "new DataSource(" in text:
            found = (f, text)
            break
    if found is None:
        return None
    ds_rel, text = found
    ds_dir = (root / ds_rel).parent
    notes: list[str] = []
    globs: list[str] = []
    m = re.search(r"migrations\s*:\s*\[(.*?)\]", text, re.S)
    if m:
        for lit in re.finditer(r"""["'`]([^"'`]+)["'`]""", m.group(1)):
            globs.append(lit.group(1))
    location: Path | None = None
    for g in globs:
        d = _glob_dir(g)
        rel_to_dir = "__dirname" in (m.group(1) if m else "")
        base = ds_dir if rel_to_dir else root
        candidate = (base / d.lstrip("/")) if d else base
        if candidate.is_dir():
            location = candidate
            break
    if location is None:
        for guess in (ds_dir / "migrations", root / "migrations", root / "src" / "migrations"):
            if guess.is_dir():
                location = guess
                break
    count = 0
    if location is not None:
        count = sum(
            1
            for p in location.iterdir()
            if p.suffix in (".ts", ".js") and not p.name.endswith(".d.ts")
        )
    else:
        notes.append("no migrations directory found for the data source's `migrations:`")
    url_vars, parts = split_vars(js_env_names(text))
    if parts and not url_vars:
        notes.append(_parts_note(ds_rel.as_posix(), parts, "DATABASE_URL"))
    deps = _node_deps(pkg) if pkg else set()
    if ds_rel.suffix in (".ts", ".mts", ".cts") and "ts-node" not in deps:
        notes.append(
            f"{ds_rel} is TypeScript: the TypeORM CLI needs ts-node (npm i -D ts-node) to load it"
        )
    module_type = pkg.get("type") if pkg else None
    return MigrationTool(
        tool="typeorm",
        config_file=ds_rel.as_posix(),
        location=_rel(location, root) if location is not None else None,
        count=count,
        url_vars=url_vars,
        part_vars=parts,
        notes=tuple(notes),
        module_type=module_type if isinstance(module_type, str) else None,
    )


def _knex(root: Path, files: list[PurePosixPath]) -> MigrationTool | None:
    knexfiles = [f for f in files if re.match(r"^knexfile\.(js|ts|cjs|mjs)$", f.name)]
    if not knexfiles:
        return None
    rel = knexfiles[0]
    text = read_text(root / rel)
    m = re.search(r"""directory\s*:\s*["'`]([^"'`]+)["'`]""", text)
    location = (root / rel).parent / (m.group(1) if m else "migrations")
    count = sum(1 for p in location.glob("*.[jt]s")) if location.is_dir() else 0
    url_vars, parts = split_vars(js_env_names(text))
    notes = [_parts_note(rel.as_posix(), parts, "DATABASE_URL")] if parts and not url_vars else []
    return MigrationTool(
        tool="knex",
        config_file=rel.as_posix(),
        location=_rel(location, root),
        count=count,
        url_vars=url_vars,
        part_vars=parts,
        notes=tuple(notes),
    )


def _flyway(root: Path, files: list[PurePosixPath]) -> MigrationTool | None:
    confs = [f for f in files if f.name == "flyway.conf"]
    if not confs:
        return None
    rel = confs[0]
    text = read_text(root / rel)
    m = re.search(r"^\s*flyway\.locations\s*=\s*(.+)$", text, re.M)
    dirs = []
    for loc in (m.group(1) if m else "filesystem:sql").split(","):
        loc = loc.strip()
        if loc.startswith("filesystem:"):
            dirs.append(loc.removeprefix("filesystem:"))
    base = (root / rel).parent
    location = base / dirs[0] if dirs else base / "sql"
    count = len(list(location.glob("V*.sql"))) if location.is_dir() else 0
    loc_rel = _rel(location, root)
    return MigrationTool(
        tool="flyway",
        config_file=rel.as_posix(),
        location=loc_rel,
        count=count,
        sql_glob=f"{loc_rel}/V*.sql",
    )


def _rails(root: Path, stack: Stack) -> MigrationTool | None:
    migrate = root / "db" / "migrate"
    if "Rails" not in stack.frameworks and not migrate.is_dir():
        return None
    count = len(list(migrate.glob("*.rb"))) if migrate.is_dir() else 0
    return MigrationTool(
        tool="rails",
        config_file="Gemfile" if (root / "Gemfile").is_file() else None,
        location="db/migrate" if migrate.is_dir() else None,
        count=count,
        url_vars=("DATABASE_URL",),
    )


def detect_migrations(
    root: Path, files: list[PurePosixPath], stack: Stack, pkg: dict[str, object] | None
) -> tuple[MigrationTool, ...]:
    """Every migration tool found, the one the config is written for first."""
    found = [
        _alembic(root, files),
        _django(root, files),
        _prisma(root, files, pkg),
        _typeorm(root, files, pkg),
        _knex(root, files),
        _flyway(root, files),
        _rails(root, stack),
    ]
    return tuple(t for t in found if t is not None)


# -- the interpreter and the env example ------------------------------------------------------
def detect_interpreter(root: Path, environ: dict[str, str]) -> Interpreter:
    """A venv in the project, else the active one ($VIRTUAL_ENV), else none."""
    for venv in (".venv", "venv"):
        python = root / venv / "bin" / "python"
        if python.is_file() or python.is_symlink():
            return Interpreter(f"{venv}/bin/python", f"the project's {venv}/ ({venv}/bin/python)")
    active = environ.get("VIRTUAL_ENV")
    if active:
        return Interpreter(
            "python",
            f"the active venv ($VIRTUAL_ENV {active}), written as `python` (the python on PATH "
            "where readyctl runs; a path on this machine would not hold in CI)",
        )
    return Interpreter(
        None,
        "none: no .venv/ or venv/ in the project and no active venv; alembic runs in "
        "readyctl's own interpreter, which must import the app (set "
        "checks.migrations.rehearsal.python to one that can)",
    )


def find_env_example(root: Path) -> Path | None:
    """The project's env example file, if it has one."""
    for name in EXAMPLE_NAMES:
        if (root / name).is_file():
            return root / name
    others = sorted(p for p in root.glob(f"{EXAMPLE_PREFIX}*") if p.is_file())
    return others[0] if others else None


def read_env_example(root: Path) -> tuple[EnvExample | None, str | None]:
    """The env example, or why it could not be read."""
    from readyctl import dotenv

    path = find_env_example(root)
    if path is None:
        return None, None
    try:
        values = dotenv.read(path, environ={})
    except Exception as e:  # a broken example: say so, write no rules from it
        return None, f"{path.name} could not be read ({type(e).__name__})"
    return EnvExample(path.name, dict(values)), None


def _default_branch(root: Path) -> str:
    heads = root / ".git" / "refs" / "heads"
    if (heads / "master").exists() and not (heads / "main").exists():
        return "master"
    return "main"


def _python_install(root: Path) -> str | None:
    """How CI installs a Python project: uv.lock, requirements.txt, pyproject.toml, ..."""
    if (root / "uv.lock").is_file():
        return "uv.lock"
    if (root / "requirements.txt").is_file():
        return "requirements.txt"
    if (root / "pyproject.toml").is_file():
        return "pyproject.toml"
    reqs = sorted(root.glob("requirements*.txt"))
    return reqs[0].name if reqs else None


def _node_install(root: Path) -> str:
    """How CI installs a Node project's dependencies."""
    if (root / "pnpm-lock.yaml").is_file():
        return "pnpm install --frozen-lockfile"
    if (root / "yarn.lock").is_file():
        return "yarn install --frozen-lockfile"
    return "npm ci" if (root / "package-lock.json").is_file() else "npm install"


def _project_name(root: Path, pkg: dict[str, object] | None) -> str:
    """package.json's or pyproject.toml's name, else the directory's."""
    if pkg and isinstance(pkg.get("name"), str):
        return str(pkg["name"])
    path = root / "pyproject.toml"
    if path.is_file():
        try:
            data = tomllib.loads(read_text(path))
        except (tomllib.TOMLDecodeError, ValueError):
            data = {}
        for section in (data.get("project"), (data.get("tool") or {}).get("poetry")):
            if isinstance(section, dict) and isinstance(section.get("name"), str):
                return str(section["name"])
    return root.resolve().name


def detect(root: Path, environ: dict[str, str] | None = None) -> Project:
    """Read the repository at `root`."""
    environ = dict(os.environ if environ is None else environ)
    files = walk(root)
    stack, pkg = detect_stack(root)
    migrations = detect_migrations(root, files, stack, pkg)
    python = "python" in stack.languages or any(t.tool in ("alembic", "django") for t in migrations)
    example, problem = read_env_example(root)
    name = _project_name(root, pkg)
    return Project(
        root=root,
        name=name,
        stack=stack,
        migrations=migrations,
        interpreter=detect_interpreter(root, environ) if python else None,
        env_example=example,
        env_example_problem=problem,
        node="node" in stack.languages,
        python=python,
        python_install=_python_install(root) if python else None,
        node_install=_node_install(root) if "node" in stack.languages else None,
        default_branch=_default_branch(root),
    )
