"""Feed producer: blocking TCP (optionally TLS) connection to the ingest listener."""

from __future__ import annotations

import select
import socket
import ssl as _ssl
from typing import Iterable

from .protocol import Quote, encode_batch, encode_hello, encode_quote

__all__ = ["Publisher"]

#: Frames are buffered and written once this many bytes are waiting (or on
#: :meth:`Publisher.flush`), as the Rust client does.
DEFAULT_FLUSH_AT = 64 * 1024


class Publisher:
    """Publishes quotes to a broker's ingest listener (default ``127.0.0.1:7001``).

    The broker never answers on a healthy ingest connection; a rejected frame
    (bad topic, wrong token, ...) makes the broker drop the connection, which
    shows up as a later ``OSError`` from :meth:`flush` / :meth:`publish`, or
    as :meth:`peer_closed` returning true.

    Frames are buffered: call :meth:`flush` after a burst (``close()`` and
    leaving a ``with`` block flush too).

    Args:
        host, port: the ingest listener.
        token: producer token; when given, ``Hello { token }`` is sent first
            (required when the broker has ``[ingest] tokens`` / producers).
        ssl_context: connect with TLS (``[ingest.tls]``); for mutual TLS load
            the producer certificate into the context
            (``ctx.load_cert_chain(...)``).
        server_hostname: name checked against the broker certificate
            (default: ``host``).
        timeout: connect timeout and the timeout of each blocking write, in
            seconds (``None``: block forever).
        flush_at: buffer size that triggers a write.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7001,
        *,
        token: str | None = None,
        ssl_context: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float | None = 10.0,
        flush_at: int = DEFAULT_FLUSH_AT,
    ) -> None:
        self._buf = bytearray()
        self._flush_at = max(1, int(flush_at))
        self._closed = False
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        self._sock: socket.socket = sock
        if token is not None:
            self.hello(token)
            self.flush()

    # -- frames ----------------------------------------------------------------

    def hello(self, token: str) -> None:
        """Queues ``Hello { token }``; must be the first frame when the broker has tokens."""
        self._queue(encode_hello(token))

    def publish(self, quote: Quote) -> None:
        """Queues one ``Quote`` frame (``quote.seq`` is ignored: the broker assigns it)."""
        self._queue(encode_quote(quote))

    def publish_batch(self, quotes: Iterable[Quote]) -> None:
        """Queues one ``Batch`` frame: the broker accepts all of it or none."""
        self._queue(encode_batch(quotes))

    def send_raw(self, data: bytes) -> None:
        """Flushes, then writes ``data`` as is (for tests of malformed input)."""
        self.flush()
        self._sock.sendall(data)

    def _queue(self, frame: bytes) -> None:
        if self._closed:
            raise OSError("publisher is closed")
        self._buf += frame
        if len(self._buf) >= self._flush_at:
            self.flush()

    # -- I/O ---------------------------------------------------------------------

    def flush(self) -> None:
        """Writes everything buffered (blocking)."""
        if self._closed:
            if self._buf:
                raise OSError("publisher is closed")
            return
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._sock.sendall(data)

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered and not yet written."""
        return len(self._buf)

    def peer_closed(self, timeout: float = 0.0) -> bool:
        """Whether the broker has closed the connection (waits up to ``timeout`` s).

        The broker sends nothing on a healthy ingest connection, so any
        readable end-of-stream or reset means it dropped this producer.
        """
        if self._closed:
            return True
        sock = self._sock
        if isinstance(sock, _ssl.SSLSocket) and sock.pending():
            return False
        readable, _, _ = select.select([sock], [], [], max(0.0, timeout))
        if not readable:
            return False
        old = sock.gettimeout()
        try:
            sock.settimeout(0.5)
            data = sock.recv(1)
        except (ConnectionError, _ssl.SSLError):
            return True
        except (BlockingIOError, socket.timeout):
            return False
        except OSError:
            return True
        finally:
            try:
                sock.settimeout(old)
            except OSError:
                pass
        return data == b""

    def close(self) -> None:
        """Flushes what is buffered, then closes the connection. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            # Do not mask the original exception with a flush error.
            try:
                self.close()
            except OSError:
                pass

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None and not getattr(self, "_closed", True):
            try:
                sock.close()
            except OSError:
                pass
