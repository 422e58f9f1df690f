// The SSE transport (protocol v1.2 `GET /sse`) against the real broker
// (target/debug/tickwire, or $TICKWIRE_BIN). Node has no EventSource: the
// client reads the stream with fetch. `transport: "sse"` forces it; with
// "auto" a WebSocket that does not get through falls back to it, and the
// client moves back once the WebSocket works. The same stream as over the
// WebSocket; subscribes and unsubscribes while quotes flow and a cut
// connection lose nothing and repeat nothing.
// Quotes come from this test through the ingest socket (testing/publisher.js);
// cuts are made by a loopback TCP proxy (testing/tcp-proxy.js).

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";

import { TickwireClient } from "../src/tickwire-client.js";
import { startBroker, stopBroker } from "../testing/broker.js";
import { Publisher } from "../testing/publisher.js";
import { startTcpProxy } from "../testing/tcp-proxy.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

let broker;
let pub;
let refusedUrl; // a loopback port nothing listens on
const clients = [];
const proxies = [];

before(async () => {
  broker = await startBroker();
  pub = await Publisher.connect(broker.ingestAddr);
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  refusedUrl = `ws://127.0.0.1:${probe.address().port}/ws`;
  await new Promise((r) => probe.close(r));
});

after(async () => {
  pub?.close();
  await stopBroker(broker);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function client(options = {}, url = broker.url) {
  const c = new TickwireClient(url, { WebSocket, transport: "sse", backoff: { initialMs: 20, maxMs: 200 }, ...options });
  clients.push(c);
  return c;
}

async function proxy() {
  const p = await startTcpProxy(broker.wsAddr);
  proxies.push(p);
  return p;
}

const seqs = (quotes, topic) => quotes.filter((q) => q.topic === topic).map((q) => Number(q.seq));
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes quotes 1..n of `topic` (bid = seq), one every `everyMs` (a feed
 * paced by the clock), until done; returns {done: Promise, published()}.
 */
function feed(topic, n, everyMs = 2) {
  let i = 0;
  const done = (async () => {
    while (i < n) {
      i++;
      await pub.publish({ topic, bid: i, ask: i + 0.5, ts: BigInt(Date.now()) * 1_000_000n });
      if (everyMs) await pause(everyMs);
    }
  })();
  return { done, published: () => i };
}

for (const format of ["json", "binary"]) {
  test(`${format} over SSE: acks, quotes as over the WebSocket, unsubscribe, errors with the broker's code`, async () => {
    const T = `JS.SSE.${format}`;
    const c = client({ format });
    const ev = record(c, ["quote", "gap", "duplicate", "open", "ready"]);
    const ack = await c.subscribe([T, `${T}.P*`], { snapshot: false });
    assert.equal(ack.type, "subscribed");
    assert.deepEqual(ack.topics, [T, `${T}.P*`]);
    assert.match(ack.epoch, /^[0-9a-f]{16}$/);
    assert.equal(c.transport, "sse");
    assert.equal(c.state, "open");
    assert.equal(ev.open[0].url, `http://${broker.wsAddr}/sse`);
    await pub.publish({ topic: T, bid: 1.25, ask: NaN, ts: 1_732_345_678_901_234_999n });
    await pub.publish({ topic: `${T}.P1`, bid: 2, ask: 3 });
    await waitFor(() => ev.quote.length === 2, "two quotes");
    const [q] = ev.quote;
    assert.equal(q.topic, T);
    assert.equal(q.bid, 1.25);
    if (format === "binary") {
      assert.equal(q.seq, 1n);
      assert.equal(typeof q.ts, "bigint");
      assert.ok(q.ts - 1_732_345_678_901_234_999n < 1000n, "ts, to JSON's precision");
      assert.ok(Number.isNaN(q.ask));
    } else {
      assert.equal(q.seq, 1);
      assert.equal(q.ask, null);
    }
    await assert.rejects(c.subscribe("bad topic!"), (e) => e.code === "bad_topic" && /bad topic!/.test(e.message) && e.reply?.type === "error");
    await assert.rejects(c.subscribe(`${T}.NEW`, { rewind: 5000 }), { code: "bad_request" });
    await pub.publish({ topic: T, bid: 3 });
    await waitFor(() => c.lastSeq(T) === 2n, "the stream goes on after a refusal");
    const off = await c.unsubscribe(`${T}.P*`);
    assert.deepEqual(off, { type: "unsubscribed", id: off.id, topics: [`${T}.P*`] });
    assert.equal(c.has(`${T}.P*`), false);
    assert.deepEqual(seqs(ev.quote, T), [1, 2]);
    assert.deepEqual(ev.gap, []);
    assert.deepEqual(ev.duplicate, []);
  });
}

test("subscribes and unsubscribes while quotes flow (each reopens the stream, with since): every quote exactly once, no gap", async () => {
  const T = "JS.SSE.FLOW";
  const c = client({ format: "json" });
  const ev = record(c, ["quote", "gap", "duplicate", "unrecovered"]);
  await c.subscribe(T, { snapshot: false });
  const f = feed(T, 400, 2);
  let changes = 0;
  for (let i = 0; i < 8; i++) {
    await waitFor(() => c.lastSeq(T) >= (i + 1) * 30 || f.published() === 400, "quotes between changes", 30_000);
    if (i % 2 === 0) await c.subscribe([`JS.SSE.OTHER${i}`, "JS.SSE.X*"]);
    else await c.unsubscribe([`JS.SSE.OTHER${i - 1}`]);
    changes++;
  }
  await f.done;
  await waitFor(() => c.lastSeq(T) === 400n, `every quote (last ${c.lastSeq(T)})`, 30_000);
  assert.equal(changes, 8);
  assert.deepEqual(seqs(ev.quote, T), range(1, 400));
  assert.deepEqual(ev.gap, []);
  assert.deepEqual(ev.duplicate, []);
  assert.deepEqual(ev.unrecovered, []);
});

test("a cut stream resumes by itself (since: the client's own positions): `recovered`, every quote exactly once", async () => {
  const T = "JS.SSE.CUT";
  const P = "JS.SSE.CUTP.";
  const p = await proxy();
  const c = client({ format: "binary" }, `ws://${p.addr}/ws`);
  const ev = record(c, ["quote", "gap", "duplicate", "recovered", "unrecovered", "closed"]);
  await c.subscribe([T, `${P}*`], { snapshot: false });
  for (let i = 1; i <= 3; i++) await pub.publish({ topic: T, bid: i });
  await pub.publish({ topic: `${P}A`, bid: 1 });
  await waitFor(() => c.lastSeq(T) === 3n && c.lastSeq(`${P}A`) === 1n, "the first quotes");

  const failed = nextEvent(c, "reconnecting", (r) => r.attempt === 2, 20_000);
  p.cut({ hold: true }); // reset, and the retries refused until release()
  await failed;
  for (let i = 4; i <= 10; i++) await pub.publish({ topic: T, bid: i });
  for (let i = 2; i <= 4; i++) await pub.publish({ topic: `${P}A`, bid: i });
  const recovered = nextEvent(c, "recovered", () => true, 20_000);
  p.release();
  const r = await recovered;
  assert.deepEqual([...r.topics].sort(), [T, `${P}A`].sort());
  await waitFor(() => c.lastSeq(T) === 10n && c.lastSeq(`${P}A`) === 4n, "the quotes published while away");
  await pub.publish({ topic: T, bid: 11 });
  await waitFor(() => c.lastSeq(T) === 11n, "live after the replay");
  assert.deepEqual(seqs(ev.quote, T), range(1, 11));
  assert.deepEqual(seqs(ev.quote, `${P}A`), range(1, 4));
  assert.deepEqual(ev.gap, []);
  assert.deepEqual(ev.duplicate, []);
  assert.deepEqual(ev.unrecovered, []);
  assert.ok(ev.closed.length >= 1 && ev.closed[0].code === 1006);
  // The resumed stream asked with the positions reached before the cut.
  const resume = p.heads.findLast((h) => h.startsWith("GET /sse?"));
  const since = decodeURIComponent(/[?&]since=([^& ]*)/.exec(resume)[1]);
  assert.deepEqual(JSON.parse(since).seqs, { [T]: 3, [`${P}A`]: 1 });
});

test("auto: a WebSocket that does not get through → SSE at once; after wsRetryMs back on the WebSocket; nothing lost or repeated", async () => {
  const T = "JS.SSE.AUTO";
  const gate = { open: false };
  const sockets = [];
  class Gated extends WebSocket {
    constructor(url, ...rest) {
      super(gate.open ? url : refusedUrl, ...rest);
      sockets.push(this);
    }
  }
  const c = client({ transport: "auto", WebSocket: Gated, wsRetryMs: 300, format: "json" });
  const ev = record(c, ["quote", "gap", "duplicate", "transport", "connecting"]);
  await c.subscribe(T, { snapshot: false });
  assert.equal(c.transport, "sse");
  assert.deepEqual(ev.connecting.slice(0, 2).map((x) => x.transport), ["websocket", "sse"]);
  const f = feed(T, 300, 3);
  await waitFor(() => c.lastSeq(T) >= 50, "quotes over SSE", 30_000);
  await waitFor(() => sockets.length >= 2, "the WebSocket tried again (a probe)", 30_000);
  gate.open = true;
  await waitFor(() => c.transport === "websocket" && c.state === "open", "back on the WebSocket", 30_000);
  await f.done;
  await waitFor(() => c.lastSeq(T) === 300n, `every quote (last ${c.lastSeq(T)})`, 30_000);
  assert.deepEqual(ev.transport.map((x) => x.transport), ["sse", "websocket"]);
  assert.deepEqual(seqs(ev.quote, T), range(1, 300));
  assert.deepEqual(ev.gap, []);
  assert.deepEqual(ev.duplicate, []);
});

test("auto against a plain broker: the WebSocket, no SSE", async () => {
  const c = client({ transport: "auto" });
  const ev = record(c, ["transport"]);
  await c.subscribe("JS.SSE.WS");
  assert.equal(c.transport, "websocket");
  assert.deepEqual(ev.transport, [{ transport: "websocket", previous: null }]);
});
