// Resume (protocol v1.2 `since`) and `rewind` against the real broker
// (target/debug/tickwire, or $TICKWIRE_BIN): the client reads some quotes,
// the test cuts its connection, the feed publishes more, the client
// reconnects by itself, and the application sees every quote exactly once,
// in order, with a `recovered` event; what the broker no longer holds is
// `unrecovered` (a broker with `[history] size = 4`), reported as a gap.
// Quotes come from this test through the ingest socket (testing/publisher.js).

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import WebSocket from "ws";

import { TickwireClient } from "../src/tickwire-client.js";
import { configFile, startBroker, stopBroker } from "../testing/broker.js";
import { Publisher } from "../testing/publisher.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

let broker; // default history (64 quotes per topic)
let pub;
let short; // [history] size = 4
let shortConfig;
let shortPub;
let refusedUrl; // a loopback port nothing listens on
const clients = [];

before(async () => {
  shortConfig = configFile("[history]\nsize = 4\n");
  [broker, short] = await Promise.all([startBroker(), startBroker({ config: shortConfig.file })]);
  [pub, shortPub] = await Promise.all([Publisher.connect(broker.ingestAddr), Publisher.connect(short.ingestAddr)]);
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  refusedUrl = `ws://127.0.0.1:${probe.address().port}/ws`;
  await new Promise((r) => probe.close(r));
});

