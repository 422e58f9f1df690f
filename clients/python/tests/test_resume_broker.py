"""Resume (protocol v1.2 ``since`` / ``rewind``) and failover over several
URLs, against a real broker process.

The connection is cut with the DropProxy of test_broker.py; quotes are
published while the client is disconnected from inside its awaited
``on_state_change(RECONNECTING)`` callback (the client does not retry before
it returns), and a witness subscriber connected directly to the broker
proves the broker has them before the client comes back.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Iterable

import pytest

from tickwire import Gap, Publisher, Quote, RequestError, Resume, State, Subscriber

from conftest import async_wait_until, run
from test_broker import RECV_TIMEOUT, DropProxy, fast_backoff, make_quote, recv_n


async def see_all(sub: Subscriber, topics: Iterable[str], seq: int) -> None:
    """Reads ``sub`` until every topic has reached ``seq``."""
    want = set(topics)
    last: dict[str, int] = {}
    while any(last.get(t, 0) < seq for t in want):
        q = await sub.recv(RECV_TIMEOUT)
        last[q.topic] = max(last.get(q.topic, 0), q.seq)


def publish(port: int, topics: Iterable[str], seqs: Iterable[int]) -> None:
    topics = list(topics)
    with Publisher("127.0.0.1", port) as pub:
        for i in seqs:
            pub.publish_batch([make_quote(t, i) for t in topics])


def by_topic(quotes: list[Quote]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for q in quotes:
        out[q.topic].append(q.seq)
    return dict(out)


class Gate:
    """``on_state_change`` that, on the first RECONNECTING, publishes more and
    waits until the witness has it: the feed moves on while the client is away."""

    def __init__(self, action) -> None:
        self.action = action
        self.done = asyncio.Event()
        self.states: list[State] = []

    async def __call__(self, state: State) -> None:
        self.states.append(state)
        if state == State.RECONNECTING and not self.done.is_set():
            await self.action()
            self.done.set()


def test_resume_after_drop_every_quote_once_in_order(broker, topic):
    t, p = topic("EX"), topic("PAT")
    a, b = f"{p}.A", f"{p}.B"
    topics = [t, a, b]
    K, M, N = 4, 11, 15

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        resumes: list[Resume] = []
        gaps: list[Gap] = []

        async def while_away() -> None:
            await asyncio.get_running_loop().run_in_executor(None, publish, broker.ingest_port, topics,
                                                             range(K + 1, M + 1))
            await see_all(witness, topics, M)

        gate = Gate(while_away)
        async with Subscriber(broker.ws_url, format="binary") as witness, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", format="binary", on_resume=resumes.append,
                           on_gap=gaps.append, on_state_change=gate, **fast_backoff()) as sub:
            await witness.subscribe([t, f"{p}.*"], snapshot=False)
            await sub.subscribe(t)                           # an exact topic, snapshot on
            await sub.subscribe(f"{p}.*", snapshot=False)   # a pattern, other options
            publish(broker.ingest_port, topics, range(1, K + 1))
            got = await recv_n(sub, 3 * K)
            await see_all(witness, topics, K)
            assert sub.last_seqs == {t: K, a: K, b: K}
            epoch = sub.epoch

            proxy.drop_all()
            # The client reconnects by itself; the broker replays K+1..M.
            got += await recv_n(sub, 3 * (M - K))
            assert gate.done.is_set() and sub.connections == 2
            await async_wait_until(lambda: sub.pending_requests == 0, what="resubscription acknowledged")
            publish(broker.ingest_port, topics, range(M + 1, N + 1))  # live again
            got += await recv_n(sub, 3 * (N - M))

            assert by_topic(got) == {x: list(range(1, N + 1)) for x in topics}  # each once, in order
            assert sub.epoch == epoch
            assert sorted((r.recovered, sorted(r.topics), r.unrecovered, r.epoch) for r in resumes) == sorted([
                (True, [t], [], epoch), (True, [a, b], [], epoch)])
            assert (sub.recovered_topics, sub.unrecovered_topics) == (3, 0)
            # No gap, and no duplicate was even sent (no snapshot for recovered topics).
            assert gaps == [] and sub.gaps == 0 and sub.dropped_stale == 0
            assert sub.pending_quotes() == 0
            assert State.RECONNECTING in gate.states
        await proxy.close()

    run(main(), timeout=90)


def test_resume_json_unrecovered_when_history_is_too_short(make_broker, topic):
    b = make_broker(config="[history]\nsize = 4\n")
    t, u = topic("SHORT"), topic("OK")

    async def main():
        proxy = DropProxy(b.ws_port)
        await proxy.start()
        resumes: list[Resume] = []
        gaps: list[Gap] = []

        async def while_away() -> None:
            # t: 10 more quotes, more than the 4 the broker keeps; u: 2 more.
            await asyncio.get_running_loop().run_in_executor(None, publish, b.ingest_port, [t], range(3, 13))
            await asyncio.get_running_loop().run_in_executor(None, publish, b.ingest_port, [u], range(3, 5))
            await see_all(witness, [t], 12)
            await see_all(witness, [u], 4)

        gate = Gate(while_away)
        async with Subscriber(b.ws_url) as witness, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", on_resume=resumes.append, on_gap=gaps.append,
                           on_state_change=gate, **fast_backoff()) as sub:
            await witness.subscribe([t, u], snapshot=False)
            await sub.subscribe([t, u])
            publish(b.ingest_port, [t, u], range(1, 3))
            first = await recv_n(sub, 4)
            await see_all(witness, [t, u], 2)
            epoch = sub.epoch

            proxy.drop_all()
            # u is replayed (3, 4); t gets its snapshot (12): 3..11 are lost.
            got = await recv_n(sub, 3)
            assert gate.done.is_set()
            assert by_topic(got) == {t: [12], u: [3, 4]}
            assert [(r.recovered, sorted(r.topics), r.unrecovered, r.epoch) for r in resumes] == [
                (False, sorted([t, u]), [t], epoch)]
            assert gaps == [Gap(t, 3, 12, epoch)] and sub.missed == 9
            publish(b.ingest_port, [t, u], [13])
            assert by_topic(await recv_n(sub, 2)) == {t: [13], u: [5]}
            assert by_topic(first) == {t: [1, 2], u: [1, 2]}
            assert sub.dropped_stale == 0 and sub.gaps == 1
        await proxy.close()

    run(main(), timeout=90)


def test_resume_after_broker_restart_is_unrecovered(make_broker, topic):
    b = make_broker()
    t = topic()

    async def main():
        resumes: list[Resume] = []
        gaps: list[Gap] = []
        async with Subscriber(b.ws_url, on_resume=resumes.append, on_gap=gaps.append, **fast_backoff()) as sub:
            ack = await sub.subscribe(t)
            assert ack.recovered is None and ack.unrecovered == []  # no since: a v1 ack
            publish(b.ingest_port, [t], range(1, 4))
            assert [q.seq for q in await recv_n(sub, 3)] == [1, 2, 3]
            await asyncio.get_running_loop().run_in_executor(None, b.restart)
            await async_wait_until(lambda: sub.connections == 2 and sub.state == State.OPEN
                                   and sub.pending_requests == 0, what="resubscription acknowledged")
            # The since named the old epoch: not recovered; seq restarts, no gap.
            assert [(r.epoch, r.topics, r.recovered, r.unrecovered) for r in resumes] == [
                (ack.epoch, [t], False, [t])]
            assert sub.epoch != ack.epoch
            publish(b.ingest_port, [t], [10])
            assert (await sub.recv(RECV_TIMEOUT)).seq == 1
            assert gaps == [] and sub.dropped_stale == 0

    run(main(), timeout=90)


def test_resume_with_max_hz_sends_newest_and_reports_the_gap(broker, topic):
    t = topic()

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        resumes: list[Resume] = []
        gaps: list[Gap] = []

        async def while_away() -> None:
            await asyncio.get_running_loop().run_in_executor(None, publish, broker.ingest_port, [t], range(2, 7))
            await see_all(witness, [t], 6)

        gate = Gate(while_away)
        async with Subscriber(broker.ws_url) as witness, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", on_resume=resumes.append, on_gap=gaps.append,
                           on_state_change=gate, **fast_backoff()) as sub:
            await witness.subscribe(t, snapshot=False)
            await sub.subscribe(t, snapshot=False, max_hz=1000)
            publish(broker.ingest_port, [t], [1])
            assert (await sub.recv(RECV_TIMEOUT)).seq == 1
            await see_all(witness, [t], 1)
            epoch = sub.epoch

            proxy.drop_all()
            # Conflation asked for: recovered, only the newest (6) comes: 2..5 skipped.
            assert (await sub.recv(RECV_TIMEOUT)).seq == 6
            assert gate.done.is_set()
            assert [(r.recovered, r.topics) for r in resumes] == [(True, [t])]
            assert gaps == [Gap(t, 2, 6, epoch)]
            publish(broker.ingest_port, [t], [7])
            assert (await sub.recv(RECV_TIMEOUT)).seq == 7
            assert sub.dropped_stale == 0
        await proxy.close()

    run(main(), timeout=90)


def test_resume_pattern_over_1024_topics_is_split(broker, topic):
    p = topic("MANY")
    topics = [f"{p}.{i:04d}" for i in range(1100)]

    async def main():
        proxy = DropProxy(broker.ws_port)
        await proxy.start()
        resumes: list[Resume] = []
        gaps: list[Gap] = []
        errors: list[Exception] = []

        async def while_away() -> None:
            await asyncio.get_running_loop().run_in_executor(None, publish, broker.ingest_port, topics, [2])
            await see_all(witness, topics, 2)

        gate = Gate(while_away)
        async with Subscriber(broker.ws_url, format="binary") as witness, \
                Subscriber(f"ws://127.0.0.1:{proxy.port}/ws", format="binary", on_resume=resumes.append,
                           on_gap=gaps.append, on_error=errors.append, on_state_change=gate,
                           **fast_backoff()) as sub:
            await witness.subscribe(f"{p}.*", snapshot=False)
            await sub.subscribe(f"{p}.*", snapshot=False)
            publish(broker.ingest_port, topics, [1])
            assert by_topic(await recv_n(sub, 1100)) == {x: [1] for x in topics}
            await see_all(witness, topics, 1)

            proxy.drop_all()
            got = await recv_n(sub, 1100)
            assert gate.done.is_set()
            assert by_topic(got) == {x: [2] for x in topics}
            await async_wait_until(lambda: sub.pending_requests == 0, what="resubscription acknowledged")
            # Two requests (1,024 keys at most each), every topic recovered.
            assert len(resumes) == 2 and all(r.recovered for r in resumes)
            assert sorted(t for r in resumes for t in r.topics) == topics
            assert errors == [] and gaps == [] and sub.dropped_stale == 0
            assert sub.subscriptions == {f"{p}.*": {"snapshot": False, "max_hz": None, "rewind": None}}
        await proxy.close()

    run(main(), timeout=120)


def test_rewind(broker, topic):
    t, fresh = topic("R"), topic("FRESH")

    async def main():
        async with Subscriber(broker.ws_url) as witness, Subscriber(broker.ws_url, format="binary") as sub:
            await witness.subscribe(t, snapshot=False)
            publish(broker.ingest_port, [t], range(1, 11))
            await see_all(witness, [t], 10)

            ack = await sub.subscribe([t, fresh], rewind=4)
            assert ack.recovered is None
            got = await recv_n(sub, 4)  # the 4 most recent, oldest first, instead of the snapshot
            assert [(q.topic, q.seq, q.bid) for q in got] == [(t, i, 100.0 + i) for i in range(7, 11)]
            publish(broker.ingest_port, [t, fresh], [11])
            assert by_topic(await recv_n(sub, 2)) == {t: [11], fresh: [1]}
            assert sub.gaps == 0 and sub.dropped_stale == 0
            assert sub.subscriptions[t] == {"snapshot": True, "max_hz": None, "rewind": 4}

            for kwargs in ({"rewind": 3, "snapshot": False}, {"rewind": 0}, {"rewind": 1025}):
                with pytest.raises(RequestError) as e:
                    await sub.subscribe(topic("BAD"), **kwargs)
                assert e.value.code == "bad_request", kwargs

    run(main())


def test_failover_to_the_next_url(make_broker, topic):
    a, b = make_broker(), make_broker()
    t = topic()

    async def main():
        epochs: list[tuple] = []
        gaps: list[Gap] = []
        async with Subscriber([a.ws_url, b.ws_url], on_gap=gaps.append,
                              on_epoch_change=lambda old, new: epochs.append((old, new)), **fast_backoff()) as sub:
            assert sub.url.startswith(a.ws_url)
            ack = await sub.subscribe(t)
            publish(a.ingest_port, [t], range(1, 4))
            assert [q.seq for q in await recv_n(sub, 3)] == [1, 2, 3]

            await asyncio.get_running_loop().run_in_executor(None, a.stop)
            # It goes on on the other broker, resubscribed there.
            await async_wait_until(lambda: sub.connections == 2 and sub.state == State.OPEN
                                   and sub.pending_requests == 0, what="failover to the second broker")
            assert sub.url.startswith(b.ws_url)
            assert epochs == [(ack.epoch, sub.epoch)]  # independent brokers: a new epoch
            publish(b.ingest_port, [t], [1, 2])
            assert [q.seq for q in await recv_n(sub, 2)] == [1, 2]
            assert gaps == [] and set(sub.subscriptions) == {t}

        # The first connect tries each URL once: the dead one, then b.
        async with Subscriber([a.ws_url, b.ws_url]) as sub:
            assert sub.url.startswith(b.ws_url) and sub.connections == 1
            await sub.subscribe(t)
            assert (await sub.recv(RECV_TIMEOUT)).seq == 2  # b's snapshot
        with pytest.raises(OSError):
            await Subscriber([a.ws_url]).connect()

    run(main(), timeout=90)
