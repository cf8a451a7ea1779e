"""Shared TLS helpers: the base URL's TLS endpoint, bounded handshakes, leaf certificate facts."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from readyctl.redact import clip

if TYPE_CHECKING:
    from cryptography import x509

    from readyctl.context import Context

NOT_HTTPS = "base_url is not an https:// URL, so there is no TLS endpoint to inspect"
NO_BASE_URL = "no base_url configured for this environment"
EXCERPT_MARGIN = 16 * 1024  # bytes read past an excerpt's limit, so redaction sees whole secrets


@dataclass(frozen=True)
class Endpoint:
    """The host and port serving the API over TLS."""

    host: str
    port: int

    @property
    def label(self) -> str:
        """host:port, with brackets around an IPv6 address."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        """Whether the host is an IP literal (no SNI, matched against IP SANs)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def endpoint(ctx: Context) -> Endpoint | str:
    """The TLS endpoint of the environment's base_url, or why there is none."""
    base = ctx.environment.base_url
    if not base:
        return NO_BASE_URL
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        return NOT_HTTPS
    try:
        port = parts.port or 443
    except ValueError:
        return f"base_url has an invalid port: {ctx.redactor.clip(base, 80)}"
    return Endpoint(parts.hostname, port)


class HandshakeError(Exception):
    """A TLS connection attempt that ended without a session; `kind` says how it ended."""

    def __init__(self, kind: str, detail: str) -> None:
        """kind: dns, refused, connect, timeout, handshake, untrusted or config."""
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _one_line(text: str, limit: int = 160) -> str:
    """The first line of an error text, shortened."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return clip(line, limit)


def _ssl_detail(exc: ssl.SSLError) -> str:
    """A short, readable reason for an OpenSSL error."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if exc.reason:
        return exc.reason.replace("_", " ").lower()
    return _one_line(str(exc)) or type(exc).__name__


def client_context(ctx: Context, *, verify: bool, legacy: bool = False) -> ssl.SSLContext:
    """A client context: the system store plus ca_bundle (verify) or no verification at all.

    `legacy` (without verification only) also offers every protocol version and cipher the
    local OpenSSL still has, to learn whether the endpoint speaks TLS at all.
    """
    if not verify:
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        sslctx.check_hostname = False
        sslctx.verify_mode = ssl.CERT_NONE
        if legacy:
            with contextlib.suppress(ssl.SSLError, ValueError):
                sslctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                sslctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        return sslctx
    sslctx = ssl.create_default_context()
    bundle = ctx.environment.ca_bundle
    if bundle:
        path = ctx.resolve(bundle)
        try:
            sslctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as e:
            detail = f"cannot load ca_bundle {path}: {_one_line(str(e))}"
            raise HandshakeError("config", detail) from None
    # the chain alone: hostname matching is judged separately, on the leaf's SANs
    sslctx.check_hostname = False
    return sslctx


@dataclass(frozen=True)
class Session:
    """What one completed handshake showed."""

    leaf_der: bytes
    version: str
    cipher: str


