"""Against a real broker process: Publisher -> broker -> Subscriber."""

from __future__ import annotations

import asyncio
import math
import struct
import time

import pytest

from tickwire import ConnectionClosedError, Publisher, Quote, RequestError, State, Subscriber

from conftest import async_wait_until, run

RECV_TIMEOUT = 20.0


def fast_backoff(**kw):
    return dict(backoff_initial=0.05, backoff_max=0.5, **kw)


def make_quote(topic: str, i: int) -> Quote:
    return Quote(topic, bid=100.0 + i, ask=100.5 + i, bid_size=10.0 * i, ask_size=5.0, last=100.25 + i,
                 volume=1000.0 + i, ts=1_732_345_678_000_000_000 + i)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


async def recv_n(sub: Subscriber, n: int) -> list[Quote]:
    return [await sub.recv(RECV_TIMEOUT) for _ in range(n)]


def test_publish_receive_json_and_binary(broker, topic):
    t = topic()
    sent = [
        Quote(t, bid=189.12, ask=189.14, bid_size=300.0, ask_size=200.0, last=189.13, volume=1234567.0,
              ts=1732345678901234567),
        Quote(t, bid=math.nan, ask=math.inf, bid_size=-math.inf, ask_size=-0.0, last=1e-7, volume=1e16,
              ts=(1 << 64) - 1),
        Quote(t, bid=0.30000000000000004, ask=5e-324, bid_size=0.0, ask_size=1.7976931348623157e308,
              last=-1.5, volume=0.0, ts=0),
    ]

    async def main():
        async with Subscriber(broker.ws_url, format="json") as js, \
                Subscriber(broker.ws_url, format="binary") as bn:
            ack_j = await js.subscribe([t])
            ack_b = await bn.subscribe(t)
            assert ack_j.topics == [t] and ack_b.topics == [t]
            assert ack_j.epoch == ack_b.epoch and len(ack_j.epoch) == 16
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(sent[0])
                pub.publish_batch(sent[1:])
            got_j = await recv_n(js, 3)
            got_b = await recv_n(bn, 3)
        assert [q.seq for q in got_j] == [1, 2, 3]
        assert [q.seq for q in got_b] == [1, 2, 3]
        for s, j, b in zip(sent, got_j, got_b):
            assert j.topic == b.topic == t
            assert j.ts == b.ts == s.ts  # exact 64-bit in both modes
            for name in ("bid", "ask", "bid_size", "ask_size", "last", "volume"):
                sv, jv, bv = getattr(s, name), getattr(j, name), getattr(b, name)
                assert bits(bv) == bits(sv), name  # binary: bit for bit
                if math.isfinite(sv):
                    assert bits(jv) == bits(sv), name  # JSON: shortest round trip, -0.0 kept
                else:
                    assert math.isnan(jv), name  # JSON null -> NaN
        assert js.gaps == 0 and bn.gaps == 0

    run(main())


def test_seq_increments_and_pattern(broker, topic):
    prefix = topic("P")
    a, b = f"{prefix}.A", f"{prefix}.B"

    async def main():
        async with Subscriber(broker.ws_url, format="binary") as sub:
            await sub.subscribe([f"{prefix}.*"], snapshot=False)
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                for i in range(1, 6):
                    pub.publish(make_quote(a, i))
                    pub.publish(make_quote(b, i))
            got = []
            async for quote in sub:  # async iteration
                got.append(quote)
                if len(got) == 10:
                    break
        for name in (a, b):
            mine = [q for q in got if q.topic == name]
            assert [q.seq for q in mine] == [1, 2, 3, 4, 5]
            assert [q.bid for q in mine] == [101.0, 102.0, 103.0, 104.0, 105.0]
        assert sub.gaps == 0

    run(main())


