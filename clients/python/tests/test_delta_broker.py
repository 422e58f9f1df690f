"""Field deltas and permessage-deflate (protocol v1.2) against a real broker
process: a subscriber with deltas hands the application exactly the quotes
one without gets, live, rewound and resumed after a dropped connection; the
broker accepts the client's permessage-deflate offer.

These need a broker implementing "Fewer bytes per quote": an older one
ignores ``delta=1`` and declines compression, and they fail (each checks
that deltas really arrived, or that compression really was negotiated).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import defaultdict

import pytest

from tickwire import Publisher, Quote, Subscriber

from conftest import async_wait_until, run
from deltakit import same_bits
from test_broker import DropProxy, fast_backoff, recv_n
from test_resume_broker import Gate, see_all

FORMATS = ["json", "binary"]
# What ask_size goes through, one step every fifth quote: a NaN kept (not in
# the delta), ±inf, 0.0 -> -0.0 -> 0.0 (changes, bit for bit), back to finite.
ASK_SIZE_CYCLE = [math.nan, math.nan, math.inf, -math.inf, 0.0, -0.0, 0.0, 200.0]


def feed_quote(topic: str, i: int) -> Quote:
    """Quote ``i`` of a feed where one field moves at a time (and, one step
    in six, none: a delta of seq and ts only)."""
    values = [100.0, 100.5, 300.0, 200.0, 100.25, 1e6]
    for j in range(1, i + 1):
        if j % 5 == 0:
            values[3] = ASK_SIZE_CYCLE[j // 5 % len(ASK_SIZE_CYCLE)]
        elif j % 6 != 3:
            values[j % 6] = round(values[j % 6] + 0.01 * j, 2)
    return Quote(topic, bid=values[0], ask=values[1], bid_size=values[2], ask_size=values[3], last=values[4],
                 volume=values[5], ts=1_732_345_678_000_000_000 + i)


def received(topic: str, i: int) -> Quote:
    """Quote ``i`` as a subscriber gets it: numbered ``i`` by the broker."""
    return dataclasses.replace(feed_quote(topic, i), seq=i)


def publish(port: int, topics: list[str], seqs: range) -> None:
    with Publisher("127.0.0.1", port) as pub:
        for i in seqs:
            pub.publish_batch([feed_quote(t, i) for t in topics])


def by_topic(quotes: list[Quote]) -> dict[str, list[Quote]]:
    out: dict[str, list[Quote]] = defaultdict(list)
    for q in quotes:
        out[q.topic].append(q)
    return dict(out)


def assert_same_streams(plain: list[Quote], rebuilt: list[Quote]) -> None:
    """Per topic (topics may interleave differently), quote for quote, bit for bit."""
    a, b = by_topic(plain), by_topic(rebuilt)
    assert sorted(a) == sorted(b)
    for t in a:
        assert [q.seq for q in a[t]] == [q.seq for q in b[t]], t
        bad = [(x, y) for x, y in zip(a[t], b[t]) if not same_bits(x, y)]
        assert not bad, bad[:3]


@pytest.mark.parametrize("fmt", FORMATS)
def test_delta_and_plain_subscribers_deliver_the_same_quotes(broker, topic, fmt):
    topics = [topic("A"), topic("B")]
    H, N = 5, 60  # history before subscribing, then live quotes

    async def main():
        async with Subscriber(broker.ws_url) as witness:
            await witness.subscribe(topics, snapshot=False)
            publish(broker.ingest_port, topics, range(1, H + 1))
            await see_all(witness, topics, H)  # the broker holds the history before the rewinds
        async with Subscriber(broker.ws_url, format=fmt, delta=False) as plain, \
                Subscriber(broker.ws_url, format=fmt) as sub:
            assert "delta=1" in sub.url and "delta" not in plain.url
            for s in (plain, sub):
                await s.subscribe(topics, rewind=3)  # the first rewound quote is full, the next ones deltas
            publish(broker.ingest_port, topics, range(H + 1, H + N + 1))
            want = 2 * (3 + N)
            got_plain, got = await recv_n(plain, want), await recv_n(sub, want)
            assert_same_streams(got_plain, got)
            assert [q.seq for q in by_topic(got)[topics[0]]] == list(range(H - 2, H + N + 1))
            if fmt == "binary":  # exactly what was published (JSON turns non-finite values into NaN)
                assert all(same_bits(q, received(q.topic, q.seq)) for q in got)
            assert sub.deltas_applied > 0, "the broker sent no delta"
            assert sub.missing_bases == 0 and plain.deltas_applied == 0
            assert sub.gaps == plain.gaps == 0 and sub.dropped_stale == plain.dropped_stale == 0

    run(main(), timeout=90)


def test_delta_resume_after_drop_same_quotes_as_plain(broker, topic):
    topics = [topic("A"), topic("B")]
    K, M, N = 4, 12, 20

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()

        async def while_away() -> None:
            await asyncio.get_running_loop().run_in_executor(None, publish, broker.ingest_port, topics,
                                                             range(K + 1, M + 1))
            await see_all(plain, topics, M)

        gate = Gate(while_away)
        got_plain: list[Quote] = []
        async with Subscriber(broker.ws_url, format="binary", delta=False) as plain, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", format="binary", on_state_change=gate,
                           **fast_backoff()) as sub:
            await plain.subscribe(topics, snapshot=False)
            await sub.subscribe(topics, snapshot=False)
            publish(broker.ingest_port, topics, range(1, K + 1))
            got = await recv_n(sub, 2 * K)
            before = sub.deltas_applied
            assert before > 0, "the broker sent no delta"
            proxy.drop_all()
            got += await recv_n(sub, 2 * (M - K))  # replayed: the first of each topic in full
            assert gate.done.is_set() and sub.connections == 2
            await async_wait_until(lambda: sub.pending_requests == 0, what="resubscription acknowledged")
            publish(broker.ingest_port, topics, range(M + 1, N + 1))
            got += await recv_n(sub, 2 * (N - M))
            assert sub.deltas_applied > before, "no delta after the reconnect"
            assert sub.missing_bases == 0 and sub.gaps == 0 and sub.dropped_stale == 0
            got_plain += await recv_n(plain, 2 * (N - M))  # see_all() took 1..M
        await proxy.close()
        for t, quotes in by_topic(got).items():
            assert [q.seq for q in quotes] == list(range(1, N + 1))
            assert all(same_bits(q, received(t, q.seq)) for q in quotes)
        assert_same_streams(got_plain, [q for q in got if q.seq > M])

    run(main(), timeout=90)


def test_permessage_deflate_is_negotiated(broker, topic):
    t = topic()

    async def main():
        async with Subscriber(broker.ws_url) as sub, \
                Subscriber(broker.ws_url, connect_kwargs={"compression": None}) as raw:
            answer = (sub.extensions or "").split(";")
            assert answer[0].strip() == "permessage-deflate", sub.extensions
            params = {p.strip() for p in answer[1:]}
            assert "server_no_context_takeover" in params  # one compressed encoding serves every subscriber
            assert len(sub._ws.protocol.extensions) == 1  # and websockets took the answer
            assert raw.extensions is None  # no offer: no header
            for s in (sub, raw):
                await s.subscribe(t, snapshot=False)
            publish(broker.ingest_port, [t], range(1, 4))
            for s in (sub, raw):
                got = await recv_n(s, 3)
                assert all(same_bits(q, received(t, i)) for i, q in enumerate(got, start=1))
        # JSON quotes of 64 bytes or more go out compressed.
        await async_wait_until(lambda: broker.metric('tickwire_bytes_out_total{encoding="json+deflate"}') > 0,
                               what="compressed bytes counted")

    run(main())


def test_delta_off_gets_full_quotes_only(broker, topic):
    t = topic()

    async def main():
        async with Subscriber(broker.ws_url, format="binary", delta=False) as sub:
            assert "delta" not in sub.url
            await sub.subscribe(t, snapshot=False)
            publish(broker.ingest_port, [t], range(1, 11))
            got = await recv_n(sub, 10)
            assert [q.seq for q in got] == list(range(1, 11))
            # A delta here would have no base (none is kept without delta=1).
            assert sub.deltas_applied == 0 and sub.missing_bases == 0

    run(main())
