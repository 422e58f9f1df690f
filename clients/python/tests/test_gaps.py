"""Gap tracking without a network: GapTracker, and the Subscriber's message
handling fed with broker messages directly."""

from __future__ import annotations

import asyncio
import json

from tickwire import Gap, GapTracker, Subscriber

from conftest import run


def test_tracker_counts_gaps_and_ignores_first_quote():
    t = GapTracker()
    assert t.set_epoch("e1") is True
    assert t.epoch_changes == 0  # the first epoch is not a change
    assert t.observe("A", 5) is None  # first quote of a topic: never a gap
    assert t.observe("A", 6) is None
    gap = t.observe("A", 9)
    assert gap == Gap("A", 7, 9, "e1") and gap.missed == 2
    assert t.observe("B", 1) is None  # topics are tracked independently
    assert (t.gaps, t.missed) == (1, 2)


def test_tracker_stale_quotes_do_not_move_tracking():
    t = GapTracker("e1")
    t.observe("A", 3)
    assert t.is_stale("A", 3) and t.is_stale("A", 2) and not t.is_stale("A", 4)
    assert t.observe("A", 3) is None  # snapshot repeat
    assert t.stale == 1 and t.last_seq["A"] == 3
    assert t.observe("A", 4) is None and t.gaps == 0


def test_tracker_new_epoch_resets_instead_of_gap():
    t = GapTracker()
    t.set_epoch("e1")
    t.observe("A", 41)
    assert t.set_epoch("e1") is False  # same epoch: keeps tracking
    assert t.set_epoch("e2") is True
    assert t.epoch_changes == 1 and t.last_seq == {}
    # seq restarts at 1 after a broker restart: neither stale nor a gap.
    assert not t.is_stale("A", 1)
    assert t.observe("A", 1) is None
    assert t.gaps == 0


def test_tracker_forget():
    t = GapTracker("e")
    for topic in ("N.A", "N.B", "X"):
        t.observe(topic, 1)
    t.forget(lambda topic: topic.startswith("N."))
    assert list(t.last_seq) == ["X"]
    t.forget(["X"])
    assert t.last_seq == {}


def _quote(topic: str, seq: int) -> str:
    return json.dumps({"type": "quote", "topic": topic, "seq": seq, "bid": 1.0, "ask": None, "bid_size": 1.0,
                       "ask_size": 1.0, "last": 1.0, "volume": 1.0, "ts": 10 + seq})


def test_subscriber_gap_and_epoch_handling_offline():
    async def main():
        gaps: list[Gap] = []
        epochs: list[tuple] = []
        sub = Subscriber("ws://127.0.0.1:9/ws", on_gap=gaps.append,
                         on_epoch_change=lambda old, new: epochs.append((old, new)))
        sub._queue = asyncio.Queue()  # as connect() would, without a connection
        feed = sub._on_text
        await feed('{"type":"subscribed","topics":["A"],"epoch":"e1"}')
        await feed(_quote("A", 1))
        await feed(_quote("A", 2))
        await feed(_quote("A", 2))  # repeated snapshot: dropped
        await feed(_quote("A", 5))  # 3, 4 missed
        assert [g.missed for g in gaps] == [2] and (sub.gaps, sub.missed) == (1, 2)
        assert sub.dropped_stale == 1
        # Reconnect to a restarted broker: new epoch in the ack, seq restarts.
        await feed('{"type":"subscribed","topics":["A"],"epoch":"e2"}')
        assert epochs == [("e1", "e2")] and sub.epoch == "e2"
        await feed(_quote("A", 1))
        await feed(_quote("A", 2))
        assert sub.gaps == 1
        seqs = []
        while not sub._queue.empty():
            seqs.append(sub._queue.get_nowait().seq)
        assert seqs == [1, 2, 5, 1, 2]

    run(main())
