"""Smoke scenarios: a YAML model of ordered HTTP steps and the executor that runs them.

A suite holds scenarios; a scenario holds ordered steps and cleanup steps. A step sends one
request (method, path or absolute URL, headers, query, JSON/form/raw body), checks its
expectations (status, JSON fields, headers, latency) and captures values (a token, an id)
for the steps after it. Every string is a sandboxed jinja2 template. A failed step marks the
rest of its scenario blocked; cleanup steps run whatever happened before them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from readyctl.errors import ConfigError
from readyctl.redact import Redactor, clip, is_secret_name
from readyctl.result import ErrorReason, Status

DEFAULT_SUITE = "scenarios_default.yaml"
MAX_BODY_BYTES = 1_000_000
EVIDENCE_BODY_CHARS = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_SECRET_HEADERS = re.compile(r"authorization|cookie|token|signature|secret|api-key", re.I)


# -- the model -------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


StatusSpec = int | str | list[int | str]


class Expect(_Model):
    """What a step's response must look like."""

    status: StatusSpec | None = Field(
        default=None, description="201, [403, 404] or '2xx' (default: any 2xx)"
    )
    json_fields: dict[str, Any] = Field(
        default_factory=dict,
        alias="json",
        description="dotted path -> literal, or a matcher {eq, ne, type, exists, min_length, "
        "max_length, contains, matches, in, gt, ge, lt, le}",
    )
    headers: dict[str, Any] = Field(
        default_factory=dict, description="header -> literal, matcher, or null for absent"
    )
    max_ms: float | None = Field(default=None, gt=0, description="latency ceiling")
    body_contains: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, v: StatusSpec | None) -> StatusSpec | None:
        for item in v if isinstance(v, list) else ([] if v is None else [v]):
            if isinstance(item, int) and not 100 <= item <= 599:
                raise ValueError(f"status {item} is not an HTTP status")
            if isinstance(item, str) and not _STATUS_CLASS.match(item):
                raise ValueError(f"status {item!r} must be a number or a class like '2xx'")
        return v


class Capture(_Model):
    """Where a captured value comes from: json:<path>, header:<name>, status or body."""

    source: str = Field(alias="from")
    regex: str | None = None
    secret: bool | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not (v.startswith(("json:", "header:")) or v in ("status", "body")):
            raise ValueError("capture from must be json:<path>, header:<name>, status or body")
        return v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            re.compile(v)
        return v


class Retry(_Model):
    """Repeat a step until its expectations hold (polling a mailbox, say)."""

    attempts: int = Field(default=5, ge=1, le=60)
    interval_s: float = Field(default=0.5, ge=0, le=30)


