"""A runbook: pydantic models (and their JSON Schema), durations, `${...}` placeholders and
the small `when:` language.

A runbook is YAML: `name`, `description`, `vars:`, ordered `steps:` (each a built-in action,
`uses:`, or a shell command, `run:`), optional `after_rollback:` steps, a `resume:` policy
and `state: {table: true}`. Validation errors name the file, the line and the key (see
readyctl.runbook.loader).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

BUILTIN_ACTIONS = ("gate", "backup", "maintenance", "migrate", "deploy", "smoke", "monitor", "run")
"""Actions a runbook may name even before their module is installed (`uses:`)."""

DEFAULT_TIMEOUT_S = 600.0
"""A step's timeout when the runbook gives none."""

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

PLACEHOLDER = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)?)"
    r"(?::-(?P<default>[^}]*))?\}"
)
"""`${vars.NAME}`, `${release}`, `${previous_release}`, `${env}`, `${run_id}`, `${workdir}`,
or `${ENV_VAR}` (`${ENV_VAR:-default}`) from the process environment."""

BUILTIN_NAMES = ("release", "previous_release", "env", "run_id", "workdir")


def parse_duration(value: Any) -> float:
    """`30s`, `5m`, `1h`, `500ms` or a number of seconds -> seconds (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 5m or 1h")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be more than 0 seconds")
        return float(value)
    m = _DURATION.fullmatch(str(value))
    if not m:
        raise ValueError(f"{str(value)[:40]!r} is not a duration; write e.g. 30s, 5m or 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


def _duration_or_placeholder(value: Any) -> Any:
    """A duration stays as written when it holds a `${...}` placeholder (checked at run time)."""
    if isinstance(value, str) and PLACEHOLDER.search(value):
        return value
    parse_duration(value)
    return value


Duration = Annotated[
    str | float,
    BeforeValidator(_duration_or_placeholder),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$|\$\{"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: 30s, 5m, 1h, 500ms, a number of seconds, or ${vars.X}",
        }
    ),
]


# -- when: ----------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(==|!=|\(|\)|'[^']*'|\"[^\"]*\"|[A-Za-z0-9_.\-/:+@]+)")
_KEYWORDS = ("and", "or", "not")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(
                f"cannot read {text[pos : pos + 20]!r}; write e.g. `env == production`"
            )
        out.append(m.group(1))
        pos = m.end()
    return out


def _is_name(tok: str) -> bool:
    return tok in BUILTIN_NAMES or bool(re.fullmatch(r"vars\.[A-Za-z_][A-Za-z0-9_\-]*", tok))


Condition = Callable[[Mapping[str, Any]], bool]


def truthy(value: Any) -> bool:
    """A value that counts as set: not empty, not 0/false/no/off/none."""
    if value is None or value is False:
        return False
    return str(value).strip().lower() not in ("", "0", "false", "no", "off", "none", "null")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_condition(text: str) -> tuple[Condition, set[str]]:
    """Compile a `when:` condition; returns it and the names it reads (`vars.X`, `release`...).

    Grammar (no eval): `or` of `and` of `not`, parentheses, `A == B`, `A != B`, or a name
    alone (true when set). Names: release, previous_release, env, run_id, vars.NAME; other
    words and quoted text are literals (only in comparisons).
    """
    toks = _tokens(text)
    if not toks:
        raise ValueError("is empty; write a condition like `release` or `env == production`")
    pos = 0
    names: set[str] = set()

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("ends too early; complete the condition")
        pos += 1
        return toks[pos - 1]

    def operand() -> Callable[[Mapping[str, Any]], Any]:
        tok = take()
        if tok in _KEYWORDS or tok in ("(", ")", "==", "!="):
            raise ValueError(f"expected a name or a value, got {tok!r}")
        if tok[0] in "'\"":
            lit = tok[1:-1]
            return lambda values: lit
        if _is_name(tok):
            names.add(tok)
            return lambda values: values.get(tok)
        return lambda values: tok

    def comparison() -> Condition:
        start = peek()
        if start == "(":
            take()
            inner = disjunction()
            if take() != ")":
                raise ValueError("a `(` is not closed")
            return inner
        left_tok = start
        left = operand()
        if peek() in ("==", "!="):
            op = take()
            right = operand()
            if op == "==":
                return lambda v: _text(left(v)) == _text(right(v))
            return lambda v: _text(left(v)) != _text(right(v))
        if left_tok is None or not _is_name(left_tok):
            raise ValueError(
                f"{left_tok!r} is not a name; use release, previous_release, env, run_id or "
                "vars.NAME alone, or compare with == / !="
            )
        return lambda v: truthy(left(v))

    def negation() -> Condition:
        if peek() == "not":
            take()
            inner = negation()
            return lambda v: not inner(v)
        return comparison()

    def conjunction() -> Condition:
        parts = [negation()]
        while peek() == "and":
            take()
            parts.append(negation())
        return parts[0] if len(parts) == 1 else (lambda v: all(p(v) for p in parts))

    def disjunction() -> Condition:
        parts = [conjunction()]
        while peek() == "or":
            take()
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else (lambda v: any(p(v) for p in parts))

    cond = disjunction()
    if pos != len(toks):
        raise ValueError(f"unexpected {toks[pos]!r}; join conditions with `and` / `or`")
    return cond, names


def _check_when(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        raise ValueError("must be a condition like `release` or `env == production`")
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower()
    parse_condition(value)
    return value


def placeholders(value: Any) -> list[str]:
    """Every placeholder name in a value (strings, lists and mappings)."""
    found: list[str] = []
    if isinstance(value, str):
        found += [m.group("name") for m in PLACEHOLDER.finditer(value)]
    elif isinstance(value, Mapping):
        for v in value.values():
            found += placeholders(v)
    elif isinstance(value, list | tuple):
        for v in value:
            found += placeholders(v)
    return found


# -- the models ---------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class Compensation(_Model):
    """A step's `rollback:`: a command or an action that undoes the step (overrides the
    action's own rollback)."""

    run: str | None = Field(default=None, description="a shell command")
    uses: str | None = Field(default=None, description="a built-in action")
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="the action's parameters"
    )
    timeout: Duration | None = Field(default=None, description="default: the step's timeout")

    @model_validator(mode="after")
    def _one_kind(self) -> Compensation:
        if (self.run is None) == (self.uses is None):
            raise ValueError("give either `run:` (a command) or `uses:` (an action)")
        if self.run is not None and self.with_:
            raise ValueError("`with:` goes with `uses:`; a `run:` command takes none")
        return self


