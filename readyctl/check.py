"""The Check base class, its validated metadata, and `register()`."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from readyctl.errors import CheckDefinitionError
from readyctl.result import Curve, ErrorReason, Number, Remediation, Result

if TYPE_CHECKING:
    from readyctl.context import Context


class Category(enum.StrEnum):
    """Where a check's result is grouped and scored."""

    CONFIG = "config"
    SECRETS = "secrets"
    TRANSPORT = "transport"
    HTTP = "http"
    AUTH = "auth"
    DATABASE = "database"
    MIGRATIONS = "migrations"
    BACKUPS = "backups"
    SMOKE = "smoke"
    LOAD = "load"
    OBSERVABILITY = "observability"
    OPERATIONS = "operations"
    COMPLIANCE = "compliance"


class Severity(enum.StrEnum):
    """How much a failure matters; sets the default weight and the gate."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Capability(enum.StrEnum):
    """What a check needs from the environment."""

    ENV = "env"
    REPO = "repo"
    HTTP = "http"
    AUTH = "auth"
    DB = "db"
    AWS = "aws"
    LOAD = "load"
    MANAGED_TARGET = "managed_target"


class Safety(enum.StrEnum):
    """What a check may do to the target."""

    PASSIVE = "passive"
    READ_ONLY = "read_only"
    MUTATING = "mutating"
    LOAD = "load"


_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$")


class RemediationSpec(BaseModel):
    """The fix for a failing check."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str = Field(min_length=1)
    snippet: str | None = None
    link: str | None = None

    def build(self) -> Remediation:
        """As result data."""
        return Remediation(self.text, self.snippet, self.link)


class CheckMeta(BaseModel):
    """Frozen, validated metadata of a check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str = Field(min_length=3, max_length=59)
    failure_title: str = Field(min_length=3, max_length=59)
    description: str = Field(min_length=10)
    remediation: RemediationSpec
    category: Category
    severity: Severity
    requires: tuple[Capability, ...] = ()
    safety: Safety = Safety.PASSIVE
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    exclusive: bool = False
    order: int = Field(default=0, description="exclusive phase order: higher runs later")
    retryable: bool = False
    tags: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    diagnoses_probe: bool = Field(
        default=False,
        description="runs even when its capability's probe fails (it explains why it failed)",
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"check id {v!r} must look like area.name (lower case, dotted)")
        return v

    @field_validator("description")
    @classmethod
    def _one_link(cls, v: str) -> str:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", v.strip()) if s]
        if len(sentences) > 4:
            raise ValueError("description must be 1-3 sentences (why it matters)")
        return v


class CheckSettings(BaseModel):
    """Base of a check's typed settings (readyctl.yaml `checks: {ID: {...}}`).

    Subclasses declare each key with a type, a default and a one-line `description`;
    unknown keys are refused before anything runs. No float setting means anything as NaN
    or infinity, so those are refused too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Check:
    """A readiness check: metadata plus one `run(ctx)` that yields results."""

    meta: ClassVar[CheckMeta]
    # the check's typed settings; None (plugins written before settings were typed) means a
    # free-form mapping, which `ctx.settings()` then returns as a plain dict
    Settings: ClassVar[type[CheckSettings] | None] = None

    def run(self, ctx: Context) -> Iterable[Result]:
        """Yield results; never raise a finding, never build clients of your own."""
        raise NotImplementedError

    # -- result helpers bound to this check's id ----------------------------------------
    @property
    def id(self) -> str:
        """This check's id."""
        return self.meta.id

    def passed(self, subject: str, summary: str, **kw: Any) -> Result:
        """The property holds for `subject`."""
        return Result.passed(self.id, subject, summary, **kw)

    def warned(self, subject: str, summary: str, **kw: Any) -> Result:
        """The property holds partly for `subject`."""
        return Result.warned(self.id, subject, summary, **kw)

    def failed(self, subject: str, summary: str, **kw: Any) -> Result:
        """The property does not hold for `subject`."""
        return Result.failed(self.id, subject, summary, **kw)

    def skipped(self, subject: str, reason: str, **kw: Any) -> Result:
        """Not applicable to `subject`."""
        return Result.skipped(self.id, subject, reason, **kw)

    def blocked(self, subject: str, root_cause: str, **kw: Any) -> Result:
        """`subject` cannot be checked because `root_cause` failed."""
        return Result.blocked_by(self.id, subject, root_cause, **kw)

    def errored(self, subject: str, reason: ErrorReason, detail: str, **kw: Any) -> Result:
        """`subject` could not be checked."""
        return Result.errored(self.id, subject, reason, detail, **kw)

    def measure(
        self,
        subject: str,
        value: Number,
        *,
        curve: Curve,
        summary: str,
        fail_at: Number | None = None,
        warn_at: Number | None = None,
        unit: str | None = None,
        **kw: Any,
    ) -> Result:
        """A measurement scored on `curve`, with status from `fail_at`/`warn_at`."""
        return Result.measure(
            self.id,
            subject,
            value,
            curve=curve,
            summary=summary,
            fail_at=fail_at,
            warn_at=warn_at,
            unit=unit,
            **kw,
        )


_REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: validate and add a check to the registry (duplicate ids are errors)."""
    meta = getattr(cls, "meta", None)
    if not isinstance(meta, CheckMeta):
        raise CheckDefinitionError(f"{cls.__qualname__} has no CheckMeta `meta` attribute")
    existing = _REGISTRY.get(meta.id)
    same = existing is not None and (existing.__module__, existing.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )
    if existing is not None and existing is not cls and not same:
        raise CheckDefinitionError(
            f"check id {meta.id!r} is registered twice: by {existing.__module__} and "
            f"{cls.__module__}"
        )
    _REGISTRY[meta.id] = cls
    return cls


def check_class(check_id: str) -> type[Check] | None:
    """The check class with this id, if any: registered with `register()`, else in the catalog.

    Built-in checks and plugins are found by the catalog (readyctl.registry), which does not
    go through `register()`; without the fallback their typed Settings would be ignored.
    """
    cls = _REGISTRY.get(check_id)
    if cls is None:
        from readyctl.registry import load_catalog

        cls = load_catalog().checks.get(check_id)
    return cls


def settings_problem(cls: type[Check], raw: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Why `raw` is not valid settings for `cls`: (key path inside the check, message).

    An unknown key names the closest valid key ("did you mean `path`?").
    """
    import difflib

    from pydantic import ValidationError

    model = cls.Settings
    if model is None:
        return None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return (), f"must be a mapping of settings (got {type(raw).__name__})"
    try:
        model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        labelled = tuple(first["loc"])
        loc = _input_loc(raw, labelled)
        if first["type"] == "extra_forbidden":
            key = str(loc[-1])
            fields = _nested_fields(model, labelled[:-1])
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.5)
            if not close:
                close = [f for f in fields if key in f or f in key][:1]
            hint = f"; did you mean `{close[0]}`?" if close else ""
            known = ", ".join(sorted(fields)) or "none: this check takes no settings"
            return loc, f"unknown setting {key!r}{hint} (valid: {known})"
        msg = first["msg"]
        if "input" in first and first["type"] != "missing":
            shown = repr(first["input"])
            if len(shown) < 60:
                msg += f" (got {shown})"
        return loc, msg
    return None


def _input_loc(raw: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` as a path into the input: without the labels pydantic adds for union members
    (`LoadTask`, `tuple[...]`, a tag) and for dict keys (`[key]`). A last part naming a field
    that is not in the input (a missing one) stays."""
    out: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        indexes = isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)
        if indexes or (isinstance(node, dict) and part in node):
            node = node[part]
        elif not (i == len(loc) - 1 and isinstance(node, dict) and part != "[key]"):
            continue
        out.append(part)
    return tuple(out)


def _models_in(annotation: Any) -> list[tuple[str | None, type[BaseModel]]]:
    """(union tag, model) for each pydantic model inside an annotation (through unions,
    Annotated and containers)."""
    import typing

    from pydantic import Tag

    out: list[tuple[str | None, type[BaseModel]]] = []

    def walk(ann: Any, tag: str | None) -> None:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append((tag, ann))
        elif typing.get_origin(ann) is typing.Annotated:
            base, *meta = typing.get_args(ann)
            walk(base, next((m.tag for m in meta if isinstance(m, Tag)), tag))
        else:
            for arg in typing.get_args(ann):
                walk(arg, tag)

    walk(annotation, None)
    return out


def _nested_fields(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model reached by following pydantic's `loc` (best effort): list
    indexes and dict keys are stepped over, a union member's label picks that member."""

    def keys(m: type[BaseModel]) -> dict[str, Any]:  # as written in the config: aliases
        return {info.alias or name: info for name, info in m.model_fields.items()}

    candidates: list[tuple[str | None, type[BaseModel]]] = [(None, model)]
    for part in loc:
        named = [m for tag, m in candidates if part in (tag, m.__name__)]
        if named:
            candidates = [(None, named[0])]
            continue
        holders = [m for _, m in candidates if part in keys(m)]
        if not holders:
            continue  # a list index, a dict key or another label
        candidates = _models_in(keys(holders[0])[part].annotation)
        if not candidates:
            return []
    return sorted({f for _, m in candidates for f in keys(m)})


def registered() -> Iterator[type[Check]]:
    """Every check class registered so far."""
    return iter(_REGISTRY.values())
