"""Bounded HTTP: every response a check reads is capped in bytes (wire and decoded) and time.

`Context.http()` installs `bound_client()` on every client it hands out, so a plain
`client.get(...)`, `response.json()` or `response.iter_bytes()` in a check is bounded too:

- decoded bytes: the client decodes gzip, deflate and br itself, incrementally, in pieces of
  at most 64 KB, and raises `BodyTooLarge` once more than `max_body` bytes came out (a 2 MB
  gzip bomb stops after 10 MB, not after 2 GiB);
- bytes on the wire: the raw body is counted too (`max_wire`), so an endless chunked body
  stops there even when nothing decodes it;
- time: every socket operation (connect, TLS handshake, header and body reads, writes) gets a
  timeout no longer than what is left of the check's deadline, and the body is checked against
  it between chunks, so a server that trickles one byte a second cannot outlive the check. A
  request may bring its own, earlier stop with `extensions={DEADLINE: monotonic_time}`.

`read_body()` is the one way helpers read a body up to a smaller, soft cap for evidence.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

MAX_BODY_BYTES = 10_000_000
MAX_WIRE_BYTES = 10_000_000
PIECE = 65_536
# h11 (under httpx) refuses a header block larger than this: a huge header is an error, not a
# crash and not an allocation
HEADER_LIMIT = getattr(httpcore.HTTP11Connection, "MAX_INCOMPLETE_EVENT_SIZE", 100 * 1024)
# a request extension: a time.monotonic() after which this request must stop
DEADLINE = "readyctl.deadline"

try:  # brotli is optional (httpx decodes br only when it is installed)
    import brotli as _brotli

    _BROTLI_BOUNDED = hasattr(_brotli.Decompressor(), "can_accept_more_data")
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None
    _BROTLI_BOUNDED = False

# encodings readyctl decodes (with a size bound); anything else is left as it came
DECODED_ENCODINGS = frozenset(
    {"gzip", "x-gzip", "deflate"} | ({"br"} if _BROTLI_BOUNDED else set())
)
ACCEPT_ENCODING = ", ".join(e for e in ("gzip", "deflate", "br") if e in DECODED_ENCODINGS)


def size_text(n: int) -> str:
    """A byte count for a sentence: '10 MB', '64 KB', '512 bytes'."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} KB"
    return f"{n} bytes"


def over_cap_text(limit: int, encoding: str = "", *, wire: bool = False) -> str:
    """'body exceeded 10 MB after gzip decoding: stopped reading' (and variants)."""
    where = " on the wire" if wire else (f" after {encoding} decoding" if encoding else "")
    return f"body exceeded {size_text(limit)}{where}: stopped reading"


class BodyTooLarge(httpx.TransportError):
    """A response body went over the client's cap; reading stopped there.

    `limit` is the cap, `seen` how many bytes had arrived when reading stopped, `encoding` the
    content encoding that was being decoded ('' for none) and `wire` whether the raw count
    (bytes on the wire) or the decoded count went over.
    """

    def __init__(self, limit: int, seen: int, encoding: str = "", *, wire: bool = False) -> None:
        """Keep the numbers; the message is one sentence for a summary."""
        super().__init__(over_cap_text(limit, encoding, wire=wire))
        self.limit = limit
        self.seen = seen
        self.encoding = encoding
        self.wire = wire

    def evidence(self) -> dict[str, Any]:
        """The numbers, for a result's evidence."""
        return {
            "body_limit_bytes": self.limit,
            "bytes_read_before_stopping": self.seen,
            "counted": "on the wire" if self.wire else "decoded",
            **({"content_encoding": self.encoding} if self.encoding else {}),
        }


class BodyDeadline(httpx.ReadTimeout):
    """The body was still arriving when the deadline passed; reading stopped."""


@dataclasses.dataclass
class Limits:
    """What bounds one client: byte caps, the check's deadline, the run's cancel switch."""

    max_body: int = MAX_BODY_BYTES
    max_wire: int = MAX_WIRE_BYTES
    deadline: float | None = None
    cancelled: threading.Event | None = None

    _local = threading.local()

    @contextlib.contextmanager
    def scope(self, stop: float | None) -> Iterator[None]:
        """Within the block, socket operations of this thread also stop at `stop`."""
        previous = getattr(self._local, "stop", None)
        self._local.stop = stop
        try:
            yield
        finally:
            self._local.stop = previous

    def left(self) -> float | None:
        """Seconds left before the earliest stop (None: unbounded); <= 0 when passed."""
        if self.cancelled is not None and self.cancelled.is_set():
            return 0.0
        stops = [s for s in (self.deadline, getattr(self._local, "stop", None)) if s is not None]
        if not stops:
            return None
        return min(stops) - time.monotonic()

    def clamp(self, timeout: float | None, exc: type[Exception]) -> float | None:
        """`timeout` no longer than what is left; raise `exc` when nothing is left."""
        left = self.left()
        if left is None:
            return timeout
        if left <= 0:
            raise exc("the check's deadline passed (or the run was cancelled)")
        return left if timeout is None else min(timeout, left)


