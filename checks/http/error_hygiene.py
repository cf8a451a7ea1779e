"""http.error_hygiene: error responses leak no internals and share one JSON shape."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

from pydantic import Field, JsonValue
from readyctl.checks.health._http import HttpMethod
from readyctl.checks.http._fetch import Fetched, HttpSettings, ProbeError, clip, fetch

from readyctl.apimap import RouteUnknown
from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

# What an error body must not contain: (kind, pattern).
LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "stack trace",
        re.compile(
            r"Traceback \(most recent call last\)|\bFile \"[^\"]+\", line \d+"
            r"|^\s+at [\w$.<>]+\(.*:\d+(:\d+)?\)|goroutine \d+ \[running\]|Stack trace:\s*#0"
            r"|\bat [\w.$]+\([\w]+\.java:\d+\)|\.rb:\d+:in `",
            re.MULTILINE,
        ),
    ),
    (
        "file path",
        re.compile(
            r"(?<![\w/.])(?:/(?:home|usr|var|opt|srv|app|etc|tmp|root|workspace|code|src|Users)"
            r"/[\w.@+-]+/[\w./@+-]*|[A-Za-z]:\\\\?(?:[\w .-]+\\\\?)+)"
            r"|site-packages|node_modules/|\.(?:py|js|ts|rb|php|java|go|cs):\d+"
        ),
    ),
    (
        "framework banner",
        re.compile(
            r"\b(?:Werkzeug|Django|Flask|Express|Laravel|Symfony|Ruby on Rails|Spring Boot"
            r"|Whitelabel Error Page|Apache Tomcat|Jetty|Starlette|FastAPI|uvicorn|gunicorn"
            r"|ASP\.NET|Microsoft-IIS|nginx/\d|Apache/\d|PHP/\d)\b"
            r"|\b(?:fastapi|starlette|pydantic|django|flask|sqlalchemy|psycopg2?)\.(?!dev\b)[a-z_]+",
        ),
    ),
    (
        "SQL",
        re.compile(
            r"\bSELECT\s+[\w*,.\s\"]+\s+FROM\s+\"?\w|\bINSERT\s+INTO\s+\w|\bUPDATE\s+\"?\w+\"?\s+SET\b"
            r"|\bDELETE\s+FROM\s+\w"
            r"|(?i:syntax error at or near|\bSQLSTATE\b|\bORA-\d{5}"
            r"|duplicate key value violates|relation \"[^\"]+\" does not exist"
            r"|\bpsycopg|\bSQLAlchemy|\bsqlite3?\.|\bPG::|You have an error in your SQL syntax)",
        ),
    ),
)


# the leak patterns cost about 4 s of CPU per MB; a trace, path or banner sits near the top of
# an error body, so only its start is scanned (a larger body is judged on its size as well)
LEAK_SCAN_CHARS = 64_000


def leaks(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) for every kind of leak found in the start of `text`."""
    found = []
    text = text[:LEAK_SCAN_CHARS]
    for kind, pattern in LEAKS:
        m = pattern.search(text)
        if m:
            found.append((kind, clip(m.group(0).strip(), 80)))
    return found


class Settings(HttpSettings):
    """Settings of http.error_hygiene."""

    json_endpoint: str | None = Field(
        None,
        description="an endpoint that takes a JSON body (default: from the API map, "
        "api.json_endpoint, else the JSON login api.login: a malformed body never reaches the "
        "handler)",
    )
    json_method: HttpMethod | None = Field(
        None, description="method of json_endpoint (default: the API map's, else POST)"
    )
    malformed_body: str = Field('{"broken', description="a body that is not valid JSON")
    wrong_types_body: JsonValue | None = Field(
        None,
        description="valid JSON with the wrong field types (default: the login's username and "
        'password fields as a number and a list, {"email": 5, "password": []})',
    )
    not_found_prefix: str = Field(
        "/readyctl-404-", description="path of the 404 probe (a random suffix is added)"
    )


