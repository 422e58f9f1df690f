"""Resume state logic without a network: the resubscribe plan (``since``
keys, splitting), and the Subscriber fed with broker messages directly,
sending into a fake connection."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tickwire import Gap, Resume, Subscriber
from tickwire.acks import _EntryOptions
from tickwire.protocol import topic_matches
from tickwire.resume import MAX_REQUEST_BYTES, MAX_SINCE_KEYS, covered_seqs, plan_resubscribe

from conftest import async_wait_until, run
from offline import ack as _ack, drain as _drain, offline as _offline


@dataclass(frozen=True)
class Opts:
    snapshot: bool = True
    max_hz: float | None = None
    rewind: int | None = None


def _quote(topic: str, seq: int) -> str:
    return json.dumps({"type": "quote", "topic": topic, "seq": seq, "bid": 1.0, "ask": None, "bid_size": 1.0,
                       "ask_size": 1.0, "last": 1.0, "volume": 1.0, "ts": 10 + seq})


def _check_contract(payload: dict[str, Any]) -> None:
    """What the broker requires of a subscribe's ``since`` (v1.2)."""
    since = payload.get("since")
    if since is None:
        return
    assert isinstance(since["epoch"], str)
    seqs = since["seqs"]
    assert 0 < len(seqs) <= MAX_SINCE_KEYS
    for key, seq in seqs.items():
        assert "*" not in key
        assert isinstance(seq, int) and 0 <= seq < 1 << 53
        assert any(topic_matches(e, key) for e in payload["topics"]), f"{key} not covered by its own request"
    if "rewind" in payload:
        assert payload.get("snapshot", True) is not False
    assert len(json.dumps(dict(payload, id=(1 << 53) - 1), separators=(",", ":"))) <= 65536


# -- plan_resubscribe ----------------------------------------------------------


def test_plan_without_resume_is_v1():
    groups = [(Opts(), ["A", "B.*"]), (Opts(snapshot=False, max_hz=4), ["C"])]
    last = {"A": 3, "B.X": 9}
    for plan in (plan_resubscribe(groups, last, "e1", resume=False),
                 plan_resubscribe(groups, last, None),   # no epoch known yet
                 plan_resubscribe(groups, {}, "e1")):     # nothing received yet
        assert [p for p, _ in plan] == [
            {"op": "subscribe", "topics": ["A", "B.*"]},
            {"op": "subscribe", "topics": ["C"], "snapshot": False, "max_hz": 4},
        ]
    # v1 chunking of many entries.
    plan = plan_resubscribe([(Opts(), [f"T{i}" for i in range(600)])], {}, None, max_entries=256)
    assert [len(p["topics"]) for p, _ in plan] == [256, 256, 88]


def test_plan_since_names_exactly_the_covered_topics():
    a, pat, c = Opts(), Opts(snapshot=False, max_hz=4), Opts(rewind=20)
    groups = [(a, ["AAPL", "FX.*"]), (pat, ["NASDAQ.*"]), (c, ["NEVER"])]
    last = {"AAPL": 1041, "FX.EURUSD": 77, "FX.GBPUSD": 5, "NASDAQ.MSFT": 12, "GONE": 3, "FXX": 1}
    plan = plan_resubscribe(groups, last, "9f3b2c71a0d4e815")
    assert plan == [
        ({"op": "subscribe", "topics": ["AAPL", "FX.*"],
          "since": {"epoch": "9f3b2c71a0d4e815", "seqs": {"AAPL": 1041, "FX.EURUSD": 77, "FX.GBPUSD": 5}}}, a),
        ({"op": "subscribe", "topics": ["NASDAQ.*"], "snapshot": False, "max_hz": 4,
          "since": {"epoch": "9f3b2c71a0d4e815", "seqs": {"NASDAQ.MSFT": 12}}}, pat),
        # Nothing received of its topics: no since, the rewind as asked.
        ({"op": "subscribe", "topics": ["NEVER"], "rewind": 20}, c),
    ]
    for p, _ in plan:
        _check_contract(p)


