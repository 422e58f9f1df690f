"""asyncio subscriber: WebSocket (``ws://`` / ``wss://``) client for ``/ws``."""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import logging
import random
import ssl as _ssl
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect as _ws_connect

from .gaps import Gap, GapTracker
from .protocol import Quote, decode_binary_quote, quote_from_json, topic_matches

__all__ = [
    "Subscriber",
    "State",
    "SubscribeAck",
    "UnsubscribeAck",
    "AuthAck",
    "TickwireError",
    "RequestError",
    "ConnectionClosedError",
]

log = logging.getLogger("tickwire")

_MAX_ID = (1 << 53) - 1
#: Entries per resubscribe request after a reconnect (keeps each request far
#: below the broker's 64 KiB message limit).
_RESUBSCRIBE_CHUNK = 256
_EOF = object()


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


class TickwireError(Exception):
    """Base class of this package's errors."""


class RequestError(TickwireError):
    """The broker answered a request with ``{"type":"error",...}``.

    ``code`` is the contract's error code (``bad_request``, ``bad_topic``,
    ``too_many_subscriptions``, ``not_authorized``, ``rate_limited``, or
    another code from a newer broker).
    """

    def __init__(self, code: str, message: str, id: int | None = None,
                 topics: Sequence[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.id = id
        self.topics = list(topics) if topics is not None else None


class ConnectionClosedError(TickwireError):
    """The subscriber is closed (or closed while a request waited for its ack)."""


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    id: int
    topics: list[str]
    epoch: str


@dataclass(frozen=True, slots=True)
class UnsubscribeAck:
    id: int
    topics: list[str]


@dataclass(frozen=True, slots=True)
class AuthAck:
    id: int
    sub: str | None
    exp: int | None


@dataclass(frozen=True, slots=True)
class _EntryOptions:
    snapshot: bool
    max_hz: float | None


class _Request:
    __slots__ = ("id", "payload", "future", "gen", "internal")

    def __init__(self, id: int, payload: dict[str, Any], future: asyncio.Future, internal: bool) -> None:
        self.id = id
        self.payload = payload
        self.future = future
        self.gen = -1  # connection generation it was last sent on
        self.internal = internal

    def text(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), allow_nan=False)


def _with_format(url: str, fmt: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
    path = parts.path or "/ws"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "format"]
    query.insert(0, ("format", fmt))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Subscriber:
    """Receives quotes from a tickwire broker over WebSocket.

    Usage::

        async with Subscriber("ws://127.0.0.1:8080/ws", format="binary") as sub:
            await sub.subscribe(["AAPL", "NASDAQ.*"])
            async for quote in sub:
                ...

    Requests (:meth:`subscribe`, :meth:`unsubscribe`, :meth:`auth`) are
    coroutines resolved by the broker's ack with the matching ``id``; an
    ``error`` reply raises :class:`RequestError` carrying ``code``.

    After a lost connection the client reconnects with exponential backoff
    and jitter, sends ``auth`` again (with ``token_provider()`` if given,
    else the last token used), and resubscribes every entry it holds (with
    the options each was subscribed with). Requests still waiting for their
    ack are sent again on the new connection.

    Gap tracking: the last ``seq`` per topic is kept; a jump is reported to
    ``on_gap`` and counted (:attr:`gaps`, :attr:`missed`). A new ``epoch`` in
    an ack (broker restart) resets tracking instead of reporting a gap.
    Quotes whose ``seq`` is not above the last one seen (a repeated snapshot)
    are dropped unless ``drop_stale=False``.

    Callbacks may be plain functions or coroutine functions; coroutines are
    awaited before the client continues (a slow ``on_state_change`` delays
    the reconnect). Exceptions raised by callbacks are logged and ignored.

    Args:
        url: ``ws://HOST:PORT/ws`` or ``wss://...``; the path defaults to ``/ws``.
        format: ``"json"`` or ``"binary"`` (binary quotes carry exact floats,
            NaN/inf included).
        ssl: an ``ssl.SSLContext`` for ``wss://`` (default: system trust store).
        token: subscriber token (JWT) sent with ``auth`` after each connect.
        token_provider: called (sync or async) before each connect that
            authenticates, returns a fresh token; overrides ``token``.
        reconnect: reconnect after a lost connection (the first connect in
            :meth:`connect` is not retried: its error is raised).
        backoff_initial, backoff_max, backoff_multiplier: the delay before
            retry n is ``min(backoff_max, backoff_initial * multiplier**n)``,
        backoff_jitter: ... multiplied by a random factor in ``[1-jitter, 1]``.
        max_reconnect_attempts: give up (state ``closed``) after that many
            failed attempts in a row; ``None``: never.
        on_state_change(state), on_gap(gap), on_epoch_change(old, new),
        on_error(exc): callbacks; ``on_error`` gets errors that belong to no
            awaiting caller (a failed re-``auth`` or resubscribe after a
            reconnect, an undecodable message, entries removed by the broker).
        drop_stale: drop quotes whose ``seq`` is not above the last seen.
        max_queue: quotes buffered for the iterator; when full the reader
            waits (TCP back-pressure; the broker then conflates). Acks are read
            by the same reader, so keep consuming. 0: unbounded.
        open_timeout: WebSocket opening handshake timeout (s).
        request_timeout: how long a request waits for its ack (s), reconnects
            included; ``None``: forever.
        connect_kwargs: passed to ``websockets.asyncio.client.connect``.
    """

    def __init__(
        self,
        url: str = "ws://127.0.0.1:8080/ws",
        *,
        format: str = "json",
        ssl: _ssl.SSLContext | None = None,
        token: str | None = None,
        token_provider: Callable[[], str | Awaitable[str]] | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        backoff_multiplier: float = 2.0,
        backoff_jitter: float = 0.5,
        max_reconnect_attempts: int | None = None,
        on_state_change: Callable[[State], Any] | None = None,
        on_gap: Callable[[Gap], Any] | None = None,
        on_epoch_change: Callable[[str | None, str], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        drop_stale: bool = True,
        max_queue: int = 65536,
        open_timeout: float | None = 10.0,
        request_timeout: float | None = 30.0,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if format not in ("json", "binary"):
            raise ValueError('format must be "json" or "binary"')
        if not 0.0 <= backoff_jitter <= 1.0:
            raise ValueError("backoff_jitter must be in [0, 1]")
        self.url = _with_format(url, format)
        self.format = format
        self._ssl = ssl
        self._token = token
        self._token_provider = token_provider
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff_multiplier = backoff_multiplier
        self.backoff_jitter = backoff_jitter
        self.max_reconnect_attempts = max_reconnect_attempts
        self.on_state_change = on_state_change
        self.on_gap = on_gap
        self.on_epoch_change = on_epoch_change
        self.on_error = on_error
        self.drop_stale = drop_stale
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self._connect_kwargs = dict(connect_kwargs or {})

        self.tracker = GapTracker()
        self._state = State.CLOSED
        self._started = False
        self._closing = False
        self._ws: Any = None
        self._gen = 0
        self._next_id = 1
        self._pending: dict[int, _Request] = {}
        self._abandoned: dict[int, dict[str, Any]] = {}
        self._bg_tasks: set[asyncio.Task] = set()
        self._entries: OrderedDict[str, _EntryOptions] = OrderedDict()
        self._queue: asyncio.Queue | None = None
        self._max_queue = max(0, int(max_queue))
        self._task: asyncio.Task | None = None
        self._state_cond: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None
        self._queue_has_eof = False
        self._finished = False
        self._user_closed = False
        self.last_error: BaseException | None = None
        #: Successful connections so far (1 after the first connect).
        self.connections = 0
        #: Failed connection attempts in a row (reset by a successful one).
        self.reconnect_attempt = 0
        #: Quotes dropped as stale (``seq`` not above the last one seen).
        self.dropped_stale = 0

    # -- properties ------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def epoch(self) -> str | None:
        """The broker epoch from the latest ``subscribed`` ack."""
        return self.tracker.epoch

    @property
    def gaps(self) -> int:
        """Gaps seen so far (an epoch change is not a gap)."""
        return self.tracker.gaps

    @property
    def missed(self) -> int:
        """Quotes missed across all gaps."""
        return self.tracker.missed

    @property
    def pending_requests(self) -> int:
        """Requests sent (or waiting to be sent) and not yet answered, including
        the ``auth`` and resubscribe requests the client sends itself after a
        reconnect: 0 once a reconnect's resubscription is fully acknowledged."""
        return sum(1 for r in self._pending.values() if not r.future.done())

    @property
    def subscriptions(self) -> dict[str, dict[str, Any]]:
        """Entries acknowledged and not unsubscribed: ``{entry: {"snapshot", "max_hz"}}``."""
        return {k: {"snapshot": v.snapshot, "max_hz": v.max_hz} for k, v in self._entries.items()}

    # -- lifecycle -------------------------------------------------------------

    async def connect(self) -> "Subscriber":
        """Opens the connection (raises if this first attempt fails) and starts reading."""
        if self._started:
            raise RuntimeError("Subscriber.connect() called twice")
        self._started = True
        self._queue = asyncio.Queue(self._max_queue)
        self._state_cond = asyncio.Condition()
        self._wake = asyncio.Event()
        try:
            await self._open(first=True)
        except BaseException as e:
            self.last_error = e
            self._closing = True
            await self._set_state(State.CLOSED)
            raise
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tickwire-subscriber")
        return self

    async def close(self) -> None:
        """Closes the connection for good; pending requests fail, iteration ends."""
        self._user_closed = True
        self._closing = True
        if not self._started:
            return
        assert self._wake is not None
        self._wake.set()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            # The reader may be waiting on a full queue or a callback: stop it first.
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - its CancelledError
                pass
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await ws.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        await self._finish()

    async def __aenter__(self) -> "Subscriber":
        return await self.connect()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        await self.close()

    async def wait_for_state(self, state: State, timeout: float | None = None) -> None:
        """Waits until the connection is in ``state`` (raises ``TimeoutError``)."""
        if self._state_cond is None:
            raise RuntimeError("not connected")

        async def _wait() -> None:
            assert self._state_cond is not None
            async with self._state_cond:
                await self._state_cond.wait_for(lambda: self._state == state)

        await asyncio.wait_for(_wait(), timeout)

    # -- requests --------------------------------------------------------------

    async def subscribe(self, topics: str | Iterable[str], snapshot: bool = True,
                        max_hz: float | None = None) -> SubscribeAck:
        """Subscribes to topics and/or ``PREFIX*`` patterns; returns the ack.

        With ``snapshot`` the broker sends the last known quote of each topic
        right after the ack. ``max_hz`` caps deliveries per topic (conflated).
        Raises :class:`RequestError` (``bad_topic``, ``bad_request``, ...).
        """
        topic_list = self._topics(topics)
        payload: dict[str, Any] = {"op": "subscribe", "topics": topic_list}
        if not snapshot:
            payload["snapshot"] = False
        if max_hz is not None:
            payload["max_hz"] = max_hz
        return await self._request(payload)

    async def unsubscribe(self, topics: str | Iterable[str]) -> UnsubscribeAck:
        """Removes exactly the entries named (idempotent); returns the ack."""
        return await self._request({"op": "unsubscribe", "topics": self._topics(topics)})

    async def auth(self, token: str) -> AuthAck:
        """Sends ``{"op":"auth","token":...}``; on success the token is reused on reconnect."""
        if not isinstance(token, str):
            raise TypeError("token must be a str")
        ack = await self._request({"op": "auth", "token": token})
        self._token = token
        return ack

    @staticmethod
    def _topics(topics: str | Iterable[str]) -> list[str]:
        if isinstance(topics, str):
            return [topics]
        out = list(topics)
        if not out:
            raise ValueError("topics must not be empty")
        return out

    def _new_request(self, payload: dict[str, Any], internal: bool) -> _Request:
        rid = self._next_id
        self._next_id = 1 if rid >= _MAX_ID else rid + 1
        payload = dict(payload)
        payload["id"] = rid
        req = _Request(rid, payload, asyncio.get_running_loop().create_future(), internal)
        self._pending[rid] = req
        return req

    async def _request(self, payload: dict[str, Any]) -> Any:
        if not self._started:
            raise ConnectionClosedError("not connected: call connect() first")
        if self._closing or self._state == State.CLOSED:
            raise ConnectionClosedError("subscriber is closed")
        req = self._new_request(payload, internal=False)
        try:
            if self._state == State.OPEN:
                await self._send(req)
            return await asyncio.wait_for(asyncio.shield(req.future), self.request_timeout)
        finally:
            self._pending.pop(req.id, None)
            if not req.future.done():
                req.future.cancel()
                if req.gen == self._gen and self._ws is not None:
                    # Sent on this connection but given up on: its ack may still
                    # come and must still update the subscription registry.
                    self._abandoned[req.id] = req.payload

    async def _send(self, req: _Request) -> None:
        ws, gen = self._ws, self._gen
        if ws is None:
            return
        req.gen = gen
        try:
            await ws.send(req.text())
        except websockets.ConnectionClosed:
            # Re-sent after the reconnect (gen will differ).
            req.gen = -1

    # -- iteration -------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Quote]:
        return self

    async def __anext__(self) -> Quote:
        q = await self._get()
        if q is _EOF:
            if self._user_closed:
                raise StopAsyncIteration
            raise ConnectionClosedError("connection lost and not reconnecting") from self.last_error
        return q

    async def recv(self, timeout: float | None = None) -> Quote:
        """The next quote; raises ``TimeoutError`` or :class:`ConnectionClosedError`."""
        q = await asyncio.wait_for(self._get(), timeout)
        if q is _EOF:
            raise ConnectionClosedError("subscriber is closed") from self.last_error
        return q

    def pending_quotes(self) -> int:
        """Quotes received and not yet taken by the iterator / :meth:`recv`."""
        if self._queue is None:
            return 0
        return self._queue.qsize() - (1 if self._queue_has_eof else 0)

    async def _get(self) -> Any:
        if self._queue is None:
            raise ConnectionClosedError("not connected: call connect() first")
        q = await self._queue.get()
        if q is _EOF:
            self._queue.put_nowait(_EOF)  # every later call ends too
        return q

    # -- connection management -------------------------------------------------

    async def _set_state(self, state: State) -> None:
        if state == self._state and state != State.RECONNECTING:
            return
        self._state = state
        if self._state_cond is not None:
            async with self._state_cond:
                self._state_cond.notify_all()
        if self.on_state_change is not None:
            await self._callback(self.on_state_change, state)

    async def _callback(self, cb: Callable[..., Any], *args: Any) -> None:
        try:
            await _maybe_await(cb(*args))
        except Exception:  # noqa: BLE001
            log.exception("tickwire: callback %r failed", cb)

    async def _report(self, exc: Exception) -> None:
        if self.on_error is not None:
            await self._callback(self.on_error, exc)
        else:
            log.warning("tickwire: %s", exc)

    async def _open(self, first: bool) -> None:
        await self._set_state(State.CONNECTING)
        token = self._token
        if self._token_provider is not None:
            token = await _maybe_await(self._token_provider())
            self._token = token
        kwargs: dict[str, Any] = {
            "compression": None,
            "open_timeout": self.open_timeout,
            "max_size": 1 << 20,
        }
        if self.url.startswith("wss://") and self._ssl is not None:
            kwargs["ssl"] = self._ssl
        kwargs.update(self._connect_kwargs)
        ws = await _ws_connect(self.url, **kwargs)
        if self._closing:
            await ws.close()
            raise ConnectionClosedError("subscriber is closed")
        self._gen += 1
        gen = self._gen
        self._ws = ws
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

    async def _send_internal(self, payload: dict[str, Any]) -> None:
        req = self._new_request(payload, internal=True)
        op = payload["op"]

        def done(fut: asyncio.Future, rid: int = req.id) -> None:
            self._pending.pop(rid, None)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None and isinstance(exc, Exception):
                task = asyncio.get_running_loop().create_task(self._report(
                    RequestError(getattr(exc, "code", "error"),
                                 f"{op} sent by the client on (re)connect failed: {getattr(exc, 'message', exc)}",
                                 rid, payload.get("topics"))))
                self._bg_tasks.add(task)
                task.add_done_callback(self._bg_tasks.discard)

        req.future.add_done_callback(done)
        await self._send(req)
        if req.gen != self._gen:
            raise websockets.ConnectionClosed(None, None)

    async def _resubscribe(self) -> None:
        groups: OrderedDict[_EntryOptions, list[str]] = OrderedDict()
        for entry, opts in self._entries.items():
            groups.setdefault(opts, []).append(entry)
        for opts, entries in groups.items():
            for i in range(0, len(entries), _RESUBSCRIBE_CHUNK):
                payload: dict[str, Any] = {"op": "subscribe", "topics": entries[i:i + _RESUBSCRIBE_CHUNK]}
                if not opts.snapshot:
                    payload["snapshot"] = False
                if opts.max_hz is not None:
                    payload["max_hz"] = opts.max_hz
                await self._send_internal(payload)

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
            try:
                await self._open(first=False)
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

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self, ws: Any) -> None:
        async for message in ws:
            if isinstance(message, str):
                await self._on_text(message)
            else:
                try:
                    q = decode_binary_quote(message)
                except ValueError as e:
                    await self._report(TickwireError(f"undecodable binary frame: {e}"))
                    continue
                await self._on_quote(q)

    async def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError as e:
            await self._report(TickwireError(f"undecodable message: {e}"))
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "quote":
            try:
                q = quote_from_json(msg)
            except ValueError as e:
                await self._report(TickwireError(str(e)))
                return
            await self._on_quote(q)
            return
        rid = msg.get("id")
        req = self._pending.get(rid) if isinstance(rid, int) else None
        if kind == "subscribed":
            await self._on_epoch(msg.get("epoch"))
            p = req.payload if req is not None else self._abandoned.pop(rid, None) if isinstance(rid, int) else None
            if p is not None:
                opts = _EntryOptions(p.get("snapshot", True) is not False, p.get("max_hz"))
                for t in p.get("topics", []):
                    self._entries[t] = opts
            if req is not None:
                self._resolve(req, SubscribeAck(req.id, list(msg.get("topics", [])), str(msg.get("epoch"))))
        elif kind == "unsubscribed":
            topics = [t for t in msg.get("topics", []) if isinstance(t, str)]
            self._remove_entries(topics)
            if req is None and isinstance(rid, int):
                self._abandoned.pop(rid, None)
            if req is not None:
                self._resolve(req, UnsubscribeAck(req.id, topics))
            elif msg.get("reason") is not None:
                await self._report(RequestError(
                    str(msg.get("reason")), f"subscriptions removed by the broker: {topics}", None, topics))
        elif kind == "authed":
            late = self._abandoned.pop(rid, None) if req is None and isinstance(rid, int) else None
            if late is not None:
                self._token = late.get("token", self._token)  # the broker took it
            if req is not None:
                exp = msg.get("exp")
                self._resolve(req, AuthAck(req.id, msg.get("sub"), exp if isinstance(exp, int) else None))
        elif kind == "error":
            err = RequestError(str(msg.get("code")), str(msg.get("message", "")), rid if isinstance(rid, int) else None,
                               req.payload.get("topics") if req is not None else None)
            if req is not None:
                if not req.future.done():
                    req.future.set_exception(err)
            elif isinstance(rid, int) and self._abandoned.pop(rid, None) is not None:
                pass  # its caller already gave up (timeout)
            else:
                await self._report(err)
        # Unknown message types are ignored (forward compatibility).

    def _resolve(self, req: _Request, value: Any) -> None:
        if not req.future.done():
            req.future.set_result(value)

    def _remove_entries(self, topics: Iterable[str]) -> None:
        for t in topics:
            self._entries.pop(t, None)
        entries = list(self._entries)
        self.tracker.forget(lambda topic: not any(topic_matches(e, topic) for e in entries))

    async def _on_epoch(self, epoch: Any) -> None:
        if not isinstance(epoch, str):
            return
        old = self.tracker.epoch
        if self.tracker.set_epoch(epoch) and old is not None and self.on_epoch_change is not None:
            await self._callback(self.on_epoch_change, old, epoch)

    async def _on_quote(self, q: Quote) -> None:
        tracker = self.tracker
        if tracker.is_stale(q.topic, q.seq):
            tracker.stale += 1
            if self.drop_stale:
                self.dropped_stale += 1
                return
        else:
            gap = tracker.observe(q.topic, q.seq)
            if gap is not None and self.on_gap is not None:
                await self._callback(self.on_gap, gap)
        assert self._queue is not None
        await self._queue.put(q)
