"""Wire formats of tickwire protocol v1 (docs/protocol.md), without any I/O.

* Ingest frames (producer -> broker, section 5): a ``u32`` little-endian
  payload length, then the payload in bincode's *legacy* layout
  (fixed-width little-endian integers, ``u64`` length prefixes for strings
  and sequences, ``u32`` enum tags) of::

      enum IngestFrame { Hello { token: String } = 0, Quote(Quote) = 1, Batch(Vec<Quote>) = 2 }
      struct Quote { topic: String, bid, ask, bid_size, ask_size, last, volume: f64, ts: u64 }

* Binary subscriber quote frames (broker -> subscriber, section 3):
  ``u8 type=1, u8 L, u64 seq, u64 ts, 6 x f64, L topic bytes`` (66 + L bytes).

* Binary field deltas (protocol v1.2, ``delta=1``): ``u8 type=2, u8 L,
  u64 seq, u64 ts, u8 mask, f64 x popcount(mask), L topic bytes``
  (19 + 8k + L bytes); mask bit i = field i of :data:`FIELDS` changed.

* JSON quote messages (section 2.3), where non-finite numbers are ``null``,
  and JSON deltas ``{"type":"delta","topic":..,"seq":..,"ts":..,<changed fields>}``.

Malformed messages raise ``ValueError``.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = [
    "Quote",
    "MAX_TOPIC_LEN",
    "MAX_FRAME_BYTES",
    "BINARY_QUOTE",
    "BINARY_QUOTE_HEADER_LEN",
    "is_valid_topic",
    "is_valid_pattern",
    "topic_matches",
    "encode_hello",
    "encode_quote",
    "encode_batch",
    "encode_quote_body",
    "decode_binary_quote",
    "quote_from_json",
    "Delta",
    "FIELDS",
    "BINARY_DELTA",
    "BINARY_DELTA_HEADER_LEN",
    "decode_binary_delta",
    "decode_binary_message",
    "delta_from_json",
]

MAX_TOPIC_LEN = 64
#: Default broker limit on an ingest frame's payload (``ingest.max_frame_bytes``).
MAX_FRAME_BYTES = 1_048_576
BINARY_QUOTE = 1
BINARY_QUOTE_HEADER_LEN = 66
BINARY_DELTA = 2
BINARY_DELTA_HEADER_LEN = 19
#: The six numbers of a quote in wire order: bit i of a delta's mask is ``FIELDS[i]``.
FIELDS = ("bid", "ask", "bid_size", "ask_size", "last", "volume")
_ALL_FIELDS = (1 << len(FIELDS)) - 1

TAG_HELLO = 0
TAG_QUOTE = 1
TAG_BATCH = 2

_U64_MAX = (1 << 64) - 1
_TOPIC_RE = re.compile(r"[A-Za-z0-9._:/-]{1,64}\Z")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._:/-]{0,63}\Z")

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# Quote body after the topic: bid, ask, bid_size, ask_size, last, volume, ts.
_QUOTE_TAIL = struct.Struct("<6dQ")
# Binary subscriber frame header: type, L, seq, ts, bid..volume.
_BINARY_HEADER = struct.Struct("<BBQQ6d")
assert _BINARY_HEADER.size == BINARY_QUOTE_HEADER_LEN
# Binary delta header: type, L, seq, ts, mask (the changed f64s follow).
_DELTA_HEADER = struct.Struct("<BBQQB")
assert _DELTA_HEADER.size == BINARY_DELTA_HEADER_LEN
_F64 = struct.Struct("<d")

_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Quote:
    """One top-of-book quote.

    Received quotes carry the broker-assigned per-topic ``seq``; when
    publishing, ``seq`` is ignored (the broker assigns it). Prices and sizes
    may be non-finite: NaN means "no value" (a JSON ``null`` is read as NaN).
    ``ts`` is the producer's timestamp in nanoseconds since the Unix epoch.

    Equality follows float semantics, so two quotes holding NaN compare
    unequal; use :meth:`same_values` to compare bit patterns loosely.
    """

    topic: str
    seq: int = 0
    bid: float = _NAN
    ask: float = _NAN
    bid_size: float = _NAN
    ask_size: float = _NAN
    last: float = _NAN
    volume: float = _NAN
    ts: int = 0

    def prices(self) -> tuple[float, float, float, float, float, float]:
        """``(bid, ask, bid_size, ask_size, last, volume)``."""
        return (self.bid, self.ask, self.bid_size, self.ask_size, self.last, self.volume)

    def same_values(self, other: "Quote") -> bool:
        """True when topic, seq, ts and every number match (NaN equals NaN)."""
        if (self.topic, self.seq, self.ts) != (other.topic, other.seq, other.ts):
            return False
        return all(
            (math.isnan(a) and math.isnan(b)) or a == b
            for a, b in zip(self.prices(), other.prices())
        )


@dataclass(frozen=True, slots=True)
class Delta:
    """A quote sent as the fields that changed since the quote of seq − 1 of
    its topic that the same connection received (protocol v1.2 field deltas).

    ``mask`` bit i set: field ``FIELDS[i]`` changed; ``values`` holds the new
    values of the changed fields, in field order (``popcount(mask)`` floats).
    A delta only means something against its base: see :meth:`apply` and
    :class:`tickwire.deltas.QuoteRebuilder`.
    """

    topic: str
    seq: int
    ts: int
    mask: int = 0
    values: tuple[float, ...] = ()

    def changes(self) -> dict[str, float]:
        """``{field: new value}`` of the changed fields."""
        names = [name for i, name in enumerate(FIELDS) if self.mask >> i & 1]
        return dict(zip(names, self.values))

    def apply(self, base: Quote) -> Quote:
        """The full quote: ``base`` (the quote of ``seq - 1``) with the changed
        fields, this delta's ``seq`` and ``ts``. Unchanged fields keep their
        exact bits. The caller checks that ``base`` is the right quote."""
        out = list(base.prices())
        changed = iter(self.values)
        for i in range(len(FIELDS)):
            if self.mask >> i & 1:
                out[i] = next(changed)
        return Quote(self.topic, self.seq, *out, self.ts)


def is_valid_topic(topic: str) -> bool:
    """1..=64 bytes of ``A-Z a-z 0-9 . _ - : /`` (no ``*``)."""
    return isinstance(topic, str) and _TOPIC_RE.match(topic) is not None


def is_valid_pattern(entry: str) -> bool:
    """A topic, or a topic prefix followed by a final ``*`` (``"*"`` alone too)."""
    if not isinstance(entry, str):
        return False
    if entry.endswith("*"):
        return _PREFIX_RE.match(entry[:-1]) is not None
    return is_valid_topic(entry)


def topic_matches(entry: str, topic: str) -> bool:
    """Whether subscription entry ``entry`` (topic or ``PREFIX*``) covers ``topic``."""
    if entry.endswith("*"):
        return topic.startswith(entry[:-1])
    return entry == topic


# --------------------------------------------------------------------------
# Ingest (producer) frames


def _bincode_string(s: str) -> bytes:
    b = s.encode("utf-8")
    return _U64.pack(len(b)) + b


def _frame(payload: bytes) -> bytes:
    if len(payload) > 0xFFFF_FFFF:
        raise ValueError("ingest frame payload over 4 GiB")
    return _U32.pack(len(payload)) + payload


def _check_publishable(q: Quote) -> None:
    if not is_valid_topic(q.topic):
        raise ValueError(f"invalid topic {q.topic!r}: 1 to 64 bytes of A-Z a-z 0-9 . _ - : /")
    ts = q.ts
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts <= _U64_MAX:
        raise ValueError(f"ts must be an integer in 0..2^64-1 (ns since the Unix epoch), got {ts!r}")


def encode_quote_body(q: Quote) -> bytes:
    """bincode legacy ``Quote``: u64 topic length, topic, 6 x f64, u64 ts (64 + T bytes)."""
    _check_publishable(q)
    try:
        tail = _QUOTE_TAIL.pack(
            float(q.bid), float(q.ask), float(q.bid_size), float(q.ask_size),
            float(q.last), float(q.volume), q.ts,
        )
    except (TypeError, ValueError, struct.error) as e:
        raise ValueError(f"quote {q.topic!r}: prices and sizes must be numbers: {e}") from None
    return _bincode_string(q.topic) + tail


def encode_hello(token: str) -> bytes:
    """A complete ``Hello { token }`` frame, length prefix included."""
    if not isinstance(token, str):
        raise TypeError("token must be a str")
    return _frame(_U32.pack(TAG_HELLO) + _bincode_string(token))


def encode_quote(q: Quote) -> bytes:
    """A complete ``Quote(q)`` frame, length prefix included (4 + 4 + 64 + T bytes)."""
    return _frame(_U32.pack(TAG_QUOTE) + encode_quote_body(q))


def encode_batch(quotes: Iterable[Quote]) -> bytes:
    """A complete ``Batch(quotes)`` frame (all or nothing at the broker; may be empty)."""
    bodies = [encode_quote_body(q) for q in quotes]
    return _frame(_U32.pack(TAG_BATCH) + _U64.pack(len(bodies)) + b"".join(bodies))


# --------------------------------------------------------------------------
# Subscriber messages


def _binary_topic(data: bytes, start: int, what: str) -> str:
    try:
        topic = data[start:].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"binary {what} topic is not ASCII") from None
    if not is_valid_topic(topic):
        raise ValueError(f"binary {what}: invalid topic {topic!r}")
    return topic


def decode_binary_quote(data: bytes | bytearray | memoryview) -> Quote:
    """Decodes one binary quote frame (type 1, section 3); raises ``ValueError`` if malformed."""
    data = bytes(data)
    if not data:
        raise ValueError("empty binary frame")
    if data[0] != BINARY_QUOTE:
        raise ValueError(f"not a binary quote: message type {data[0]}")
    if len(data) < BINARY_QUOTE_HEADER_LEN:
        raise ValueError(
            f"binary frame of {len(data)} bytes, shorter than the {BINARY_QUOTE_HEADER_LEN}-byte header"
        )
    _, n, seq, ts, bid, ask, bid_size, ask_size, last, volume = _BINARY_HEADER.unpack_from(data)
    if len(data) != BINARY_QUOTE_HEADER_LEN + n:
        raise ValueError(
            f"binary frame is {len(data)} bytes, topic length {n} needs {BINARY_QUOTE_HEADER_LEN + n}"
        )
    topic = _binary_topic(data, BINARY_QUOTE_HEADER_LEN, "quote")
    return Quote(topic, seq, bid, ask, bid_size, ask_size, last, volume, ts)


def decode_binary_delta(data: bytes | bytearray | memoryview) -> Delta:
    """Decodes one binary delta frame (type 2); raises ``ValueError`` if malformed
    (truncated or overlong, mask bits 6 or 7 set, invalid topic)."""
    data = bytes(data)
    if not data:
        raise ValueError("empty binary frame")
    if data[0] != BINARY_DELTA:
        raise ValueError(f"not a binary delta: message type {data[0]}")
    if len(data) < BINARY_DELTA_HEADER_LEN:
        raise ValueError(
            f"binary delta of {len(data)} bytes, shorter than the {BINARY_DELTA_HEADER_LEN}-byte header"
        )
    _, n, seq, ts, mask = _DELTA_HEADER.unpack_from(data)
    if mask & ~_ALL_FIELDS:
        raise ValueError(f"binary delta mask {mask:#04x} names no field")
    k = mask.bit_count()
    need = BINARY_DELTA_HEADER_LEN + 8 * k + n
    if len(data) != need:
        raise ValueError(f"binary delta is {len(data)} bytes, mask and topic length need {need}")
    # Each value read on its own keeps its exact bits (NaN payloads, -0.0).
    values = tuple(_F64.unpack_from(data, BINARY_DELTA_HEADER_LEN + 8 * i)[0] for i in range(k))
    topic = _binary_topic(data, BINARY_DELTA_HEADER_LEN + 8 * k, "delta")
    return Delta(topic, seq, ts, mask, values)


def decode_binary_message(data: bytes | bytearray | memoryview) -> Quote | Delta:
    """Decodes one binary frame from the broker by its type byte: a full
    :class:`Quote` (type 1) or a :class:`Delta` (type 2); ``ValueError`` otherwise."""
    data = bytes(data)
    if not data:
        raise ValueError("empty binary frame")
    if data[0] == BINARY_QUOTE:
        return decode_binary_quote(data)
    if data[0] == BINARY_DELTA:
        return decode_binary_delta(data)
    raise ValueError(f"unknown binary message type {data[0]}")


def _num(v: Any, field: str) -> float:
    # A non-finite number travels as null; its sign and kind are lost, NaN stands for it.
    if v is None:
        return _NAN
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"quote field {field!r} is not a number: {v!r}")
    return float(v)


def _int(v: Any, field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"quote field {field!r} is not an integer: {v!r}")
    return v


def quote_from_json(msg: Mapping[str, Any]) -> Quote:
    """Builds a :class:`Quote` from a parsed JSON ``{"type":"quote",...}`` message."""
    try:
        topic = msg["topic"]
        if not isinstance(topic, str):
            raise ValueError(f"quote topic is not a string: {topic!r}")
        return Quote(
            topic,
            _int(msg["seq"], "seq"),
            _num(msg["bid"], "bid"),
            _num(msg["ask"], "ask"),
            _num(msg["bid_size"], "bid_size"),
            _num(msg["ask_size"], "ask_size"),
            _num(msg["last"], "last"),
            _num(msg["volume"], "volume"),
            _int(msg["ts"], "ts"),
        )
    except KeyError as e:
        raise ValueError(f"quote message without {e.args[0]!r}") from None


def delta_from_json(msg: Mapping[str, Any]) -> Delta:
    """Builds a :class:`Delta` from a parsed JSON ``{"type":"delta",...}`` message.

    The fields of :data:`FIELDS` present are the changed ones; ``null`` (a
    changed non-finite value) becomes NaN, as in :func:`quote_from_json`.
    """
    try:
        topic = msg["topic"]
        if not isinstance(topic, str):
            raise ValueError(f"delta topic is not a string: {topic!r}")
        seq, ts = _int(msg["seq"], "seq"), _int(msg["ts"], "ts")
    except KeyError as e:
        raise ValueError(f"delta message without {e.args[0]!r}") from None
    mask, values = 0, []
    for i, name in enumerate(FIELDS):
        if name in msg:
            mask |= 1 << i
            values.append(_num(msg[name], name))
    return Delta(topic, seq, ts, mask, tuple(values))
