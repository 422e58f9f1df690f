// Field deltas (protocol v1.2, `delta=1`) against the real broker
// (target/debug/tickwire, or $TICKWIRE_BIN): a subscriber that asks for
// deltas (the client's default) and one that does not (`delta: false`), on
// the same feed, hand the application identical quotes — rewound history
// (its first quote full, then deltas), live quotes, a cut connection
// resumed with a replay (full again on the new connection, then deltas) —
// over the WebSocket and over SSE, in both formats. The feed changes some
// fields and keeps others, with NaN, ±inf and −0 among them. And under
// max_hz (full quotes after a throttled skip, deltas between): every quote
// handed on is exactly the one published with its seq.
// Quotes come from this test through the ingest socket (testing/publisher.js);
// cuts are made by a loopback TCP proxy (testing/tcp-proxy.js).

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";

import { TickwireClient } from "../src/tickwire-client.js";
import { startBroker, stopBroker } from "../testing/broker.js";
import { Publisher } from "../testing/publisher.js";
import { startTcpProxy } from "../testing/tcp-proxy.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

const WAIT_MS = 20_000; // generous: a loaded machine, a debug build

let broker;
let pub;
const clients = [];
const proxies = [];

before(async () => {
  broker = await startBroker();
  pub = await Publisher.connect(broker.ingestAddr);
});

