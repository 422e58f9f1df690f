"""Rebuilding full quotes from field deltas, no network: QuoteRebuilder,
and a Subscriber fed a connection's messages (JSON and binary) directly."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from tickwire import Delta, Gap, MissingBaseError, Quote, QuoteRebuilder, Subscriber
from tickwire.acks import _EntryOptions

from conftest import async_wait_until, run
from deltakit import binary_delta, binary_quote, changed_mask, encode_stream, from_bits, json_delta, json_quote, same_bits
from offline import FakeWS, drain, drain_quotes, offline

FORMATS = ["json", "binary"]
ENCODERS = {"json": (json_quote, json_delta), "binary": (binary_quote, binary_delta)}


def q(topic: str, seq: int, *values: float, ts: int | None = None) -> Quote:
    values = values or (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    return Quote(topic, seq, *values, ts=1000 + seq if ts is None else ts)


def bump(prev: Quote, **changes: float) -> Quote:
    """The next quote of ``prev``'s topic with some fields changed."""
    values = dict(zip(("bid", "ask", "bid_size", "ask_size", "last", "volume"), prev.prices()))
    values.update(changes)
    return Quote(prev.topic, prev.seq + 1, **values, ts=prev.ts + 1)


async def feed(sub: Subscriber, messages: list[str | bytes]) -> None:
    """Runs the subscriber's reader over its (fake) connection's messages."""
    ws: FakeWS = sub._ws
    ws.incoming = list(messages)
    await sub._read_loop(ws)


def full(fmt: str, quote: Quote) -> str | bytes:
    return ENCODERS[fmt][0](quote)


def delta(fmt: str, quote: Quote, prev: Quote) -> str | bytes:
    return ENCODERS[fmt][1](quote, changed_mask(prev, quote))


# -- QuoteRebuilder --------------------------------------------------------------


def test_rebuilder_applies_only_on_seq_minus_one():
    r = QuoteRebuilder()
    with pytest.raises(MissingBaseError) as e:
        r.apply(Delta("A", 5, 1))
    assert (e.value.topic, e.value.seq, e.value.base_seq) == ("A", 5, None)
    r.full(q("A", 5))
    got = r.apply(Delta("A", 6, 77, 0b000010, (-0.0,)))
    assert same_bits(got, Quote("A", 6, 1.0, -0.0, 3.0, 4.0, 5.0, 6.0, 77))
    assert r.last["A"] is got  # the rebuilt quote is the next base
    for bad_seq in (6, 5, 8):  # a repeat, older, or one skipped: not seq - 1
        with pytest.raises(MissingBaseError) as e:
            r.apply(Delta("A", bad_seq, 1, 1, (9.0,)))
        assert e.value.base_seq == 6
    assert r.last["A"] is got  # a refused delta changes nothing
    r.full(q("B", 1))
    r.forget(lambda t: t == "A")
    assert list(r.last) == ["B"]
    r.clear()
    assert len(r) == 0


# -- Subscriber: the application sees the same quotes with and without deltas ----


def random_feed(seed: int) -> list[Quote]:
    """What one connection delivers for three topics: runs of consecutive
    seqs (deltas), skips (conflation: a full quote follows), repeated older
    quotes (a snapshot after a resubscribe: full, stale for the
    application, yet the base of the next delta), fields that change or
    not, to and from special values."""
    rng = random.Random(seed)
    specials = [math.nan, from_bits(0x7FF8000000000123), math.inf, -math.inf, 0.0, -0.0, 5e-324]
    last: dict[str, Quote] = {}
    history: dict[str, list[Quote]] = {}
    out = []
    for _ in range(400):
        topic = rng.choice(["A", "B.x", "fx:EUR/USD"])
        prev = last.get(topic)
        if prev is not None and rng.random() < 0.1 and len(history[topic]) > 1:
            out.append(rng.choice(history[topic][:-1]))  # an older quote again
            last[topic] = out[-1]
            continue
        values = list(prev.prices()) if prev is not None else [rng.uniform(1, 2) for _ in range(6)]
        for i in range(6):
            if rng.random() < 0.3:
                values[i] = rng.choice(specials) if rng.random() < 0.3 else round(rng.uniform(1, 200), 2)
        newest = max((x.seq for x in history.get(topic, [])), default=0)
        seq = newest + (rng.choice([2, 3]) if rng.random() < 0.1 else 1)
        quote = Quote(topic, seq, *values, ts=rng.randrange(1 << 64))
        history.setdefault(topic, []).append(quote)
        last[topic] = quote
        out.append(quote)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(5))
