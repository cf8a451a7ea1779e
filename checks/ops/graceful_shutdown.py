"""ops.graceful_shutdown: on SIGTERM the server finishes in-flight requests, then exits cleanly."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field
from readyctl.checks.auth._login import credentials, login_spec, missing_credentials
from readyctl.checks.health._http import TargetError
from readyctl.checks.ratelimit._request import ProbeRequest, RequestSpec, run_prepare

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
from readyctl.context import AuthError, Context, login_body
from readyctl.result import ErrorReason, Result

SUBJECTS = ("in-flight requests", "new connections", "exit")


def default_request(ctx: Context) -> dict[str, Any]:
    """The map's login (api.login) as a templated request; RouteUnknown("login") without one.

    A login is slow by design (a password hash per request), is not rate limited on the demo
    and does not depend on the counsel budget or error rate other checks and faults touch.
    """
    spec = login_spec(
        ctx, "the slow request held in flight; or set checks.ops.graceful_shutdown.request"
    )
    form = (spec.body or "json") == "form"
    return {
        "method": spec.method,
        "path": spec.path,
        "body": login_body(spec, "{username}", "{password}"),
        "content_type": "application/x-www-form-urlencoded" if form else "application/json",
    }


class _Held:
    """A request body sent all but its last byte, then held until released."""

    def __init__(
        self, body: bytes, release: threading.Event, wait_s: float, client: httpx.Client | None
    ) -> None:
        """Split the body; `started` is set once the first part is on the wire."""
        self.client = client
        self.head, self.tail = body[:-1], body[-1:]
        self.release = release
        self.wait_s = wait_s
        self.started = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        """Yield the head, report it sent, wait for release, yield the last byte."""
        if self.head:
            yield self.head
        self.started.set()  # the head was written: the server has the request line and headers
        self.release.wait(self.wait_s)
        yield self.tail


class Settings(CheckSettings):
    """Settings of ops.graceful_shutdown."""

    requests: int = Field(10, ge=1, description="slow requests held in flight across SIGTERM")
    request: ProbeRequest | None = Field(
        None,
        description="the request to hold (templates may use {username} and {password}); "
        "default: from the API map (the login, api.login)",
    )
    settle_s: float = Field(
        0.3, ge=0, description="seconds between the last request starting and SIGTERM"
    )
    hold_s: float = Field(
        0.5, ge=0, description="seconds the requests stay in flight after SIGTERM"
    )
    refuse_within_s: float = Field(
        5.0, gt=0, description="seconds within which new connections must be refused"
    )
    grace_s: float = Field(
        30.0, gt=0, description="grace period (seconds) the orchestrator gives before SIGKILL"
    )


class GracefulShutdown(Check):
    """Hold `requests` slow requests in flight, send SIGTERM, and watch the server wind down.

    The requests are slow on purpose: each sends its body but the last byte, so the server has
    started every request before SIGTERM and can finish them only after it; then the server
    does the real work (by default a login: a password hash each). Settings: `requests` (10),
    `request` (method, path, body, auth, prepare, content_type: like a ratelimit policy;
    templates may use {username} and {password} of the test account; default: from the API
    map: the login api.login), `settle_s` (0.3 s between the last request starting and SIGTERM),
    `hold_s` (0.5 s the requests stay in flight after SIGTERM), `refuse_within_s` (5),
    `grace_s` (30: the grace period the orchestrator gives before SIGKILL).
    """

    meta = CheckMeta(
        id="ops.graceful_shutdown",
        title="SIGTERM drains in-flight requests",
        failure_title="SIGTERM drops in-flight requests",
        description=(
            "Every deploy, scale-in and node drain sends SIGTERM; a server that dies at once "
            "turns each of them into failed requests for real users. See "
            "https://cloud.google.com/blog/products/containers-kubernetes/kubernetes-best-practices-terminating-with-grace."
        ),
        remediation=RemediationSpec(
            text="On SIGTERM stop accepting connections, finish in-flight requests within a "
            "grace period shorter than the orchestrator's (terminationGracePeriodSeconds), "
            "then exit 0. Do not exec the server behind a shell that swallows the signal.",
            snippet="uvicorn app:app --timeout-graceful-shutdown 25\n"
            "# Node: process.on('SIGTERM', () => server.close(() => process.exit(0)))",
            link="https://cloud.google.com/blog/products/containers-kubernetes/kubernetes-best-practices-terminating-with-grace",
        ),
        category=Category.OPERATIONS,
        severity=Severity.HIGH,
        requires=(Capability.MANAGED_TARGET, Capability.HTTP),
        safety=Safety.MUTATING,
        exclusive=True,
        order=100,
        timeout_s=90,
        tags=("operations", "managed", "seed"),
        refs=("14",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """Control request, then SIGTERM with requests in flight; three results."""
        s: Settings = ctx.settings()
        count = s.requests
        settle = s.settle_s
        hold = s.hold_s
        refuse_within = s.refuse_within_s
        grace = s.grace_s
        raw = s.request or default_request(ctx)
        if s.request is None and credentials(ctx) is None:
            for subject in SUBJECTS:
                yield self.skipped(subject, missing_credentials(login_spec(ctx)))
            return
        try:
            spec = RequestSpec.parse(raw)
        except (TypeError, ValueError) as e:
            for subject in SUBJECTS:
                yield self.errored(subject, ErrorReason.CONFIG, f"request: {e}")
            return

        def inconclusive(detail: str) -> Iterator[Result]:
            for subject in SUBJECTS:
                yield self.errored(subject, ErrorReason.INCONCLUSIVE, detail)

        try:
            headers = self._auth_headers(ctx) if spec.auth else {}
            client = ctx.http(timeout=15)
            client.headers.update(headers)
            variables: dict[str, Any] = {"run": secrets.token_hex(4), "n": 0}
            creds = credentials(ctx)
            if creds is not None:
                variables["username"], variables["password"] = creds
            variables["prepared"] = run_prepare(ctx, client, spec, variables)
            release = threading.Event()
            release.set()
            control = spec.send(
                ctx,
                client,
                {**variables, "n": 0},
                content=_Held(spec.rendered_body({**variables, "n": 0}), release, 1, None),
                extra_headers=_length(spec.rendered_body({**variables, "n": 0})),
            )
        except (TargetError, AuthError) as e:
            detail = e.detail if isinstance(e, TargetError) else f"auth: {e}"
            yield from inconclusive(f"the probe request could not be prepared: {detail}")
            return
        if not control.ok:
            yield from inconclusive(
                f"{spec.subject} answered {control.status} before any SIGTERM, so it cannot "
                "show what shutdown does"
            )
            return

        release = threading.Event()
        wait_s = grace + hold + 15
        outcomes: list[str | int | None] = [None] * count
        helds: list[_Held] = []
        threads: list[threading.Thread] = []
        for i in range(count):
            body = spec.rendered_body({**variables, "n": i + 1})
            c = ctx.http(timeout=wait_s)
            c.headers.update(headers)
            held = _Held(body, release, wait_s, c)
            helds.append(held)

            def work(
                i: int = i, c: httpx.Client = c, held: _Held = held, body: bytes = body
            ) -> None:
                try:
                    a = spec.send(
                        ctx,
                        c,
                        {**variables, "n": i + 1},
                        content=held,
                        extra_headers=_length(body),
                        budget_s=wait_s,
                    )
                    outcomes[i] = a.status
                except TargetError as e:
                    outcomes[i] = e.detail
                except Exception as e:  # a thread must never die silently
                    outcomes[i] = f"{type(e).__name__}: {ctx.redactor.clip(e, 120)}"
                finally:
                    held.started.set()
                    c.close()  # an idle TLS connection would hold the server's shutdown

            t = threading.Thread(target=work, name=f"graceful-shutdown-{i}", daemon=True)
            threads.append(t)
            t.start()
        deadline = time.monotonic() + 10
        for held in helds:
            held.started.wait(max(0.0, deadline - time.monotonic()))
        early = [o for o in outcomes if o is not None]
        if early or not all(h.started.is_set() for h in helds):
            release.set()
            first = early[0] if early else "not started within 10 s"
            yield from inconclusive(
                f"the {count} slow requests did not all get in flight (first: {first})"
            )
            return

        closed = close_idle_clients(ctx, keep=[h.client for h in helds])
        time.sleep(settle)
        ctx.managed.send_sigterm()
        t_term = time.monotonic()
        refused_after = _wait_refused(ctx, refuse_within)
        remaining_hold = hold - (time.monotonic() - t_term)
        if remaining_hold > 0:
            time.sleep(remaining_hold)
        release.set()
        for t in threads:
            t.join(max(0.1, min(wait_s, ctx.remaining() - 2)))
        left = grace - (time.monotonic() - t_term)
        code = ctx.managed.server_exit_code(max(0.1, min(left, ctx.remaining() - 1)))
        exit_after = time.monotonic() - t_term
        # leave the target serving, as it was found: a deploy's gate goes on using it
        restarted: str | bool = True
        try:
            ctx.managed.restart_server(timeout_s=max(5.0, min(30.0, ctx.remaining() - 1)))
        except Exception as e:  # reported in the evidence; the run's cleanup stops the demo
            restarted = f"{type(e).__name__}: {ctx.redactor.clip(e, 160)}"

        bad = [
            "no answer" if o is None else o
            for o in outcomes
            if not (isinstance(o, int) and 200 <= o < 300)
        ]
        evidence = {
            "requests": count,
            "outcomes": [ctx.redactor.clip(o, 120) for o in outcomes],
            "idle_clients_closed": closed,
            "restarted_after": restarted,
        }
        if bad:
            yield self.failed(
                "in-flight requests",
                f"{len(bad)} of {count} in-flight {spec.subject} requests failed after SIGTERM "
                f"(first: {ctx.redactor.clip(bad[0], 160)})",
                measured=len(bad),
                threshold=0,
                evidence=evidence,
            )
        else:
            yield self.passed(
                "in-flight requests",
                f"all {count} in-flight {spec.subject} requests completed with 2xx after SIGTERM",
                measured=0,
                threshold=0,
                evidence=evidence,
            )
        where = _address(ctx)
        if refused_after is None:
            yield self.failed(
                "new connections",
                f"{where} still accepted new connections {refuse_within:g} s after SIGTERM",
                threshold=refuse_within,
                unit="s",
            )
        else:
            yield self.passed(
                "new connections",
                f"{where} refused new connections {refused_after:.2f} s after SIGTERM",
                measured=round(refused_after, 2),
                threshold=refuse_within,
                unit="s",
            )
        if code is None:
            yield self.failed(
                "exit",
                f"the server had not exited {exit_after:.1f} s after SIGTERM "
                f"(grace period {grace:g} s)",
                threshold=grace,
                unit="s",
            )
        elif code != 0:
            yield self.failed(
                "exit",
                f"the server exited with code {code} {exit_after:.1f} s after SIGTERM, not a "
                "clean exit",
                measured=code,
                threshold=0,
            )
        else:
            yield self.passed(
                "exit",
                f"the server exited with code 0 {exit_after:.1f} s after SIGTERM "
                f"(grace period {grace:g} s)",
                measured=round(exit_after, 2),
                threshold=grace,
                unit="s",
            )

    def _auth_headers(self, ctx: Context) -> dict[str, str]:
        """The run's session header, for a configured request that needs auth."""
        session = ctx.auth()
        return {session.header: session.header_value}


