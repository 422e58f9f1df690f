// Field deltas (protocol v1.2) in the client, without a network: a scripted
// WebSocket plays a broker that sends deltas. The application must see what
// it would see without deltas — the same events, the same quote objects —
// and a delta is applied only on the quote before it on the same
// connection: a reconnect and an unsubscribe forget the bases, and a delta
// without its base is never turned into a quote (bad_delta, reconnect,
// resume). SSE's deltas: test/delta-sse.test.js.

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { TickwireClient } from "../src/tickwire-client.js";
import { makeFakeWebSocket } from "../testing/fake-ws.js";
import { binaryDelta, binaryQuote, jsonDelta, jsonQuote } from "../testing/frames.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

const EPOCH = "9f3b2c71a0d4e815";
const FAST = { initialMs: 1, maxMs: 2 };
const FIELDS = ["bid", "ask", "bid_size", "ask_size", "last", "volume"];
const EVENTS = ["message", "quote", "gap", "duplicate", "error"];

const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** A client on a fake socket, opened and subscribed to `topics` (the ack sent); returns {client, WS, ws, ev}. */
async function subscribed(options, topics = ["A", "B"]) {
  const WS = makeFakeWebSocket();
  const client = new TickwireClient("ws://broker.test/ws", { WebSocket: WS, backoff: FAST, ...options });
  clients.push(client);
  const ev = record(client, EVENTS);
  await waitFor(() => WS.instances.length === 1, "the first socket");
  const ws = WS.last;
  ws.serverOpen();
  const sub = client.subscribe(topics);
  await waitFor(() => ws.sent.length === 1, "the subscribe");
  ws.serverSend({ type: "subscribed", id: ws.sent[0].id, topics, epoch: EPOCH });
  await sub;
  return { client, WS, ws, ev };
}

const sameBits = (a, b) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

/**
 * What a broker following the contract sends on one connection: a delta
 * when the quote sent last of the topic had seq − 1 (the fields that
 * differ, bit for bit), else the full quote; `full` forces one (a snapshot).
 */
function deltaEncoder(format) {
  const last = new Map();
  return (q, { full = false } = {}) => {
    const prev = last.get(q.topic);
    last.set(q.topic, q);
    const asFull = format === "json" ? jsonQuote(q) : binaryQuote(q);
    if (full || !prev || BigInt(prev.seq) !== BigInt(q.seq) - 1n) return asFull;
    const changed = {};
    for (const f of FIELDS) if (!sameBits(prev[f], q[f])) changed[f] = q[f];
    return format === "json" ? jsonDelta({ topic: q.topic, seq: q.seq, ts: q.ts, ...changed }) : binaryDelta({ topic: q.topic, seq: q.seq, ts: q.ts, ...changed });
  };
}

/** A feed with everything a delta must carry: no change, one field, all, ±0, NaN, ±inf, a skip, a repeat. */
function script(format) {
  const json = format === "json";
  const nonFinite = (x) => (json ? null : x); // JSON has null where binary has NaN / ±inf
  const ts = (n) => (json ? 1_732_345_678_901_234_000 + n * 1000 : 1732345678901234567n + BigInt(n));
  const q = (topic, seq, fields) => ({ topic, seq: json ? seq : BigInt(seq), ts: ts(seq), ...fields });
  const base = { bid: 1.5, ask: 1.75, bid_size: 100, ask_size: 200, last: 1.625, volume: 0 };
  return [
    [q("A", 1, base), { full: true }], // the snapshot
    [q("B", 7, { ...base, bid: nonFinite(NaN) })],
    [q("A", 2, { ...base, bid: 1.5625 })], // one field
    [q("A", 3, { ...base, bid: 1.5625 })], // nothing but seq and ts
    [q("B", 8, { ...base, bid: nonFinite(NaN), ask: nonFinite(Infinity) })], // NaN stays NaN: unchanged
    [q("A", 4, { bid: 2, ask: 3, bid_size: 4, ask_size: 5, last: nonFinite(-Infinity), volume: 7 })], // all six
    [q("A", 5, { bid: 2, ask: 3, bid_size: 4, ask_size: 5, last: nonFinite(-Infinity), volume: json ? 8 : -0 })], // 0 → -0 is a change
    [q("A", 8, { bid: 2, ask: 3, bid_size: 4, ask_size: 5, last: 1, volume: 8 })], // after a conflated skip: full
    [q("A", 9, { bid: 2.5, ask: 3, bid_size: 4, ask_size: 5, last: 1, volume: 8 })],
    [q("A", 9, { bid: 2.5, ask: 3, bid_size: 4, ask_size: 5, last: 1, volume: 8 }), { full: true }], // a snapshot repeating it
    [q("A", 10, { bid: 2.5, ask: 3, bid_size: 4, ask_size: 5, last: 1.5, volume: 9 })], // a delta on the repeat
    [q("B", 9, { ...base, bid: 0, ask: nonFinite(Infinity) })],
  ];
}