def test_plan_topic_covered_by_two_requests_is_in_both():
    # AAPL is covered by an exact entry and by a pattern with other options:
    # either request would otherwise send its snapshot.
    groups = [(Opts(), ["AAPL"]), (Opts(max_hz=2), ["A*"])]
    plan = plan_resubscribe(groups, {"AAPL": 10, "AMZN": 4}, "e")
    assert [p["since"]["seqs"] for p, _ in plan] == [{"AAPL": 10}, {"AAPL": 10, "AMZN": 4}]


def test_plan_splits_past_1024_keys_and_keeps_each_key_with_its_entries():
    entries = [f"E{i:04d}" for i in range(1500)]
    last = {e: i + 1 for i, e in enumerate(entries)}
    plan = plan_resubscribe([(Opts(max_hz=10), entries)], last, "e")
    assert len(plan) >= 2
    seen: dict[str, int] = {}
    for p, _ in plan:
        _check_contract(p)
        assert len(p["topics"]) <= 256 and p["max_hz"] == 10
        assert set(p["since"]["seqs"]) == set(p["topics"])  # exact entries: their own keys
        seen.update(p["since"]["seqs"])
    assert seen == last
    assert [e for p, _ in plan for e in p["topics"]] == entries  # every entry once, in order


def test_plan_respects_key_limit_with_patterns_in_one_request():
    # Two patterns of 700 tracked topics each: not together in one request.
    last = {f"A.{i}": 1 for i in range(700)} | {f"B.{i}": 2 for i in range(700)}
    plan = plan_resubscribe([(Opts(), ["A.*", "B.*"])], last, "e")
    assert [p["topics"] for p, _ in plan] == [["A.*"], ["B.*"]]
    for p, _ in plan:
        _check_contract(p)
        assert len(p["since"]["seqs"]) == 700


def test_plan_one_pattern_over_the_limit_is_sent_in_shares():
    last = {f"P.{i:05d}": i for i in range(2500)}
    o = Opts(max_hz=5, rewind=3)
    plan = plan_resubscribe([(o, ["P.*"])], last, "e")
    assert len(plan) == 3
    for p, opts in plan:
        _check_contract(p)
        assert p["topics"] == ["P.*"] and p["max_hz"] == 5 and opts is o
    # All but the last: no snapshot (and so no rewind); the last: the entry's options.
    assert [p.get("snapshot", True) for p, _ in plan] == [False, False, True]
    assert ["rewind" in p for p, _ in plan] == [False, False, True]
    merged: dict[str, int] = {}
    for p, _ in plan:
        assert not set(merged) & set(p["since"]["seqs"])
        merged.update(p["since"]["seqs"])
    assert merged == last


def test_plan_keeps_requests_under_the_message_limit():
    # 64-byte topics and 16-digit seqs: 1,024 keys would be ~86 KB.
    topics = [f"{i:04d}".ljust(64, "x") for i in range(1000)]
    last = {t: (1 << 53) - 1 - i for i, t in enumerate(topics)}
    plan = plan_resubscribe([(Opts(), topics)], last, "e" * 16)
    assert len(plan) >= 2
    for p, _ in plan:
        _check_contract(p)
        assert len(json.dumps(p, separators=(",", ":"))) <= MAX_REQUEST_BYTES
    # And one pattern covering them all.
    plan = plan_resubscribe([(Opts(), ["*"])], last, "e" * 16)
    assert len(plan) >= 2
    assert sum(len(p["since"]["seqs"]) for p, _ in plan) == 1000
    for p, _ in plan:
        _check_contract(p)


def test_covered_seqs():
    last = {"FX.EURUSD": 1, "FX.GBPUSD": 2, "FXX": 3, "AAPL": 4}
    assert covered_seqs(["FX.*"], last) == {"FX.EURUSD": 1, "FX.GBPUSD": 2}
    assert covered_seqs(["FX*", "AAPL", "MSFT"], last) == {"FX.EURUSD": 1, "FX.GBPUSD": 2, "FXX": 3, "AAPL": 4}
    assert covered_seqs(["*"], last) == last


def test_resume_dataclass():
    r = Resume(5, "e", ["A", "B", "C"], False, ["B"])
    assert r.recovered_topics == ["A", "C"]


# -- Subscriber, offline ---------------------------------------------------------


