"""A Subscriber without a network: fed broker messages directly (its
``_on_text`` / ``_read_loop``), sending into a fake connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tickwire import Quote, State, Subscriber


class FakeWS:
    """Collects what the subscriber sends; records a close. Iterating it
    yields ``incoming`` (what a connection would deliver, then its end)."""

    def __init__(self, incoming: list[str | bytes] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.incoming = list(incoming or [])

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    async def __aiter__(self):
        for m in self.incoming:
            yield m


def offline(**kw: Any) -> tuple[Subscriber, FakeWS]:
    """A subscriber "connected" to a FakeWS (no network, no reader task)."""
    sub = Subscriber("ws://127.0.0.1:9/ws", **kw)
    sub._queue = asyncio.Queue()  # as connect() would, without a connection
    sub._started = True
    sub._state = State.OPEN
    ws = FakeWS()
    sub._ws = ws
    return sub, ws


def drain_quotes(sub: Subscriber) -> list[Quote]:
    """The quotes queued for the application so far."""
    out = []
    while not sub._queue.empty():
        out.append(sub._queue.get_nowait())
    return out


def drain(sub: Subscriber) -> list[tuple[str, int]]:
    return [(q.topic, q.seq) for q in drain_quotes(sub)]


def ack(req: dict[str, Any], epoch: str, **extra: Any) -> str:
    return json.dumps({"type": "subscribed", "id": req["id"], "topics": req["topics"], "epoch": epoch, **extra})