class Step(_Model):
    """One request of a scenario."""

    name: str
    method: str = "GET"
    path: str
    headers: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    body: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)
    capture: dict[str, str | Capture] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    retry: Retry | None = None
    when: str | None = None
    skip_reason: str | None = None
    follow_redirects: bool = False
    covers: str | None = Field(
        default=None, description="the critical path this step verifies (default: its scenario's)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("step names are 1-64 letters, digits, '_', '-', '.' or ':'")
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        v = v.upper()
        if v not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            raise ValueError(f"unsupported method {v}")
        return v

    @field_validator("capture")
    @classmethod
    def _capture(cls, v: dict[str, str | Capture]) -> dict[str, str | Capture]:
        out: dict[str, str | Capture] = {}
        for name, c in v.items():
            if not name.isidentifier():
                raise ValueError(f"capture name {name!r} must be an identifier")
            if isinstance(c, str):
                try:
                    c = Capture(source=c)
                except ValidationError as e:
                    raise ValueError(f"capture {name}: {e.errors()[0].get('msg')}") from None
            out[name] = c
        return out

    def captures(self) -> dict[str, Capture]:
        """The captures as Capture objects."""
        return {
            k: (c if isinstance(c, Capture) else Capture(source=c)) for k, c in self.capture.items()
        }

    def body_kinds(self) -> int:
        """How many body forms are set (at most one is allowed)."""
        return sum(x is not None for x in (self.json_body, self.form, self.body))


class Scenario(_Model):
    """Ordered steps plus cleanup steps that always run."""

    name: str
    description: str = ""
    when: str | None = None
    skip_reason: str | None = None
    covers: str | None = Field(
        default=None,
        description="the critical path (checklist sub-item) it verifies; default: its name",
    )
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    cleanup: list[Step] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("scenario names are 1-64 letters, digits, '_', '-', '.' or ':'")
        return v

    def model_post_init(self, _: Any) -> None:
        """Step names are unique in a scenario; at most one body per step."""
        seen: set[str] = set()
        for step in [*self.steps, *self.cleanup]:
            if step.name in seen:
                raise ValueError(f"scenario {self.name}: step name {step.name!r} is used twice")
            seen.add(step.name)
            if step.body_kinds() > 1:
                raise ValueError(f"step {step.name}: give only one of json, form and body")


class Suite(_Model):
    """A set of scenarios with shared variables."""

    vars: dict[str, Any] = Field(default_factory=dict)
    scenarios: list[Scenario] = Field(min_length=1)

    def model_post_init(self, _: Any) -> None:
        """Scenario names are unique."""
        names = [s.name for s in self.scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario name {dupes[0]!r} is used twice")


def parse_suite(data: Any, origin: str = "scenarios") -> Suite:
    """Validate a suite from YAML data (a mapping with `scenarios`, or a list of scenarios)."""
    if isinstance(data, list):
        data = {"scenarios": data}
    try:
        return Suite.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"{origin}: {where}: {first.get('msg')}".replace(": :", ":")) from None
    except ValueError as e:
        raise ConfigError(f"{origin}: {e}") from None


def load_suite(path: Path) -> Suite:
    """Read and validate a YAML suite file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"smoke suite {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"smoke suite {path}: not valid YAML ({type(e).__name__})") from None
    return parse_suite(data, str(path))


def default_suite() -> Suite:
    """The bundled counseling suite (package data)."""
    from importlib.resources import files

    import yaml

    text = files("readyctl").joinpath(DEFAULT_SUITE).read_text(encoding="utf-8")
    return parse_suite(yaml.safe_load(text), f"readyctl/{DEFAULT_SUITE}")


# -- templating ------------------------------------------------------------------------------
class EnvView(dict):  # type: ignore[type-arg]
    """Environment variables for templates: a missing variable reads as ''."""

    def __missing__(self, key: str) -> str:
        return ""


def _hmac_sha256(key: str, message: str) -> str:
    return hmac.new(str(key).encode(), str(message).encode(), hashlib.sha256).hexdigest()


def _sha256(value: str) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _b64(value: str) -> str:
    return base64.b64encode(str(value).encode()).decode()


def make_environment() -> Any:
    """A sandboxed jinja2 environment with strict undefineds and a few helpers."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.update(
        uuid=lambda: str(uuid.uuid4()),
        random_hex=lambda n=8: secrets.token_hex(int(n)),
        now=time.time,
        timestamp=lambda: int(time.time()),
        hmac_sha256=_hmac_sha256,
        sha256=_sha256,
        b64encode=_b64,
    )
    env.filters["json"] = lambda v: json.dumps(v, separators=(",", ":"))
    return env


_WHOLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)


class Templates:
    """Renders strings and nested data against a namespace."""

    def __init__(self) -> None:
        self.env = make_environment()
        from jinja2 import Undefined

        self._undefined = Undefined

    def render(self, value: Any, ns: Mapping[str, Any]) -> Any:
        """Render every string in `value`; a lone {{ expr }} keeps its native type."""
        if isinstance(value, str):
            if "{" not in value:
                return value
            m = _WHOLE_EXPR.match(value)
            if m and "{%" not in value:
                out = self.env.compile_expression(m.group("expr"), undefined_to_none=False)(**ns)
                if isinstance(out, self._undefined):
                    out._fail_with_undefined_error()
                return out
            return self.env.from_string(value).render(**ns)
        if isinstance(value, Mapping):
            return {str(self.render(k, ns)): self.render(v, ns) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(v, ns) for v in value]
        return value

    def text(self, value: Any, ns: Mapping[str, Any]) -> str:
        """Render to a string."""
        out = self.render(value, ns)
        if out is None:
            return ""
        return out if isinstance(out, str) else str(out)