def test_subscriber_resubscribes_with_since_and_reports_recovered():
    async def main():
        resumes: list[Resume] = []
        gaps: list[Gap] = []
        sub, ws = _offline(on_resume=resumes.append, on_gap=gaps.append)
        feed = sub._on_text

        # Connection 1: subscribe, receive.
        t1 = asyncio.ensure_future(sub.subscribe(["AAPL", "FX.*"]))
        t2 = asyncio.ensure_future(sub.subscribe("NEWS", snapshot=False))
        await async_wait_until(lambda: len(ws.sent) == 2, what="both requests sent")
        r1, r2 = ws.sent
        await feed(_ack(r1, "e1"))
        await feed(_ack(r2, "e1"))
        ack = await t1
        assert ack.recovered is None and ack.unrecovered == []  # no since: v1 ack
        await t2
        for topic, seq in [("AAPL", 40), ("FX.EURUSD", 7), ("AAPL", 41), ("FX.GBPUSD", 1)]:
            await feed(_quote(topic, seq))
        assert _drain(sub) == [("AAPL", 40), ("FX.EURUSD", 7), ("AAPL", 41), ("FX.GBPUSD", 1)]
        assert sub.last_seqs == {"AAPL": 41, "FX.EURUSD": 7, "FX.GBPUSD": 1}

        # Connection 2: the resubscribe carries each request's own position.
        ws.sent.clear()
        await sub._resubscribe()
        assert [{k: v for k, v in p.items() if k != "id"} for p in ws.sent] == [
            {"op": "subscribe", "topics": ["AAPL", "FX.*"],
             "since": {"epoch": "e1", "seqs": {"AAPL": 41, "FX.EURUSD": 7, "FX.GBPUSD": 1}}},
            {"op": "subscribe", "topics": ["NEWS"], "snapshot": False},
        ]
        s1, s2 = ws.sent
        await feed(_ack(s1, "e1", recovered=True))
        await feed(_ack(s2, "e1"))
        assert resumes == [Resume(s1["id"], "e1", ["AAPL", "FX.EURUSD", "FX.GBPUSD"], True, [])]
        assert (sub.recovered_topics, sub.unrecovered_topics) == (3, 0)
        assert sub.pending_requests == 0
        # The replay continues each topic: no gap, nothing dropped.
        for topic, seq in [("AAPL", 42), ("AAPL", 43), ("FX.EURUSD", 8), ("AAPL", 44)]:
            await feed(_quote(topic, seq))
        assert _drain(sub) == [("AAPL", 42), ("AAPL", 43), ("FX.EURUSD", 8), ("AAPL", 44)]
        assert gaps == [] and sub.gaps == 0 and sub.dropped_stale == 0
        # A duplicate (seq not above the last seen) never reaches the application.
        await feed(_quote("AAPL", 43))
        await feed(_quote("AAPL", 44))
        assert _drain(sub) == [] and sub.dropped_stale == 2
        assert sub.subscriptions == {"AAPL": {"snapshot": True, "max_hz": None, "rewind": None},
                                     "FX.*": {"snapshot": True, "max_hz": None, "rewind": None},
                                     "NEWS": {"snapshot": False, "max_hz": None, "rewind": None}}

    run(main())


def test_subscriber_unrecovered_topic_gets_snapshot_and_a_real_gap():
    async def main():
        resumes: list[Resume] = []
        gaps: list[Gap] = []
        sub, ws = _offline(on_resume=resumes.append, on_gap=gaps.append)
        feed = sub._on_text
        await feed('{"type":"subscribed","topics":["A","B"],"epoch":"e1"}')
        sub._entries.clear()
        sub._entries["A"] = sub._entries["B"] = _EntryOptions(True, None)
        await feed(_quote("A", 5))
        await feed(_quote("B", 2))
        _drain(sub)
        await sub._resubscribe()
        (req,) = ws.sent
        assert req["since"] == {"epoch": "e1", "seqs": {"A": 5, "B": 2}}
        await feed(_ack(req, "e1", recovered=False, unrecovered=["B"]))
        assert resumes == [Resume(req["id"], "e1", ["A", "B"], False, ["B"])]
        assert resumes[0].recovered_topics == ["A"]
        assert (sub.recovered_topics, sub.unrecovered_topics) == (1, 1)
        # A: replay 6, 7. B: history gone; its snapshot is seq 9: 3..8 really missed.
        await feed(_quote("A", 6))
        await feed(_quote("B", 9))
        await feed(_quote("A", 7))
        assert _drain(sub) == [("A", 6), ("B", 9), ("A", 7)]
        assert gaps == [Gap("B", 3, 9, "e1")] and sub.missed == 6

    run(main())


