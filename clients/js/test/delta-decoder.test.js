// Field deltas (protocol v1.2) without a client: the binary decoder's type 2
// frames (every one of the 64 masks, f64 bit patterns passed through,
// malformed frames refused) and DeltaState, which turns a connection's
// deltas back into full quotes.

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DELTA_HEADER_LEN,
  DELTA_TYPE,
  DeltaState,
  QUOTE_FIELDS,
  decodeDelta,
  decodeMessage,
  decodeQuote,
} from "../src/tickwire-decoder.js";
import { binaryDelta, binaryQuote } from "../testing/frames.js";

const TS = 1732345678901234567n; // needs 61 bits: exact in binary mode only

/** The IEEE 754 bits of a Number, as a BigInt. */
function bitsOf(x) {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, true);
  return v.getBigUint64(0, true);
}

/** The Number with these IEEE 754 bits. */
function fromBits(bits) {
  const v = new DataView(new ArrayBuffer(8));
  v.setBigUint64(0, bits, true);
  return v.getFloat64(0, true);
}

/** Same value, bit for bit; NaN only as NaN (a JS engine may not keep a NaN's payload bits). */
function sameBits(got, want, where) {
  if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `${where}: ${got} should be NaN`);
  else assert.equal(bitsOf(got), bitsOf(want), `${where}: ${got} vs ${want}`);
}

const SPECIAL = [
  ["+0", 0n],
  ["-0", 0x8000000000000000n],
  ["+inf", 0x7ff0000000000000n],
  ["-inf", 0xfff0000000000000n],
  ["quiet NaN", 0x7ff8000000000000n],
  ["negative NaN", 0xfff8000000000000n],
  ["NaN with a payload", 0x7ff4000000000001n],
  ["smallest subnormal", 1n],
  ["largest finite", 0x7fefffffffffffffn],
  ["-1.5", bitsOf(-1.5)],
].map(([name, bits]) => [name, fromBits(bits)]);

test("decodeDelta: every one of the 64 masks, fields in wire order, the others absent", () => {
  assert.equal(DELTA_TYPE, 2);
  assert.equal(DELTA_HEADER_LEN, 19);
  assert.deepEqual(QUOTE_FIELDS, ["bid", "ask", "bid_size", "ask_size", "last", "volume"]);
  for (let mask = 0; mask < 64; mask++) {
    const changed = {};
    QUOTE_FIELDS.forEach((f, i) => {
      if (mask & (1 << i)) changed[f] = 100 * (i + 1) + mask / 64; // distinct per field and mask
    });
    const frame = binaryDelta({ topic: "NASDAQ.AAPL", seq: 2n ** 63n + BigInt(mask), ts: TS, ...changed });
    const k = Object.keys(changed).length;
    assert.equal(frame.byteLength, 19 + 8 * k + "NASDAQ.AAPL".length, `mask ${mask}: the contract's length`);
    assert.equal(new DataView(frame).getUint8(18), mask, `mask ${mask} written`);
    const d = decodeDelta(frame);
    assert.deepEqual(d, { type: "delta", topic: "NASDAQ.AAPL", seq: 2n ** 63n + BigInt(mask), ts: TS, tsMs: 1732345678901.2346, ...changed }, `mask ${mask}`);
    assert.deepEqual(decodeMessage({ data: frame }), d, `mask ${mask}: decodeMessage reads the type byte`);
    assert.deepEqual(decodeMessage(new Uint8Array(frame)), d, `mask ${mask}: a typed array`);
  }
});

test("decodeDelta: f64 bit patterns pass through (−0, ±inf, NaNs, subnormals) in every position", () => {
  for (const [name, x] of SPECIAL) {
    for (const f of QUOTE_FIELDS) {
      const d = decodeDelta(binaryDelta({ topic: "T", seq: 7, [f]: x, ...(f === "bid" ? {} : { bid: 1 }) }));
      sameBits(d[f], x, `${name} as ${f}`);
    }
    // All six at once, the same value.
    const all = decodeDelta(binaryDelta({ topic: "T", seq: 7, ...Object.fromEntries(QUOTE_FIELDS.map((f) => [f, x])) }));
    for (const f of QUOTE_FIELDS) sameBits(all[f], x, `${name} as ${f} (mask 63)`);
  }
});

test("decodeDelta refuses malformed frames; decodeQuote refuses a delta; other types are unknown", () => {
  const good = new Uint8Array(binaryDelta({ topic: "AB", seq: 1, bid: 1, volume: 2 })); // 19 + 16 + 2 bytes
  assert.equal(good.length, 37);
  assert.throws(() => decodeDelta(good.slice(0, 36)), /tickwire:.*needs 37/, "one byte short");
  const long = new Uint8Array(38);
  long.set(good);
  assert.throws(() => decodeDelta(long), /tickwire:.*needs 37/, "one byte too many");
  assert.throws(() => decodeDelta(good.slice(0, 18)), /tickwire:.*header/, "shorter than the header");
  assert.throws(() => decodeDelta(new Uint8Array(0)), /tickwire: empty/);
  for (const bit of [6, 7]) {
    const bad = good.slice();
    bad[18] |= 1 << bit;
    assert.throws(() => decodeDelta(bad), /tickwire:.*mask/, `mask bit ${bit}`);
  }
  const badTopic = good.slice();
  badTopic[36] = 0x20; // a space
  assert.throws(() => decodeDelta(badTopic), /tickwire: invalid topic/);
  const noTopic = new Uint8Array(binaryDelta({ topic: "", seq: 1 }));
  assert.throws(() => decodeDelta(noTopic), /tickwire: invalid topic/);
  assert.throws(() => decodeQuote(good), /tickwire:.*not a quote/);
  assert.throws(() => decodeDelta(new Uint8Array(binaryQuote({ topic: "A", seq: 1 }))), /tickwire:.*not a delta/);
  const three = good.slice();
  three[0] = 3;
  assert.throws(() => decodeMessage(three), /tickwire:.*type 3/);
});