class ErrorHygiene(Check):
    """Provoke a 404 and two validation errors; inspect bodies and compare their shapes.

    Settings (`checks: {http.error_hygiene: {...}}`):
    - `json_endpoint`, `json_method` (default: from the API map, api.json_endpoint, else the
      JSON login api.login; a malformed body never reaches a login's handler). Unknown: the
      check skips naming api.json_endpoint.
    - `malformed_body` (default '{"broken'), `wrong_types_body` (default: the login's fields
      with the wrong types, {"email": 5, "password": []}).
    - `not_found_prefix` (default "/readyctl-404-"): a random suffix is added.
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.error_hygiene",
        title="Error responses are clean and consistent",
        failure_title="Error responses leak internals",
        description=(
            "Stack traces, file paths, framework names and SQL in error bodies map the system "
            "for an attacker, and a different error shape per layer breaks clients. See "
            "https://cheatsheetseries.owasp.org/cheatsheets/Error_Handling_Cheat_Sheet.html."
        ),
        remediation=RemediationSpec(
            text="Install one error handler that answers every error (404, validation, 500) "
            "with the same JSON shape and logs the details server-side only.",
            snippet='{"error": {"code": "validation_error", "message": "...", '
            '"request_id": "..."}}',
            link="https://www.rfc-editor.org/rfc/rfc9457",
        ),
        category=Category.HTTP,
        severity=Severity.MEDIUM,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("errors", "security"),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per provoked error, then one for the shared shape."""
        s: Settings = ctx.settings()
        endpoint, method, wrong = self._endpoint(ctx, s)  # RouteUnknown: skipped
        malformed = s.malformed_body.encode()
        missing = f"{s.not_found_prefix}{secrets.token_hex(6)}"
        client = ctx.http(timeout=10)
        jheaders = {"Content-Type": "application/json", "Accept": "application/json"}
        probes: list[tuple[str, str, bytes | None, tuple[int, ...]]] = [
            ("404 page", missing, None, (404,)),
            ("malformed JSON", endpoint, malformed, (400, 415, 422)),
            ("wrong types", endpoint, json.dumps(wrong).encode(), (400, 422)),
        ]
        shapes: dict[str, tuple[str, ...] | None] = {}
        try:
            for subject, path, body, expected in probes:
                if body is None:
                    r = fetch(ctx, client, "GET", path, headers={"Accept": "application/json"})
                else:
                    r = fetch(ctx, client, method, path, headers=jheaders, content=body)
                result, comparable = self._judge(subject, r, expected)
                if comparable:
                    shapes[subject] = self._keys(r)
                yield result
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)
            return
        yield self._shape(shapes)

    @staticmethod
    def _endpoint(ctx: Context, s: Settings) -> tuple[str, str, JsonValue]:
        """(path, method, wrong-types body): the settings, else the map's JSON endpoint or login."""
        if s.json_endpoint is not None:
            path, method = s.json_endpoint, s.json_method or "POST"
            login = None
        else:
            api = ctx.api()
            login = api.login if api.login is not None and api.login.path else None
            if api.json_endpoint is not None:
                path, method = api.json_endpoint.path, api.json_endpoint.method
            elif login is not None and (login.body or "json") == "json":
                path, method = login.path, login.method
            else:
                why = "nor a JSON login" if login is None else "the login takes a form"
                raise RouteUnknown("json_endpoint", ctx.env_name, why)
            method = s.json_method or method
        if s.wrong_types_body is not None:
            return path, method, s.wrong_types_body
        if login is not None and login.path == path and (login.body or "json") == "json":
            fields = (login.username_field or "email", login.password_field or "password")
        else:
            fields = ("email", "password")
        return path, method, {fields[0]: 5, fields[1]: []}

    def _judge(self, subject: str, r: Fetched, expected: tuple[int, ...]) -> tuple[Result, bool]:
        """The result for one provoked error, and whether its shape counts for the comparison."""
        evidence: dict[str, Any] = {
            "request": r.label,
            "status": r.status,
            "content_type": clip(r.content_type, 80),
            "body": r.excerpt(),
        }
        found = leaks(r.text())
        if found:
            kinds = ", ".join(k for k, _ in found)
            evidence["leaks"] = {k: m for k, m in found}
            return (
                self.failed(
                    subject,
                    f"the {subject} error ({r.status}) contains a {kinds}: {found[0][1]!r}",
                    evidence=evidence,
                ),
                True,
            )
        if r.truncated:
            # an answer over the cap is evidence, never a pass (and not a shape to compare)
            evidence["body_limit_bytes"] = len(r.body)
            return (
                self.failed(
                    subject, f"{r.label} answered {r.status}, but its {r.over}", evidence=evidence
                ),
                False,
            )
        # positive control: the probe really provoked the error it meant to
        if r.status < 400 or (r.status in (404, 405) and 404 not in expected):
            why = (
                f"{r.label} answered {r.status}, not an error"
                if r.status < 400
                else f"{r.label} answered {r.status}; the endpoint does not take this request "
                "(set api.json_endpoint, or checks.http.error_hygiene.json_endpoint)"
            )
            return self.errored(subject, ErrorReason.INCONCLUSIVE, why, evidence=evidence), False
        if r.status == 429:
            return (
                self.errored(
                    subject, ErrorReason.INCONCLUSIVE, f"{r.label} was rate limited (429)"
                ),
                False,
            )
        if r.status >= 500:
            return (
                self.warned(
                    subject,
                    f"the {subject} probe got {r.status} (no leak), where a 4xx was expected",
                    evidence=evidence,
                ),
                True,
            )
        return (
            self.passed(
                subject,
                f"the {subject} error ({r.status}) carries no trace, path, banner or SQL",
                evidence=evidence,
            ),
            True,
        )

    @staticmethod
    def _keys(r: Fetched) -> tuple[str, ...] | None:
        """Sorted top-level keys of a JSON object body, or None when it is not one."""
        data = r.json()
        if not isinstance(data, dict):
            return None
        return tuple(sorted(clip(str(k), 40) for k in data))

    def _shape(self, shapes: dict[str, tuple[str, ...] | None]) -> Result:
        """All error bodies are JSON objects with the same top-level keys."""
        subject = "error shape"
        if len(shapes) < 2:
            return self.errored(
                subject, ErrorReason.INCONCLUSIVE, "fewer than two errors could be provoked"
            )
        evidence = {k: list(v) if v is not None else "not a JSON object" for k, v in shapes.items()}
        not_json = [k for k, v in shapes.items() if v is None]
        if not_json:
            return self.failed(
                subject,
                f"the {not_json[0]} error body is not a JSON object",
                evidence={"keys": evidence},
            )
        distinct = set(shapes.values())
        if len(distinct) > 1:
            return self.failed(
                subject,
                f"{len(shapes)} errors use {len(distinct)} different shapes (top-level keys)",
                evidence={"keys": evidence},
            )
        keys = ", ".join(next(iter(distinct))) or "none"
        return self.passed(
            subject,
            f"{len(shapes)} errors share one JSON shape (top-level keys: {clip(keys, 80)})",
            evidence={"keys": evidence},
        )