def test_same_quotes_gaps_and_drops_with_and_without_deltas(fmt, seed):
    quotes = random_feed(seed)

    async def main():
        results = []
        for use_delta in (False, True):
            gaps: list[Gap] = []
            errors: list[Exception] = []
            sub, _ = offline(format=fmt, delta=use_delta, on_gap=gaps.append, on_error=errors.append)
            await feed(sub, encode_stream(quotes, fmt, use_delta))
            results.append((drain_quotes(sub), gaps, sub.dropped_stale, sub.deltas_applied, errors))
        (plain, plain_gaps, plain_drops, _, plain_errors), (rebuilt, gaps, drops, applied, errors) = results
        assert plain_errors == errors == []
        assert len(rebuilt) == len(plain) > 0
        assert all(same_bits(a, b) for a, b in zip(plain, rebuilt))  # bit for bit, JSON nulls included
        assert (gaps, drops) == (plain_gaps, plain_drops)
        assert plain_drops > 0 and plain_gaps  # the feed did repeat and skip
        sent_as_delta = sum(1 for m in encode_stream(quotes, fmt, True)
                            if (m[0] == 2 if isinstance(m, bytes) else '"delta"' in m))
        assert applied == sent_as_delta > len(quotes) // 2

    run(main())


@pytest.mark.parametrize("fmt", FORMATS)
def test_delta_after_full_quote(fmt):
    a1 = q("A", 1, 189.12, math.nan, 300.0, -0.0, 189.13, 1e6)
    a2 = bump(a1, bid=189.13, ask=math.inf)    # inf: NaN in JSON, exact in binary
    a3 = bump(a2, ask_size=0.0)                # -0.0 -> 0.0 is a change
    a4 = bump(a3)                              # only seq and ts

    async def main():
        sub, _ = offline(format=fmt)
        await feed(sub, [full(fmt, a1), delta(fmt, a2, a1), delta(fmt, a3, a2), delta(fmt, a4, a3)])
        got = drain_quotes(sub)
        json_ask = math.inf if fmt == "binary" else math.nan
        want = [a1, Quote("A", 2, 189.13, json_ask, 300.0, -0.0, 189.13, 1e6, a2.ts),
                Quote("A", 3, 189.13, json_ask, 300.0, 0.0, 189.13, 1e6, a3.ts),
                Quote("A", 4, 189.13, json_ask, 300.0, 0.0, 189.13, 1e6, a4.ts)]
        assert all(same_bits(g, w) for g, w in zip(got, want)) and len(got) == 4
        assert sub.deltas_applied == 3 and sub.missing_bases == 0 and sub.gaps == 0

    run(main())


# -- a delta without its base ------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", ["never received", "seq not last + 1"])
def test_missing_base_is_reported_and_the_connection_dropped(fmt, case):
    a1, b1 = q("A", 1), q("B", 1)
    a2 = bump(a1, bid=9.0)
    a3 = bump(a2, bid=10.0)

    async def main():
        errors: list[Exception] = []
        sub, ws = offline(format=fmt, on_error=errors.append)
        first = [] if case == "never received" else [full(fmt, a1)]
        bad = delta(fmt, a3 if first else a2, a2 if first else a1)
        after = [full(fmt, b1)]  # buffered behind the bad delta
        await feed(sub, first + [bad] + after)
        assert drain(sub) == ([("A", 1)] if first else [])  # nothing invented, nothing after it read
        (err,) = errors
        assert isinstance(err, MissingBaseError) and sub.last_error is err
        assert (err.topic, err.seq, err.base_seq) == (("A", 3, 1) if first else ("A", 2, None))
        assert sub.missing_bases == 1 and sub.deltas_applied == 0
        assert ws.closed is not None and ws.closed[0] == 1002  # the reconnect starts in full

    run(main())


