"""Incoming messages of the subscriber: decoding (JSON text, binary quotes),
acks and errors matched to pending requests, subscription registry, epoch and
gap tracking, and queueing quotes for the iterator."""

from __future__ import annotations

import json
from typing import Any, Iterable

from .acks import AuthAck, SubscribeAck, UnsubscribeAck, _EntryOptions, _Request
from .base import _SubscriberBase
from .errors import RequestError, TickwireError
from .protocol import Quote, decode_binary_quote, quote_from_json, topic_matches
from .resume import Resume


class _DispatchMixin(_SubscriberBase):
    """Reads a connection's messages and routes each to its handler."""

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
                opts = req.entry_opts if req is not None and req.entry_opts is not None else _EntryOptions.of(p)
                for t in p.get("topics", []):
                    self._entries[t] = opts
            recovered = msg.get("recovered")
            lost = msg.get("unrecovered")
            unrecovered = [t for t in lost if isinstance(t, str)] if isinstance(lost, list) else []
            if not isinstance(recovered, bool):
                recovered, unrecovered = None, []
            elif p is not None and isinstance(p.get("since"), dict):
                await self._on_resume(Resume(rid if isinstance(rid, int) else None, p["since"].get("epoch"),
                                             list(p["since"].get("seqs", {})), recovered, unrecovered))
            if req is not None:
                self._resolve(req, SubscribeAck(req.id, list(msg.get("topics", [])), str(msg.get("epoch")),
                                                recovered, unrecovered))
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

    async def _on_resume(self, result: Resume) -> None:
        self.unrecovered_topics += len(result.unrecovered)
        self.recovered_topics += len(result.recovered_topics)
        self.last_resume = result
        if self.on_resume is not None:
            await self._callback(self.on_resume, result)

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
