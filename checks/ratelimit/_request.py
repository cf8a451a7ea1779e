"""Configurable probe requests: method, path and body templates, auth, and a prepare step."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, Field
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl.check import CheckSettings
from readyctl.context import Context
from readyctl.result import ErrorReason

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|minute|h|hour|d|day)?\s*$", re.I)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def seconds(value: Any) -> float:
    """A window such as 60, "60s", "1m", "1h" or "hour" in seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    if text in ("minute", "hour", "day"):
        text = "1" + text
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{value!r} is not a window (write 60, 60s, 1m or 1h)")
    unit = (m.group(2) or "s").lower()
    factor = 86400 if unit in ("d", "day") else _UNITS[unit]
    return float(m.group(1)) * factor


def human_window(s: float) -> str:
    """60 -> "1m", 3600 -> "1h", 90 -> "90s"."""
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s >= 60 and s % 60 == 0:
        return f"{int(s // 60)}m"
    return f"{s:g}s"


def _lookup(name: str, variables: Mapping[str, Any]) -> str:
    """Resolve a variable (n, run, prepared.a.b, ...) in the simple template form."""
    head, *rest = name.split(".")
    value: Any = variables.get(head)
    for part in rest:
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        raise ValueError(f"template variable {{{name}}} has no value")
    return str(value)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Fill templates in strings (recursively): jinja2 when it has {{ }}, else {name} forms.

    The simple form replaces only the names in `variables` (so literal braces stay as they
    are); values are inserted once and never rendered again.
    """
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            from jinja2.sandbox import SandboxedEnvironment

            env = SandboxedEnvironment(autoescape=False)
            return env.from_string(value).render(**variables)
        names = "|".join(re.escape(k) for k in sorted(variables, key=len, reverse=True))
        if not names:
            return value
        simple = re.compile(rf"\{{((?:{names})(?:\.[A-Za-z0-9_\-]+)*)\}}")
        return simple.sub(lambda m: _lookup(m.group(1), variables), value)
    if isinstance(value, Mapping):
        return {str(k): render(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, variables) for v in value]
    return value


class ProbeRequest(CheckSettings):
    """A templated request in check settings (ratelimit.policies, ops.graceful_shutdown)."""

    method: str = Field("GET", description="HTTP method")
    path: str = Field(min_length=1, description="path template, e.g. /v1/items/{prepared.id}")
    body: Any = Field(None, description="body template: a JSON value, or a string sent as it is")
    auth: bool = Field(False, description="send the run's test session")
    content_type: str = Field(
        "application/json",
        description="content type of the body (application/x-www-form-urlencoded: a form)",
    )
    headers: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="extra request headers"
    )
    prepare: ProbeRequest | None = Field(
        None, description="a request sent once before; its JSON answer is {prepared}"
    )


def _window_ok(value: Any) -> Any:
    """A window `seconds()` understands (raises ValueError otherwise)."""
    seconds(value)
    return value


class RateLimitPolicy(ProbeRequest):
    """One policy of ratelimit.policies: the request plus its limit and window."""

    limit: int = Field(ge=1, description="requests allowed per window")
    window: Annotated[float | str, AfterValidator(_window_ok)] = Field(
        60, description="the limit's window: seconds, or 60s, 1m, 1h, hour"
    )
    accept_statuses: tuple[int, ...] | None = Field(
        None,
        description="the endpoint's normal answers (default: any non-429 under 500, with at "
        "least one 2xx)",
    )


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """One templated request; `prepare` runs once before and its JSON answer is `prepared`."""

    method: str
    path: str
    body: Any = None
    auth: bool = False
    content_type: str = "application/json"
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    prepare: RequestSpec | None = None

    @classmethod
    def parse(cls, data: ProbeRequest | Mapping[str, Any]) -> RequestSpec:
        """Build from typed settings, or a mapping of the same keys (ValueError if invalid)."""
        if not isinstance(data, ProbeRequest):
            if not isinstance(data, Mapping) or not data.get("path"):
                raise ValueError("a request needs at least a path")
            data = ProbeRequest.model_validate(data)
        return cls(
            method=data.method.upper(),
            path=data.path,
            body=data.body,
            auth=data.auth,
            content_type=data.content_type,
            headers={str(k): str(v) for k, v in data.headers.items()},
            prepare=cls.parse(data.prepare) if data.prepare else None,
        )

    @property
    def subject(self) -> str:
        """METHOD path (the template, so the subject is stable across runs)."""
        return f"{self.method} {self.path}"

    def send(
        self,
        ctx: Context,
        client: httpx.Client,
        variables: Mapping[str, Any],
        *,
        budget_s: float = 15,
        content: Any = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Render and send; `content` (bytes or an iterator) replaces the rendered body."""
        try:
            path = render(self.path, variables)
            body = render(self.body, variables)
        except Exception as e:
            raise TargetError(ErrorReason.CONFIG, f"template of {self.subject}: {e}") from None
        headers = dict(self.headers)
        headers.update(extra_headers or {})
        json_body = None
        if content is None and body is not None:
            if isinstance(body, str):
                content = body.encode()
                headers.setdefault("Content-Type", self.content_type)
            elif self.content_type == "application/json":
                json_body = body
            else:
                content = self._encode(body)
                headers.setdefault("Content-Type", self.content_type)
        elif content is not None:
            headers.setdefault("Content-Type", self.content_type)
        return fetch(
            ctx,
            client,
            self.method,
            path,
            json_body=json_body,
            content=content,
            headers=headers,
            budget_s=budget_s,
        )

    def _encode(self, body: Any) -> bytes:
        """A structured body as bytes: form-encoded or JSON, per the content type."""
        if self.content_type == "application/x-www-form-urlencoded" and isinstance(body, Mapping):
            return str(httpx.QueryParams({str(k): str(v) for k, v in body.items()})).encode()
        return json.dumps(body).encode()

    def rendered_body(self, variables: Mapping[str, Any]) -> bytes:
        """The body as the bytes that would be sent."""
        body = render(self.body, variables)
        if body is None:
            return b""
        if isinstance(body, str):
            return body.encode()
        return self._encode(body)


def run_prepare(
    ctx: Context,
    client: httpx.Client,
    spec: RequestSpec,
    variables: Mapping[str, Any],
    budget_s: float = 15,
) -> dict[str, Any]:
    """Send the prepare request; its JSON answer becomes `prepared` (TargetError if it fails)."""
    if spec.prepare is None:
        return {}
    for _ in range(3):  # a 5xx says nothing about the prepare request itself; try again
        answer = spec.prepare.send(ctx, client, variables, budget_s=budget_s)
        if answer.status < 500:
            break
    data = answer.json()
    if not answer.ok or not isinstance(data, dict):
        raise TargetError(
            ErrorReason.INCONCLUSIVE,
            f"the prepare step {spec.prepare.subject} answered {answer.status}"
            + ("" if isinstance(data, dict) else " without a JSON object"),
        )
    return data