def handshake(
    ctx: Context, ep: Endpoint, *, verify: bool, timeout: float = 5.0, legacy: bool = False
) -> Session:
    """One TLS handshake with ep under the check's deadline; raises HandshakeError."""
    sslctx = client_context(ctx, verify=verify, legacy=legacy)
    wait = ctx.timeout(timeout)
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=wait)
    except socket.gaierror as e:
        raise HandshakeError("dns", f"cannot resolve {ep.host}: {_one_line(str(e))}") from None
    except ConnectionRefusedError:
        raise HandshakeError("refused", f"{ep.label} refused the connection") from None
    except TimeoutError:
        detail = f"{ep.label} did not accept a connection in {wait:.3g} s"
        raise HandshakeError("timeout", detail) from None
    except OSError as e:
        detail = f"cannot connect to {ep.label}: {_one_line(str(e))}"
        raise HandshakeError("connect", detail) from None
    try:
        sock.settimeout(wait)
        sni = None if ep.is_ip else ep.host
        with sslctx.wrap_socket(sock, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            if not der:
                raise HandshakeError("handshake", f"{ep.label} sent no certificate")
            cipher = tls.cipher()
            return Session(der, tls.version() or "?", cipher[0] if cipher else "?")
    except ssl.SSLCertVerificationError as e:
        raise HandshakeError("untrusted", _ssl_detail(e)) from None
    except ssl.SSLError as e:
        raise HandshakeError(
            "handshake", f"{ep.label} did not complete a TLS handshake ({_ssl_detail(e)})"
        ) from None
    except TimeoutError:
        raise HandshakeError(
            "timeout", f"{ep.label} did not finish the TLS handshake in {wait:.3g} s"
        ) from None
    except OSError as e:
        detail = _one_line(str(e)) or type(e).__name__
        raise HandshakeError(
            "handshake", f"{ep.label} closed the connection during the TLS handshake ({detail})"
        ) from None
    finally:
        sock.close()


# -- certificate facts -----------------------------------------------------------------------
def load_leaf(der: bytes) -> x509.Certificate:
    """Parse a DER certificate."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def san_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The certificate's subjectAltName DNS names and IP addresses."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return [], []
    dns = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in ext.get_values_for_type(x509.IPAddress)]
    return dns, ips


def _idna(host: str) -> str:
    """A host name in its ASCII form, lower case, without a trailing dot."""
    host = host.rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def covers(cert: x509.Certificate, host: str) -> bool:
    """Whether the leaf is valid for host (RFC 6125 as browsers apply it: SANs only)."""
    dns, ips = san_names(cert)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is not None:
        return any(ipaddress.ip_address(ip) == addr for ip in ips)
    want = _idna(host)
    for name in dns:
        pattern = name.rstrip(".").lower()
        if pattern == want:
            return True
        if pattern.startswith("*."):
            rest = pattern[2:]
            # a wildcard is the whole left-most label and never spans a bare public suffix
            if "*" in rest or "." not in rest:
                continue
            label, _, parent = want.partition(".")
            if label and parent == rest:
                return True
    return False


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """Evidence about a leaf certificate (all public data)."""
    dns, ips = san_names(cert)
    names = dns + ips
    return {
        "subject": clip(cert.subject.rfc4514_string(), 200),
        "issuer": clip(cert.issuer.rfc4514_string(), 200),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "subject_alt_names": names[:20]
        + ([f"... {len(names) - 20} more"] if len(names) > 20 else []),
    }


def validity_problem(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """'the leaf certificate expired 2.0 days ago (2024-05-01 12:00 UTC)', or None when in date."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if not_after <= now:
        days = round((now - not_after).total_seconds() / 86400, 1)
        return (
            f"the leaf certificate expired {days:g} days ago "
            f"({not_after.strftime('%Y-%m-%d %H:%M UTC')})"
        )
    if not_before > now:
        return (
            f"the leaf certificate is not valid before {not_before.strftime('%Y-%m-%d %H:%M UTC')}"
        )
    return None


# -- the legacy-protocol positive control ----------------------------------------------------
@contextlib.contextmanager
def legacy_control_server(handshake_timeout: float = 5.0) -> Iterator[int]:
    """A throwaway TLS server on 127.0.0.1 that accepts TLS 1.0 and 1.1; yields its port."""
    import trustme

    leaf = trustme.CA().issue_cert("127.0.0.1")
    sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(sslctx)
    sslctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    sslctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        conn.settimeout(handshake_timeout)
        with contextlib.suppress(OSError), sslctx.wrap_socket(conn, server_side=True):
            pass
        conn.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, name="tls-legacy-control", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(1)
        listener.close()


# -- plain HTTP helpers ----------------------------------------------------------------------
def refused(exc: BaseException) -> bool:
    """Whether a connect error was a refused connection (the port is closed)."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    return "refused" in text or "errno 111" in text


def excerpt(chunks: Iterator[bytes], limit: int = 300) -> str:
    """At most `limit` characters of a streamed body, redacted (stops reading soon after)."""
    got = b""
    for chunk in chunks:
        got += chunk
        if len(got) >= limit + EXCERPT_MARGIN:  # enough to redact a secret cut at the limit
            break
    return clip(got[: limit + EXCERPT_MARGIN].decode("utf-8", "replace"), limit)