after(async () => {
  pub?.close();
  await stopBroker(broker);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function client(url, options) {
  const c = new TickwireClient(url, { WebSocket, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  clients.push(c);
  return c;
}

/**
 * Quote `i` of the feed: volume changes every time, the others now and then
 * (so deltas carry from none to all of them); bid goes NaN and back, ask to
 * +inf, last to −inf, bid_size flips between 0 and −0 (a change, bit for
 * bit), ask_size never changes.
 */
function quote(topic, i) {
  return {
    topic,
    bid: i % 5 === 0 ? NaN : 100 + Math.floor(i / 2) * 0.25,
    ask: i % 7 === 3 ? Infinity : 101 + Math.floor(i / 3) * 0.25,
    bid_size: i % 4 === 0 ? -0 : 0,
    ask_size: 200,
    last: i % 6 === 0 ? -Infinity : 100.5 + (i % 3),
    volume: 1000 + i * 10,
    ts: 1732345678901234567n + BigInt(i) * 1_000_003n,
  };
}

async function publish(topic, from, to) {
  for (let i = from; i <= to; i++) await pub.publish(quote(topic, i));
}

const CASES = [
  ["binary", "websocket"],
  ["json", "websocket"],
  ["binary", "sse"],
  ["json", "sse"],
];

for (const [format, transport] of CASES) {
  test(`${transport}, ${format}: a delta subscriber and a plain one hand the application identical quotes`, async (t) => {
    const T = `JS.DL.${transport}.${format}`;
    const P = `JS.DLP.${transport}.${format}.`;
    // History before the subscribe: the rewind's first quote of a topic is full, the rest deltas.
    await publish(T, 1, 5);
    await publish(`${P}A`, 1, 3);
    const proxy = await startTcpProxy(broker.wsAddr);
    proxies.push(proxy);
    const plain = client(broker.url, { format, transport, delta: false });
    const delta = client(`ws://${proxy.addr}/ws`, { format, transport });
    assert.equal(delta.delta, true, "deltas by default");
    const got = { plain: record(plain, ["quote", "gap", "duplicate", "error"]), delta: record(delta, ["quote", "gap", "duplicate", "error"]) };
    await Promise.all([plain, delta].map((c) => c.subscribe([T, `${P}*`], { rewind: 8 })));
    assert.match(proxy.heads[0], /^GET \/(ws|sse)\?[^ ]*\bdelta=1\b/, "the delta subscriber asks delta=1");

    const reached = (c, t1, pa) => () => c.lastSeq(T) === BigInt(t1) && c.lastSeq(`${P}A`) === BigInt(pa);
    // Live, interleaved.
    for (let i = 6; i <= 20; i++) {
      await publish(T, i, i);
      if (i % 2 === 0) await publish(`${P}A`, i / 2 + 1, i / 2 + 1);
    }
    await waitFor(reached(plain, 20, 11), "the live quotes (plain)", WAIT_MS);
    await waitFor(reached(delta, 20, 11), "the live quotes (deltas)", WAIT_MS);

    // Cut the delta subscriber's connection and keep it away while the feed goes on:
    // on the next connection the replay starts with full quotes.
    proxy.cut({ hold: true });
    await publish(T, 21, 30);
    await publish(`${P}A`, 12, 15);
    await waitFor(reached(plain, 30, 15), "the quotes published while the delta subscriber was away", WAIT_MS);
    const recovered = nextEvent(delta, "recovered", () => true, WAIT_MS);
    proxy.release();
    await recovered;
    await waitFor(reached(delta, 30, 15), "the replay", WAIT_MS);
    await publish(T, 31, 35);
    await waitFor(reached(plain, 35, 15), "live again (plain)", WAIT_MS);
    await waitFor(reached(delta, 35, 15), "live again (deltas)", WAIT_MS);

    for (const type of ["quote", "gap", "duplicate", "error"]) {
      assert.deepStrictEqual(got.delta[type], got.plain[type], `${type} events`);
    }
    assert.equal(got.plain.quote.length, 35 + 15, "every quote once");
    assert.equal(delta.stats.badDeltas, 0);
    assert.equal(plain.stats.deltas, 0, "delta: false gets none");

    await t.test("the broker sent deltas (protocol v1.2 `delta=1`)", () => {
      // The quotes above are the same either way; this says that they came as deltas.
      assert.ok(delta.stats.deltas > 0, "no delta came: the broker ignores delta=1");
      assert.ok(delta.stats.deltas < delta.stats.quotes, "full quotes too (rewind, replay after the cut)");
    });
  });
}

/** Whether quote `q` (as the client hands it on, in `format`) is exactly `want` (as published). */
function sameQuote(q, want, format) {
  const json = format === "json";
  if (json ? q.ts !== Number(want.ts) : q.ts !== want.ts) return false;
  return ["bid", "ask", "bid_size", "ask_size", "last", "volume"].every((f) => {
    const w = want[f];
    if (json && !Number.isFinite(w)) return q[f] === null; // the broker's null
    return Number.isNaN(w) ? Number.isNaN(q[f]) : Object.is(q[f], w);
  });
}

for (const format of ["binary", "json"]) {
  test(`${format}, max_hz: full after a throttled skip, deltas between — every quote handed on is the one published`, async () => {
    const T = `JS.DLZ.${format}`;
    const c = client(broker.url, { format, transport: "websocket" });
    const ev = record(c, ["quote", "gap", "error"]);
    await c.subscribe(T, { snapshot: false, maxHz: 20 });
    const received = (n) => () => c.lastSeq(T) === BigInt(n);
    // Bursts (conflated: skips, so full quotes) and single quotes each
    // published once the one before arrived (consecutive: deltas).
    let n = 0;
    for (const burst of [10, 0, 20, 0]) {
      if (burst) {
        await publish(T, n + 1, n + burst);
        n += burst;
        await waitFor(received(n), `the newest quote of the burst (${n})`, WAIT_MS);
      } else {
        for (let i = 0; i < 5; i++) {
          await publish(T, ++n, n);
          await waitFor(received(n), `quote ${n}`, WAIT_MS);
        }
      }
    }
    assert.deepEqual(ev.error, []);
    assert.ok(ev.gap.length > 0, "the bursts were conflated");
    const wrong = ev.quote.filter((q) => !sameQuote(q, quote(T, Number(q.seq)), format));
    assert.deepEqual(wrong, [], "every quote is the one published with its seq");
    assert.equal(c.stats.badDeltas, 0);
    assert.ok(c.stats.deltas > 0, "no delta came: the broker ignores delta=1");
  });
}