for (const format of ["binary", "json"]) {
  test(`${format}: a delta subscriber hands the application exactly what a plain one does`, async () => {
    const plain = await subscribed({ format, delta: false });
    const delta = await subscribed({ format });
    assert.doesNotMatch(plain.ws.url, /delta/);
    assert.match(delta.ws.url, /[?&]delta=1(&|$)/);
    const encode = deltaEncoder(format);
    let sentDeltas = 0;
    for (const [q, opts] of script(format)) {
      plain.ws.serverSend(format === "json" ? jsonQuote(q) : binaryQuote(q));
      const frame = encode(q, opts);
      if (frame instanceof ArrayBuffer ? new DataView(frame).getUint8(0) === 2 : frame.type === "delta") sentDeltas++;
      delta.ws.serverSend(frame);
    }
    assert.equal(sentDeltas, 8, "the script sends deltas");
    assert.equal(delta.client.stats.deltas, 8);
    assert.equal(delta.client.stats.badDeltas, 0);
    for (const type of EVENTS) assert.deepStrictEqual(delta.ev[type], plain.ev[type], `${type} events`);
    assert.equal(plain.ev.quote.length, 11, "every quote but the repeat");
    assert.equal(plain.ev.gap.length, 1, "the skip");
    assert.equal(plain.ev.duplicate.length, 1, "the repeat");
    // The counts agree too, deltas aside.
    const withoutDeltas = ({ deltas, ...rest }) => rest;
    assert.deepEqual(withoutDeltas(delta.client.stats), withoutDeltas(plain.client.stats));
  });
}

test("a delta without its base: no quote made up, `error` bad_delta, reconnect, resumed from the last quote passed on", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { client, WS, ws, ev } = await subscribed({}, ["A"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 1, bid: 1 }));
  ws.serverSend(binaryDelta({ topic: "A", seq: 2, bid: 2 }));
  ws.serverSend(binaryDelta({ topic: "A", seq: 4, bid: 4 })); // seq 3 never came: no base
  assert.deepEqual(ev.quote.map((q) => [q.seq, q.bid]), [[1n, 1], [2n, 2]]);
  assert.equal(ev.error.length, 1);
  assert.equal(ev.error[0].code, "bad_delta");
  assert.deepEqual(ev.error[0].topics, ["A"]);
  assert.match(ev.error[0].message, /seq 4/);
  assert.equal(client.stats.badDeltas, 1);
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "delta without its base" }, "the connection is closed");
  // Whatever the old connection still brings is not read (the resume replays it).
  ws.serverSend(binaryQuote({ topic: "A", seq: 5, bid: 5 }));
  ws.serverSend(binaryDelta({ topic: "A", seq: 6, bid: 6 }));
  assert.equal(ev.quote.length, 2);
  assert.equal(ev.error.length, 1, "one error, not one per delta");
  await waitFor(() => client.state === "reconnecting", "reconnecting");
  t.mock.timers.tick(FAST.maxMs);
  assert.equal(WS.instances.length, 2, "a new connection");
  const ws2 = WS.last;
  ws2.serverOpen();
  await waitFor(() => ws2.sent.length === 1, "the resubscription");
  assert.deepEqual(ws2.sent[0].since, { epoch: EPOCH, seqs: { A: 2 } }, "from the last quote passed on");
  ws2.serverSend({ type: "subscribed", id: ws2.sent[0].id, topics: ["A"], epoch: EPOCH, recovered: true });
  // The broker replays 3.. as a new connection starts: full first, then deltas.
  ws2.serverSend(binaryQuote({ topic: "A", seq: 3, bid: 3 }));
  ws2.serverSend(binaryDelta({ topic: "A", seq: 4, bid: 4 }));
  ws2.serverSend(binaryDelta({ topic: "A", seq: 5 }));
  assert.deepEqual(ev.quote.map((q) => [q.seq, q.bid]), [[1n, 1], [2n, 2], [3n, 3], [4n, 4], [5n, 4]]);
  assert.deepEqual(ev.gap, [], "nothing lost");
});