def test_subscriber_new_epoch_resets_instead_of_gap():
    async def main():
        gaps: list[Gap] = []
        epochs: list[tuple] = []
        resumes: list[Resume] = []
        sub, ws = _offline(on_gap=gaps.append, on_resume=resumes.append,
                           on_epoch_change=lambda old, new: epochs.append((old, new)))
        feed = sub._on_text
        await feed('{"type":"subscribed","topics":["A"],"epoch":"e1"}')
        sub._entries["A"] = _EntryOptions(True, None)
        await feed(_quote("A", 30))
        await sub._resubscribe()
        (req,) = ws.sent
        await feed(_ack(req, "e2", recovered=False, unrecovered=["A"]))
        assert epochs == [("e1", "e2")] and sub.last_seqs == {}
        await feed(_quote("A", 1))  # the new broker's snapshot: neither stale nor a gap
        assert _drain(sub) == [("A", 30), ("A", 1)]
        assert gaps == [] and sub.dropped_stale == 0
        assert resumes[0].unrecovered == ["A"] and resumes[0].epoch == "e1"

    run(main())


def test_subscriber_resume_off_sends_no_since():
    async def main():
        resumes: list[Resume] = []
        sub, ws = _offline(resume=False, on_resume=resumes.append)
        feed = sub._on_text
        await feed('{"type":"subscribed","topics":["A"],"epoch":"e1"}')
        sub._entries["A"] = _EntryOptions(True, None)
        await feed(_quote("A", 3))
        await sub._resubscribe()
        assert [{k: v for k, v in p.items() if k != "id"} for p in ws.sent] == [
            {"op": "subscribe", "topics": ["A"]}]
        await feed(_ack(ws.sent[0], "e1"))
        assert resumes == [] and sub.last_resume is None

    run(main())


def test_subscriber_split_resubscribe_keeps_entry_options():
    # A pattern covering 1,500 tracked topics goes out twice; the first share
    # has snapshot:false, but the entry keeps its own options once acked.
    async def main():
        resumes: list[Resume] = []
        sub, ws = _offline(on_resume=resumes.append)
        feed = sub._on_text
        await feed('{"type":"subscribed","topics":["P.*"],"epoch":"e1"}')
        sub._entries["P.*"] = _EntryOptions(True, None, 8)
        for i in range(1500):
            await feed(_quote(f"P.{i}", 1))
        await sub._resubscribe()
        assert len(ws.sent) == 2
        assert ws.sent[0].get("snapshot") is False and "rewind" not in ws.sent[0]
        assert "snapshot" not in ws.sent[1] and ws.sent[1]["rewind"] == 8
        for p in ws.sent:
            _check_contract(p)
        await feed(_ack(ws.sent[0], "e1", recovered=True))
        assert sub.subscriptions["P.*"] == {"snapshot": True, "max_hz": None, "rewind": 8}
        await feed(_ack(ws.sent[1], "e1", recovered=True))
        assert sub.subscriptions["P.*"] == {"snapshot": True, "max_hz": None, "rewind": 8}
        assert sub.recovered_topics == 1500 and len(resumes) == 2

    run(main())


def test_subscribe_rewind_payload_and_urls():
    async def main():
        sub, ws = _offline()
        task = asyncio.ensure_future(sub.subscribe(["AAPL"], rewind=50))
        await async_wait_until(lambda: ws.sent, what="request sent")
        (req,) = ws.sent
        assert {k: v for k, v in req.items() if k != "id"} == {"op": "subscribe", "topics": ["AAPL"], "rewind": 50}
        await sub._on_text(_ack(req, "e1"))
        await task
        assert sub.subscriptions == {"AAPL": {"snapshot": True, "max_hz": None, "rewind": 50}}

    run(main())
    sub = Subscriber(["ws://a:1/ws", "ws://b:2"], format="binary")
    assert sub.urls == ["ws://a:1/ws?format=binary&delta=1", "ws://b:2/ws?format=binary&delta=1"]
    assert sub.url == sub.urls[0]
    with pytest.raises(ValueError):
        Subscriber([])