after(async () => {
  pub?.close();
  shortPub?.close();
  await Promise.all([stopBroker(broker), stopBroker(short)]);
  shortConfig?.remove();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

// transport "websocket": the gate below holds the WebSocket off, and "auto"
// would go on over SSE meanwhile (the SSE path: broker-sse.test.js).
function client(url, options = {}) {
  const c = new TickwireClient(url, { WebSocket, transport: "websocket", backoff: { initialMs: 20, maxMs: 100 }, ...options });
  clients.push(c);
  return c;
}

/**
 * A WebSocket class whose connections the test can cut (`sockets`) and
 * hold off: while `gate.open` is false, a connect attempt goes to a port
 * nothing listens on and fails, so the client keeps retrying by itself
 * until the gate opens.
 */
function gatedWebSocket() {
  const sockets = [];
  const gate = { open: true };
  class Gated extends WebSocket {
    constructor(url, ...rest) {
      super(gate.open ? url : refusedUrl, ...rest);
      sockets.push(this);
    }
  }
  return { WebSocket: Gated, sockets, gate };
}

/**
 * Cuts the client's connection (no close frame) and keeps it away until
 * `reopen()`; returns once a reconnect attempt of the client's has failed.
 */
async function cut(c, { sockets, gate }) {
  gate.open = false;
  const failed = nextEvent(c, "reconnecting", (r) => r.attempt === 2);
  sockets.at(-1).terminate();
  await failed;
  return () => {
    gate.open = true;
  };
}

const seqs = (quotes, topic) => quotes.filter((q) => q.topic === topic).map((q) => Number(q.seq));
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Publishes quotes n..m of `topic` (bid = seq, to tell them apart). */
async function publishRange(p, topic, n, m) {
  for (let i = n; i <= m; i++) await p.publish({ topic, bid: i, ask: i + 0.5, ts: BigInt(i) });
}

for (const format of ["binary", "json"]) {
  test(`${format}: a cut connection resumes by itself — every quote exactly once, in order, \`recovered\``, async () => {
    const T = `JS.RS.${format}`; // an exact entry
    const P = `JS.RSP.${format}.`; // a pattern's prefix
    const gated = gatedWebSocket();
    const c = client(broker.url, { WebSocket: gated.WebSocket, format });
    const watcher = client(broker.url);
    const ev = record(c, ["quote", "gap", "duplicate", "recovered", "unrecovered", "epoch"]);
    // rewind: the pattern's topics first seen while away come with their history.
    await c.subscribe([T, `${P}*`], { rewind: 16 });
    await watcher.subscribe([T, `${P}*`], { snapshot: false });
    await publishRange(pub, T, 1, 3);
    await publishRange(pub, `${P}A`, 1, 2);
    await waitFor(() => c.lastSeq(T) === 3n && c.lastSeq(`${P}A`) === 2n, "the first quotes");

    const reopen = await cut(c, gated);
    await publishRange(pub, T, 4, 8);
    await publishRange(pub, `${P}A`, 3, 6);
    await publishRange(pub, `${P}B`, 1, 2); // a topic the client has not seen yet
    // The broker has them all (the watcher saw them) before the client is back.
    await waitFor(
      () => watcher.lastSeq(T) === 8n && watcher.lastSeq(`${P}A`) === 6n && watcher.lastSeq(`${P}B`) === 2n,
      "the quotes published while the client was away",
    );
    const recovered = nextEvent(c, "recovered", () => true, 20_000);
    reopen();
    const r = await recovered;
    assert.deepEqual([...r.topics].sort(), [T, `${P}A`].sort());
    assert.equal(r.epoch, c.epoch);
    await waitFor(
      () => c.lastSeq(T) === 8n && c.lastSeq(`${P}A`) === 6n && c.lastSeq(`${P}B`) === 2n,
      `every quote (got ${JSON.stringify(ev.quote.map((q) => [q.topic, Number(q.seq)]))})`,
    );
    // Live again, after the replay.
    await pub.publish({ topic: T, bid: 9, ask: 9.5, ts: 9n });
    await waitFor(() => c.lastSeq(T) === 9n, "the live quote after the replay");

    assert.deepEqual(seqs(ev.quote, T), range(1, 9));
    assert.deepEqual(seqs(ev.quote, `${P}A`), range(1, 6));
    assert.deepEqual(seqs(ev.quote, `${P}B`), [1, 2], "rewound: a topic first seen after the reconnect");
    assert.deepEqual(ev.quote.filter((q) => q.topic === T).map((q) => q.bid), range(1, 9), "the quotes themselves");
    assert.deepEqual(ev.gap, [], "a recovered replay has no gap");
    assert.deepEqual(ev.duplicate, [], "and no repeat (no snapshot of a recovered topic)");
    assert.deepEqual(ev.unrecovered, []);
    assert.equal(ev.epoch.length, 1, "same broker, same epoch");
    assert.ok(gated.sockets.length >= 3, `the client retried by itself while held off (${gated.sockets.map((s) => s.url)})`);
    assert.equal(c.stats.gaps, 0);
  });
}

test("max_hz: a recovered topic gets only its newest quote, a `conflated` gap", async () => {
  const T = "JS.RZ1";
  const gated = gatedWebSocket();
  const c = client(broker.url, { WebSocket: gated.WebSocket });
  const watcher = client(broker.url);
  const ev = record(c, ["quote", "gap", "recovered", "unrecovered"]);
  await c.subscribe(T, { snapshot: false, maxHz: 50 });
  await watcher.subscribe(T, { snapshot: false });
  for (const i of [1, 2]) {
    await pub.publish({ topic: T, bid: i });
    await waitFor(() => c.lastSeq(T) === BigInt(i), `quote ${i}`);
  }
  const reopen = await cut(c, gated);
  await publishRange(pub, T, 3, 6);
  await waitFor(() => watcher.lastSeq(T) === 6n, "published while away");
  const recovered = nextEvent(c, "recovered", () => true, 20_000);
  reopen();
  assert.deepEqual((await recovered).topics, [T]);
  await waitFor(() => c.lastSeq(T) === 6n, "the newest quote");
  assert.deepEqual(seqs(ev.quote, T), [1, 2, 6]);
  assert.deepEqual(ev.gap.map((g) => [g.missed, g.reason]), [[3, "conflated"]]);
  assert.deepEqual(ev.unrecovered, []);
});

test("rewind on subscribe: the most recent quotes, oldest first, then live", async () => {
  const T = "JS.RW1";
  const watcher = client(broker.url);
  await watcher.subscribe(T, { snapshot: false });
  await publishRange(pub, T, 1, 10);
  await waitFor(() => watcher.lastSeq(T) === 10n, "10 quotes in the broker");
  const c = client(broker.url, { format: "json" });
  const ev = record(c, ["quote", "gap"]);
  await c.subscribe(T, { rewind: 4 });
  await waitFor(() => c.lastSeq(T) === 10n, "the rewound quotes");
  await pub.publish({ topic: T, bid: 11 });
  await waitFor(() => c.lastSeq(T) === 11n, "live");
  assert.deepEqual(seqs(ev.quote, T), [7, 8, 9, 10, 11]);
  assert.deepEqual(ev.gap, []);
  assert.deepEqual([...c.subscriptions], [[T, { maxHz: undefined, rewind: 4 }]]);
});

test("a pattern over 1,100 known topics: the resumption is split (1,024 keys a request), and still every quote once", async () => {
  const N = 1100;
  const P = "JS.RM.";
  const topics = range(1, N).map((i) => `${P}${String(i).padStart(4, "0")}`);
  const gated = gatedWebSocket();
  const c = client(broker.url, { WebSocket: gated.WebSocket, format: "json" });
  const watcher = client(broker.url);
  const ev = record(c, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  const sent = [];
  await c.subscribe(`${P}*`, { snapshot: false });
  await watcher.subscribe(`${P}*`, { snapshot: false });
  for (const t of topics) await pub.publish({ topic: t, bid: 1 });
  await waitFor(() => topics.every((t) => c.lastSeq(t) === 1n), "one quote of each topic", 20_000);

  const reopen = await cut(c, gated);
  for (const t of topics) await publishRange(pub, t, 2, 3);
  await waitFor(() => topics.every((t) => watcher.lastSeq(t) === 3n), "published while away", 20_000);
  // The requests the client sends on the next connection.
  const origSend = WebSocket.prototype.send;
  const spy = gated.WebSocket.prototype;
  spy.send = function (data, ...rest) {
    sent.push(JSON.parse(data));
    return origSend.call(this, data, ...rest);
  };
  // Published while the broker replays (from the moment the client has sent
  // its resubscription; at most 40 rounds: within the 64 quotes of
  // history): live quotes of the pattern during the replay — and a live
  // quote of a topic named in the second request may come under the first
  // request's entry before the second is answered (held, then in order).
  const lastOf = new Map(topics.map((t) => [t, 3]));
  const hot = topics.filter((_, i) => i % 22 === 21); // 50, spread over both requests
  const ready = nextEvent(c, "ready", () => true, 20_000);
  reopen();
  await ready;
  const feeding = (async () => {
    for (let round = 0; round < 40; round++) {
      for (const t of hot) {
        await pub.publish({ topic: t, bid: 4 + round });
        lastOf.set(t, lastOf.get(t) + 1);
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  const answered = () => [...ev.recovered, ...ev.unrecovered].reduce((n, e) => n + e.topics.length, 0);
  await waitFor(() => answered() >= N, "the acks", 20_000);
  await feeding;
  const seen = (t) => ev.quote.filter((q) => q.topic === t).map((q) => Number(q.seq));
  await waitFor(() => topics.every((t) => c.lastSeq(t) === BigInt(lastOf.get(t))), "every quote", 20_000).catch((e) => {
    const short = topics.filter((t) => c.lastSeq(t) !== BigInt(lastOf.get(t)));
    const eg = short.slice(0, 3).map((t) => `${t} got ${JSON.stringify(seen(t))}, published 1..${lastOf.get(t)}`);
    throw new Error(`${e.message}: ${short.length} topic(s) short, e.g. ${eg.join("; ")}`);
  });
  const resubs = sent.filter((m) => m.op === "subscribe");
  assert.deepEqual(resubs.map((m) => [m.topics, Object.keys(m.since?.seqs ?? {}).length]), [
    [[`${P}*`], 1024],
    [[`${P}*`], N - 1024],
  ]);
  assert.equal(ev.recovered.reduce((n, e) => n + e.topics.length, 0), N);
  assert.deepEqual(ev.unrecovered, []);
  const byTopic = new Map(topics.map((t) => [t, []]));
  for (const q of ev.quote) byTopic.get(q.topic).push(Number(q.seq));
  for (const t of topics) assert.deepEqual(byTopic.get(t), range(1, lastOf.get(t)), t);
  assert.deepEqual(ev.gap, []);
});

test("history too short ([history] size = 4): `unrecovered`, the snapshot, and an `unrecovered` gap of what was lost", async () => {
  const T = "JS.RH1";
  const K = "JS.RH2"; // within the history: recovered
  const gated = gatedWebSocket();
  const c = client(short.url, { WebSocket: gated.WebSocket });
  const watcher = client(short.url);
  const ev = record(c, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  await c.subscribe([T, K], { snapshot: false });
  await watcher.subscribe([T, K], { snapshot: false });
  await publishRange(shortPub, T, 1, 3);
  await publishRange(shortPub, K, 1, 3);
  await waitFor(() => c.lastSeq(T) === 3n && c.lastSeq(K) === 3n, "the first quotes");
  const reopen = await cut(c, gated);
  await publishRange(shortPub, T, 4, 13); // 10 while away: the broker keeps 4
  await publishRange(shortPub, K, 4, 5); // 2: still held
  await waitFor(() => watcher.lastSeq(T) === 13n && watcher.lastSeq(K) === 5n, "published while away");
  const unrecovered = nextEvent(c, "unrecovered", () => true, 20_000);
  reopen();
  assert.deepEqual((await unrecovered).topics, [T]);
  await waitFor(() => c.lastSeq(T) === 13n && c.lastSeq(K) === 5n, "the snapshot and the replay");
  assert.deepEqual(seqs(ev.quote, T), [1, 2, 3, 13], "the snapshot: the newest quote");
  assert.deepEqual(seqs(ev.quote, K), [1, 2, 3, 4, 5]);
  assert.deepEqual(ev.recovered.map((e) => e.topics), [[K]]);
  assert.deepEqual(ev.gap.map((g) => [g.topic, g.expected, g.received, g.missed, g.reason]), [[T, 4n, 13n, 9, "unrecovered"]]);
  assert.deepEqual(ev.duplicate, []);
});
