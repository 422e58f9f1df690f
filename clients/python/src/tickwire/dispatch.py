"""Incoming messages of the subscriber: decoding (JSON text, binary quotes
and deltas), rebuilding full quotes from field deltas, acks and errors
matched to pending requests, subscription registry, epoch and gap tracking,
and queueing quotes for the iterator."""

from __future__ import annotations

import json
from typing import Any, Iterable

from .acks import AuthAck, SubscribeAck, UnsubscribeAck, _EntryOptions, _Request
from .base import _SubscriberBase
from .errors import MissingBaseError, RequestError, TickwireError
from .protocol import Delta, Quote, decode_binary_message, delta_from_json, quote_from_json, topic_matches
from .resume import Resume


class _DispatchMixin(_SubscriberBase):
    """Reads a connection's messages and routes each to its handler."""

    async def _read_loop(self, ws: Any) -> None:
        async for message in ws:
            if isinstance(message, str):
                await self._on_text(message)
            else:
                try:
                    m = decode_binary_message(message)
                except ValueError as e:
                    await self._report(TickwireError(f"undecodable binary frame: {e}"))
                    continue
                await (self._on_delta(m) if isinstance(m, Delta) else self._on_quote(m))
            if self._dropped_ws is ws:
                # Closed after a delta without its base: what it had still
                # buffered may be deltas on that base too; the next
                # connection sends them again (resume) starting in full.
                return

    async def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError as e:
            await self._report(TickwireError(f"undecodable message: {e}"))
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "quote" or kind == "delta":
            try:
                m = quote_from_json(msg) if kind == "quote" else delta_from_json(msg)
            except ValueError as e:
                await self._report(TickwireError(str(e)))
                return
            await (self._on_quote(m) if kind == "quote" else self._on_delta(m))
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

        def uncovered(topic: str) -> bool:
            return not any(topic_matches(e, topic) for e in entries)

        self.tracker.forget(uncovered)
        # A topic another entry still covers keeps flowing, deltas included:
        # its base stays. Once nothing covers it, the next quote of it (after
        # a new subscribe) must come in full.
        self._rebuilder.forget(uncovered)

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

    async def _on_delta(self, d: Delta) -> None:
        try:
            q = self._rebuilder.apply(d)
        except MissingBaseError as e:
            await self._resync(e)
            return
        self.deltas_applied += 1
        await self._deliver(q)

    async def _resync(self, err: MissingBaseError) -> None:
        """A delta without its base: never guess a quote. Report it and close
        the connection; the reconnect starts over from full quotes (the first
        quote of each topic on a connection is full) and, with resume, the
        broker replays what this connection did not deliver."""
        self.missing_bases += 1
        self.last_error = err
        await self._report(err)
        ws = self._ws
        if ws is None or self._dropped_ws is ws:
            return
        self._dropped_ws = ws
        try:
            await ws.close(1002, "delta without its base quote")
        except Exception:  # noqa: BLE001 - the reader reconnects anyway
            pass

    async def _on_quote(self, q: Quote) -> None:
        if self.delta:
            self._rebuilder.full(q)
        await self._deliver(q)

    async def _deliver(self, q: Quote) -> None:
        """Gap tracking, stale dropping, and the queue: the same for a full
        quote and for one rebuilt from a delta."""
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