class Step(_Model):
    """One step: a built-in action (`uses:`) or a shell command (`run:`)."""

    id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="default: the action's name or `run`"
    )
    description: str | None = None
    uses: str | None = Field(default=None, description="a built-in action (gate, backup, ...)")
    run: str | None = Field(default=None, description="a shell command (runs with /bin/sh -c)")
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="the action's parameters"
    )
    timeout: Duration = Field(default=DEFAULT_TIMEOUT_S, description="default 10m")
    retries: int = Field(default=0, ge=0, le=10, description="attempts after the first")
    on_failure: Literal["rollback", "stop", "continue"] = "rollback"
    confirm: bool = Field(default=False, description="ask a human first (--yes answers)")
    when: Annotated[str | None, BeforeValidator(_check_when)] = Field(
        default=None,
        description="run only when this holds: `release`, `env == production`, "
        "`vars.x and not previous_release`, ...",
    )
    rollback: Compensation | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if (self.run is None) == (self.uses is None):
            raise ValueError("give either `uses:` (an action) or `run:` (a command)")
        if self.run is not None and self.with_:
            raise ValueError("`with:` goes with `uses:`; a `run:` command takes none")
        return self

    @property
    def kind(self) -> str:
        """The action name: `uses:`, or `run` for a command."""
        return self.uses or "run"

    @property
    def step_id(self) -> str:
        """The id (the loader fills in defaults)."""
        return self.id or self.kind


class StateOptions(_Model):
    """Where the run's state is kept besides .readyctl/runs/."""

    table: bool = Field(
        default=False, description="also in a readyctl_deploys table on the target database"
    )


class Runbook(_Model):
    """A runbook file."""

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    vars: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="defaults of ${vars.NAME}"
    )
    required_vars: list[str] = Field(
        default_factory=list,
        description="variables that must be set (non-empty) before anything runs, e.g. the "
        "deploy hook: environments.E.deploy.vars or --var",
    )
    steps: list[Step] = Field(min_length=1)
    after_rollback: list[Step] = Field(
        default_factory=list, description="steps that run once a rollback finished"
    )
    resume: Literal["continue", "rollback"] = Field(
        default="continue", description="what --resume does with an interrupted run"
    )
    state: StateOptions = Field(default_factory=StateOptions)

    @field_validator("vars")
    @classmethod
    def _var_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
                raise ValueError(f"variable name {name!r} must be letters, digits, _ or -")
        return v

    @model_validator(mode="before")
    @classmethod
    def _default_ids(cls, data: Any) -> Any:
        """Steps without an id get their action's name (`migrate`, `run`, `run-2`, ...)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        taken = {
            s.get("id")
            for key in ("steps", "after_rollback")
            for s in (data.get(key) or [])
            if isinstance(s, dict) and isinstance(s.get("id"), str)
        }
        for key in ("steps", "after_rollback"):
            steps = data.get(key)
            if not isinstance(steps, list):
                continue
            filled = []
            for s in steps:
                if isinstance(s, dict) and s.get("id") is None:
                    base = s.get("uses") if isinstance(s.get("uses"), str) else "run"
                    if key == "after_rollback":
                        base = f"after-{base}"
                    name, n = base, 2
                    while name in taken:
                        name, n = f"{base}-{n}", n + 1
                    taken.add(name)
                    s = {**s, "id": name}
                filled.append(s)
            data[key] = filled
        return data


def runbook_json_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook file (`readyctl schema --runbook`)."""
    schema = Runbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "readyctl runbook"
    return schema
