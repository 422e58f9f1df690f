"""Decoding of field deltas (protocol v1.2), no network: binary type 2 for
every mask and the IEEE-754 bit patterns feeds use, malformed frames, and
JSON deltas."""

from __future__ import annotations

import json
import math

import pytest

from tickwire import Delta, Quote, decode_binary_delta, decode_binary_message, decode_binary_quote, delta_from_json
from tickwire.protocol import BINARY_DELTA_HEADER_LEN, FIELDS

from deltakit import ALL_MASKS, binary_delta, binary_quote, bits, from_bits, json_delta, same_bits
from test_protocol import unhex

TS = 1732345678901234999
# Bit patterns a decoder must keep exactly: quiet NaN, NaN with a payload,
# negative NaN, a signalling NaN, ±inf, ±0.0, the smallest subnormal, the
# largest finite number.
SPECIAL_BITS = [0x7FF8000000000000, 0x7FF8000000000123, 0xFFF8000000000000, 0x7FF0000000000001,
                0x7FF0000000000000, 0xFFF0000000000000, 0x8000000000000000, 0x0000000000000000,
                0x0000000000000001, 0x7FEFFFFFFFFFFFFF]
BASE = Quote("AAPL", 42, 189.12, 189.14, 300.0, 200.0, 189.13, 1234567.0, TS - 1)


def quote_with(mask: int, new: list[float], seq: int = 43, topic: str = "AAPL") -> Quote:
    """BASE's successor with the fields of ``mask`` taken from ``new``."""
    values = [n if mask >> i & 1 else b for i, (b, n) in enumerate(zip(BASE.prices(), new))]
    return Quote(topic, seq, *values, TS)


def test_binary_delta_contract_example():
    # The contract's example delta (bid changed to 189.13), written out by hand:
    # type 2, L 4, seq 43, ts, mask 0b000001, one f64, topic: 19 + 8 + 4 bytes.
    frame = unhex("""02 04 | 2b 00 00 00 00 00 00 00 | 37 4d 17 73 37 87 0a 18 | 01 |
                     5c 8f c2 f5 28 a4 67 40 | 41 41 50 4c""".replace("|", ""))
    assert len(frame) == BINARY_DELTA_HEADER_LEN + 8 + 4
    d = decode_binary_delta(frame)
    assert d == Delta("AAPL", 43, TS, 0b000001, (189.13,))
    assert d.changes() == {"bid": 189.13}
    assert decode_binary_message(frame) == d
    assert binary_delta(quote_with(1, [189.13] * 6), 1) == frame  # the test encoder agrees
    # ask_size -> -0.0 and volume -> NaN (mask 0b101000): the f64s in field order.
    frame = unhex("""02 01 | 07 00 00 00 00 00 00 00 | 09 00 00 00 00 00 00 00 | 28 |
                     00 00 00 00 00 00 00 80 | 00 00 00 00 00 00 f8 7f | 58""".replace("|", ""))
    d = decode_binary_delta(frame)
    assert (d.topic, d.seq, d.ts, d.mask) == ("X", 7, 9, 0b101000)
    assert [bits(v) for v in d.values] == [0x8000000000000000, 0x7FF8000000000000]
    assert list(d.changes()) == ["ask_size", "volume"]


@pytest.mark.parametrize("mask", ALL_MASKS)
def test_binary_delta_every_mask(mask):
    new = [from_bits(SPECIAL_BITS[i]) for i in range(6)]
    q = quote_with(mask, new)
    frame = binary_delta(q, mask)
    k = bin(mask).count("1")
    assert len(frame) == 19 + 8 * k + 4
    d = decode_binary_message(frame)
    assert isinstance(d, Delta)
    assert (d.topic, d.seq, d.ts, d.mask) == ("AAPL", 43, TS, mask)
    assert [bits(v) for v in d.values] == [SPECIAL_BITS[i] for i in range(6) if mask >> i & 1]
    assert list(d.changes()) == [f for i, f in enumerate(FIELDS) if mask >> i & 1]
    # Applied to its base: changed fields from the delta, the others kept, bit for bit.
    assert same_bits(d.apply(BASE), q)


@pytest.mark.parametrize("pattern", SPECIAL_BITS, ids=hex)
def test_binary_delta_keeps_bit_patterns_in_every_slot(pattern):
    v = from_bits(pattern)
    for i in range(6):
        mask = 1 << i
        d = decode_binary_delta(binary_delta(quote_with(mask, [v] * 6), mask))
        assert [bits(x) for x in d.values] == [pattern], FIELDS[i]
        assert bits(d.apply(BASE).prices()[i]) == pattern
    # All six at once, and a base holding the pattern kept where unchanged.
    base = Quote("AAPL", 42, *[v] * 6, 1)
    d = decode_binary_delta(binary_delta(Quote("AAPL", 43, 1.0, v, 2.0, v, 3.0, v, TS), 0b010101))
    assert [bits(x) for x in d.apply(base).prices()] == [bits(1.0), pattern, bits(2.0), pattern, bits(3.0), pattern]


def _valid_frames() -> list[bytes]:
    return [binary_delta(quote_with(m, [1.5] * 6, topic=t), m)
            for m, t in [(0, "A"), (1, "AAPL"), (0b100101, "fx:EUR/USD"), (63, "x" * 64)]]


