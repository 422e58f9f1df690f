// The client against the real broker (target/debug/tickwire, or
// $TICKWIRE_BIN): JSON and binary modes, acks, errors, snapshots, a gap
// across a reconnect, a reconnect + resubscribe after the broker restarts on
// the same ports (new epoch: no gap), and the files the broker serves.
// Quotes come from this test through the ingest socket (testing/publisher.js).

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";

import { TickwireClient, TickwireError } from "../src/tickwire-client.js";
import { REPO, portOf, startBroker, startBrokerOnPorts, stopBroker } from "../testing/broker.js";
import { Publisher } from "../testing/publisher.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

const TS = 1732345678901234567n; // needs 61 bits: exact in binary mode only

let broker;
let pub;
const clients = [];

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
});

function client(options = {}, url = broker.url) {
  const c = new TickwireClient(url, { WebSocket, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  clients.push(c);
  return c;
}

/** A WebSocket class that remembers its instances (to cut a connection from the test). */
function trackingWebSocket() {
  const sockets = [];
  class Tracking extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  return { WebSocket: Tracking, sockets };
}

/** The next accepted quote of `topic` (optionally with seq `seq`). */
function nextQuote(c, topic, seq) {
  return nextEvent(c, "quote", (q) => q.topic === topic && (seq === undefined || BigInt(q.seq) === BigInt(seq)));
}

test("JSON mode: ack with id and epoch, live quote with Numbers and null for non-finite, unsubscribe ack", async () => {
  const c = client({ format: "json" });
  assert.match(c.url, /\?format=json&delta=1$/, "field deltas by default");
  const ack = await c.subscribe(["JS.J1", "JS.JP*"], { snapshot: false });
  assert.equal(ack.type, "subscribed");
  assert.equal(typeof ack.id, "number");
  assert.deepEqual(ack.topics, ["JS.J1", "JS.JP*"]);
  assert.match(ack.epoch, /^[0-9a-f]{16}$/);
  assert.equal(c.epoch, ack.epoch);
  assert.deepEqual([...c.subscriptions.keys()], ["JS.J1", "JS.JP*"]);

  const got = nextQuote(c, "JS.J1");
  await pub.publish({ topic: "JS.J1", bid: NaN, ask: 189.14, bid_size: 300, last: Infinity, volume: 1234567, ts: TS });
  const q = await got;
  assert.equal(q.type, "quote");
  assert.equal(q.seq, 1);
  assert.equal(typeof q.seq, "number");
  assert.equal(typeof q.ts, "number");
  assert.equal(q.ts, Number(TS), "JSON.parse rounds ts");
  assert.equal(q.bid, null, "NaN arrives as null in JSON mode");
  assert.equal(q.last, null);
  assert.equal(q.ask, 189.14);
  assert.equal(q.bid_size, 300);
  const pattern = nextQuote(c, "JS.JP.X");
  await pub.publish({ topic: "JS.JP.X", bid: 1, ask: 2 });
  assert.equal((await pattern).seq, 1, "a pattern entry delivers the concrete topic");

  const unack = await c.unsubscribe(["JS.J1"]);
  assert.deepEqual(unack.topics, ["JS.J1"]);
  assert.equal(c.has("JS.J1"), false);
  // Nothing of JS.J1 after the ack: publish it, then a topic still
  // subscribed; the latter arrives, the former never did before it.
  const seen = record(c, ["quote"]).quote;
  const marker = nextQuote(c, "JS.JP.X", 2);
  await pub.publish({ topic: "JS.J1", bid: 1 });
  await pub.publish({ topic: "JS.JP.X", bid: 3 });
  await marker;
  assert.deepEqual(seen.map((x) => x.topic), ["JS.JP.X"]);
});

test("binary mode: seq and ts are exact BigInts, non-finite prices are NaN/Infinity, -0 kept", async () => {
  const c = client({ format: "binary" });
  assert.match(c.url, /\?format=binary&delta=1$/, "field deltas by default");
  await c.subscribe("JS.B1", { snapshot: false });
  const got = nextQuote(c, "JS.B1");
  await pub.publish({ topic: "JS.B1", bid: NaN, ask: -Infinity, bid_size: -0, ask_size: 200, last: 189.13, volume: 1234567, ts: TS });
  const q = await got;
  assert.equal(q.seq, 1n);
  assert.equal(q.ts, TS, "exact");
  assert.equal(q.tsMs, 1732345678901.2346);
  assert.ok(Number.isNaN(q.bid));
  assert.equal(q.ask, -Infinity);
  assert.ok(Object.is(q.bid_size, -0));
  assert.equal(q.last, 189.13);
  assert.equal(c.lastSeq("JS.B1"), 1n);
});

test("error acks reject with the broker's code; the connection stays usable", async () => {
  const c = client();
  await assert.rejects(c.subscribe(["AA PL"]), (e) => {
    assert.ok(e instanceof TickwireError);
    assert.equal(e.code, "bad_topic");
    assert.equal(e.message, 'invalid topic "AA PL"');
    assert.equal(typeof e.id, "number");
    assert.equal(e.reply.id, e.id);
    return true;
  });
  await assert.rejects(c.subscribe(["JS.E1"], { maxHz: 0 }), { code: "bad_request", message: "max_hz must be > 0" });
  await assert.rejects(c.subscribe([]), { code: "bad_request" });
  await assert.rejects(c.auth("x.y.z"), { code: "bad_request", op: "auth" }, "no [auth] on this broker");
  await assert.rejects(c.request({ op: "subscrib", topics: ["A"] }), { code: "bad_request" });
  assert.equal(c.has("AA PL"), false);
  assert.deepEqual((await c.subscribe(["JS.E1"])).topics, ["JS.E1"], "still usable");
  assert.equal(c.state, "open");
});

test("snapshot: the last quote right after the ack (and not with snapshot:false)", async () => {
  const first = client();
  await first.subscribe("JS.S1", { snapshot: false });
  const live = nextQuote(first, "JS.S1", 1);
  await pub.publish({ topic: "JS.S1", bid: 10, ask: 11, ts: 42n });
  await live; // the broker has it in its last-value cache now

  const withSnap = client();
  const snap = nextQuote(withSnap, "JS.S1");
  await withSnap.subscribe("JS.S1");
  const q = await snap;
  assert.equal(q.seq, 1n);
  assert.equal(q.ts, 42n);
  assert.equal(q.bid, 10);

  const noSnap = client();
  const firstSeen = nextEvent(noSnap, "quote");
  await noSnap.subscribe("JS.S1", { snapshot: false });
  await pub.publish({ topic: "JS.S1", bid: 12, ask: 13 });
  assert.equal((await firstSeen).seq, 2n, "no snapshot: the first quote is the live one");
  // The first client saw both, in order, without gaps.
  await waitFor(() => first.lastSeq("JS.S1") === 2n, "seq 2 on the first client");
  assert.equal(first.stats.gaps, 0);
});

test("a reconnect to the same broker without resume: resubscribed with a snapshot, quotes missed meanwhile counted as a gap", async () => {
  const { WebSocket: Tracking, sockets } = trackingWebSocket();
  // A long backoff: the test decides when the reconnect happens (reconnectNow).
  // resume: false — the v1 resubscription (resume: test/broker-resume.test.js).
  const c = client({ WebSocket: Tracking, backoff: { initialMs: 60_000, maxMs: 60_000 }, resume: false });
  const watcher = client();
  await Promise.all([c.subscribe("JS.G1", { snapshot: false }), watcher.subscribe("JS.G1", { snapshot: false })]);
  const q1 = nextQuote(c, "JS.G1", 1);
  await pub.publish({ topic: "JS.G1", bid: 1 });
  await q1;
  const ev = record(c, ["gap", "epoch", "duplicate", "closed", "reconnecting", "open"]);

  const waiting = nextEvent(c, "reconnecting");
  sockets[0].terminate(); // the TCP connection drops, no close frame
  await waiting;
  assert.equal(c.state, "reconnecting");
  // Published while c is away: the watcher sees them all.
  for (let i = 0; i < 3; i++) await pub.publish({ topic: "JS.G1", bid: 2 + i });
  await waitFor(() => watcher.lastSeq("JS.G1") === 4n, "seq 4 at the watcher");
  // A subscribe made while disconnected waits for the connection.
  const late = c.subscribe("JS.G2", { snapshot: false });

  const snap = nextQuote(c, "JS.G1", 4);
  c.reconnectNow();
  await snap; // the snapshot of the resubscription: the newest quote
  assert.deepEqual(ev.gap, [{ topic: "JS.G1", expected: 2n, received: 4n, missed: 2, epoch: c.epoch, reason: "unrecovered" }]);
  assert.equal(ev.epoch.length, 0, "same broker, same epoch");
  assert.equal(ev.closed[0].code, 1006);
  assert.equal(ev.open.length, 1);
  assert.deepEqual((await late).topics, ["JS.G2"]);
  assert.deepEqual([...c.subscriptions.keys()].sort(), ["JS.G1", "JS.G2"]);
  assert.equal(sockets.length, 2);
  assert.equal(watcher.stats.gaps, 0);
});

test("served by the broker: /tickwire-client.js, /tickwire-decoder.js and every other src/*.js are this package's files", async () => {
  const base = `http://${broker.wsAddr}`;
  const files = readdirSync(path.join(REPO, "clients", "js", "src")).filter((f) => f.endsWith(".js"));
  assert.ok(files.includes("tickwire-client.js") && files.includes("tickwire-decoder.js"), files.join(" "));
  for (const [route, file] of files.map((f) => [`/${f}`, f])) {
    const r = await fetch(base + route);
    assert.equal(r.status, 200, route);
    assert.equal(r.headers.get("content-type"), "text/javascript; charset=utf-8", route);
    assert.equal(r.headers.get("cache-control"), "no-cache", route);
    const body = await r.text();
    const here = readFileSync(path.join(REPO, "clients", "js", "src", file), "utf8");
    if (body !== here) {
      // The binary embeds the files at build time (include_str!).
      assert.fail(`${route} differs from clients/js/src/${file}: rebuild the broker (cargo build -p tickwire-broker)`);
    }
  }
});

test("examples/tail.js (the README's example) prints quotes and exits after --count", async () => {
  const example = path.join(REPO, "clients", "js", "examples", "tail.js");
  const child = spawn(process.execPath, [example, "--url", broker.url, "--count", "2", "JS.T*"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = [];
  const err = [];
  createInterface({ input: child.stdout }).on("line", (l) => out.push(l));
  const subscribed = new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on("line", (l) => {
      err.push(l);
      if (l.startsWith("[subscribed")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited (${code}) before subscribing:\n${err.join("\n")}`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await subscribed;
    await pub.publish({ topic: "JS.T1", bid: 1.5, ask: 1.75, last: NaN, ts: TS });
    await pub.publish({ topic: "JS.T2", bid: 2.5, ask: 2.75, last: 2.6, ts: TS });
    assert.equal(await exited, 0, err.join("\n"));
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  assert.deepEqual(out, [
    "JS.T1 seq=1 bid=1.5000 ask=1.7500 last=— ts=2024-11-23T07:07:58.901Z",
    "JS.T2 seq=1 bid=2.5000 ask=2.7500 last=2.6000 ts=2024-11-23T07:07:58.901Z",
  ]);
});

// Last: it replaces the shared broker.
test("broker restart on the same ports: reconnect, resubscribe, new epoch resets tracking (no gap)", async () => {
  const c = client({ format: "binary" });
  const ev = record(c, ["gap", "epoch", "duplicate", "reconnecting", "open", "quote", "recovered", "unrecovered"]);
  await c.subscribe(["JS.R1", "JS.RP*"], { snapshot: false });
  await c.subscribe(["JS.R2"], { snapshot: false, maxHz: 100 });
  const oldEpoch = c.epoch;
  for (let i = 0; i < 3; i++) await pub.publish({ topic: "JS.R1", bid: i });
  await waitFor(() => c.lastSeq("JS.R1") === 3n, "seq 3 before the restart");

  const wsPort = portOf(broker.wsAddr);
  const ingestPort = portOf(broker.ingestAddr);
  const waiting = nextEvent(c, "reconnecting");
  await stopBroker(broker, "SIGKILL");
  pub.close();
  await waiting;
  broker = await startBrokerOnPorts(wsPort, ingestPort);
  pub = await Publisher.connect(broker.ingestAddr);

  // (Recorded from the start: the client may reconnect before the new
  // broker's log line reaches this test.)
  await waitFor(() => ev.epoch.length === 2, "the new epoch", 20_000);
  assert.deepEqual(ev.epoch[0], { epoch: oldEpoch, previous: null });
  const newEpoch = ev.epoch[1];
  assert.equal(newEpoch.previous, oldEpoch);
  assert.notEqual(newEpoch.epoch, oldEpoch);
  assert.equal(c.lastSeq("JS.R1"), undefined, "tracking reset");
  // The resubscription is acknowledged (its ack carried the epoch): publish now.
  await waitFor(() => c.state === "open", "open");
  const r1 = nextQuote(c, "JS.R1", 1);
  const rp = nextQuote(c, "JS.RP.X", 1);
  const r2 = nextQuote(c, "JS.R2", 1);
  await pub.publish({ topic: "JS.R1", bid: 100 });
  await pub.publish({ topic: "JS.RP.X", bid: 100 });
  await pub.publish({ topic: "JS.R2", bid: 100 });
  await Promise.all([r1, rp, r2]);
  assert.deepEqual(ev.gap, [], "seq restarted at 1: not a gap");
  assert.deepEqual(ev.duplicate, [], "seq 1 after seq 3: not a repeat either");
  // The resubscription asked to resume JS.R1 from seq 3 in the old epoch:
  // a new broker cannot (nothing else was ever quoted).
  assert.deepEqual(ev.recovered, []);
  assert.deepEqual(ev.unrecovered.map((u) => u.topics), [["JS.R1"]]);
  assert.deepEqual([...c.subscriptions], [
    ["JS.R1", { maxHz: undefined }],
    ["JS.RP*", { maxHz: undefined }],
    ["JS.R2", { maxHz: 100 }],
  ]);
  // (More than one open is possible: a restart attempt that bound the ws
  // port but not yet the ingest port exits, and the client tries again.)
  assert.ok(ev.reconnecting.length >= 1 && ev.open.length >= 1);
});
