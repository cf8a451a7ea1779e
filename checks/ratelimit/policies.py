"""ratelimit.policies: each configured endpoint allows `limit` requests, then answers 429."""

from __future__ import annotations

import concurrent.futures
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field
from readyctl.checks.health._http import Answer, TargetError, header_evidence
from readyctl.checks.ratelimit._request import (
    RateLimitPolicy,
    RequestSpec,
    human_window,
    run_prepare,
    seconds,
)

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
from readyctl.context import AuthError, Context, LoginUnknown
from readyctl.redact import clip
from readyctl.result import ErrorReason, Result

LIMIT_HEADERS = (
    "Retry-After",
    "RateLimit",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
_INT = re.compile(r"^\s*(\d+)")


def _header_int(headers: httpx.Headers, *names: str, key: str | None = None) -> int | None:
    """The leading integer of the first header present (or `key=` inside a RateLimit header)."""
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        m = re.search(rf"\b{key}=(\d+)", value) if key is not None else _INT.match(value)
        if m:
            return int(m.group(1))
    return None


def prior_usage(headers: httpx.Headers, limit: int) -> int:
    """Requests of this window counted before ours, from the advertised limit and remaining."""
    advertised = _header_int(headers, "RateLimit-Limit", "X-RateLimit-Limit")
    remaining = _header_int(headers, "RateLimit-Remaining", "X-RateLimit-Remaining")
    if advertised is None:
        advertised = _header_int(headers, "RateLimit", key="limit")
    if remaining is None:
        remaining = _header_int(headers, "RateLimit", key="remaining")
    if advertised != limit or remaining is None:
        return 0
    return max(0, min(limit - 1, limit - 1 - remaining))


def _used_in_window(headers: httpx.Headers, limit: int) -> int | None:
    """Requests the limiter says it counted in its current window (None when it does not say)."""
    advertised = _header_int(headers, "RateLimit-Limit", "X-RateLimit-Limit")
    remaining = _header_int(headers, "RateLimit-Remaining", "X-RateLimit-Remaining")
    if advertised is None:
        advertised = _header_int(headers, "RateLimit", key="limit")
    if remaining is None:
        remaining = _header_int(headers, "RateLimit", key="remaining")
    if advertised != limit or remaining is None:
        return None
    return max(0, limit - remaining)


def _new_window(headers: httpx.Headers, limit: int) -> bool:
    """The limiter advertises this limit with most of it remaining: a window just began."""
    advertised = _header_int(headers, "RateLimit-Limit", "X-RateLimit-Limit")
    remaining = _header_int(headers, "RateLimit-Remaining", "X-RateLimit-Remaining")
    if advertised is None:
        advertised = _header_int(headers, "RateLimit", key="limit")
    if remaining is None:
        remaining = _header_int(headers, "RateLimit", key="remaining")
    return advertised == limit and remaining is not None and remaining >= limit // 2


def counts(status: int, accept: frozenset[int] | None) -> bool:
    """Whether an answer is a normal one the limiter counts (not 429, not a 5xx)."""
    if status == 429:
        return False
    return status in accept if accept is not None else status < 500


def limit_signalled(headers: httpx.Headers) -> bool:
    """A 429 tells the client when to come back: Retry-After or RateLimit-style headers."""
    return any(
        h in headers for h in ("Retry-After", "RateLimit", "RateLimit-Reset", "X-RateLimit-Reset")
    ) or ("RateLimit-Remaining" in headers or "X-RateLimit-Remaining" in headers)


class Settings(CheckSettings):
    """Settings of ratelimit.policies."""

    policies: tuple[RateLimitPolicy, ...] = Field(
        (),
        description="endpoints and their limits (default: none, the check skips: a limit is "
        "the API's own policy and cannot be guessed; the managed demo brings its own)",
    )
    concurrency: int = Field(10, ge=1, description="requests in flight at once")
    max_wait_s: float = Field(
        0.0, ge=0, description="seconds to wait out a budget other traffic already spent"
    )
    request_timeout_s: float = Field(15.0, gt=0, description="seconds per request")


class RateLimitPolicies(Check):
    """Send limit+1 requests per policy; nothing 429 before the limit, a signalled 429 after.

    Settings: `policies`, a list of {method, path, limit, window, body, auth, prepare,
    content_type, headers, accept_statuses}. `accept_statuses` lists the endpoint's normal
    answers (default: any non-429 answer under 500, with at least one 2xx). `body` and `path`
    are templates: jinja2 (`{{ n }}`) or the simple form, `{n}` the request counter, `{run}`
    random per run, `{prepared.id}` from the JSON answer of the `prepare` request. No default:
    without policies the check skips naming `checks.ratelimit.policies.policies` (readyctl
    never invents a limit, not even for a known login route; the managed demo's default shape
    brings its register, password-reset and counsel-message limits from
    readyctl/demo/profile.py). `concurrency` (10) requests in flight; `max_wait_s` (0) to wait
    out a budget that other traffic already spent; `request_timeout_s` (15) per request.
    """

    meta = CheckMeta(
        id="ratelimit.policies",
        title="Rate limits hold at their configured limits",
        failure_title="Rate limits are missing or wrong",
        description=(
            "Without per-endpoint limits one client can brute-force logins, flood sign-up "
            "mail or run up the AI bill; a limit that trips early locks real users out. See "
            "https://cheatsheetseries.owasp.org/cheatsheets/Denial_of_Service_Cheat_Sheet.html."
        ),
        remediation=RemediationSpec(
            text="Limit each sensitive endpoint per client (IP or user) and answer 429 with "
            "Retry-After and RateLimit-* headers once the budget is spent.",
            snippet="HTTP/1.1 429 Too Many Requests\nRetry-After: 42\nRateLimit-Limit: 5\n"
            "RateLimit-Remaining: 0\nRateLimit-Reset: 42",
            link="https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/",
        ),
        category=Category.HTTP,
        severity=Severity.HIGH,
        requires=(Capability.HTTP,),
        safety=Safety.MUTATING,
        exclusive=True,
        order=50,
        timeout_s=180,
        tags=("ratelimit", "seed"),
        refs=("9",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per policy."""
        s: Settings = ctx.settings()
        if not s.policies:
            yield self.skipped(
                "*",
                "no rate-limit policies configured: list each limited endpoint with its limit "
                "and window under checks.ratelimit.policies.policies (readyctl does not guess "
                "an API's limits)",
            )
            return
        concurrency = s.concurrency
        max_wait = s.max_wait_s
        self._budget = s.request_timeout_s
        run_id = secrets.token_hex(4)
        for i, item in enumerate(s.policies):
            ctx.check_deadline()
            subject = f"{item.method} {item.path}".upper()
            try:
                spec = RequestSpec.parse(item)
                subject = spec.subject
                limit = item.limit
                window = seconds(item.window)
                accept = frozenset(item.accept_statuses) if item.accept_statuses else None
            except (TypeError, ValueError) as e:
                yield self.errored(
                    subject or f"policy {i + 1}", ErrorReason.CONFIG, f"policy {i + 1}: {e}"
                )
                continue
            yield self._policy(ctx, spec, limit, window, run_id, concurrency, max_wait, accept)

    def _client(self, ctx: Context, spec: RequestSpec) -> httpx.Client | Result:
        """A client, authenticated when the policy says so (or the skip/blocked result)."""
        if not spec.auth:
            return ctx.http(timeout=15)
        try:
            return ctx.authed_http(timeout=15)
        except LoginUnknown as e:
            return self.skipped(spec.subject, f"the policy needs a session: {e}")
        except AuthError as e:
            return self.blocked(spec.subject, f"auth.session: {e}")

    def _first(
        self, ctx: Context, spec: RequestSpec, client: httpx.Client, variables: dict[str, Any]
    ) -> Answer:
        """The first request (the positive control); a 5xx is retried twice."""
        for _ in range(3):
            answer = spec.send(ctx, client, {**variables, "n": 1}, budget_s=self._budget)
            if answer.status < 500:
                break
        return answer

    def _policy(
        self,
        ctx: Context,
        spec: RequestSpec,
        limit: int,
        window: float,
        run_id: str,
        concurrency: int,
        max_wait: float,
        accept: frozenset[int] | None,
    ) -> Result:
        """Probe one policy."""
        subject = spec.subject
        per = f"{limit} per {human_window(window)}"
        client = self._client(ctx, spec)
        if isinstance(client, Result):
            return client
        variables: dict[str, Any] = {"run": run_id, "n": 0}
        try:
            variables["prepared"] = run_prepare(ctx, client, spec, variables, self._budget)
            started = time.monotonic()
            first = self._first(ctx, spec, client, variables)
            if first.status == 429:
                wait = _header_int(first.headers, "Retry-After")
                if wait is None or wait > max_wait or wait > ctx.remaining() - 10:
                    return self.errored(
                        subject,
                        ErrorReason.INCONCLUSIVE,
                        f"the first request already answered 429 (budget spent by earlier "
                        f"traffic; Retry-After {wait if wait is not None else 'absent'})",
                        evidence=header_evidence(first.headers, LIMIT_HEADERS),
                    )
                time.sleep(wait + 0.5)
                started = time.monotonic()
                first = self._first(ctx, spec, client, variables)
        except TargetError as e:
            return self.errored(subject, e.reason, f"{subject}: {e.detail}")
        if not counts(first.status, accept):
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"the first request answered {first.status}, so the probe does not reach the "
                "limited handler",
                evidence={"body": first.snippet()},
            )
        prior = prior_usage(first.headers, limit)
        budget = limit - prior
        statuses: dict[int, int] = {first.status: 1}
        counted, errors, early, sent, n = 1, 0, 0, 1, 1
        max_sent = budget + budget // 2 + 5  # room for 5xx answers the limiter did not count
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            while counted < budget and sent < max_sent and not early:
                ctx.check_deadline()
                need = min(budget - counted, max_sent - sent)
                numbers = list(range(n + 1, n + need + 1))
                n += need
                sent += need
                futures = [
                    pool.submit(
                        spec.send, ctx, client, {**variables, "n": k}, budget_s=self._budget
                    )
                    for k in numbers
                ]
                for f in futures:
                    try:
                        a = f.result()
                    except TargetError as e:
                        return self.errored(subject, e.reason, f"{subject}: {e.detail}")
                    statuses[a.status] = statuses.get(a.status, 0) + 1
                    if a.status == 429:
                        early += 1
                    elif counts(a.status, accept):
                        counted += 1
                    else:
                        errors += 1
        ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
        evidence: dict[str, Any] = {
            "limit": limit,
            "window_s": window,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "earlier_in_window": prior,
        }
        note = f" ({prior} earlier requests in this window were already counted)" if prior else ""
        if early and counted + errors < budget:
            return self.failed(
                subject,
                f"{subject} answered 429 after {counted + errors} of the {per} allowed requests "
                f"({early} early 429s: too strict or a budget shared with other traffic){note}",
                measured=counted + errors + prior,
                threshold=limit,
                evidence=evidence,
            )
        if not early and counted < budget:
            return self.errored(
                subject,
                ErrorReason.INCONCLUSIVE,
                f"only {counted} of {sent} requests got a usable answer, so the limit was never "
                "reached",
                evidence=evidence,
            )
        last: Answer | None = None
        if not early:
            try:
                for _ in range(3):  # a 5xx does not tell; try again
                    n += 1
                    last = spec.send(ctx, client, {**variables, "n": n}, budget_s=self._budget)
                    if last.status < 500:
                        break
            except TargetError as e:
                return self.errored(subject, e.reason, f"{subject}: {e.detail}")
            assert last is not None
            evidence["over_limit_status"] = last.status
            evidence["headers"] = header_evidence(last.headers, LIMIT_HEADERS)
            if last.status != 429 and ok == 0 and accept is None:
                return self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"no request was answered 2xx ({last.status} at request {limit + 1}); if "
                    "that is the endpoint's normal answer, list it under accept_statuses",
                    evidence=evidence,
                )
            elapsed = time.monotonic() - started
            evidence["probe_s"] = round(elapsed, 1)
            fresh = prior_usage(last.headers, limit)
            used = _used_in_window(last.headers, limit)
            # the limiter counted fewer requests in its window than this probe sent into it:
            # a window boundary fell inside the probe (a fixed window can start right after
            # the first request)
            forgot = used is not None and used < prior + counted + 1
            if last.status != 429 and forgot and used is not None:
                # fill the limiter's new window, then one more must be refused: that tells a
                # limiter that enforces from one that only counts
                forgot = False
                for _ in range(limit - used + 1):
                    ctx.check_deadline()
                    try:
                        n += 1
                        nxt = spec.send(ctx, client, {**variables, "n": n}, budget_s=self._budget)
                    except TargetError as e:
                        return self.errored(subject, e.reason, f"{subject}: {e.detail}")
                    if nxt.status == 429:
                        last = nxt
                        evidence["over_limit_status"] = last.status
                        evidence["headers"] = header_evidence(last.headers, LIMIT_HEADERS)
                        break
                    now = _used_in_window(nxt.headers, limit)
                    if now is None or now < used:  # yet another window: cannot tell
                        forgot = True
                        break
                    used, last = now, nxt
            if last.status != 429 and (
                elapsed >= window or _new_window(last.headers, limit) or forgot
            ):
                # a limiter whose window ended during the probe rightly lets request
                # limit + 1 through: that is no evidence of a missing limit
                why = (
                    f"the probe took {elapsed:.0f} s, longer than the {human_window(window)} window"
                    if elapsed >= window
                    else f"the limiter's headers show a new window ({fresh} used)"
                    if not forgot
                    else f"the limiter counted {used} requests in its window where the probe "
                    f"sent {prior + counted + 1}: a new window began during the probe"
                )
                return self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"{subject} answered {last.status} to request {limit + 1}, but {why}, so "
                    "the limit could not be reached within one window; raise `concurrency` or "
                    "probe a faster route",
                    evidence=evidence,
                )
            if last.status != 429:
                return self.failed(
                    subject,
                    f"{subject} answered {last.status} to request {limit + 1}: no rate limit at "
                    f"{per}{note}",
                    measured=last.status,
                    threshold=429,
                    evidence=evidence,
                )
            if not limit_signalled(last.headers):
                return self.warned(
                    subject,
                    f"{subject} answered 429 at request {limit + 1} but without Retry-After or "
                    f"RateLimit headers{note}",
                    measured=429,
                    evidence=evidence,
                )
        hint = f" (counting {errors} failed requests)" if early else ""
        if last is not None and "Retry-After" in last.headers:
            hint = f" with Retry-After {clip(last.headers['Retry-After'], 20)}"
        elif last is not None:
            hint = " with RateLimit headers"
        return self.passed(
            subject,
            f"{subject} allowed {per} and answered 429 at request {limit + 1}{hint}{note}",
            measured=limit,
            threshold=limit,
            evidence=evidence,
        )
