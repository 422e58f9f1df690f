"""Byte-exact encoding/decoding, no network.

Golden bytes come from docs/protocol.md (5.2, section 3), from the Rust
unit tests in crates/protocol/tests/ingest.rs (rebuilt here the same way),
and from browser-tests/golden/quotes.json (frames written by the Rust
encoder, when the repository is present).
"""

from __future__ import annotations

import json
import math
import struct

import pytest

from tickwire import Quote, decode_binary_quote, encode_batch, encode_hello, encode_quote, quote_from_json
from tickwire.protocol import encode_quote_body, is_valid_pattern, is_valid_topic, topic_matches
from tickwire.subscriber import _with_format

from conftest import REPO

AAPL = Quote("AAPL", bid=189.12, ask=189.14, bid_size=300.0, ask_size=200.0, last=189.13,
             volume=1234567.0, ts=1732345678901234567)


def unhex(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def test_quote_frame_matches_docs_example():
    # docs/protocol.md 5.2: 76 bytes, prefix 4 + payload 72.
    expected = unhex("""
        48 00 00 00 01 00 00 00 04 00 00 00 00 00 00 00
        41 41 50 4c a4 70 3d 0a d7 a3 67 40 14 ae 47 e1
        7a a4 67 40 00 00 00 00 00 c0 72 40 00 00 00 00
        00 00 69 40 5c 8f c2 f5 28 a4 67 40 00 00 00 00
        87 d6 32 41 87 4b 17 73 37 87 0a 18""")
    assert encode_quote(AAPL) == expected
    # Quote body = u64 len + T + 6 f64 + u64 ts = 64 + T bytes. (The prose of
    # docs/protocol.md 5.1 says "70 + T"; its byte example and the Rust
    # encoder say 64 + T: 76 = 4 prefix + 4 tag + 64 + 4.)
    assert len(expected) == 4 + 4 + 64 + 4


def test_hello_and_empty_batch_match_docs():
    assert encode_hello("secret") == unhex(
        "12 00 00 00 | 00 00 00 00 | 06 00 00 00 00 00 00 00 | 73 65 63 72 65 74".replace("|", ""))
    assert encode_batch([]) == unhex("0c 00 00 00 | 02 00 00 00 | 00 00 00 00 00 00 00 00".replace("|", ""))


def test_layouts_from_rust_unit_tests():
    # crates/protocol/tests/ingest.rs::hello_and_batch_tags
    assert encode_hello("t")[4:] == bytes([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, ord("t")])
    assert encode_batch([])[4:] == bytes([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    # ::quote_frame_layout_byte_for_byte (topic "AB"), built field by field.
    q = Quote("AB", bid=189.12, ask=189.14, bid_size=300.0, ask_size=200.0, last=189.13,
              volume=1_234_567.0, ts=1_732_345_678_901_234_567)
    payload = (struct.pack("<I", 1) + struct.pack("<Q", 2) + b"AB"
               + b"".join(struct.pack("<d", x) for x in (q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume))
               + struct.pack("<Q", q.ts))
    assert len(payload) == 4 + 8 + 2 + 48 + 8
    assert encode_quote(q) == struct.pack("<I", len(payload)) + payload
    # ::frame_exactly_at_max...: a Hello payload is tag 4 + len 8 + token.
    assert len(encode_hello("x" * 88)) == 4 + 100


def test_batch_layout():
    quotes = [AAPL, Quote("BTC-USD", bid=math.nan, ask=67084.09, bid_size=0.0, ask_size=6.5,
                          last=67071.24, volume=183.5, ts=7)]
    frame = encode_batch(quotes)
    body = encode_quote_body(quotes[0]) + encode_quote_body(quotes[1])
    assert len(encode_quote_body(quotes[0])) == 64 + 4
    assert frame == struct.pack("<I", 12 + len(body)) + struct.pack("<IQ", 2, 2) + body
    assert len(frame) == 4 + 12 + (64 + 4) + (64 + 7)
    # The single-quote frame is the same body behind tag 1.
    assert encode_quote(AAPL)[8:] == encode_quote_body(AAPL)


def test_non_finite_and_negative_zero_bits_pass_through():
    q = Quote("X", bid=math.nan, ask=math.inf, bid_size=-math.inf, ask_size=-0.0, last=5e-324, volume=1e300,
              ts=(1 << 64) - 1)
    body = encode_quote_body(q)
    assert body[9:17] == struct.pack("<Q", 0x7FF8000000000000)
    assert body[17:25] == struct.pack("<Q", 0x7FF0000000000000)
    assert body[25:33] == struct.pack("<Q", 0xFFF0000000000000)
    assert body[33:41] == struct.pack("<Q", 0x8000000000000000)
    assert body[-8:] == b"\xff" * 8


@pytest.mark.parametrize("bad", ["", "AA PL", "A*", "*", "Ä", "x" * 65, "a\nb"])
def test_publish_refuses_invalid_topics(bad):
    with pytest.raises(ValueError):
        encode_quote(Quote(bad, ts=1))
    with pytest.raises(ValueError):
        encode_batch([AAPL, Quote(bad, ts=1)])


@pytest.mark.parametrize("ts", [-1, 1 << 64, 1.5, None])
def test_publish_refuses_bad_ts(ts):
    with pytest.raises(ValueError):
        encode_quote(Quote("AAPL", ts=ts))


def test_topic_syntax_helpers():
    assert is_valid_topic("fx:EUR/USD") and is_valid_topic("x" * 64)
    assert not is_valid_topic("x" * 65) and not is_valid_topic("A*")
    assert is_valid_pattern("NASDAQ.*") and is_valid_pattern("*") and is_valid_pattern("AAPL")
    assert not is_valid_pattern("**") and not is_valid_pattern("A*B") and not is_valid_pattern("x" * 64 + "*")
    assert topic_matches("NASDAQ.*", "NASDAQ.AAPL") and topic_matches("*", "X") and topic_matches("A", "A")
    assert not topic_matches("A", "AB") and not topic_matches("B*", "AB")


def test_binary_quote_docs_example():
    # docs/protocol.md section 3: 70 bytes (66 + 4).
    frame = unhex("""
        01 04 01 00 00 00 00 00 00 00 87 4b 17 73 37 87
        0a 18 a4 70 3d 0a d7 a3 67 40 14 ae 47 e1 7a a4
        67 40 00 00 00 00 00 c0 72 40 00 00 00 00 00 00
        69 40 5c 8f c2 f5 28 a4 67 40 00 00 00 00 87 d6
        32 41 41 41 50 4c""")
    q = decode_binary_quote(frame)
    assert q == Quote("AAPL", 1, 189.12, 189.14, 300.0, 200.0, 189.13, 1234567.0, 1732345678901234567)


@pytest.mark.parametrize("frame,why", [
    (b"", "empty"),
    (b"\x02" + bytes(69), "type"),
    (b"\x01\x04" + bytes(60), "short"),
    (b"\x01\x04" + bytes(64) + b"AAPLX", "length"),
    (b"\x01\x04" + bytes(64) + b"AA L", "topic"),
])
def test_binary_quote_rejects_malformed(frame, why):
    with pytest.raises(ValueError):
        decode_binary_quote(frame)


GOLDEN = REPO / "browser-tests" / "golden" / "quotes.json"


@pytest.mark.skipif(not GOLDEN.is_file(), reason="browser-tests/golden/quotes.json not in this checkout")
def test_binary_quote_rust_goldens():
    data = json.loads(GOLDEN.read_text())
    assert data["quotes"], "no golden quotes"
    for g in data["quotes"]:
        q = decode_binary_quote(bytes.fromhex(g["hex"]))
        assert q.topic == g["topic"], g["name"]
        assert q.seq == int(g["seq"]) and q.ts == int(g["ts"]), g["name"]
        for field in ("bid", "ask", "bid_size", "ask_size", "last", "volume"):
            # Bit for bit: NaN payloads, -0.0 and infinities included.
            assert struct.pack(">d", getattr(q, field)).hex() == g["bits"][field], (g["name"], field)
    for r in data.get("rejects", []):
        with pytest.raises(ValueError):
            decode_binary_quote(bytes.fromhex(r["hex"]))


def test_json_quote_null_is_nan_and_ints_exact():
    text = ('{"type":"quote","topic":"BTC-USD","seq":903,"bid":null,"ask":67084.09,"bid_size":0.0,'
            '"ask_size":-0.0,"last":67071.24,"volume":183.5,"ts":1732345678901234567}')
    q = quote_from_json(json.loads(text))
    assert math.isnan(q.bid)
    assert q.ask == 67084.09 and q.seq == 903 and q.ts == 1732345678901234567
    assert math.copysign(1.0, q.ask_size) == -1.0
    assert q.same_values(Quote("BTC-USD", 903, math.nan, 67084.09, 0.0, -0.0, 67071.24, 183.5, 1732345678901234567))
    with pytest.raises(ValueError):
        quote_from_json({"type": "quote", "topic": "X", "seq": 1})


def test_subscriber_url_format():
    assert _with_format("ws://h:1", "binary") == "ws://h:1/ws?format=binary"
    assert _with_format("ws://h:1/ws?format=json&x=1", "binary") == "ws://h:1/ws?format=binary&x=1"
    assert _with_format("wss://h/ws", "json") == "wss://h/ws?format=json"
    with pytest.raises(ValueError):
        _with_format("http://h/ws", "json")
