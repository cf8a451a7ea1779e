"""http.versioning: routes are versioned, unknown versions rejected, old ones announce sunset."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from readyctl.checks.http._fetch import (
    Fetched,
    HttpSettings,
    ProbeError,
    auth_headers,
    clip,
    fetch_answer,
    optional_session,
)

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


def _http_date(value: str) -> dt.date | None:
    """An HTTP-date header value as a date."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.date() if parsed else None


class Deprecated(BaseModel):
    """One deprecated version: its prefix (or header value) and announced sunset date."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    prefix: str | None = Field(None, description="path prefix of the deprecated version")
    version: str | None = Field(
        None, description="header value of the deprecated version (with `header`)"
    )
    sunset: dt.date | None = Field(
        None, description="the announced Sunset date the header must match"
    )

    @model_validator(mode="after")
    def _names_a_version(self) -> Deprecated:
        if self.prefix is None and self.version is None:
            raise ValueError("a deprecated version needs a prefix or a version")
        return self


def under(prefix: str, path: str) -> str:
    """`path` relative to `prefix`: a path already under the prefix is not prefixed twice."""
    path = "/" + path.lstrip("/")
    if prefix and prefix != "/" and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    return path


def _prefix_only(value: Any) -> Any:
    """A deprecated version given as a plain value is its prefix."""
    return value if isinstance(value, dict | Deprecated) else {"prefix": value}


def _string_or_mapping(schema: dict[str, Any]) -> None:
    """In the JSON schema, an entry is a prefix string or a mapping."""
    schema["items"] = {"anyOf": [{"type": "string"}, schema["items"]]}


DeprecatedEntry = Annotated[Deprecated, BeforeValidator(_prefix_only)]


class Settings(HttpSettings):
    """Settings of http.versioning."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    prefix: str | None = Field(
        None,
        description="version prefix of the known route; default: from the API map (api.prefix)",
    )
    route: str | None = Field(
        None,
        description="a known route, with or without the prefix (fetched with the session when "
        "the map has a login); default: from the API map (the first of api.lists, else api.me)",
    )
    unknown_prefix: str = Field(
        "v99",
        description="a version prefix that must not exist (one segment replaces the prefix's "
        "last one: /api/v1 -> /api/v99)",
    )
    header: str | None = Field(
        None,
        min_length=1,
        description='header that selects the version (e.g. "API-Version"); unset: prefixes',
    )
    version: str = Field("1", description="known version sent in `header`")
    unknown_version: str = Field("99", description="unknown version sent in `header`")
    deprecated: tuple[DeprecatedEntry, ...] = Field(
        (),
        description="deprecated versions (a prefix, or {prefix|version, sunset}); each must "
        "send Deprecation and Sunset headers",
        json_schema_extra=_string_or_mapping,
    )


