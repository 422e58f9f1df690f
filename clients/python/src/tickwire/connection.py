"""Connection management of the subscriber: open (auth, resubscribe with the
resume position, resend pending requests), the reader task with its
reconnect/backoff loop over one or several broker URLs, shutdown."""

from __future__ import annotations

import asyncio
import enum
import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect as _ws_connect

from .base import _EOF, _maybe_await, _SubscriberBase, log
from .errors import ConnectionClosedError
from .resume import plan_resubscribe

if TYPE_CHECKING:
    from .acks import _EntryOptions

#: Entries per resubscribe request after a reconnect (keeps each request far
#: below the broker's 64 KiB message limit).
_RESUBSCRIBE_CHUNK = 256


class State(str, enum.Enum):
    """Connection state, reported to ``on_state_change``."""

    #: A connection attempt is in progress.
    CONNECTING = "connecting"
    #: Connected; authenticated and resubscribed when this was a reconnect.
    OPEN = "open"
    #: The connection was lost (or an attempt failed); waiting to retry.
    RECONNECTING = "reconnecting"
    #: Closed for good: ``close()`` was called, or reconnecting is off / gave up.
    CLOSED = "closed"


def _with_format(url: str, fmt: str, delta: bool = False) -> str:
    """``url`` with ``format=fmt`` first and ``delta=1`` last when asked: the
    constructor's options decide, whatever the given URL says about them."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
    path = parts.path or "/ws"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("format", "delta")]
    query.insert(0, ("format", fmt))
    if delta:
        query.append(("delta", "1"))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


class _ConnectionMixin(_SubscriberBase):
    """Opens connections, runs the reader with reconnects, and shuts down."""

    async def _set_state(self, state: State) -> None:
        if state == self._state and state != State.RECONNECTING:
            return
        self._state = state
        if self._state_cond is not None:
            async with self._state_cond:
                self._state_cond.notify_all()
        if self.on_state_change is not None:
            await self._callback(self.on_state_change, state)

    @property
    def url(self) -> str:
        """The broker URL of the current (or last) connection, ``format`` included."""
        return self.urls[self._url_index]

    async def _open_first(self) -> None:
        """The first connection: each URL in turn, once; raises the last error."""
        for i in range(len(self.urls)):
            try:
                await self._open(first=True, index=i)
                return
            except ConnectionClosedError:
                raise
            except Exception as e:  # noqa: BLE001 - refused, timeout, handshake error
                if i == len(self.urls) - 1:
                    raise
                log.debug("tickwire: connect to %s failed: %r", self.urls[i], e)

    async def _open(self, first: bool, index: int) -> None:
        await self._set_state(State.CONNECTING)
        url = self.urls[index]
        token = self._token
        if self._token_provider is not None:
            token = await _maybe_await(self._token_provider())
            self._token = token
        kwargs: dict[str, Any] = {
            # permessage-deflate (websockets' default, named so that it stays
            # on): the broker compresses JSON quotes for every subscriber at
            # once; connect_kwargs={"compression": None} turns it off.
            "compression": "deflate",
            "open_timeout": self.open_timeout,
            "max_size": 1 << 20,
        }
        if url.startswith("wss://") and self._ssl is not None:
            kwargs["ssl"] = self._ssl
        kwargs.update(self._connect_kwargs)
        ws = await _ws_connect(url, **kwargs)
        if self._closing:
            await ws.close()
            raise ConnectionClosedError("subscriber is closed")
        self._gen += 1
        gen = self._gen
        self._ws = ws
        # The broker bases deltas on what this connection received: nothing
        # of an earlier connection may serve as a base.
        self._rebuilder.clear()
        self.extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response is not None else None
        self._url_index = index
        self.connections += 1
        self.reconnect_attempt = 0
        self._abandoned.clear()
        # Internal requests of an earlier connection are obsolete.
        for rid in [r.id for r in self._pending.values() if r.internal]:
            req = self._pending.pop(rid)
            if not req.future.done():
                req.future.cancel()
        try:
            if token is not None:
                await self._send_internal({"op": "auth", "token": token})
            if not first:
                await self._resubscribe()
            # Requests waiting for an ack (or never sent) go out on this connection.
            while True:
                unsent = [r for r in self._pending.values() if r.gen != gen and not r.future.done()]
                if not unsent:
                    break
                for r in unsent:
                    await self._send(r)
                    if self._ws is not ws or r.gen != gen:
                        raise websockets.ConnectionClosed(None, None)
        except websockets.ConnectionClosed:
            pass  # the reader sees the close and reconnects
        await self._set_state(State.OPEN)

    async def _resubscribe(self) -> None:
        """Subscribes again to every entry, with its options; with ``resume``
        each request carries ``since``: the epoch and the last seq received of
        each tracked topic its entries cover (see ``resume.py``)."""
        groups: OrderedDict[_EntryOptions, list[str]] = OrderedDict()
        for entry, opts in self._entries.items():
            groups.setdefault(opts, []).append(entry)
        plan = plan_resubscribe(list(groups.items()), self.tracker.last_seq, self.tracker.epoch,
                                resume=self.resume, max_entries=_RESUBSCRIBE_CHUNK)
        for payload, opts in plan:
            await self._send_internal(payload, entry_opts=opts)

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max, self.backoff_initial * (self.backoff_multiplier ** attempt))
        return base * random.uniform(1.0 - self.backoff_jitter, 1.0)

    async def _run(self) -> None:
        try:
            while True:
                ws = self._ws
                try:
                    await self._read_loop(ws)
                except websockets.ConnectionClosed as e:
                    self.last_error = e
                except Exception as e:  # noqa: BLE001 - network errors of any kind
                    self.last_error = e
                    log.debug("tickwire: connection error: %r", e)
                self._ws = None
                if self._closing or not self.reconnect:
                    break
                if not await self._reconnect():
                    break
        finally:
            await self._finish()

    async def _reconnect(self) -> bool:
        assert self._wake is not None
        while not self._closing:
            if (self.max_reconnect_attempts is not None
                    and self.reconnect_attempt >= self.max_reconnect_attempts):
                return False
            await self._set_state(State.RECONNECTING)
            delay = self._backoff(self.reconnect_attempt)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            if self._closing:
                return False
            # Several URLs: each attempt tries the next one, starting with the
            # one after the broker just lost (a cluster: any broker will do).
            index = (self._url_index + 1 + self.reconnect_attempt) % len(self.urls)
            try:
                await self._open(first=False, index=index)
                return True
            except ConnectionClosedError:
                return False
            except Exception as e:  # noqa: BLE001 - refused, timeout, handshake error
                self.last_error = e
                self.reconnect_attempt += 1
                log.debug("tickwire: reconnect attempt %d failed: %r", self.reconnect_attempt, e)
        return False

    async def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._closing = True
        for req in list(self._pending.values()):
            if req.future.done():
                continue
            if req.internal:
                req.future.cancel()
            else:
                req.future.set_exception(ConnectionClosedError("subscriber closed before the ack"))
        self._pending.clear()
        if self._queue is not None and not self._queue_has_eof:
            self._queue_has_eof = True
            # Never block on a full queue here: make room for the end marker.
            while self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(_EOF)
        await self._set_state(State.CLOSED)