test("decodeMessage: a JSON delta keeps its fields (null for a non-finite one) and gets tsMs", () => {
  const d = decodeMessage('{"type":"delta","topic":"AAPL","seq":43,"ts":1732345678901234999,"bid":189.13,"last":null}');
  assert.deepEqual(d, { type: "delta", topic: "AAPL", seq: 43, ts: 1732345678901234999, bid: 189.13, last: null, tsMs: 1732345678901234999 / 1e6 });
});

test("DeltaState: a delta after the quote before it becomes the full quote, bit for bit", () => {
  const state = new DeltaState();
  const full = decodeQuote(binaryQuote({ topic: "A", seq: 41, ts: TS, bid: NaN, ask: -0, bid_size: Infinity, ask_size: -Infinity, last: 1.25, volume: 0 }));
  assert.equal(state.resolve(full), full, "a quote is passed on as it is");
  const d = decodeDelta(binaryDelta({ topic: "A", seq: 42, ts: TS + 1n, last: -0, volume: NaN }));
  const q = state.resolve(d);
  assert.equal(q.type, "quote");
  assert.notEqual(q, full, "a new object");
  assert.deepEqual(Object.keys(q), Object.keys(full), "shaped like a decoded quote");
  assert.equal(q.seq, 42n);
  assert.equal(q.ts, TS + 1n);
  assert.equal(q.tsMs, d.tsMs);
  sameBits(q.bid, NaN, "unchanged NaN");
  sameBits(q.ask, -0, "unchanged -0");
  sameBits(q.bid_size, Infinity, "unchanged +inf");
  sameBits(q.ask_size, -Infinity, "unchanged -inf");
  sameBits(q.last, -0, "1.25 → -0 (a change)");
  sameBits(q.volume, NaN, "0 → NaN (a change)");
  // What the application does with the quote it got does not touch the base.
  q.bid = 999;
  const next = state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 43, ts: TS + 2n })));
  sameBits(next.bid, NaN, "the base is the client's own copy");
  sameBits(next.last, -0, "the reconstructed quote is the next base");
  assert.equal(next.seq, 43n);
  // The delta itself is left as decoded (it is not a quote).
  assert.equal(d.type, "delta");
});

test("DeltaState: JSON deltas; null stays null as in a JSON quote", () => {
  const state = new DeltaState();
  const full = decodeMessage(JSON.stringify({ type: "quote", topic: "J", seq: 1, bid: 1.5, ask: null, bid_size: 3, ask_size: 4, last: 5, volume: 6, ts: 1000 }));
  state.resolve(full);
  const q = state.resolve(decodeMessage(JSON.stringify({ type: "delta", topic: "J", seq: 2, ts: 2000, bid: null, ask: 2.5 })));
  assert.deepEqual(q, { type: "quote", topic: "J", seq: 2, bid: null, ask: 2.5, bid_size: 3, ask_size: 4, last: 5, volume: 6, ts: 2000, tsMs: 0.002 });
  assert.deepEqual(Object.keys(q), Object.keys(full), "the broker's key order, as a JSON quote has it");
});

test("DeltaState: a delta without its usable base gives null and drops the base; forget and clear", () => {
  const state = new DeltaState();
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 2, bid: 1 }))), null, "no base at all");
  state.resolve(decodeQuote(binaryQuote({ topic: "A", seq: 5, bid: 1 })));
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 7, bid: 2 }))), null, "not seq − 1");
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 6, bid: 2 }))), null, "the base was dropped");
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 5, bid: 2 }))), null, "a delta never repeats its base");
  state.resolve(decodeQuote(binaryQuote({ topic: "A", seq: 9, bid: 1 })));
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "A", seq: 10, bid: 3 }))).bid, 3, "a full quote is a base again");
  // Mixed types (a JSON seq against a binary base) never match.
  assert.equal(state.resolve({ type: "delta", topic: "A", seq: 11, ts: 0 }), null);
  for (const other of [null, 3, "x", { type: "subscribed", topics: ["A"] }, { type: "delta" }]) {
    assert.equal(state.resolve(other), other?.type === "delta" ? null : other);
  }
  state.resolve(decodeQuote(binaryQuote({ topic: "B", seq: 1 })));
  state.resolve(decodeQuote(binaryQuote({ topic: "C", seq: 1 })));
  state.resolve(decodeQuote(binaryQuote({ topic: "D", seq: 1 })));
  assert.equal(state.size, 3);
  state.forget(["B"]);
  state.forget((t) => t === "C");
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "B", seq: 2 }))), null, "forgotten");
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "C", seq: 2 }))), null, "forgotten");
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "D", seq: 2 }))).seq, 2n, "kept");
  state.clear();
  assert.equal(state.size, 0);
  assert.equal(state.resolve(decodeDelta(binaryDelta({ topic: "D", seq: 3 }))), null, "cleared");
});
