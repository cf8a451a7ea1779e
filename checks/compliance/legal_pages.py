"""compliance.legal_pages: the privacy policy and the terms of service answer 200 with a page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
from pydantic import Field
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl.apimap import PageUrl, RouteUnknown
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
from readyctl.discovery import LEGAL_PAGE_PLACES as USUAL_PLACES
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

TITLES = {"privacy_policy": "privacy policy", "terms": "terms of service"}
MIN_TEXT = 200  # characters of readable text: less is a placeholder, not a policy
MAX_PAGE = 2_000_000
MAX_REDIRECTS = 5
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


class Settings(CheckSettings):
    """Settings of compliance.legal_pages."""

    privacy_policy: PageUrl | None = Field(
        None, description="the privacy policy page; default: the API map (api.privacy_policy)"
    )
    terms: PageUrl | None = Field(
        None, description="the terms of service page; default: the API map (api.terms)"
    )
    usual_places: bool = Field(
        True,
        description="when the map has no URL, try the usual paths (/privacy, /terms, ...)",
    )
    request_timeout_s: float = Field(10.0, gt=0, le=60, description="budget of each request")


def readable_text(body: bytes) -> tuple[str, str]:
    """(title, visible text) of an HTML page, whitespace collapsed."""
    text = body.decode("utf-8", "replace")
    m = _TITLE.search(text)
    title = " ".join(html.unescape(_TAG.sub(" ", m.group(1))).split()) if m else ""
    visible = " ".join(html.unescape(_TAG.sub(" ", _DROP.sub(" ", text))).split())
    return title, visible


class LegalPages(Check):
    """GET the privacy policy and the terms of service; each must be a real HTML page.

    The URLs come from the settings, else the API map (`api.privacy_policy`, `api.terms`; an
    OpenAPI document's `info.termsOfService` fills `terms`), else the usual paths on the
    target. A page passes when it answers 200 (after at most 5 redirects) with an HTML
    content type and at least 200 characters of readable text. A URL that is known but
    broken fails; no page anywhere fails when the API has user accounts (it collects
    personal data: GDPR Art. 13 asks for the notice), and skips naming the key otherwise.
    """

    meta = CheckMeta(
        id="compliance.legal_pages",
        title="Privacy policy and terms pages are published",
        failure_title="Privacy policy or terms page is missing",
        description=(
            "An API that keeps personal data owes its users a privacy notice (GDPR Art. 13) "
            "and terms they agreed to; a dead link in the sign-up flow is a legal exposure "
            "and an app-store rejection. See https://gdpr-info.eu/art-13-gdpr/."
        ),
        remediation=RemediationSpec(
            text="Publish the privacy policy and the terms of service as HTML pages (on the API "
            "host or the company's site) and link them where users sign up; tell readyctl "
            "where they are.",
            snippet="environments:\n  production:\n    api:\n"
            "      privacy_policy: https://example.com/legal/privacy\n"
            "      terms: https://example.com/legal/terms",
            link="https://gdpr-info.eu/art-13-gdpr/",
        ),
        category=Category.COMPLIANCE,
        severity=Severity.LOW,
        requires=(Capability.HTTP,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("compliance", "gdpr", "seed"),
        refs=("20",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per page."""
        s: Settings = ctx.settings()
        client = ctx.http(timeout=s.request_timeout_s, max_body=MAX_PAGE)
        for key in ("privacy_policy", "terms"):
            ctx.check_deadline()
            subject = TITLES[key]
            url = getattr(s, key)
            source = f"checks.{self.id}.{key}"
            if url is None:
                url = ctx.api().get(key)
                source = f"api.{key} ({ctx.api().sources.get(key) or 'map'})"
            try:
                if url is not None:
                    yield self._judge(ctx, client, subject, url, source, s.request_timeout_s)
                    continue
                found = self._usual(ctx, client, key, s) if s.usual_places else None
                if found is not None:
                    where, answer = found
                    yield self._verdict(subject, where, "found at a usual place", answer)
                    continue
                yield self._nowhere(ctx, key, s)
            except TargetError as e:
                yield self.errored(subject, e.reason, e.detail)

    def _get(
        self, ctx: Context, client: httpx.Client, url: str, budget_s: float
    ) -> tuple[str, Answer]:
        """GET `url`, following up to MAX_REDIRECTS redirects; (final URL, answer)."""
        for _ in range(MAX_REDIRECTS + 1):
            answer = fetch(
                ctx, client, "GET", url, headers={"Accept": "text/html"}, budget_s=budget_s
            )
            location = answer.headers.get("location")
            if answer.status not in (301, 302, 303, 307, 308) or not location:
                return url, answer
            base = client.base_url.join(url) if client.base_url else httpx.URL(url)
            url = str(base.join(location))
        raise TargetError(ErrorReason.INCONCLUSIVE, f"GET {url}: more than 5 redirects")

    def _judge(
        self,
        ctx: Context,
        client: httpx.Client,
        subject: str,
        url: str,
        source: str,
        budget_s: float,
    ) -> Result:
        where, answer = self._get(ctx, client, url, budget_s)
        return self._verdict(subject, where, f"from {source}", answer)

    def _usual(
        self, ctx: Context, client: httpx.Client, key: str, s: Settings
    ) -> tuple[str, Answer] | None:
        """The first usual path that answers a real page."""
        for path in USUAL_PLACES[key]:
            try:
                where, answer = self._get(ctx, client, path, min(5.0, s.request_timeout_s))
            except TargetError:
                continue
            if not self._problems(answer):
                return where, answer
        return None

    def _nowhere(self, ctx: Context, key: str, s: Settings) -> Result:
        """No URL and nothing at the usual places: a fail when the API keeps accounts."""
        subject = TITLES[key]
        api = ctx.api()
        tried = ", ".join(USUAL_PLACES[key]) if s.usual_places else "(usual places off)"
        accounts = [k for k in ("register", "login", "me") if api.get(k) is not None]
        if not accounts:
            unknown = RouteUnknown(key, ctx.env_name, f"not at {tried}")
            return self.skipped(subject, unknown.message, evidence={"tried": tried})
        return self.failed(
            subject,
            f"no {subject} found: the API map has no api.{key} and none of {tried} answers "
            f"an HTML page, yet the API keeps user accounts ({', '.join(accounts)}); publish "
            f"one, or set environments.{ctx.env_name}.api.{key} to where it lives",
            evidence={"tried": tried, "accounts": accounts},
        )

    @staticmethod
    def _problems(answer: Answer) -> list[str]:
        """What keeps an answer from being a readable HTML page."""
        problems: list[str] = []
        if answer.status != 200:
            return [f"answered {answer.status}"]
        ctype = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in ("text/html", "application/xhtml+xml"):
            problems.append(f"content type {ctype or 'missing'}, not text/html")
        _, text = readable_text(answer.body)
        if len(text) < MIN_TEXT:
            problems.append(f"only {len(text)} characters of text (a placeholder?)")
        return problems

    def _verdict(self, subject: str, url: str, how: str, answer: Answer) -> Result:
        title, text = readable_text(answer.body)
        evidence = {
            "url": url,
            "how": how,
            "status": answer.status,
            "content_type": answer.headers.get("content-type"),
            "title": clip(title, 120) or None,
            "text_chars": len(text),
        }
        problems = self._problems(answer)
        if problems:
            return self.failed(
                subject,
                f"the {subject} at {url} is not a readable page: " + "; ".join(problems),
                evidence={**evidence, "problems": problems, "body": answer.snippet(200)},
            )
        named = f" ({clip(title, 60)})" if title else ""
        return self.passed(
            subject,
            f"the {subject} at {url}{named} answers 200 with {len(text)} characters of text",
            evidence=evidence,
        )