class Versioning(Check):
    """Probe a known route with its version, without it, and with an unknown version.

    Settings (`checks: {http.versioning: {...}}`):
    - `prefix` (default: from the API map (api.prefix)), `route` (default: from the API map
      (the first of api.lists, else api.me); a route already under the prefix is not prefixed
      again; fetched with the session when the map has a login), `unknown_prefix` (default
      "v99"; one segment replaces the prefix's last one: /api/v1 -> /api/v99, and the bare
      route is /api/items).
    - `header` (default none): set it (e.g. "API-Version") when versions are chosen by a
      header; then `version` (default "1") and `unknown_version` (default "99") are used.
    - `deprecated` (default []): [{prefix: /v0, sunset: 2026-06-30}] (or {version: "0", ...}
      with `header`); each must send Deprecation and Sunset headers.
    - `request_timeout_s` (default 10): the budget of each request, body included.
    """

    meta = CheckMeta(
        id="http.versioning",
        title="API is versioned",
        failure_title="API is not versioned cleanly",
        description=(
            "A version in every route lets the API change without breaking deployed clients; "
            "unknown versions must fail clearly and retiring ones must announce their sunset. "
            "See https://www.rfc-editor.org/rfc/rfc8594."
        ),
        remediation=RemediationSpec(
            text="Mount every route under a version prefix (or select it by a header), answer "
            "unknown versions with a 404 JSON error, and send Deprecation and Sunset headers "
            "from deprecated versions.",
            snippet='app.include_router(v1_router, prefix="/v1")\n'
            "# deprecated: Deprecation: @1767225600\n"
            "#             Sunset: Wed, 30 Jun 2027 23:59:59 GMT",
            link="https://www.rfc-editor.org/rfc/rfc8594",
        ),
        category=Category.HTTP,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=20,
        tags=("api", "seed"),
        refs=("10",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Positive control (the known version answers) first, then the negative probes."""
        s: Settings = ctx.settings()
        header = s.header
        api = ctx.api()
        mapped = api.lists[0].path if api.lists else api.me
        if header:
            prefix = ""
            if s.route is None and mapped is None:
                raise RouteUnknown("lists", ctx.env_name, "a known route to version (or api.me)")
            route = "/" + (s.route or mapped or "").lstrip("/")
        else:
            raw_prefix = s.prefix if s.prefix is not None else api.need("prefix")
            if not raw_prefix.strip("/"):
                raise RouteUnknown("prefix", ctx.env_name, f"{raw_prefix!r} is no version prefix")
            prefix = "/" + raw_prefix.strip("/")
            if s.route is None and mapped is None:
                raise RouteUnknown("lists", ctx.env_name, "a known route to version (or api.me)")
            route = under(prefix, s.route or mapped or "")
        session, _ = optional_session(ctx)
        base_headers = auth_headers(session)
        client = ctx.http(timeout=10)

        def get(path: str, extra: dict[str, str] | None = None) -> Fetched:
            return fetch_answer(ctx, client, "GET", path, headers={**base_headers, **(extra or {})})

        try:
            if header:
                version = s.version
                unknown = s.unknown_version
                known = get(route, {header: version})
                subject = f"version header {header}"
                control = self._control(subject, known, session is not None)
                if control is not None:
                    yield control
                    return
                yield self.passed(
                    subject, f"GET {route} with {header}: {version} answers {known.status}"
                )
                yield self._unknown(
                    f"unknown version {header}: {unknown}",
                    get(route, {header: unknown}),
                    known,
                    session is not None,
                )
            else:
                # /api/v1: the version is the last segment, /api stays (/api/items, /api/v99)
                base = prefix.rsplit("/", 1)[0]
                unknown_prefix = "/" + s.unknown_prefix.strip("/")
                if "/" not in unknown_prefix[1:]:
                    unknown_prefix = base + unknown_prefix
                known = get(prefix + route)
                subject = f"version prefix {prefix}"
                control = self._control(subject, known, session is not None)
                if control is not None:
                    yield control
                    return
                yield self._bare(subject, known, get(base + route), session is not None)
                yield self._unknown(
                    f"unknown version {unknown_prefix}",
                    get(unknown_prefix + route),
                    known,
                    session is not None,
                )
            deprecated = s.deprecated
            if not deprecated:
                yield self.skipped("deprecated versions", "no deprecated versions configured")
            for entry in deprecated:
                yield self._deprecated(ctx, entry, route, header, get)
        except ProbeError as e:
            yield self.errored("*", e.reason, e.detail)

    def _control(self, subject: str, known: Fetched, authed: bool) -> Result | None:
        """An error result when the known versioned route does not answer usefully."""
        if known.status in (404, 405, 410) or known.status >= 500:
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"the known route {known.label} answered {known.status}; fix the API map "
                "(api.lists, api.prefix) or set checks.http.versioning.route",
            )
        if authed and known.status in (401, 403):
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"the known route {known.label} refused the session ({known.status})",
            )
        return None

    def _bare(self, subject: str, known: Fetched, bare: Fetched, authed: bool) -> Result:
        """The route must not also be served without the version prefix."""
        evidence = {"versioned": f"{known.label} -> {known.status}", "bare": bare.label}
        evidence["bare_status"] = str(bare.status)
        if bare.status in (400, 404, 410):
            return self.passed(
                subject,
                f"{known.label} answers {known.status}; without the prefix {bare.label} "
                f"answers {bare.status}",
                evidence=evidence,
            )
        if 300 <= bare.status < 400:
            where = clip(bare.headers.get("location", ""), 80)
            return self.warned(
                subject,
                f"{bare.label} redirects ({bare.status}) to {where or 'somewhere'}; clients "
                "can keep calling unversioned paths",
                evidence=evidence,
            )
        if bare.status == known.status:
            if not authed and known.status in (401, 403):
                return self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"{known.label} and {bare.label} both answer {known.status} without a "
                    "session; configure auth to tell them apart",
                    evidence=evidence,
                )
            return self.failed(
                subject,
                f"{bare.label} answers {bare.status} like {known.label}: the route is also "
                "served without a version",
                evidence=evidence,
            )
        if bare.status >= 500:
            return self.failed(
                subject,
                f"{bare.label} (no version) answers {bare.status}",
                evidence=evidence,
            )
        return self.passed(
            subject,
            f"{known.label} answers {known.status}; {bare.label} answers {bare.status}",
            evidence=evidence,
        )

    def _unknown(self, subject: str, r: Fetched, known: Fetched, authed: bool) -> Result:
        """An unknown version answers a 4xx JSON error, unlike the known one."""
        evidence = {
            "status": r.status,
            "content_type": clip(r.content_type, 80),
            "body": r.excerpt(200),
            "known": f"{known.label} -> {known.status}",
        }
        if 200 <= r.status < 300:
            return self.failed(
                subject,
                f"{r.label} answers {r.status}: an unknown version is served",
                evidence=evidence,
            )
        if 300 <= r.status < 400:
            return self.failed(
                subject,
                f"{r.label} redirects ({r.status}) instead of rejecting the unknown version",
                evidence=evidence,
            )
        if r.status >= 500:
            return self.failed(
                subject, f"{r.label} answers {r.status} instead of a 4xx", evidence=evidence
            )
        if r.status == known.status:
            if not authed:
                return self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"{r.label} answers {r.status} like the known version without a session; "
                    "configure auth to tell them apart",
                    evidence=evidence,
                )
            return self.failed(
                subject,
                f"{r.label} answers {r.status} exactly like the known version",
                evidence=evidence,
            )
        if not r.is_json or r.json() is None:
            return self.failed(
                subject,
                f"{r.label} is rejected with {r.status} but the body is not JSON "
                f"({clip(r.content_type, 40) or 'no content type'})",
                evidence=evidence,
            )
        return self.passed(
            subject, f"{r.label} is rejected with {r.status} and a JSON error", evidence=evidence
        )

    def _deprecated(
        self,
        ctx: Context,
        entry: Deprecated,
        route: str,
        header: str | None,
        get: Callable[..., Fetched],
    ) -> Result:
        """A deprecated version sends Deprecation and Sunset (matching the configured date)."""
        sunset = entry.sunset
        if header:
            version = entry.version if entry.version is not None else (entry.prefix or "")
            subject = f"deprecated {header}: {version}"
            r: Fetched = get(route, {header: version})
        else:
            prefix = "/" + (entry.prefix or "").strip("/")
            subject = f"deprecated {prefix}"
            r = get(prefix + route)
        dep = r.headers.get("deprecation")
        sun = r.headers.get("sunset")
        evidence = {
            "status": r.status,
            "deprecation": clip(dep, 80) if dep else None,
            "sunset": clip(sun, 80) if sun else None,
            "configured_sunset": sunset.isoformat() if sunset else None,
        }
        today = ctx.now().date()
        if r.status in (404, 410):
            if sunset and sunset < today:
                return self.passed(
                    subject, f"{r.label} is retired ({r.status}) after its sunset {sunset}"
                )
            return self.warned(
                subject,
                f"{r.label} already answers {r.status} before its announced sunset",
                evidence=evidence,
            )
        missing = [n for n, v in (("Deprecation", dep), ("Sunset", sun)) if not v]
        if missing:
            return self.failed(
                subject,
                f"{r.label} ({r.status}) sends no {' or '.join(missing)} header",
                evidence=evidence,
            )
        sent = _http_date(sun or "")
        if sunset and sent != sunset:
            return self.warned(
                subject,
                f"{r.label} announces Sunset {clip(sun or '', 40)!r}, configured {sunset}",
                evidence=evidence,
            )
        return self.passed(
            subject,
            f"{r.label} sends Deprecation and Sunset {clip(sun or '', 40)}",
            evidence=evidence,
        )
