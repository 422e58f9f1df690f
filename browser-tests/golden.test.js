// The page's decoder (clients/js/src/tickwire-decoder.js, the JavaScript
// client's, served as /tickwire-decoder.js and re-exported by
// docs/js/tickwire-decoder.js) against frames encoded by the Rust encoder
// (tickwire_protocol::server::binary_quote).
// golden/quotes.json is generated and kept up to date by
// crates/protocol/tests/golden_js.rs (`cargo test`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { loadDecoder, REPO } from "./lib/paths.js";

const golden = JSON.parse(readFileSync(new URL("./golden/quotes.json", import.meta.url), "utf8"));
const { decodeQuote, decodeMessage } = await loadDecoder();

const FLOATS = ["bid", "ask", "bid_size", "ask_size", "last", "volume"];

function bytes(hex) {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** The IEEE 754 bits of a Number, as 16 hex digits. */
function bitsOf(x) {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0).toString(16).padStart(16, "0");
}

function checkQuote(q, want, how) {
  const where = `${want.name} (${how})`;
  assert.equal(q.type, "quote", where);
  assert.equal(q.topic, want.topic, where);
  assert.equal(typeof q.seq, "bigint", `${where}: seq is a BigInt`);
  assert.equal(typeof q.ts, "bigint", `${where}: ts is a BigInt`);
  assert.equal(q.seq, BigInt(want.seq), `${where}: seq`);
  assert.equal(q.ts, BigInt(want.ts), `${where}: ts`);
  assert.ok(Object.is(q.tsMs, Number(want.tsMs)), `${where}: tsMs ${q.tsMs} vs ${want.tsMs}`);
  for (const f of FLOATS) {
    const expected = Number(want[f]);
    if (Number.isNaN(expected)) {
      // NaN payload bits are not observable reliably once in a JS Number.
      assert.ok(Number.isNaN(q[f]), `${where}: ${f} should be NaN, got ${q[f]}`);
    } else {
      assert.ok(Object.is(q[f], expected), `${where}: ${f} ${q[f]} vs ${want[f]}`);
      assert.equal(bitsOf(q[f]), want.bits[f], `${where}: ${f} bits`);
    }
  }
}

test("golden file is present and non-trivial", () => {
  assert.ok(golden.quotes.length >= 5);
  assert.ok(golden.rejects.length >= 3);
  assert.ok(golden.quotes.some((q) => q.topic.length === 64), "has a 64-byte topic");
  assert.ok(golden.quotes.some((q) => q.ts === "18446744073709551615"), "has u64::MAX ts");
  assert.ok(golden.quotes.some((q) => q.bid === "NaN"), "has NaN");
  assert.ok(golden.quotes.some((q) => FLOATS.some((f) => q[f] === "-Infinity")), "has -inf");
  assert.ok(REPO.length > 0);
});

for (const want of golden.quotes) {
  test(`decodes Rust frame: ${want.name}`, () => {
    const frame = bytes(want.hex);
    assert.equal(frame.length, 66 + want.topic.length);
    // A typed array, a fresh ArrayBuffer (what a browser's WebSocket gives),
    // a view at a non-zero offset, and through decodeMessage.
    checkQuote(decodeQuote(frame), want, "Uint8Array");
    checkQuote(decodeQuote(frame.slice().buffer), want, "ArrayBuffer");
    const padded = new Uint8Array(frame.length + 3);
    padded.set(frame, 3);
    checkQuote(decodeQuote(new DataView(padded.buffer, 3, frame.length)), want, "offset view");
    checkQuote(decodeMessage({ data: frame.slice().buffer }), want, "decodeMessage(event)");
  });
}

for (const bad of golden.rejects) {
  test(`rejects: ${bad.name}`, () => {
    assert.throws(() => decodeQuote(bytes(bad.hex)), /tickwire:/);
  });
}