def test_snapshot_on_subscribe(broker, topic):
    t = topic()

    async def main():
        async with Subscriber(broker.ws_url) as witness:
            await witness.subscribe(t)
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(make_quote(t, 1))
                pub.publish(make_quote(t, 2))
            assert [q.seq for q in await recv_n(witness, 2)] == [1, 2]  # the broker has both

            async with Subscriber(broker.ws_url, format="binary") as sub, Subscriber(broker.ws_url) as nosnap:
                await sub.subscribe(t)  # snapshot defaults to true
                snap = await sub.recv(RECV_TIMEOUT)
                assert snap.seq == 2 and snap.bid == 102.0 and snap.ts == make_quote(t, 2).ts
                await nosnap.subscribe(t, snapshot=False)
                with Publisher("127.0.0.1", broker.ingest_port) as pub:
                    pub.publish(make_quote(t, 3))
                live = await sub.recv(RECV_TIMEOUT)
                first = await nosnap.recv(RECV_TIMEOUT)
                assert live.seq == 3
                assert first.seq == 3  # no snapshot came before the live quote
                assert sub.subscriptions == {t: {"snapshot": True, "max_hz": None, "rewind": None}}
                assert nosnap.subscriptions == {t: {"snapshot": False, "max_hz": None, "rewind": None}}

    run(main())


def test_unsubscribe_ack(broker, topic):
    a, b = topic("A"), topic("B")

    async def main():
        async with Subscriber(broker.ws_url) as sub:
            await sub.subscribe([a, b], snapshot=False)
            ack = await sub.unsubscribe([a, "NEVER.SUBSCRIBED"])
            assert ack.topics == [a, "NEVER.SUBSCRIBED"]
            assert list(sub.subscriptions) == [b]
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(make_quote(a, 1))  # no longer subscribed
                pub.publish(make_quote(b, 1))
            q = await sub.recv(RECV_TIMEOUT)
            assert q.topic == b  # nothing of `a` after the unsubscribed ack

    run(main())


def test_error_acks_raise_with_code(broker, topic):
    t = topic()

    async def main():
        async with Subscriber(broker.ws_url) as sub:
            with pytest.raises(RequestError) as e:
                await sub.subscribe([t, "AA PL"])
            assert e.value.code == "bad_topic"
            assert "AA PL" in e.value.message and e.value.id is not None
            with pytest.raises(RequestError) as e:
                await sub.subscribe([t], max_hz=0)
            assert e.value.code == "bad_request" and "max_hz" in e.value.message
            with pytest.raises(RequestError) as e:
                await sub.auth("whatever")  # no [auth] on this broker
            assert e.value.code == "bad_request"
            assert sub.subscriptions == {}  # refused requests take no effect
            # The connection stays usable.
            ack = await sub.subscribe([t], max_hz=500)
            assert ack.topics == [t] and sub.subscriptions[t]["max_hz"] == 500
        assert sub.state == State.CLOSED
        with pytest.raises(ConnectionClosedError):
            await sub.subscribe([t])

    run(main())


def test_first_connect_failure_raises(broker):
    async def main():
        sub = Subscriber(f"ws://127.0.0.1:{broker.ws_port}/nope")  # 404: not a WebSocket route
        with pytest.raises(Exception):
            await sub.connect()
        assert sub.state == State.CLOSED

    run(main())


