"""observability.error_tracker: production reports exceptions to an error tracker (Sentry, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from pydantic import Field

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Severity,
)
from readyctl.context import Context
from readyctl.result import Result

DEFAULT_VARIABLES = (
    "SENTRY_DSN",
    "BUGSNAG_API_KEY",
    "ROLLBAR_ACCESS_TOKEN",
    "HONEYBADGER_API_KEY",
    "AIRBRAKE_PROJECT_KEY",
)
SUBJECT = "error tracker"


def dsn_problem(value: str) -> str | None:
    """Why a Sentry DSN is malformed (scheme://key@host/project), or None."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.username:
        return "has no public key (https://<key>@host/<project>)"
    if not parts.hostname:
        return "has no host"
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if not project:
        return "has no project id"
    return None


class Settings(CheckSettings):
    """Settings of observability.error_tracker."""

    variables: tuple[str, ...] = Field(
        DEFAULT_VARIABLES,
        description="environment variables naming an error tracker; any one set counts",
    )


class ErrorTracker(Check):
    """A production environment names an error tracker; a Sentry DSN must be well formed.

    Settings: `variables` (SENTRY_DSN, BUGSNAG_API_KEY, ROLLBAR_ACCESS_TOKEN, HONEYBADGER_API_KEY,
    AIRBRAKE_PROJECT_KEY): any one of them set counts. Values are secrets and never shown.
    """

    meta = CheckMeta(
        id="observability.error_tracker",
        title="Error tracker configured",
        failure_title="No error tracker configured",
        description=(
            "Unhandled exceptions in production should reach people with a stack trace and "
            "context, not only a log line nobody reads. See "
            "https://docs.sentry.io/concepts/key-terms/dsn-explainer/."
        ),
        remediation=RemediationSpec(
            text="Create a project in your error tracker and set its DSN or key in the "
            "production environment (and initialise the SDK at startup).",
            snippet="SENTRY_DSN=https://<public-key>@o0.ingest.sentry.io/<project-id>",
            link="https://docs.sentry.io/concepts/key-terms/dsn-explainer/",
        ),
        category=Category.OBSERVABILITY,
        severity=Severity.MEDIUM,
        requires=(Capability.ENV,),
        timeout_s=10,
        tags=("observability", "env", "seed"),
        refs=("8",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the environment."""
        if not ctx.environment.production:
            yield self.skipped(
                SUBJECT, f"{ctx.env_name} is not a production environment (production: false)"
            )
            return
        s: Settings = ctx.settings()
        names = list(s.variables)
        src = ctx.env_source()
        found = [n for n in names if (src.values.get(n) or "").strip()]
        if not found:
            yield self.failed(
                SUBJECT,
                f"none of {', '.join(names)} is set in {src.origin}",
                evidence={"looked_for": names},
            )
            return
        name = found[0]
        value = src.values[name].strip()
        ctx.redactor.add(value)
        if name.endswith("_DSN"):
            problem = dsn_problem(value)
            if problem:
                yield self.failed(SUBJECT, f"{name} is set but {problem}")
                return
            host = urlsplit(value).hostname or ""
            yield self.passed(SUBJECT, f"{name} is set (a DSN for {host})")
            return
        yield self.passed(SUBJECT, f"{name} is set")