test("a reconnect forgets the bases: a delta on the new connection needs a full quote there first", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { client, WS, ws, ev } = await subscribed({ format: "json" }, ["A"]);
  ws.serverSend(jsonQuote({ topic: "A", seq: 1, bid: 1 }));
  ws.serverClose(1006);
  t.mock.timers.tick(FAST.maxMs);
  const ws2 = WS.last;
  assert.notEqual(ws2, ws);
  assert.match(ws2.url, /delta=1/);
  ws2.serverOpen();
  await waitFor(() => ws2.sent.length === 1, "the resubscription");
  ws2.serverSend({ type: "subscribed", id: ws2.sent[0].id, topics: ["A"], epoch: EPOCH, recovered: true });
  const err = nextEvent(client, "error");
  ws2.serverSend(jsonDelta({ topic: "A", seq: 2, bid: 2 })); // based on the other connection's quote
  assert.equal((await err).code, "bad_delta");
  assert.deepEqual(ev.quote.map((q) => q.seq), [1], "not applied to the old connection's quote");
  // The same on a connection that got its full quote first is fine.
  await waitFor(() => client.state === "reconnecting", "reconnecting");
  t.mock.timers.tick(FAST.maxMs);
  const ws3 = WS.last;
  ws3.serverOpen();
  await waitFor(() => ws3.sent.length === 1, "the resubscription");
  ws3.serverSend({ type: "subscribed", id: ws3.sent[0].id, topics: ["A"], epoch: EPOCH, recovered: true });
  ws3.serverSend(jsonQuote({ topic: "A", seq: 2, bid: 2, ask: 9 }));
  ws3.serverSend(jsonDelta({ topic: "A", seq: 3, bid: 3 }));
  assert.deepEqual(ev.quote.map((q) => [q.seq, q.bid, q.ask]), [[1, 1, null], [2, 2, 9], [3, 3, 9]]);
});

test("an unsubscribe forgets the bases of the topics it leaves uncovered (on its ack), not of those still covered", async () => {
  const { client, ws, ev } = await subscribed({}, ["A", "B", "P*"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 1, bid: 1 }));
  ws.serverSend(binaryQuote({ topic: "B", seq: 1, bid: 1 }));
  ws.serverSend(binaryQuote({ topic: "P1", seq: 1, bid: 1 }));
  const unsub = client.unsubscribe(["A", "P1"]); // P1 is still covered by P*
  await waitFor(() => ws.sent.length === 2, "the unsubscribe");
  // Until the ack, quotes (and deltas) of A still come.
  ws.serverSend(binaryDelta({ topic: "A", seq: 2, bid: 2 }));
  ws.serverSend({ type: "unsubscribed", id: ws.sent[1].id, topics: ["A", "P1"] });
  await unsub;
  ws.serverSend(binaryDelta({ topic: "P1", seq: 2, bid: 2 }));
  ws.serverSend(binaryDelta({ topic: "B", seq: 2, bid: 2 }));
  assert.deepEqual(ev.quote.map((q) => `${q.topic}${q.seq}`), ["A1", "B1", "P11", "A2", "P12", "B2"]);
  assert.deepEqual(ev.error, []);
  // A again, without a snapshot: the broker's first quote of it is full; a delta is not applied.
  const again = client.subscribe("A", { snapshot: false });
  await waitFor(() => ws.sent.length === 3, "the subscribe");
  ws.serverSend({ type: "subscribed", id: ws.sent[2].id, topics: ["A"], epoch: EPOCH });
  await again;
  const err = nextEvent(client, "error");
  ws.serverSend(binaryDelta({ topic: "A", seq: 3, bid: 3 }));
  assert.equal((await err).code, "bad_delta", "the base of A was forgotten");
  assert.equal(ev.quote.length, 6);
});

test("delta: false — no delta=1, and a delta the broker sends anyway is bad_delta", async () => {
  const { client, ws, ev } = await subscribed({ delta: false }, ["A"]);
  assert.equal(client.delta, false);
  ws.serverSend(binaryQuote({ topic: "A", seq: 1, bid: 1 }));
  ws.serverSend(binaryDelta({ topic: "A", seq: 2, bid: 2 }));
  assert.equal(ev.quote.length, 1);
  assert.equal(ev.error[0]?.code, "bad_delta");
  assert.match(ev.error[0].message, /without delta=1/);
});