def test_reconnect_and_resubscribe_after_broker_restart(make_broker, topic):
    b = make_broker()
    t, p = topic("EXACT"), topic("PAT")
    states: list[State] = []
    epochs: list[tuple] = []

    async def main():
        sub = Subscriber(b.ws_url, format="binary", on_state_change=states.append,
                         on_epoch_change=lambda old, new: epochs.append((old, new)), **fast_backoff())
        async with sub:
            ack1 = await sub.subscribe([t])
            await sub.subscribe([f"{p}.*"], snapshot=False, max_hz=1000)
            with Publisher("127.0.0.1", b.ingest_port) as pub:
                for i in range(1, 4):
                    pub.publish(make_quote(t, i))
            assert [q.seq for q in await recv_n(sub, 3)] == [1, 2, 3]

            await asyncio.get_running_loop().run_in_executor(None, b.restart)
            await sub.wait_for_state(State.OPEN, timeout=30)
            # Resubscribed: acks with the new epoch came back for every entry,
            # so quotes published from now on are delivered.
            await async_wait_until(lambda: sub.connections == 2 and sub.pending_requests == 0,
                                   what="resubscription acknowledged")
            assert sub.epoch != ack1.epoch
            with Publisher("127.0.0.1", b.ingest_port) as pub:
                pub.publish(make_quote(t, 10))
                pub.publish(make_quote(f"{p}.X", 11))
            got = await recv_n(sub, 2)
            assert sorted((q.topic, q.seq) for q in got) == sorted([(t, 1), (f"{p}.X", 1)])
            assert sub.gaps == 0 and sub.dropped_stale == 0  # seq 1 < 3 is not stale: new epoch
            assert epochs == [(ack1.epoch, sub.epoch)]
            assert set(sub.subscriptions) == {t, f"{p}.*"}
        assert states[0] == State.CONNECTING and states[1] == State.OPEN
        assert State.RECONNECTING in states
        assert states[-2:] == [State.OPEN, State.CLOSED]

    run(main(), timeout=90)


