"""asyncio subscriber: WebSocket (``ws://`` / ``wss://``) client for ``/ws``.

The public :class:`Subscriber`; its internals live in ``connection.py``,
``acks.py`` and ``dispatch.py`` (see ``base.py``).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections import OrderedDict
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

from .acks import AuthAck, SubscribeAck, UnsubscribeAck, _EntryOptions, _Request, _RequestsMixin
from .base import _EOF
from .connection import State, _ConnectionMixin, _with_format
from .dispatch import _DispatchMixin
from .deltas import QuoteRebuilder
from .errors import ConnectionClosedError, MissingBaseError, RequestError, TickwireError
from .gaps import Gap, GapTracker
from .protocol import Quote
from .resume import Resume

__all__ = [
    "Subscriber",
    "State",
    "SubscribeAck",
    "UnsubscribeAck",
    "AuthAck",
    "TickwireError",
    "RequestError",
    "ConnectionClosedError",
    "MissingBaseError",
    "Resume",
]


class Subscriber(_ConnectionMixin, _RequestsMixin, _DispatchMixin):
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
    and jitter (to the next of several ``url`` s, if given a list), sends
    ``auth`` again (with ``token_provider()`` if given, else the last token
    used), and resubscribes every entry it holds (with the options each was
    subscribed with). Requests still waiting for their ack are sent again on
    the new connection.

    Resume (protocol v1.2, on unless ``resume=False``): each resubscribe
    carries ``since``, the ack's epoch and the last ``seq`` received of every
    exact topic its entries cover. The broker replays exactly the quotes
    missed while disconnected (no snapshot, no gap) for each topic it still
    has history of (*recovered*); the others get the v1 snapshot
    (*unrecovered*). Each such ack is reported to ``on_resume`` as a
    :class:`Resume`. A broker without v1.2 ignores ``since`` (v1 behaviour).

    Gap tracking: the last ``seq`` per topic is kept; a jump (quotes really
    skipped: conflation, or an unrecovered topic) is reported to ``on_gap``
    and counted (:attr:`gaps`, :attr:`missed`). A new ``epoch`` in an ack
    (broker restart) resets tracking instead of reporting a gap. Quotes whose
    ``seq`` is not above the last one seen (a repeated snapshot or replay)
    are dropped unless ``drop_stale=False``.

    Field deltas (protocol v1.2, on unless ``delta=False``): the URL asks for
    ``delta=1``, so the broker sends a quote that follows the previous one of
    its topic on this connection as only its changed fields. The client keeps
    the connection's last quote per topic and hands the application full
    quotes rebuilt bit for bit: the same :class:`Quote` s, gaps and callbacks
    as without deltas. A delta without its base (never from a broker that
    keeps the contract) is not applied: it is reported to ``on_error`` as a
    :class:`MissingBaseError` and the connection is closed (1002) and
    reopened, which resumes from full quotes (``resume``: no loss). A broker
    older than v1.2 ignores ``delta=1``. permessage-deflate is offered on
    every connection (:attr:`extensions` tells whether the broker took it).

    Callbacks may be plain functions or coroutine functions; coroutines are
    awaited before the client continues (a slow ``on_state_change`` delays
    the reconnect). Exceptions raised by callbacks are logged and ignored.

    Args:
        url: ``ws://HOST:PORT/ws`` or ``wss://...``; the path defaults to
            ``/ws``. A list: brokers of one cluster, tried in turn (the first
            connect tries each once; each reconnect attempt the next one).
        format: ``"json"`` or ``"binary"`` (binary quotes carry exact floats,
            NaN/inf included).
        delta: ask for field deltas (``delta=1`` in the URL; see above).
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
        resume: send ``since`` on resubscribe (see above).
        on_state_change(state), on_gap(gap), on_epoch_change(old, new),
        on_resume(resume), on_error(exc): callbacks; ``on_error`` gets errors that belong to no
            awaiting caller (a failed re-``auth`` or resubscribe after a
            reconnect, an undecodable message, entries removed by the broker).
        drop_stale: drop quotes whose ``seq`` is not above the last seen.
        max_queue: quotes buffered for the iterator; when full the reader
            waits (TCP back-pressure; the broker then conflates). Acks are read
            by the same reader, so keep consuming. 0: unbounded.
        open_timeout: WebSocket opening handshake timeout (s).
        request_timeout: how long a request waits for its ack (s), reconnects
            included; ``None``: forever.
        connect_kwargs: passed to ``websockets.asyncio.client.connect``
            (``{"compression": None}`` turns permessage-deflate off).
    """

    def __init__(
        self,
        url: str | Sequence[str] = "ws://127.0.0.1:8080/ws",
        *,
        format: str = "json",
        delta: bool = True,
        ssl: _ssl.SSLContext | None = None,
        token: str | None = None,
        token_provider: Callable[[], str | Awaitable[str]] | None = None,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        backoff_multiplier: float = 2.0,
        backoff_jitter: float = 0.5,
        max_reconnect_attempts: int | None = None,
        resume: bool = True,
        on_state_change: Callable[[State], Any] | None = None,
        on_gap: Callable[[Gap], Any] | None = None,
        on_epoch_change: Callable[[str | None, str], Any] | None = None,
        on_resume: Callable[[Resume], Any] | None = None,
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
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("url: at least one broker URL")
        #: The broker URLs (``format`` added), tried in turn.
        self.urls = [_with_format(u, format, delta) for u in urls]
        self._url_index = 0
        self.format = format
        self.delta = delta
        self._ssl = ssl
        self._token = token
        self._token_provider = token_provider
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff_multiplier = backoff_multiplier
        self.backoff_jitter = backoff_jitter
        self.max_reconnect_attempts = max_reconnect_attempts
        self.resume = resume
        self.on_state_change = on_state_change
        self.on_gap = on_gap
        self.on_epoch_change = on_epoch_change
        self.on_resume = on_resume
        self.on_error = on_error
        self.drop_stale = drop_stale
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self._connect_kwargs = dict(connect_kwargs or {})

        self.tracker = GapTracker()
        # Bases of field deltas, for the current connection only.
        self._rebuilder = QuoteRebuilder()
        # The connection the reader stops reading (after a MissingBaseError).
        self._dropped_ws: Any = None
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
        #: Topics resumed without loss / not recovered (snapshot instead), all acks together.
        self.recovered_topics = 0
        self.unrecovered_topics = 0
        #: The latest :class:`Resume` (ack of a resubscribe with ``since``).
        self.last_resume: Resume | None = None
        #: Field deltas received and turned into full quotes.
        self.deltas_applied = 0
        #: Deltas without their base (each closed its connection: see above).
        self.missing_bases = 0
        #: ``Sec-WebSocket-Extensions`` of the current (or last) connection's
        #: handshake response: ``"permessage-deflate; ..."`` when compression
        #: was negotiated, None when the broker declined it.
        self.extensions: str | None = None

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
        """Entries acknowledged and not unsubscribed: ``{entry: {"snapshot", "max_hz", "rewind"}}``."""
        return {k: {"snapshot": v.snapshot, "max_hz": v.max_hz, "rewind": v.rewind}
                for k, v in self._entries.items()}

    @property
    def last_seqs(self) -> dict[str, int]:
        """The last ``seq`` received per exact topic in the current epoch (the
        position sent in ``since`` on the next reconnect)."""
        return dict(self.tracker.last_seq)

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
            await self._open_first()
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
                        max_hz: float | None = None, rewind: int | None = None) -> SubscribeAck:
        """Subscribes to topics and/or ``PREFIX*`` patterns; returns the ack.

        With ``snapshot`` the broker sends the last known quote of each topic
        right after the ack. ``max_hz`` caps deliveries per topic (conflated).
        ``rewind=N`` (1..1024, v1.2 brokers) sends up to the N most recent
        quotes of each topic the broker holds, oldest first, in place of the
        snapshot (not with ``snapshot=False``); kept for resubscribes, where
        it applies to topics the client has no position of.
        Raises :class:`RequestError` (``bad_topic``, ``bad_request``, ...).
        """
        topic_list = self._topics(topics)
        payload: dict[str, Any] = {"op": "subscribe", "topics": topic_list}
        if not snapshot:
            payload["snapshot"] = False
        if max_hz is not None:
            payload["max_hz"] = max_hz
        if rewind is not None:
            payload["rewind"] = rewind
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
