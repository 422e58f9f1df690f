"""Wire formats of tickwire protocol v1 (docs/protocol.md), without any I/O.

* Ingest frames (producer -> broker, section 5): a ``u32`` little-endian
  payload length, then the payload in bincode's *legacy* layout
  (fixed-width little-endian integers, ``u64`` length prefixes for strings
  and sequences, ``u32`` enum tags) of::

      enum IngestFrame { Hello { token: String } = 0, Quote(Quote) = 1, Batch(Vec<Quote>) = 2 }
      struct Quote { topic: String, bid, ask, bid_size, ask_size, last, volume: f64, ts: u64 }

* Binary subscriber quote frames (broker -> subscriber, section 3):
  ``u8 type=1, u8 L, u64 seq, u64 ts, 6 x f64, L topic bytes`` (66 + L bytes).

* JSON quote messages (section 2.3), where non-finite numbers are ``null``.
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
]

MAX_TOPIC_LEN = 64
#: Default broker limit on an ingest frame's payload (``ingest.max_frame_bytes``).
MAX_FRAME_BYTES = 1_048_576
BINARY_QUOTE = 1
BINARY_QUOTE_HEADER_LEN = 66

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


def decode_binary_quote(data: bytes | bytearray | memoryview) -> Quote:
    """Decodes one binary quote frame (section 3); raises ``ValueError`` if malformed."""
    data = bytes(data)
    if not data:
        raise ValueError("empty binary frame")
    if data[0] != BINARY_QUOTE:
        raise ValueError(f"unknown binary message type {data[0]}")
    if len(data) < BINARY_QUOTE_HEADER_LEN:
        raise ValueError(
            f"binary frame of {len(data)} bytes, shorter than the {BINARY_QUOTE_HEADER_LEN}-byte header"
        )
    _, n, seq, ts, bid, ask, bid_size, ask_size, last, volume = _BINARY_HEADER.unpack_from(data)
    if len(data) != BINARY_QUOTE_HEADER_LEN + n:
        raise ValueError(
            f"binary frame is {len(data)} bytes, topic length {n} needs {BINARY_QUOTE_HEADER_LEN + n}"
        )
    try:
        topic = data[BINARY_QUOTE_HEADER_LEN:].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("binary frame topic is not ASCII") from None
    if not is_valid_topic(topic):
        raise ValueError(f"invalid topic {topic!r}")
    return Quote(topic, seq, bid, ask, bid_size, ask_size, last, volume, ts)


def _num(v: Any, field: str) -> float:
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