class DropProxy:
    """TCP proxy in front of the broker that can cut every connection at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, r1: asyncio.StreamReader, w1: asyncio.StreamWriter) -> None:
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w1.close()
            return
        self.writers += [w1, w2]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(r1, w2), pipe(r2, w1))

    def drop_all(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.drop_all()
        if self.server is not None:
            self.server.close()


def test_gap_reported_across_reconnect_same_epoch(broker, topic):
    # v1 behaviour (resume off): the resubscribe's snapshot skips what was
    # published while disconnected. With resume see test_resume_broker.py.
    t = topic()

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        gaps = []
        gate_done = asyncio.Event()

        async def witness_sees(seq: int) -> None:
            while True:
                q = await witness.recv(RECV_TIMEOUT)
                if q.seq >= seq:
                    return

        async def on_state(state: State) -> None:
            # While disconnected (the client awaits this callback before
            # retrying), the feed moves on: seq 3, 4, 5.
            if state == State.RECONNECTING and not gate_done.is_set():
                with Publisher("127.0.0.1", broker.ingest_port) as pub:
                    for i in (3, 4, 5):
                        pub.publish(make_quote(t, i))
                await witness_sees(5)
                gate_done.set()

        async with Subscriber(broker.ws_url) as witness, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", on_gap=gaps.append, on_state_change=on_state,
                           resume=False, **fast_backoff()) as sub:
            await witness.subscribe(t, snapshot=False)
            await sub.subscribe(t)
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(make_quote(t, 1))
                pub.publish(make_quote(t, 2))
            assert [q.seq for q in await recv_n(sub, 2)] == [1, 2]
            await witness_sees(2)
            epoch = sub.epoch

            proxy.drop_all()
            # Resubscribed with a snapshot: seq 5 arrives, 3 and 4 are a gap.
            q = await sub.recv(RECV_TIMEOUT)
            assert q.seq == 5 and gate_done.is_set()
            assert sub.epoch == epoch
            assert sub.gaps == 1 and sub.missed == 2
            assert [(g.topic, g.expected, g.received, g.missed) for g in gaps] == [(t, 3, 5, 2)]

            # Dropped again with nothing published: the snapshot repeats seq 5
            # and is dropped as stale; the next live quote continues.
            proxy.drop_all()
            await async_wait_until(lambda: sub.connections == 3 and sub.state == State.OPEN, what="reconnect")
            await async_wait_until(lambda: sub.dropped_stale == 1, what="repeated snapshot dropped")
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(make_quote(t, 6))
            assert (await sub.recv(RECV_TIMEOUT)).seq == 6
            assert sub.gaps == 1
        await proxy.close()

    run(main(), timeout=90)


def test_requests_wait_for_reconnect(broker, topic):
    t = topic()

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        async with Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", **fast_backoff()) as sub:
            proxy.drop_all()
            # Whatever the state now, the request is (re)sent once connected.
            ack = await sub.subscribe(t, snapshot=False)
            assert ack.topics == [t]
            await sub.wait_for_state(State.OPEN, timeout=20)
            with Publisher("127.0.0.1", broker.ingest_port) as pub:
                pub.publish(make_quote(t, 1))
            assert (await sub.recv(RECV_TIMEOUT)).topic == t
        await proxy.close()

    run(main())


def test_ingest_tokens_hello(make_broker, topic):
    b = make_broker(config='[ingest]\ntokens = ["feed-secret"]\n')
    t = topic()

    async def main():
        async with Subscriber(b.ws_url) as sub:
            await sub.subscribe(t)
            loop = asyncio.get_running_loop()

            # No Hello, and a wrong token: the broker drops both producers.
            no_hello = Publisher("127.0.0.1", b.ingest_port)
            no_hello.publish(make_quote(t, 100))
            no_hello.flush()
            wrong = Publisher("127.0.0.1", b.ingest_port, token="not-the-token")
            wrong.publish(make_quote(t, 200))
            wrong.flush()
            for p in (no_hello, wrong):
                await loop.run_in_executor(None, lambda p=p: _wait_peer_closed(p))
                p.close() if not p.closed else None
            await async_wait_until(
                lambda: b.metric('tickwire_ingest_rejected_total{reason="unauthorized"}') >= 2,
                what="2 unauthorized rejects")

            with Publisher("127.0.0.1", b.ingest_port, token="feed-secret") as good:
                good.publish(make_quote(t, 1))
                good.publish_batch([make_quote(t, 2)])
                assert not good.peer_closed(0.0)
            got = await recv_n(sub, 2)
            assert [(q.seq, q.bid) for q in got] == [(1, 101.0), (2, 102.0)]  # nothing from the rejected ones

    run(main())


def _wait_peer_closed(p: Publisher, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not p.peer_closed(0.2):
        if time.monotonic() > deadline:
            raise AssertionError("broker did not close the unauthorized producer")


def test_publisher_send_after_broker_drop_raises(broker):
    # A bad frame (decode error) makes the broker drop the producer; later
    # writes fail instead of silently disappearing.
    p = Publisher("127.0.0.1", broker.ingest_port)
    p.send_raw(struct.pack("<I", 4) + struct.pack("<I", 9))  # unknown tag 9
    _wait_peer_closed(p)
    with pytest.raises(OSError):
        for i in range(1000):
            p.publish(make_quote("X", i))
            p.flush()
    p.close() if not p.closed else None


def test_iteration_ends_on_close_and_raises_without_reconnect(broker, topic):
    t = topic()

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        states = []
        # reconnect=False: a lost connection ends iteration with an error.
        sub = Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", reconnect=False, on_state_change=states.append)
        await sub.connect()
        await sub.subscribe(t, snapshot=False)
        proxy.drop_all()
        with pytest.raises(ConnectionClosedError):
            async for _ in sub:
                pass
        assert sub.state == State.CLOSED and states == [State.CONNECTING, State.OPEN, State.CLOSED]
        with pytest.raises(ConnectionClosedError):
            await sub.subscribe(t)
        await sub.close()
        await proxy.close()

        # close() ends an `async for` cleanly, also one blocked waiting.
        sub = Subscriber(broker.ws_url)
        await sub.connect()
        await sub.subscribe(t, snapshot=False)

        async def consume():
            return [q async for q in sub]

        consumer = asyncio.ensure_future(consume())
        await sub.close()
        assert await asyncio.wait_for(consumer, RECV_TIMEOUT) == []

    run(main())
