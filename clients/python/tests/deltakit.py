"""Test-side encoder of what a broker sends (protocol v1.2 field deltas),
written from the contract independently of the client's decoder: full
quotes and deltas, JSON and binary, and a whole connection's stream."""

from __future__ import annotations

import json
import math
import struct
from typing import Iterable

from tickwire import Quote
from tickwire.protocol import FIELDS

ALL_MASKS = range(64)


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def same_bits(a: Quote, b: Quote) -> bool:
    """Topic, seq, ts and every number bit for bit (NaN payloads, -0.0)."""
    return (a.topic, a.seq, a.ts) == (b.topic, b.seq, b.ts) and [bits(x) for x in a.prices()] == [
        bits(x) for x in b.prices()]


def changed_mask(prev: Quote, nxt: Quote) -> int:
    """The broker's rule: a field changed when its bits differ."""
    return sum(1 << i for i, (a, b) in enumerate(zip(prev.prices(), nxt.prices())) if bits(a) != bits(b))


def binary_quote(q: Quote) -> bytes:
    t = q.topic.encode("ascii")
    return struct.pack("<BBQQ6d", 1, len(t), q.seq, q.ts, *q.prices()) + t


def binary_delta(q: Quote, mask: int) -> bytes:
    t = q.topic.encode("ascii")
    values = [x for i, x in enumerate(q.prices()) if mask >> i & 1]
    return struct.pack(f"<BBQQB{len(values)}d", 2, len(t), q.seq, q.ts, mask, *values) + t


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def json_quote(q: Quote) -> str:
    return json.dumps({"type": "quote", "topic": q.topic, "seq": q.seq,
                       **{f: _num(x) for f, x in zip(FIELDS, q.prices())}, "ts": q.ts})


def json_delta(q: Quote, mask: int) -> str:
    changed = {f: _num(x) for i, (f, x) in enumerate(zip(FIELDS, q.prices())) if mask >> i & 1}
    return json.dumps({"type": "delta", "topic": q.topic, "seq": q.seq, "ts": q.ts, **changed})


def encode_stream(quotes: Iterable[Quote], fmt: str, delta: bool) -> list[str | bytes]:
    """The messages of one connection for ``quotes`` in delivery order: with
    ``delta``, a quote whose topic's previous quote on the connection had
    seq - 1 goes as a delta, every other one in full (the contract's rule)."""
    full, part = (binary_quote, binary_delta) if fmt == "binary" else (json_quote, json_delta)
    last: dict[str, Quote] = {}
    out: list[str | bytes] = []
    for q in quotes:
        prev = last.get(q.topic)
        if delta and prev is not None and prev.seq + 1 == q.seq:
            out.append(part(q, changed_mask(prev, q)))
        else:
            out.append(full(q))
        last[q.topic] = q
    return out
