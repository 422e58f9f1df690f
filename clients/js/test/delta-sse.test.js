// Field deltas over Server-Sent Events (`GET /sse?...&delta=1`), without a
// network: a scripted EventSource plays the broker. Each stream asks
// `delta=1`; deltas are JSON events, turned into quotes of the client's
// format (binary: BigInt seq/ts, null → NaN) exactly as full quotes are;
// and each new stream is a new broker connection, so it starts from full
// quotes: a delta there on a base of the stream before is refused.

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { TickwireClient } from "../src/tickwire-client.js";
import { makeFakeEventSource } from "../testing/fake-es.js";
import { jsonDelta, jsonQuote } from "../testing/frames.js";
import { record, waitFor } from "../testing/util.js";

const EPOCH = "9f3b2c71a0d4e815";
const FAST = { initialMs: 1, maxMs: 2 };

const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** An SSE-only client (EventSource) and its recorded events. */
function sseClient(options = {}) {
  const ES = makeFakeEventSource();
  const client = new TickwireClient("ws://broker.test:8080/ws", {
    transport: "sse",
    EventSource: ES,
    WebSocket: () => assert.fail("no WebSocket"),
    backoff: FAST,
    ...options,
  });
  clients.push(client);
  const ev = record(client, ["message", "quote", "gap", "duplicate", "error"]);
  return { client, ES, ev };
}

async function stream(ES, n) {
  await waitFor(() => ES.instances.length >= n, `event stream ${n} (got ${ES.instances.length})`);
  return ES.instances[n - 1];
}

function ack(es, extra = {}) {
  es.serverOpen();
  es.serverSend({ type: "subscribed", topics: es.params.topics, epoch: EPOCH, ...extra });
}

const TS = 1_732_345_678_901_234_000;

test("SSE: each stream asks delta=1 (not with delta: false); JSON deltas become quotes of the client's format", async () => {
  const plain = sseClient({ delta: false });
  const { client, ES, ev } = sseClient();
  const subs = [plain.client.subscribe("A"), client.subscribe("A")];
  const [p1, s1] = [await stream(plain.ES, 1), await stream(ES, 1)];
  assert.equal(new URL(s1.url).searchParams.get("delta"), "1");
  assert.equal(new URL(p1.url).searchParams.get("delta"), null);
  ack(p1);
  ack(s1);
  await Promise.all(subs);
  const full = [
    jsonQuote({ topic: "A", seq: 1, ts: TS + 1, bid: 1.5, ask: null, bid_size: 10, ask_size: 20, last: 1.6, volume: 5 }),
    jsonQuote({ topic: "A", seq: 2, ts: TS + 2, bid: null, ask: null, bid_size: 10, ask_size: 20, last: 1.6, volume: 5 }),
    jsonQuote({ topic: "A", seq: 3, ts: TS + 3, bid: null, ask: 1.7, bid_size: 10, ask_size: 20, last: 1.6, volume: 6 }),
  ];
  const sent = [full[0], jsonDelta({ topic: "A", seq: 2, ts: TS + 2, bid: null }), jsonDelta({ topic: "A", seq: 3, ts: TS + 3, ask: 1.7, volume: 6 })];
  full.forEach((m, i) => p1.serverSend(m, `e.${i}`));
  sent.forEach((m, i) => s1.serverSend(m, `e.${i}`));
  assert.equal(client.stats.deltas, 2);
  for (const type of ["message", "quote", "gap", "duplicate", "error"]) assert.deepStrictEqual(ev[type], plain.ev[type], `${type} events`);
  const q = ev.quote[1];
  assert.equal(q.seq, 2n, "binary format: BigInt");
  assert.equal(typeof q.ts, "bigint");
  assert.ok(Number.isNaN(q.bid), "a changed non-finite value: null → NaN, as in a full quote");
  assert.ok(Number.isNaN(ev.quote[2].bid), "and it stays");
  assert.equal(ev.quote[2].ask, 1.7);
});

test("SSE, JSON format: a changed non-finite value stays null; every new stream starts from full quotes", async () => {
  const { client, ES, ev } = sseClient({ format: "json" });
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  s1.serverSend(jsonQuote({ topic: "A", seq: 1, ts: TS + 1, bid: 1, ask: 2 }));
  s1.serverSend(jsonDelta({ topic: "A", seq: 2, ts: TS + 2, bid: null }));
  assert.deepEqual(ev.quote.map((x) => [x.seq, x.bid, x.ask]), [[1, 1, 2], [2, null, 2]]);

  // A subscribe reopens the stream: a new broker connection.
  const subB = client.subscribe("B");
  const s2 = await stream(ES, 2);
  assert.equal(new URL(s2.url).searchParams.get("delta"), "1");
  assert.deepEqual(s2.params.since, { epoch: EPOCH, seqs: { A: 2 } });
  ack(s2, { recovered: true });
  await subB;
  s2.serverSend(jsonDelta({ topic: "A", seq: 3, ts: TS + 3, bid: 3 })); // on the other stream's quote
  assert.equal(ev.error[0]?.code, "bad_delta");
  assert.deepEqual(ev.quote.map((x) => x.seq), [1, 2], "not applied");
  // The connection is closed and the client reconnects, resuming from seq 2.
  const s3 = await stream(ES, 3);
  assert.deepEqual(s3.params.since, { epoch: EPOCH, seqs: { A: 2 } });
  ack(s3, { recovered: true });
  s3.serverSend(jsonQuote({ topic: "A", seq: 3, ts: TS + 3, bid: 3, ask: 2 }));
  s3.serverSend(jsonDelta({ topic: "A", seq: 4, ts: TS + 4, ask: 5 }));
  assert.deepEqual(ev.quote.map((x) => [x.seq, x.bid, x.ask]), [[1, 1, 2], [2, null, 2], [3, 3, 2], [4, 3, 5]]);
  assert.deepEqual(ev.gap, []);
});