def close_idle_clients(ctx: Context, keep: list[httpx.Client | None]) -> int:
    """Close the run's other HTTP clients (this check runs last and alone).

    An idle keep-alive TLS connection left open by readyctl itself would hold the server's
    shutdown (asyncio waits up to 30 s for the peer's close_notify), so the probe would
    measure its own footprint instead of the server's shutdown.
    """
    with ctx.state.lock:
        fns = list(ctx.state.cleanups)
    n = 0
    for fn in fns:
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, httpx.Client) and owner not in keep and not owner.is_closed:
            owner.close()
            n += 1
    return n


def _length(body: bytes) -> dict[str, str]:
    """An explicit Content-Length, so the held body is not sent chunked."""
    return {"Content-Length": str(len(body))}


def _address(ctx: Context) -> str:
    """host:port of the target's base URL."""
    parts = urlsplit(ctx.environment.base_url or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _wait_refused(ctx: Context, within: float) -> float | None:
    """Seconds until a new TCP connection is refused, or None if it never is within `within`."""
    parts = urlsplit(ctx.environment.base_url or "")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    t0 = time.monotonic()
    while time.monotonic() - t0 < within and ctx.remaining() > 1:
        try:
            with socket.create_connection((host, port), timeout=1):
                pass
        except (ConnectionRefusedError, ConnectionResetError):
            return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    return None