# -- socket level: every read, write and connect stops at the deadline ----------------------
class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose timeouts never outlast the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, limits: Limits) -> None:
        self._inner = inner
        self._limits = limits

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._limits.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._limits.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._limits.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, wait), self._limits
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """A network backend whose streams stop at the deadline."""

    def __init__(self, inner: httpcore.NetworkBackend, limits: Limits) -> None:
        self._inner = inner
        self._limits = limits

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        wait = self._limits.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self._limits)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        wait = self._limits.clamp(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_unix_socket(path, wait, socket_options)
        return _DeadlineStream(stream, self._limits)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- body level: raw bytes counted, decoded bytes counted, the deadline between chunks ---------
class _WireStream(httpx.SyncByteStream):
    """The raw body: counted against `max_wire`, each chunk read within the deadline."""

    def __init__(self, inner: httpx.SyncByteStream, limits: Limits, stop: float | None) -> None:
        self._inner = inner
        self._limits = limits
        self._stop = stop

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        chunks = iter(self._inner)
        while True:
            with self._limits.scope(self._stop):
                left = self._limits.left()
                if left is not None and left <= 0:
                    raise BodyDeadline(
                        f"the body was still arriving after {size_text(seen)} when the "
                        "deadline passed: stopped reading"
                    )
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
            seen += len(chunk)
            if seen > self._limits.max_wire:
                raise BodyTooLarge(self._limits.max_wire, seen, wire=True)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _Layer:
    """One content encoding, decoded in bounded pieces."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        raise NotImplementedError

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Zlib(_Layer):
    """gzip or deflate (zlib-wrapped, or raw deflate as some servers send it)."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._fallback = raw_fallback
        self._first = True

    def feed(self, data: bytes) -> Iterator[bytes]:
        first, self._first = self._first, False
        try:
            yield from self._drain(data)
        except zlib.error:
            if not (first and self._fallback):
                raise
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without the zlib header
            yield from self._drain(data)

    def _drain(self, data: bytes) -> Iterator[bytes]:
        while not self._d.eof:  # after the end (e.g. a second gzip member) nothing is decoded
            out = self._d.decompress(data, PIECE)
            data = self._d.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < PIECE:
                break

    def flush(self) -> Iterator[bytes]:
        yield from self._drain(b"")


class _Brotli(_Layer):
    """br, with brotli's output limit."""

    def __init__(self) -> None:
        assert _brotli is not None
        self._d = _brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        out = self._d.process(data, output_buffer_limit=PIECE)
        while out:
            yield out
            out = self._d.process(b"", output_buffer_limit=PIECE)

    def flush(self) -> Iterator[bytes]:
        yield from self.feed(b"")


def _layer(encoding: str) -> _Layer | None:
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if encoding == "br" and _BROTLI_BOUNDED:
        return _Brotli()
    return None  # identity, or an encoding readyctl does not decode: left as it came


class _Decoder:
    """The response's content encodings, undone in the reverse order, piece by piece."""

    def __init__(self, encodings: list[str]) -> None:
        names = [e.strip().lower() for e in encodings if e.strip()]
        pairs = [(n, _layer(n)) for n in names]
        self.layers = [layer for _, layer in reversed(pairs) if layer is not None]
        self.name = ", ".join(n for n, layer in pairs if layer is not None)

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield from self._through(0, data)

    def flush(self) -> Iterator[bytes]:
        for i, layer in enumerate(self.layers):
            for out in layer.flush():
                yield from self._through(i + 1, out)

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self.layers):
            if data:
                yield data
            return
        for out in self.layers[i].feed(data):
            yield from self._through(i + 1, out)