def truthy(value: Any) -> bool:
    """A rendered `when:` condition: empty, 0, false, no, none and null are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "none", "null")
    return bool(value)


# -- JSON paths and matchers -----------------------------------------------------------------
_MISSING = object()


def dig(data: Any, path: str) -> Any:
    """Follow a dotted path (list indexes as numbers) into JSON; _MISSING when absent."""
    if path in ("", "."):
        return data
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and re.fullmatch(r"-?\d+", part):
            i = int(part)
            if -len(data) <= i < len(data):
                data = data[i]
            else:
                return _MISSING
        else:
            return _MISSING
    return data


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_MATCHER_KEYS = frozenset(
    {"eq", "ne", "type", "exists", "min_length", "max_length", "contains", "matches", "in"}
    | {"gt", "ge", "lt", "le"}
)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return clip(text, limit, marker="...")  # redacted before it is shortened


def match(value: Any, spec: Any, what: str) -> str | None:
    """None when `value` satisfies `spec`, else one sentence saying why not."""
    if not (isinstance(spec, Mapping) and spec and set(spec) <= _MATCHER_KEYS):
        spec = {"eq": spec}
    present = value is not _MISSING
    if "exists" in spec:
        if bool(spec["exists"]) != present:
            return f"{what} is {'missing' if not present else 'present'}"
        if not present:
            return None
    if not present:
        return f"{what} is missing"
    for op, want in spec.items():
        problem = _check_op(op, value, want, what)
        if problem:
            return problem
    return None


def _check_op(op: str, value: Any, want: Any, what: str) -> str | None:
    got = _short(value)
    if op == "eq" and value != want:
        return f"{what} is {got}, expected {_short(want)}"
    if op == "ne" and value == want:
        return f"{what} is {got}, expected anything else"
    if op == "type":
        check = _TYPES.get(str(want))
        if check is None:
            return f"{what}: unknown type {want!r}"
        if not check(value):
            return f"{what} is {got}, expected a {want}"
    if op in ("min_length", "max_length"):
        if not isinstance(value, str | list | dict):
            return f"{what} is {got}, which has no length"
        n = len(value)
        if op == "min_length" and n < int(want):
            return f"{what} has length {n}, expected at least {want}"
        if op == "max_length" and n > int(want):
            return f"{what} has length {n}, expected at most {want}"
    if op == "contains":
        if isinstance(value, str):
            ok = str(want) in value
        elif isinstance(value, list | dict):
            ok = want in value
        else:
            ok = False
        if not ok:
            return f"{what} is {got}, which does not contain {_short(want)}"
    if op == "matches" and not (isinstance(value, str) and re.search(str(want), value)):
        return f"{what} is {got}, which does not match /{want}/"
    if op == "in" and value not in (want or []):
        return f"{what} is {got}, expected one of {_short(want)}"
    if op in ("gt", "ge", "lt", "le"):
        if not _TYPES["number"](value):
            return f"{what} is {got}, not a number"
        ok = {
            "gt": value > want,
            "ge": value >= want,
            "lt": value < want,
            "le": value <= want,
        }[op]
        if not ok:
            sign = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
            return f"{what} is {got}, expected {sign} {want}"
    return None


def status_ok(status: int, spec: StatusSpec | None) -> bool:
    """Whether a status satisfies a status spec (None: any 2xx)."""
    if spec is None:
        return 200 <= status < 300
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, int) and status == item:
            return True
        if isinstance(item, str) and str(status)[0] == item[0]:
            return True
    return False


def _status_text(spec: StatusSpec | None) -> str:
    if spec is None:
        return "2xx"
    items = spec if isinstance(spec, list) else [spec]
    return " or ".join(str(i) for i in items)


def _explicit_5xx(spec: StatusSpec | None) -> bool:
    items = spec if isinstance(spec, list) else ([] if spec is None else [spec])
    return any((isinstance(i, int) and i >= 500) or i == "5xx" for i in items)


# -- running ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What one step did: the status a result will carry, and its evidence."""

    scenario: str
    step: str
    status: Status
    summary: str
    cleanup: bool = False
    error_reason: ErrorReason | None = None
    duration_ms: float | None = None
    max_ms: float | None = None
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    covers: str | None = None  # the critical path this step verifies (None for cleanups)

    @property
    def subject(self) -> str:
        """scenario/step."""
        return f"{self.scenario}/{self.step}"


