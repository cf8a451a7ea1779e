"""infra.feature_flags: a feature-flag provider is configured, reachable, and a flag reads.

Seed item 16. The provider comes from `checks.infra.feature_flags.url` or from the SDK's
variables in the environment (Unleash, Flagsmith, GrowthBook, LaunchDarkly, OpenFeature's
flagd). A provider that is only named (no URL readyctl can read) is a warn, never a pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

import httpx
from pydantic import Field

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context
from readyctl.result import Result

Provider = Literal["unleash", "flagsmith", "growthbook", "launchdarkly", "flagd", "generic"]
MAX_BODY = 5_000_000


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and how to read a provider's flags."""

    provider: str
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    declared_in: str = ""


def _join(base: str, *parts: str) -> str:
    """`base` and path parts joined with single slashes."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def _first(values: dict[str, str], *names: str) -> tuple[str, str] | None:
    """(name, value) of the first variable set."""
    for n in names:
        v = (values.get(n) or "").strip()
        if v:
            return n, v
    return None


class Settings(CheckSettings):
    """Settings of infra.feature_flags."""

    url: str | None = Field(
        None,
        min_length=1,
        description="a URL answering the provider's flags as JSON (default: from the SDK "
        "variables in the environment)",
    )
    provider: Provider | None = Field(
        None,
        description="how to read `url` (unleash, flagsmith, growthbook, launchdarkly, flagd, "
        "generic); named without a url it is a declaration only (warn)",
    )
    token_var: str | None = Field(
        None,
        min_length=1,
        description="environment variable holding the API token sent with `url`",
    )
    flag: str | None = Field(
        None, min_length=1, description="a flag that must be readable (default: any flag)"
    )


class FeatureFlags(Check):
    """The flag provider answers, and a flag (the named one, else any) is readable.

    Settings: `url`, `provider`, `token_var`, `flag`. Without `url`, the SDK variables are read:
    UNLEASH_URL (+ UNLEASH_API_TOKEN), FLAGSMITH_ENVIRONMENT_KEY (+ FLAGSMITH_API_URL),
    GROWTHBOOK_CLIENT_KEY (+ GROWTHBOOK_API_HOST), LAUNCHDARKLY_SDK_KEY, FLAGD_HOST; an
    OPENFEATURE_PROVIDER alone is a declaration (warn). Tokens are secrets and never shown.
    """

    meta = CheckMeta(
        id="infra.feature_flags",
        title="Feature flags are readable from the provider",
        failure_title="Feature-flag provider unreadable",
        description=(
            "Flags let a risky feature be switched off without a deploy, but only when the "
            "application can actually read them in production. See "
            "https://openfeature.dev/docs/reference/intro/."
        ),
        remediation=RemediationSpec(
            text="Configure the flag SDK's URL and server-side token in the environment and "
            "make sure the provider answers with the environment's flags.",
            snippet="UNLEASH_URL=https://flags.example.org/api\nUNLEASH_API_TOKEN=<server token>",
            link="https://openfeature.dev/docs/reference/intro/",
        ),
        category=Category.OPERATIONS,
        severity=Severity.LOW,
        requires=(Capability.ENV,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        retryable=True,
        tags=("infra", "flags", "seed"),
        refs=("16",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result for the provider."""
        s: Settings = ctx.settings()
        values = ctx.env_source().values
        found = self._endpoint(ctx, s, values)
        if found is None:
            yield self.skipped(
                "feature flags",
                "not applicable: no feature-flag provider declared (UNLEASH_URL, "
                "FLAGSMITH_ENVIRONMENT_KEY, GROWTHBOOK_CLIENT_KEY, LAUNCHDARKLY_SDK_KEY, "
                f"FLAGD_HOST or checks.{self.id}.url)",
            )
            return
        if isinstance(found, str):
            yield self.warned(
                "feature flags",
                f"{found} is declared but names no URL readyctl can read: set "
                f"checks.{self.id}.url (evidence is only the declaration)",
            )
            return
        yield self._read(ctx, found, s)

    def _endpoint(self, ctx: Context, s: Settings, values: dict[str, str]) -> Endpoint | str | None:
        """The endpoint to read; a string when a provider is only declared; None: none."""
        token = None
        if s.token_var:
            token = (values.get(s.token_var) or ctx.environ.get(s.token_var) or "").strip()
            if token:
                ctx.redactor.add(token)
        if s.url:
            provider = s.provider or "generic"
            return self._for(provider, s.url, token, f"checks.{self.id}.url")
        if s.provider:
            found = self._from_env(ctx, values, only=s.provider)
            return found or f"provider {s.provider} (checks.{self.id}.provider)"
        found = self._from_env(ctx, values)
        if found is None and (values.get("OPENFEATURE_PROVIDER") or "").strip():
            return f"OpenFeature provider {values['OPENFEATURE_PROVIDER'].strip()}"
        return found

    def _from_env(
        self, ctx: Context, values: dict[str, str], only: str | None = None
    ) -> Endpoint | None:
        """An endpoint from an SDK's variables."""

        def secret(*names: str) -> str | None:
            got = _first(values, *names)
            if got:
                ctx.redactor.add(got[1])
            return got[1] if got else None

        url = _first(values, "UNLEASH_URL", "UNLEASH_API_URL")
        if url and only in (None, "unleash"):
            token = secret("UNLEASH_API_TOKEN", "UNLEASH_CLIENT_KEY", "UNLEASH_API_KEY")
            return self._for("unleash", url[1], token, url[0])
        key = _first(values, "FLAGSMITH_ENVIRONMENT_KEY", "FLAGSMITH_SERVER_SIDE_ENVIRONMENT_KEY")
        if key and only in (None, "flagsmith"):
            ctx.redactor.add(key[1])
            api = _first(values, "FLAGSMITH_API_URL")
            base = api[1] if api else "https://edge.api.flagsmith.com/api/v1"
            return self._for("flagsmith", base, key[1], key[0])
        key = _first(values, "GROWTHBOOK_CLIENT_KEY")
        if key and only in (None, "growthbook"):
            ctx.redactor.add(key[1])
            host = _first(values, "GROWTHBOOK_API_HOST")
            base = host[1] if host else "https://cdn.growthbook.io"
            url = _join(base, "api", "features", key[1])
            return Endpoint("growthbook", url, declared_in=key[0])
        key = _first(values, "LAUNCHDARKLY_SDK_KEY", "LD_SDK_KEY")
        if key and only in (None, "launchdarkly"):
            ctx.redactor.add(key[1])
            base = _first(values, "LAUNCHDARKLY_BASE_URI")
            root = base[1] if base else "https://sdk.launchdarkly.com"
            return self._for("launchdarkly", root, key[1], key[0])
        host = _first(values, "FLAGD_HOST")
        if host and only in (None, "flagd"):
            port = (values.get("FLAGD_PORT") or "8013").strip()
            tls = (values.get("FLAGD_TLS") or "").strip().lower() in ("1", "true", "yes")
            base = f"{'https' if tls else 'http'}://{host[1]}:{port}"
            return self._for("flagd", base, None, host[0])
        return None

    @staticmethod
    def _for(provider: str, base: str, token: str | None, declared_in: str) -> Endpoint:
        """The flag-reading request of a provider at `base`."""
        auth: tuple[tuple[str, str], ...] = ()
        if provider == "unleash":
            auth = (("Authorization", token),) if token else ()
            return Endpoint(provider, _join(base, "client", "features"), "GET", auth, declared_in)
        if provider == "flagsmith":
            auth = (("X-Environment-Key", token),) if token else ()
            return Endpoint(provider, _join(base, "flags") + "/", "GET", auth, declared_in)
        if provider == "launchdarkly":
            auth = (("Authorization", token),) if token else ()
            url = _join(base, "sdk", "latest-flags")
            return Endpoint(provider, url, "GET", auth, declared_in)
        if provider == "flagd":
            url = _join(base, "flagd.evaluation.v1.Service", "ResolveAll")
            return Endpoint(provider, url, "POST", (), declared_in)
        auth = (("Authorization", token),) if token else ()
        return Endpoint(provider, base, "GET", auth, declared_in)

    def _read(self, ctx: Context, ep: Endpoint, s: Settings) -> Result:
        """Fetch the flags and judge them."""
        subject = f"feature flags ({ep.provider})"
        client = ctx.http(timeout=10, max_body=MAX_BODY)
        for name in ctx.environment.headers:  # the target's headers are not the provider's
            client.headers.pop(name, None)
        shown = ctx.redactor.text(ep.url)
        try:
            resp = client.request(
                ep.method,
                ep.url,
                headers=dict(ep.headers),
                json={} if ep.method == "POST" else None,
            )
        except httpx.HTTPError as e:
            return self.failed(
                subject,
                f"the {ep.provider} flag provider at {shown} ({ep.declared_in}) did not answer: "
                f"{type(e).__name__}",
                evidence={"url": shown},
            )
        if resp.status_code in (401, 403):
            return self.failed(
                subject,
                f"the {ep.provider} provider at {shown} refused the token ({resp.status_code}): "
                "the application cannot read its flags either",
                measured=resp.status_code,
                threshold=200,
            )
        if resp.status_code != 200:
            return self.failed(
                subject,
                f"the {ep.provider} provider at {shown} answered {resp.status_code}",
                measured=resp.status_code,
                threshold=200,
            )
        try:
            flags = _flag_names(ep.provider, resp.json())
        except ValueError:
            return self.failed(subject, f"the {ep.provider} provider at {shown} answered no JSON")
        ev = {"url": shown, "declared_in": ep.declared_in, "flags": len(flags)}
        if s.flag is not None:
            if s.flag in flags:
                return self.passed(
                    subject,
                    f"flag {s.flag} is readable from {ep.provider} at {shown} ({len(flags)} flags)",
                    evidence=ev,
                )
            return self.failed(
                subject,
                f"flag {s.flag} is not among the {len(flags)} flags {ep.provider} at {shown} "
                "answers",
                evidence=ev,
            )
        if not flags:
            return self.failed(
                subject,
                f"{ep.provider} at {shown} answers but holds no flag for this environment",
                measured=0,
                threshold=1,
                evidence=ev,
            )
        return self.passed(
            subject,
            f"{len(flags)} flags are readable from {ep.provider} at {shown} (e.g. {flags[0]})",
            measured=len(flags),
            evidence=ev,
        )


def _names(items: Any) -> list[str]:
    """Flag names from a list of flag objects or a mapping keyed by name."""
    if isinstance(items, dict):
        return [str(k) for k in items]
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict):
            name = it.get("name") or it.get("key") or (it.get("feature") or {}).get("name")
            if name:
                out.append(str(name))
        elif isinstance(it, str):
            out.append(it)
    return out


def _flag_names(provider: str, data: Any) -> list[str]:
    """The flag names in a provider's answer."""
    if provider in ("unleash", "growthbook") and isinstance(data, dict):
        return _names(data.get("features"))
    if provider == "flagd" and isinstance(data, dict):
        return _names(data.get("flags"))
    if provider in ("flagsmith", "launchdarkly"):
        return _names(data)
    if isinstance(data, dict):
        for key in ("features", "flags", "toggles"):
            if key in data:
                return _names(data[key])
    return _names(data)