class BoundedResponse(httpx.Response):
    """A response whose decoded body is produced in bounded pieces and capped."""

    limits: Limits

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The decoded body (at most `max_body` bytes, else BodyTooLarge), in chunks."""
        if hasattr(self, "_content"):  # already read: httpx serves it from memory
            yield from super().iter_bytes(chunk_size)
            return
        decoder = _Decoder(self.headers.get_list("content-encoding", split_commas=True))
        limit = self.limits.max_body
        seen = 0
        pending = b""
        try:
            for piece in self._decoded(decoder):
                seen += len(piece)
                if seen > limit:
                    raise BodyTooLarge(limit, seen, decoder.name)
                if chunk_size is None:
                    yield piece
                    continue
                pending += piece
                while len(pending) >= chunk_size:
                    yield pending[:chunk_size]
                    pending = pending[chunk_size:]
            if pending:
                yield pending
        except httpx.RequestError as exc:
            exc.request = self.request
            raise

    def _decoded(self, decoder: _Decoder) -> Iterator[bytes]:
        errors: tuple[type[BaseException], ...] = (zlib.error,)
        if _brotli is not None:
            errors += (_brotli.error,)
        try:
            for raw in self.iter_raw():
                yield from decoder.feed(raw)
            yield from decoder.flush()
        except errors as e:
            raise httpx.DecodingError(f"{decoder.name} body could not be decoded: {e}") from None


class BoundedTransport(httpx.BaseTransport):
    """Wraps a transport: bounded responses, and (for httpx's own) deadline-bound sockets."""

    def __init__(self, inner: httpx.BaseTransport, limits: Limits) -> None:
        """Wrap `inner`; its connection pool's network backend learns the deadline."""
        self.inner = inner
        self.limits = limits
        pool = getattr(inner, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend, limits)  # type: ignore[union-attr]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send with the deadline in force; hand back a BoundedResponse."""
        stop = request.extensions.get(DEADLINE)
        with self.limits.scope(stop):
            self.limits.clamp(None, httpx.ConnectTimeout)
            try:
                response = self.inner.handle_request(request)
            except httpx.RemoteProtocolError as e:
                if "Receive buffer too long" not in str(e):
                    raise
                # h11 refuses a header block (or chunk line) over its limit: say so plainly
                raise httpx.RemoteProtocolError(
                    f"the response headers exceeded {size_text(HEADER_LIMIT)}: stopped reading",
                    request=request,
                ) from None
        assert isinstance(response.stream, httpx.SyncByteStream)
        bounded = BoundedResponse(
            status_code=response.status_code,
            headers=response.headers,
            stream=_WireStream(response.stream, self.limits, stop),
            extensions=response.extensions,
            request=request,
        )
        bounded.limits = self.limits
        return bounded

    def close(self) -> None:
        """Close the wrapped transport."""
        self.inner.close()


def bound_client(client: httpx.Client, limits: Limits) -> httpx.Client:
    """Put every transport of `client` (its own and any proxy mounts) behind the limits."""
    client._transport = BoundedTransport(client._transport, limits)
    client._mounts = {
        pattern: (BoundedTransport(t, limits) if t is not None else None)
        for pattern, t in client._mounts.items()
    }
    return client


@dataclasses.dataclass(frozen=True)
class Body:
    """A body read up to a soft cap: the bytes, whether more was left, and why it stopped."""

    data: bytes
    truncated: bool
    over: str = ""  # one sentence when the body went over a cap ("body exceeded 1 MB ...")
    wire_bytes: int = 0


def read_body(
    response: httpx.Response, *, cap: int, stop_at: float | None = None, label: str = ""
) -> Body:
    """Read at most `cap` decoded bytes of a streamed response, stopping at `stop_at`.

    More than `cap` (or the client's hard cap) is `truncated` with a one-sentence `over`;
    a body still arriving at `stop_at` raises BodyDeadline. The response is closed.
    """
    encoding = ", ".join(
        e.strip().lower()
        for e in response.headers.get_list("content-encoding", split_commas=True)
        if e.strip().lower() in DECODED_ENCODINGS
    )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            if size + len(chunk) > cap:
                chunks.append(chunk[: cap - size])
                size = cap
                return Body(
                    b"".join(chunks),
                    True,
                    over_cap_text(cap, encoding),
                    response.num_bytes_downloaded,
                )
            chunks.append(chunk)
            size += len(chunk)
            if stop_at is not None and time.monotonic() > stop_at:
                raise BodyDeadline(
                    f"{label + ': ' if label else ''}the body was still arriving after "
                    f"{size_text(size)} when the time ran out: stopped reading"
                )
    except BodyTooLarge as e:
        return Body(b"".join(chunks)[:cap], True, str(e), response.num_bytes_downloaded)
    finally:
        response.close()
    return Body(b"".join(chunks), False, "", response.num_bytes_downloaded)