# -- state: per connection, per subscribed topic -------------------------------------


def test_unsubscribe_forgets_the_base_unless_a_pattern_still_covers_it():
    async def main():
        errors: list[Exception] = []
        sub, ws = offline(format="json", on_error=errors.append)
        await sub._on_text('{"type":"subscribed","topics":["A","B","P.*"],"epoch":"e1"}')
        for e in ("A", "B", "P.*"):
            sub._entries[e] = _EntryOptions(True, None)
        a1, b1, p1 = q("A", 1), q("B", 1), q("P.B", 1)
        for m in (a1, b1, p1):
            await sub._on_text(json_quote(m))
        task = asyncio.ensure_future(sub.unsubscribe(["A", "P.*"]))
        await async_wait_until(lambda: ws.sent, what="unsubscribe sent")
        await sub._on_text('{"type":"unsubscribed","id":%d,"topics":["A","P.*"]}' % ws.sent[0]["id"])
        await task
        assert set(sub._rebuilder.last) == {"B"}
        # B is still subscribed: its delta applies.
        await sub._on_text(json_delta(bump(b1, ask=7.0), 0b10))
        assert drain(sub)[-1] == ("B", 2) and errors == []
        # A is not: its base is gone, a delta of it is not applied.
        await sub._on_text(json_delta(bump(a1, ask=7.0), 0b10))
        assert [type(e) for e in errors] == [MissingBaseError] and ws.closed[0] == 1002

    run(main())


def test_unsubscribing_an_exact_entry_under_a_pattern_keeps_the_base():
    async def main():
        sub, ws = offline(format="binary")
        await sub._on_text('{"type":"subscribed","topics":["A","*"],"epoch":"e1"}')
        sub._entries["A"] = sub._entries["*"] = _EntryOptions(True, None)
        a1 = q("A", 1)
        await feed(sub, [binary_quote(a1)])
        sub._remove_entries(["A"])  # as the unsubscribed ack does; "*" still delivers A
        await feed(sub, [binary_delta(bump(a1, last=-0.0), 0b10000)])
        assert drain(sub) == [("A", 1), ("A", 2)] and sub.missing_bases == 0

    run(main())


def test_a_quote_dropped_as_stale_is_still_the_base():
    # A resubscribe's snapshot repeats seq 5 after the application has 6:
    # dropped, yet the broker's next delta (7) is based on what it sent last.
    async def main():
        sub, _ = offline(format="binary")
        a5 = q("A", 5)
        a6 = bump(a5, bid=50.0)
        a7 = bump(a6, ask=70.0)
        await feed(sub, [binary_quote(a5), binary_quote(a6), binary_quote(a5), binary_delta(a6, 1),
                         binary_delta(a7, 2)])
        got = drain_quotes(sub)
        assert [x.seq for x in got] == [5, 6, 7] and sub.dropped_stale == 2
        assert same_bits(got[-1], a7) and sub.missing_bases == 0

    run(main())


def test_delta_off_keeps_no_state_and_urls():
    sub = Subscriber(["ws://a:1/ws?delta=1&x=y", "wss://b"], format="json", delta=False)
    assert sub.urls == ["ws://a:1/ws?format=json&x=y", "wss://b/ws?format=json"]
    assert Subscriber("ws://a:1/ws?delta=0").url == "ws://a:1/ws?format=json&delta=1"

    async def main():
        sub, _ = offline(delta=False)
        await sub._on_text(json_quote(q("A", 1)))
        assert len(sub._rebuilder) == 0 and drain(sub) == [("A", 1)]

    run(main())
