"""database.tls: a remote database server offers TLS (and, if required, refuses plaintext)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field
from readyctl.checks.database._db import (
    connect,
    describe,
    error_words,
    host_of,
    is_local,
    target_url,
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
from readyctl.context import Context
from readyctl.result import ErrorReason, Result

NO_SSL_MARKERS = (
    "does not support ssl",
    "server does not support",
    "ssl off",
    "ssl is not enabled",
)


class Settings(CheckSettings):
    """Settings of database.tls."""

    remote: Literal["auto"] | bool = Field(
        "auto",
        description="whether the database is remote (auto: any host that is not loopback or a "
        "socket); a local database is skipped",
    )
    require_tls_only: bool = Field(
        False, description="also fail when the server accepts plaintext connections"
    )


class DatabaseTls(Check):
    """A TLS connection (sslmode=require) succeeds to a remote database server.

    Settings: `remote` ("auto" (default: non-loopback hosts), true, false); `require_tls_only`
    (default false): also fail when the server accepts plaintext connections.
    """

    meta = CheckMeta(
        id="database.tls",
        title="Database server offers TLS",
        failure_title="Database server does not offer TLS",
        description=(
            "Without TLS, credentials and every query and row cross the network in clear text "
            "between the app and a remote database. See "
            "https://www.postgresql.org/docs/current/ssl-tcp.html."
        ),
        remediation=RemediationSpec(
            text="Turn ssl on in postgresql.conf with a certificate and key (managed services: "
            "enable or force SSL), use hostssl lines in pg_hba.conf, and connect with "
            "sslmode=require or verify-full.",
            snippet="ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'",
            link="https://www.postgresql.org/docs/current/ssl-tcp.html",
        ),
        category=Category.TRANSPORT,
        severity=Severity.HIGH,
        requires=(Capability.DB,),
        safety=Safety.READ_ONLY,
        timeout_s=30,
        tags=("database", "tls"),
        refs=("4",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """TLS probe; when it is refused, a plaintext positive control tells 'off' from 'down'."""
        import psycopg

        url = target_url(ctx)
        assert url
        subject = describe(url)
        settings: Settings = ctx.settings()
        host = host_of(url)
        remote = settings.remote
        is_remote = (not is_local(host)) if remote == "auto" else remote
        if not is_remote:
            yield self.skipped(subject, f"the database host {host or 'socket'} is local")
            return
        try:
            tls = self._probe(ctx, url, "require")
        except psycopg.Error as e:
            words = error_words(ctx, e)
            if not any(m in words.lower() for m in NO_SSL_MARKERS):
                yield self.errored(
                    subject, ErrorReason.CONNECTIVITY, f"the TLS probe failed: {words}"
                )
                return
            try:  # positive control: the server answers at all
                self._probe(ctx, url, "disable")
            except psycopg.Error as e2:
                yield self.errored(
                    subject,
                    ErrorReason.INCONCLUSIVE,
                    f"TLS was refused ({words}) and a plaintext connection failed too "
                    f"({error_words(ctx, e2)})",
                )
                return
            yield self.failed(
                subject,
                f"{subject} accepts plaintext connections but refuses TLS ({words})",
                evidence={"tls": False, "plaintext_accepted": True},
            )
            return
        plaintext = True
        try:
            self._probe(ctx, url, "disable")
        except psycopg.Error:
            plaintext = False
        evidence = {**tls, "plaintext_accepted": plaintext}
        summary = f"{subject} speaks {tls.get('protocol') or 'TLS'} ({tls.get('cipher') or '?'})"
        if plaintext and settings.require_tls_only:
            yield self.failed(
                subject, summary + ", but also accepts plaintext connections", evidence=evidence
            )
            return
        extra = "; plaintext is also accepted" if plaintext else "; plaintext is refused"
        yield self.passed(subject, summary + extra, evidence=evidence)

    @staticmethod
    def _probe(ctx: Context, url: str, sslmode: str) -> dict[str, Any]:
        """Connect with one sslmode; return the TLS attributes of the session."""
        conn = connect(ctx, url, timeout=8, statement_timeout_s=5, sslmode=sslmode)
        with conn:
            row = conn.execute(
                "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            in_use = bool(conn.pgconn.ssl_in_use)
        if not in_use:
            return {"tls": False}
        return {
            "tls": True,
            "protocol": row[1] if row else None,
            "cipher": row[2] if row else None,
        }
