"""Request/ack bookkeeping of the subscriber: ack types, request ids, the
pending requests (sent or waiting for a connection) and how they are sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import websockets

from .base import _SubscriberBase
from .connection import State
from .errors import ConnectionClosedError, RequestError

_MAX_ID = (1 << 53) - 1


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    """``subscribed`` ack. ``recovered`` is ``None`` unless the request carried
    ``since`` (v1.2 resume); then ``True`` when every topic of it was
    recovered, else ``False`` with those not recovered in ``unrecovered``."""

    id: int
    topics: list[str]
    epoch: str
    recovered: bool | None = None
    unrecovered: list[str] = field(default_factory=list)


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
    rewind: int | None = None

    @classmethod
    def of(cls, payload: dict[str, Any]) -> "_EntryOptions":
        return cls(payload.get("snapshot", True) is not False, payload.get("max_hz"), payload.get("rewind"))


class _Request:
    __slots__ = ("id", "payload", "future", "gen", "internal", "entry_opts")

    def __init__(self, id: int, payload: dict[str, Any], future: asyncio.Future, internal: bool,
                 entry_opts: _EntryOptions | None = None) -> None:
        self.id = id
        self.payload = payload
        self.future = future
        self.gen = -1  # connection generation it was last sent on
        self.internal = internal
        # Options to record for the entries of a subscribe once acknowledged
        # (else read from the payload): a resubscribe split in several requests
        # sends some with snapshot:false yet keeps the entry's own options.
        self.entry_opts = entry_opts

    def text(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), allow_nan=False)


class _RequestsMixin(_SubscriberBase):
    """Allocates request ids, tracks pending requests and sends them."""

    @staticmethod
    def _topics(topics: str | Iterable[str]) -> list[str]:
        if isinstance(topics, str):
            return [topics]
        out = list(topics)
        if not out:
            raise ValueError("topics must not be empty")
        return out

    def _new_request(self, payload: dict[str, Any], internal: bool,
                     entry_opts: _EntryOptions | None = None) -> _Request:
        rid = self._next_id
        self._next_id = 1 if rid >= _MAX_ID else rid + 1
        payload = dict(payload)
        payload["id"] = rid
        req = _Request(rid, payload, asyncio.get_running_loop().create_future(), internal, entry_opts)
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

    async def _send_internal(self, payload: dict[str, Any], entry_opts: _EntryOptions | None = None) -> None:
        req = self._new_request(payload, internal=True, entry_opts=entry_opts)
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