@dataclasses.dataclass
class _Response:
    status: int
    headers: Any
    body: bytes
    truncated: bool
    elapsed_ms: float
    over: str = ""  # when truncated: "body exceeded 1 MB after gzip decoding: stopped reading"

    def json(self) -> Any:
        if self.truncated:  # a cut-off body is not the answer, even when the cut parses
            return _MISSING
        try:
            return json.loads(self.body)
        except ValueError:
            return _MISSING


class _StepFailed(Exception):
    """A step ended other than pass (carries the outcome)."""

    def __init__(self, outcome: StepOutcome) -> None:
        super().__init__(outcome.summary)
        self.outcome = outcome


_UNDEFINED = re.compile(r"'(?:[^']*object' has no attribute ')?([A-Za-z_][A-Za-z0-9_]*)'")


class Runner:
    """Runs scenarios with one HTTP client; never raises for target behaviour."""

    def __init__(
        self,
        client: Any,
        *,
        redactor: Redactor,
        env: Mapping[str, str],
        variables: Mapping[str, Any] | None = None,
        remaining: Callable[[], float] = lambda: 3600.0,
        cancelled: Callable[[], bool] = lambda: False,
        evidence_chars: int = EVIDENCE_BODY_CHARS,
        cleanup_reserve_s: float = 5.0,
        run_id: str | None = None,
        max_ms: float | None = None,
    ) -> None:
        self.client = client
        self.max_ms = max_ms  # the latency ceiling of a step without its own expect.max_ms
        self.redactor = redactor
        self.env = EnvView(env)
        for name, value in env.items():
            if value and is_secret_name(name):
                redactor.add(value)
        self.variables = dict(variables or {})
        self.remaining = remaining
        self.cancelled = cancelled
        self.evidence_chars = evidence_chars
        self.cleanup_reserve_s = cleanup_reserve_s
        self.run_id = run_id or secrets.token_hex(4)
        self.templates = Templates()

    # -- public ---------------------------------------------------------------------------
    def run_suite(self, suite: Suite, only: Sequence[str] = ()) -> list[StepOutcome]:
        """Every scenario of the suite (or those named in `only`), in order."""
        out: list[StepOutcome] = []
        base_vars = {**suite.vars, **self.variables}
        for scenario in suite.scenarios:
            if only and scenario.name not in only:
                continue
            out += self.run_scenario(scenario, base_vars)
        return out

    def run_scenario(
        self, scenario: Scenario, suite_vars: Mapping[str, Any] | None = None
    ) -> list[StepOutcome]:
        """One scenario: its steps until the first failure, then its cleanups.

        Each step's outcome names the critical path it covers (`covers:` of the step, else of
        the scenario, else the scenario's name); cleanup steps cover none.
        """
        covers = {s.name: s.covers or scenario.covers or scenario.name for s in scenario.steps}
        return [
            o if o.cleanup else dataclasses.replace(o, covers=covers.get(o.step))
            for o in self._run_scenario(scenario, suite_vars)
        ]

    def _run_scenario(
        self, scenario: Scenario, suite_vars: Mapping[str, Any] | None = None
    ) -> list[StepOutcome]:
        ns: dict[str, Any] = {"env": self.env, "run_id": self.run_id, "scenario": scenario.name}
        all_steps = [*scenario.steps, *scenario.cleanup]
        try:
            ns["vars"] = self._render_vars({**(suite_vars or {}), **scenario.vars}, ns)
            cond = self.templates.render(scenario.when, ns) if scenario.when else True
        except Exception as e:
            why = f"scenario {scenario.name}: {self._template_problem(e)}"
            return [self._error(scenario.name, s, ErrorReason.CONFIG, why) for s in all_steps]
        if not truthy(cond):
            reason = scenario.skip_reason or f"its condition {scenario.when!r} is false"
            return [
                StepOutcome(
                    scenario.name, s.name, Status.SKIP, reason, cleanup=s in scenario.cleanup
                )
                for s in all_steps
            ]
        out: list[StepOutcome] = []
        skipped_captures: dict[str, str] = {}
        failed: StepOutcome | None = None
        for step in scenario.steps:
            if failed is not None:
                out.append(
                    StepOutcome(
                        scenario.name,
                        step.name,
                        Status.BLOCKED,
                        f"{failed.subject} {failed.status.value}",
                    )
                )
                continue
            reserve = self.cleanup_reserve_s if scenario.cleanup else 0.0
            outcome = self._guarded(scenario.name, step, ns, skipped_captures, reserve)
            out.append(outcome)
            if outcome.status in (Status.FAIL, Status.ERROR):
                failed = outcome
        for step in scenario.cleanup:
            outcome = self._guarded(scenario.name, step, ns, skipped_captures, 0.0, cleanup=True)
            if outcome.status in (Status.FAIL, Status.ERROR):
                outcome = dataclasses.replace(
                    outcome,
                    status=Status.WARN,
                    summary=f"cleanup {outcome.summary[0].lower()}{outcome.summary[1:]}",
                )
            out.append(outcome)
        return out

    # -- one step -------------------------------------------------------------------------
    def _guarded(
        self,
        scenario: str,
        step: Step,
        ns: dict[str, Any],
        skipped_captures: dict[str, str],
        reserve_s: float,
        *,
        cleanup: bool = False,
    ) -> StepOutcome:
        if self.cancelled():
            return self._error(scenario, step, ErrorReason.TIMEOUT, "the run was cancelled")
        if self.remaining() - reserve_s <= 0.2:
            return self._error(
                scenario, step, ErrorReason.TIMEOUT, "not run: the check's deadline passed"
            )
        try:
            outcome = self._step(scenario, step, ns, reserve_s)
        except _StepFailed as e:
            outcome = e.outcome
        except Exception as e:
            name = self._undefined_name(e)
            if name and name in skipped_captures:
                outcome = StepOutcome(
                    scenario,
                    step.name,
                    Status.SKIP,
                    f"needs {name}, which the skipped step {skipped_captures[name]} captures",
                )
            else:
                detail = f"step {step.name}: {self._template_problem(e)}"
                outcome = self._error(scenario, step, ErrorReason.CONFIG, detail)
        if outcome.status is Status.SKIP:
            for name in step.capture:
                skipped_captures.setdefault(name, step.name)
        return dataclasses.replace(outcome, cleanup=cleanup)

    def _step(self, scenario: str, step: Step, ns: dict[str, Any], reserve_s: float) -> StepOutcome:
        for key, value in step.vars.items():
            ns[key] = self.templates.render(value, ns)
        if step.when is not None and not truthy(self.templates.render(step.when, ns)):
            reason = step.skip_reason or f"its condition {step.when!r} is false"
            return StepOutcome(scenario, step.name, Status.SKIP, reason)
        request = self._build(step, ns)
        attempts = step.retry.attempts if step.retry else 1
        interval = step.retry.interval_s if step.retry else 0.0
        problems: list[str] = []
        resp: _Response | None = None
        tried = 0
        for attempt in range(attempts):
            tried = attempt + 1
            budget = min(step.timeout_s, self.remaining() - reserve_s)
            if budget <= 0.1:
                raise _StepFailed(
                    self._error(scenario, step, ErrorReason.TIMEOUT, "the check's deadline passed")
                )
            resp = self._send(scenario, step, request, budget)
            problems = self._expectations(step, resp, ns)
            if not problems or (resp.status >= 500 and not _explicit_5xx(step.expect.status)):
                break
            if attempt + 1 < attempts:
                if self.remaining() - reserve_s <= interval + 0.2 or self.cancelled():
                    break
                time.sleep(interval)
        assert resp is not None
        label = f"{step.method} {self._display_path(request['url'])}"
        evidence: dict[str, Any] = {
            "request": f"{label}",
            "status": resp.status,
            "duration_ms": round(resp.elapsed_ms, 1),
        }
        if tried > 1:
            evidence["attempts"] = tried
        if problems:
            evidence.update(self._exchange(step, request, resp))
            return StepOutcome(
                scenario,
                step.name,
                Status.FAIL,
                f"{label} {problems[0]}",
                duration_ms=round(resp.elapsed_ms, 1),
                max_ms=self._ceiling(step),
                evidence=evidence,
            )
        captured = self._capture(scenario, step, request, resp, ns)
        if captured:
            evidence["captured"] = sorted(captured)
        return StepOutcome(
            scenario,
            step.name,
            Status.PASS,
            f"{label} answered {resp.status} in {resp.elapsed_ms:.0f} ms as expected",
            duration_ms=round(resp.elapsed_ms, 1),
            max_ms=self._ceiling(step),
            evidence=evidence,
        )

    def _ceiling(self, step: Step) -> float | None:
        """The step's latency ceiling: its own expect.max_ms, else the suite-wide one."""
        return step.expect.max_ms if step.expect.max_ms is not None else self.max_ms

    def _build(self, step: Step, ns: dict[str, Any]) -> dict[str, Any]:
        url = self.templates.text(step.path, ns).strip()
        if not url:
            raise ValueError("path renders empty")
        headers = {
            str(k): self.templates.text(v, ns)
            for k, v in self.templates.render(step.headers, ns).items()
        }
        params = {k: v for k, v in self.templates.render(step.params, ns).items() if v is not None}
        req: dict[str, Any] = {"method": step.method, "url": url, "headers": headers}
        if params:
            req["params"] = params
        if step.json_body is not None:
            req["json"] = self.templates.render(step.json_body, ns)
        elif step.form is not None:
            req["data"] = {k: str(v) for k, v in self.templates.render(step.form, ns).items()}
        elif step.body is not None:
            req["content"] = self.templates.text(step.body, ns).encode()
        return req

    def _send(
        self, scenario: str, step: Step, request: Mapping[str, Any], budget: float
    ) -> _Response:
        """Send one request; the body is read up to a cap within the step's time budget."""
        import httpx

        from readyctl.httpread import DEADLINE, read_body

        t0 = time.perf_counter()
        stop_at = time.monotonic() + budget  # the whole exchange: connect, headers, body
        try:
            req = self.client.build_request(
                timeout=httpx.Timeout(budget, connect=min(budget, 10.0)),
                extensions={DEADLINE: stop_at},
                **request,
            )
            resp = self.client.send(req, stream=True, follow_redirects=step.follow_redirects)
            try:
                got = read_body(resp, cap=MAX_BODY_BYTES, stop_at=stop_at)
            finally:
                resp.close()
            body, truncated = got.data, got.truncated
        except httpx.TooManyRedirects:
            label = f"{step.method} {self._display_path(str(request.get('url')))}"
            raise _StepFailed(
                StepOutcome(
                    scenario,
                    step.name,
                    Status.FAIL,
                    f"{label} redirects in a loop (more than {self.client.max_redirects} "
                    "redirects)",
                    duration_ms=round((time.perf_counter() - t0) * 1000, 1),
                    evidence={"request": label},
                )
            ) from None
        except httpx.TimeoutException:
            elapsed = (time.perf_counter() - t0) * 1000
            label = f"{step.method} {self._display_path(request['url'])}"
            raise _StepFailed(
                StepOutcome(
                    scenario,
                    step.name,
                    Status.FAIL,
                    f"{label} did not answer within {budget:.1f} s",
                    duration_ms=round(elapsed, 1),
                    evidence={"request": label, "timeout_s": round(budget, 1)},
                )
            ) from None
        except (httpx.HTTPError, OSError, ValueError) as e:
            label = f"{step.method} {self._display_path(str(request.get('url')))}"
            kind = type(e).__name__
            detail = self.redactor.clip(str(e).splitlines()[0], 160) if str(e) else kind
            raise _StepFailed(
                self._error(
                    scenario,
                    step,
                    ErrorReason.CONNECTIVITY,
                    f"{label} failed before an answer: {kind}: {detail}",
                )
            ) from None
        elapsed = (time.perf_counter() - t0) * 1000
        return _Response(resp.status_code, resp.headers, body, truncated, elapsed, got.over)

    def _expectations(self, step: Step, resp: _Response, ns: Mapping[str, Any]) -> list[str]:
        exp = step.expect.model_copy(
            update={
                "json_fields": self.templates.render(step.expect.json_fields, ns),
                "headers": self.templates.render(step.expect.headers, ns),
            }
        )
        problems: list[str] = []
        if not status_ok(resp.status, exp.status):
            word = "a server error " if resp.status >= 500 else ""
            problems.append(f"answered {word}{resp.status}, expected {_status_text(exp.status)}")
        if exp.json_fields:
            data = resp.json()
            if data is _MISSING:
                problems.append("did not answer JSON" + (" (body over 1 MB)" * resp.truncated))
            else:
                for path, spec in exp.json_fields.items():
                    problem = match(dig(data, path), spec, f"JSON {path}")
                    if problem:
                        problems.append(problem)
        elif resp.truncated:
            # a body over the cap is evidence (a decompression bomb, an endless stream), never
            # a pass, whatever else the step expects
            problems.append(f"answered {resp.status}, but its {resp.over}")
        for name, spec in exp.headers.items():
            value = resp.headers.get(name, _MISSING)
            if spec is None:
                spec = {"exists": False}
            problem = match(value, spec, f"header {name}")
            if problem:
                problems.append(problem)
        if exp.body_contains is not None:
            text = resp.body.decode("utf-8", "replace")
            if exp.body_contains not in text:
                problems.append(f"body does not contain {exp.body_contains!r}")
        ceiling = self._ceiling(step)
        if ceiling is not None and resp.elapsed_ms > ceiling:
            problems.append(f"took {resp.elapsed_ms:.0f} ms, more than {ceiling:g} ms")
        return problems

    def _capture(
        self,
        scenario: str,
        step: Step,
        request: Mapping[str, Any],
        resp: _Response,
        ns: dict[str, Any],
    ) -> dict[str, Any]:
        got: dict[str, Any] = {}
        data: Any = None
        for name, cap in step.captures().items():
            kind, _, where = cap.source.partition(":")
            if kind == "json":
                if data is None:
                    data = resp.json()
                value = dig(data, where) if data is not _MISSING else _MISSING
            elif kind == "header":
                value = resp.headers.get(where, _MISSING)
            elif kind == "status":
                value = resp.status
            else:
                value = resp.body.decode("utf-8", "replace")
            if value is not _MISSING and cap.regex is not None:
                m = re.search(cap.regex, value if isinstance(value, str) else json.dumps(value))
                value = (m.group(1) if m and m.groups() else m.group(0)) if m else _MISSING
            if value is _MISSING:
                label = f"{step.method} {self._display_path(request['url'])}"
                outcome = StepOutcome(
                    scenario,
                    step.name,
                    Status.FAIL,
                    f"{label} answered {resp.status} but {cap.source}"
                    f"{' /' + cap.regex + '/' if cap.regex else ''} has nothing to capture "
                    f"as {name}",
                    duration_ms=round(resp.elapsed_ms, 1),
                    evidence=self._exchange(step, request, resp),
                )
                raise _StepFailed(outcome)
            secret = cap.secret if cap.secret is not None else is_secret_name(name)
            if secret and isinstance(value, str):
                self.redactor.add(value)
            got[name] = value
        ns.update(got)
        return got

    # -- evidence ---------------------------------------------------------------------------
    def _exchange(
        self, step: Step, request: Mapping[str, Any], resp: _Response | None
    ) -> dict[str, Any]:
        """The redacted request and response, bodies truncated."""
        req_headers = {
            k: ("****" if _SECRET_HEADERS.search(k) else v)
            for k, v in (request.get("headers") or {}).items()
        }
        req_ev: dict[str, Any] = {
            "method": step.method,
            "url": self._display_path(str(request["url"]), full=True),
            "headers": self.redactor.value(req_headers),
        }
        if request.get("params"):
            req_ev["params"] = self.redactor.value(dict(request["params"]))
        if "json" in request:
            req_ev["body"] = self._clip(self.redactor.value(request["json"]))
        elif "data" in request:
            req_ev["body"] = self._clip(self.redactor.value(request["data"]))
        elif "content" in request:
            req_ev["body"] = self._clip(bytes(request["content"]).decode("utf-8", "replace"))
        out: dict[str, Any] = {"request_sent": req_ev}
        if resp is not None:
            headers = {
                k: ("****" if _SECRET_HEADERS.search(k) else v)
                for k, v in list(resp.headers.items())[:40]
            }
            data = resp.json()
            body: Any = (
                self._clip(self.redactor.value(data))
                if data is not _MISSING
                else self._clip(resp.body.decode("utf-8", "replace"))
            )
            out["response"] = {
                "status": resp.status,
                "headers": self.redactor.value(headers),
                "body": body,
                **({"truncated_at_bytes": MAX_BODY_BYTES} if resp.truncated else {}),
            }
        return out

    def _clip(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        text = self.redactor.text(text)
        if len(text) > self.evidence_chars:
            cut = len(text) - self.evidence_chars
            text = f"{text[: self.evidence_chars]}... [{cut} more characters]"
        return text

    def _display_path(self, url: str, full: bool = False) -> str:
        """The path of a URL (the full URL, query stripped, for evidence), redacted."""
        head = self.redactor.text(url).split("?", 1)[0]  # redacted before split or shortened
        if full:
            return head[:300]
        if "://" in head:
            rest = head.split("://", 1)[1]
            path = rest[rest.find("/") :] if "/" in rest else "/"
            host = rest.split("/", 1)[0]
            return f"{host}{path}"[:200]
        return head[:200]

    # -- helpers ----------------------------------------------------------------------------
    def _render_vars(self, raw: Mapping[str, Any], ns: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ns["vars"] = out
        for key, value in raw.items():
            out[key] = self.templates.render(value, ns)
        return out

    @staticmethod
    def _undefined_name(e: Exception) -> str | None:
        if type(e).__name__ != "UndefinedError":
            return None
        m = _UNDEFINED.search(str(e))
        return m.group(1) if m else None

    @staticmethod
    def _template_problem(e: Exception) -> str:
        kind = type(e).__name__
        if kind == "UndefinedError":
            return f"template error: {e}"
        if kind in ("TemplateSyntaxError", "SecurityError"):
            return f"template error: {kind}: {e}"
        return clip(f"{kind}: {e}".strip().rstrip(":"), 200)

    @staticmethod
    def _error(scenario: str, step: Step, reason: ErrorReason, detail: str) -> StepOutcome:
        return StepOutcome(scenario, step.name, Status.ERROR, detail, error_reason=reason)