@pytest.mark.parametrize("frame", _valid_frames(), ids=lambda f: f"mask{f[18]}")
def test_binary_delta_truncated_or_overlong_raises(frame):
    decode_binary_delta(frame)  # the frame itself is valid
    for n in range(len(frame)):
        with pytest.raises(ValueError):
            decode_binary_message(frame[:n])
    with pytest.raises(ValueError):
        decode_binary_message(frame + b"A")


def _with_byte(frame: bytes, at: int, value: int) -> bytes:
    return frame[:at] + bytes([value]) + frame[at + 1:]


@pytest.mark.parametrize("frame,why", [
    # Mask bits 6 and 7 name no field (lengths as if they did not count, then as if they did).
    (_with_byte(binary_delta(quote_with(1, [1.0] * 6), 1), 18, 0x41), "mask bit 6"),
    (_with_byte(binary_delta(quote_with(1, [1.0] * 6), 1), 18, 0x81), "mask bit 7"),
    (_with_byte(binary_delta(quote_with(3, [1.0] * 6), 3), 18, 0xC0), "mask bits 6+7, length of 2"),
    (bytes([2, 0]) + bytes(17), "empty topic"),
    (_with_byte(binary_delta(quote_with(0, []), 0), 19, ord(" ")), "space in topic"),
    (_with_byte(binary_delta(quote_with(0, []), 0), 19, ord("*")), "pattern as topic"),
    (_with_byte(binary_delta(quote_with(0, []), 0), 19, 0xC4), "non-ASCII topic"),
    (_with_byte(binary_delta(quote_with(0, []), 0), 1, 5), "topic length too long"),
    (_with_byte(binary_delta(quote_with(0, []), 0), 1, 3), "topic length too short"),
    (bytes([2, 65]) + bytes(17) + b"x" * 65, "topic over 64 bytes"),
])
def test_binary_delta_invalid_raises(frame, why):
    with pytest.raises(ValueError):
        decode_binary_delta(frame)
    with pytest.raises(ValueError):
        decode_binary_message(frame)


def test_binary_message_types():
    full = Quote("AAPL", 1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7)
    assert decode_binary_message(binary_quote(full)) == decode_binary_quote(binary_quote(full)) == full
    delta = binary_delta(full, 0)
    with pytest.raises(ValueError):
        decode_binary_quote(delta)  # each decoder takes its own type only
    with pytest.raises(ValueError):
        decode_binary_delta(binary_quote(full))
    for t in (0, 3, 255):
        with pytest.raises(ValueError):
            decode_binary_message(bytes([t]) + delta[1:])
    for empty in (b"", bytearray(), memoryview(b"")):
        with pytest.raises(ValueError):
            decode_binary_message(empty)
    assert decode_binary_message(memoryview(delta)) == decode_binary_message(bytearray(delta))


@pytest.mark.parametrize("mask", ALL_MASKS)
def test_json_delta_every_mask(mask):
    new = [1.25, -0.0, math.inf, 7.0, math.nan, 1e300]  # inf and NaN travel as null
    d = delta_from_json(json.loads(json_delta(quote_with(mask, new), mask)))
    assert (d.topic, d.seq, d.ts, d.mask) == ("AAPL", 43, TS, mask)
    want = [new[i] if math.isfinite(new[i]) else math.nan for i in range(6) if mask >> i & 1]
    assert [bits(v) for v in d.values] == [bits(v) for v in want]  # -0.0 kept, null -> NaN


def test_json_delta_contract_example_and_leniency():
    d = delta_from_json(json.loads(
        '{"type":"delta","topic":"AAPL","seq":43,"ts":1732345678901234999,"bid":189.13}'))
    assert d == Delta("AAPL", 43, 1732345678901234999, 1, (189.13,))
    # Integers are numbers; unknown fields are ignored (forward compatibility).
    d = delta_from_json({"type": "delta", "topic": "A", "seq": 2, "ts": 3, "volume": 5, "future": "x"})
    assert d.mask == 0b100000 and d.values == (5.0,) and isinstance(d.values[0], float)
    null = delta_from_json({"topic": "A", "seq": 2, "ts": 3, "ask": None})
    assert null.mask == 0b10 and math.isnan(null.values[0])
    # The same null, decoded as in a full quote.
    assert bits(null.values[0]) == bits(Quote("A").ask)


@pytest.mark.parametrize("msg", [
    {"seq": 1, "ts": 1},
    {"topic": "A", "ts": 1},
    {"topic": "A", "seq": 1},
    {"topic": 5, "seq": 1, "ts": 1},
    {"topic": "A", "seq": 1.0, "ts": 1},
    {"topic": "A", "seq": True, "ts": 1},
    {"topic": "A", "seq": 1, "ts": "1"},
    {"topic": "A", "seq": 1, "ts": 1, "bid": "1.0"},
    {"topic": "A", "seq": 1, "ts": 1, "last": True},
    {"topic": "A", "seq": 1, "ts": 1, "volume": [1]},
])
def test_json_delta_invalid_raises(msg):
    with pytest.raises(ValueError):
        delta_from_json(msg)
