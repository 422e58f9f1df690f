// The client without a network: a scripted WebSocket (testing/fake-ws.js)
// plays the broker, so ids, acks, gaps, epochs, reconnect, resubscribe and
// auth ordering are checked message by message.

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import * as api from "../src/tickwire-client.js";
import { SeqTracker, TickwireClient, TickwireError, entryMatches } from "../src/tickwire-client.js";
import { makeFakeWebSocket } from "../testing/fake-ws.js";
import { binaryQuote, jsonQuote } from "../testing/frames.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

const EPOCH_A = "9f3b2c71a0d4e815";
const EPOCH_B = "0123456789abcdef";
const FAST = { initialMs: 1, maxMs: 2 };

// Every client a test makes is closed after it, failed or not (a client
// left reconnecting would keep the process alive).
const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function newClient(options, url = "ws://broker.test/ws") {
  const client = new TickwireClient(url, options);
  clients.push(client);
  return client;
}

/** A client on a fake socket, opened; returns {client, WS, ws}. */
async function openClient(options = {}) {
  const WS = makeFakeWebSocket();
  const client = newClient({ WebSocket: WS, backoff: FAST, ...options });
  await waitFor(() => WS.instances.length === 1, "the first socket");
  const ws = WS.last;
  ws.serverOpen();
  return { client, WS, ws };
}

/** Waits for the socket to have sent `n` requests; returns them. */
async function sentCount(ws, n) {
  await waitFor(() => ws.sent.length >= n, `${n} request(s) sent (got ${JSON.stringify(ws.sent)})`);
  return ws.sent.slice(0, n);
}

/**
 * Fakes setTimeout for test `t` (restored when it ends): the client's
 * backoff, request and connect timers fire only when the test ticks, so no
 * test sleeps for them. setImmediate, microtasks and Date stay real, and
 * testing/util.js waits on the real timers.
 */
function fakeTimers(t) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  return t.mock.timers;
}

/**
 * Closes the fake socket from the broker's side, runs the backoff out on
 * the fake `timers` (FAST: at most FAST.maxMs) and opens the next socket.
 */
function reconnect(timers, WS, ws) {
  const before = WS.instances.length;
  ws.serverClose(1006);
  assert.equal(WS.instances.length, before, "no new socket before the backoff");
  timers.tick(FAST.maxMs);
  assert.equal(WS.instances.length, before + 1, "a new socket once the backoff is over");
  const next = WS.last;
  next.serverOpen();
  return next;
}

test("SeqTracker: first, next, repeat, gap, epoch change, forget", () => {
  const t = new SeqTracker();
  assert.equal(t.setEpoch(EPOCH_A), true);
  assert.equal(t.accept("A", 5n), 0, "first quote of a topic");
  assert.equal(t.accept("A", 6n), 0);
  assert.equal(t.accept("A", 6n), -1, "repeat");
  assert.equal(t.accept("A", 3n), -1, "older");
  assert.equal(t.lastSeq("A"), 6n, "a repeat leaves the tracking alone");
  assert.equal(t.accept("A", 10n), 3, "7, 8, 9 skipped");
  assert.equal(t.accept("B", 1), 0, "Numbers (JSON mode) work too");
  assert.equal(t.accept("B", 3), 1);
  assert.equal(t.setEpoch(EPOCH_A), false, "same epoch: nothing forgotten");
  assert.equal(t.lastSeq("A"), 10n);
  t.forget((topic) => topic === "B");
  assert.equal(t.lastSeq("B"), undefined);
  assert.equal(t.setEpoch(EPOCH_B), true);
  assert.equal(t.size, 0, "a new epoch forgets everything");
  assert.equal(t.accept("A", 1n), 0, "seq restarted: not a repeat, not a gap");
});

test("entryMatches: exact topics and PREFIX* patterns", () => {
  assert.ok(entryMatches("AAPL", "AAPL"));
  assert.ok(!entryMatches("AAPL", "AAPL2"));
  assert.ok(entryMatches("BTC*", "BTC-USD"));
  assert.ok(entryMatches("BTC*", "BTC"));
  assert.ok(entryMatches("*", "anything"));
  assert.ok(!entryMatches("BTC*", "ETH-BTC"));
});

test("URL and options: format and delta=1 in the query, http(s) → ws(s), no WebSocket → TypeError", async () => {
  const WS = makeFakeWebSocket();
  const opts = { WebSocket: WS, autoConnect: false };
  const plain = new TickwireClient("ws://h:8080/ws", opts);
  assert.equal(plain.url, "ws://h:8080/ws?format=binary&delta=1", "field deltas by default");
  assert.equal(plain.delta, true);
  assert.equal(new TickwireClient("https://h/ws", { ...opts, format: "json" }).url, "wss://h/ws?format=json&delta=1");
  const noDelta = new TickwireClient("ws://h/ws", { ...opts, delta: false });
  assert.equal(noDelta.url, "ws://h/ws?format=binary", "delta: false asks none");
  assert.equal(noDelta.delta, false);
  assert.equal(new TickwireClient("ws://h/ws?delta=0", opts).delta, false, "the URL's delta=0 when the option is not given");
  assert.throws(() => new TickwireClient("ws://h/ws?delta=0", { ...opts, delta: true }), TypeError);
  assert.throws(() => new TickwireClient("ws://h/ws?delta=yes", opts), TypeError);
  assert.throws(() => new TickwireClient("ws://h/ws", { ...opts, delta: 1 }), TypeError);
  const fromUrl = new TickwireClient("ws://h/ws?format=json", opts);
  assert.equal(fromUrl.format, "json");
  assert.throws(() => new TickwireClient("ws://h/ws?format=json", { ...opts, format: "binary" }), TypeError);
  assert.throws(() => new TickwireClient("ws://h/ws", { ...opts, format: "xml" }), TypeError);
  assert.throws(() => new TickwireClient("ftp://h/ws", opts), TypeError);
  if (typeof globalThis.WebSocket !== "function") {
    assert.throws(() => new TickwireClient("ws://h/ws"), /no WebSocket implementation/);
  }
  // In a browser, a relative URL follows the page: wss:// from https://.
  globalThis.location = { href: "https://desk.example.com:8443/dash/" };
  try {
    assert.equal(new TickwireClient("/ws", opts).url, "wss://desk.example.com:8443/ws?format=binary&delta=1");
  } finally {
    delete globalThis.location;
  }
  // autoConnect: false → nothing happens until connect().
  const idle = new TickwireClient("ws://h/ws", opts);
  await new Promise((r) => setImmediate(r));
  assert.equal(idle.state, "idle");
  assert.equal(WS.instances.length, 0);
});

test("requests carry ids; acks settle them by id, in any order; errors reject with the broker's code", async () => {
  const { client, ws } = await openClient({ format: "json" });
  const ok = client.subscribe(["AAPL", "BTC*"], { snapshot: false, maxHz: 4 });
  const bad = client.subscribe("AA PL");
  const [r1, r2] = await sentCount(ws, 2);
  assert.deepEqual(r1, { op: "subscribe", topics: ["AAPL", "BTC*"], snapshot: false, max_hz: 4, id: r1.id });
  assert.deepEqual(r2, { op: "subscribe", topics: ["AA PL"], id: r2.id });
  assert.notEqual(r1.id, r2.id);
  // The broker answers the second first (it would not, but ids must decide).
  ws.serverSend({ type: "error", id: r2.id, code: "bad_topic", message: 'invalid topic "AA PL"' });
  ws.serverSend({ type: "subscribed", id: r1.id, topics: ["AAPL", "BTC*"], epoch: EPOCH_A });
  const ack = await ok;
  assert.equal(ack.epoch, EPOCH_A);
  assert.equal(client.epoch, EPOCH_A);
  await assert.rejects(bad, (e) => {
    assert.ok(e instanceof TickwireError);
    assert.equal(e.code, "bad_topic");
    assert.equal(e.message, 'invalid topic "AA PL"');
    assert.equal(e.id, r2.id);
    assert.equal(e.op, "subscribe");
    assert.deepEqual(e.topics, ["AA PL"]);
    assert.deepEqual(e.reply, { type: "error", id: r2.id, code: "bad_topic", message: 'invalid topic "AA PL"' });
    return true;
  });
  assert.deepEqual([...client.subscriptions], [["AAPL", { maxHz: 4 }], ["BTC*", { maxHz: 4 }]]);

  const unsub = client.unsubscribe(["AAPL"]);
  assert.equal(client.has("AAPL"), false, "forgotten at once");
  const [, , r3] = await sentCount(ws, 3);
  assert.deepEqual(r3, { op: "unsubscribe", topics: ["AAPL"], id: r3.id });
  ws.serverSend({ type: "unsubscribed", id: r3.id, topics: ["AAPL"] });
  assert.deepEqual((await unsub).topics, ["AAPL"]);

  // An error nobody waits for (its id did not parse) is an `error` event.
  const err = nextEvent(client, "error");
  ws.serverSend({ type: "error", code: "bad_request", message: "request must be a JSON object" });
  assert.equal((await err).code, "bad_request");
  await client.close();
});

test("binary gap tracking (resume off): repeats dropped, jumps reported, a new epoch resets without a gap", async (t) => {
  const timers = fakeTimers(t);
  const { client, WS, ws } = await openClient({ format: "binary", resume: false });
  assert.equal(ws.binaryType, "arraybuffer", "what the decoder needs");
  const ev = record(client, ["quote", "gap", "duplicate", "epoch"]);
  const sub = client.subscribe(["A"]);
  const [r1] = await sentCount(ws, 1);
  ws.serverSend({ type: "subscribed", id: r1.id, topics: ["A"], epoch: EPOCH_A });
  await sub;
  const ts = 1732345678901234567n;
  for (const seq of [5, 6, 6, 4, 9, 10]) ws.serverSend(binaryQuote({ topic: "A", seq, ts, bid: 189.12 }));
  assert.deepEqual(ev.quote.map((q) => q.seq), [5n, 6n, 9n, 10n]);
  assert.equal(typeof ev.quote[0].seq, "bigint");
  assert.equal(ev.quote[0].ts, ts, "ts exact");
  assert.equal(ev.quote[0].bid, 189.12);
  assert.ok(Number.isNaN(ev.quote[0].ask), "non-finite prices are NaN in binary mode");
  assert.deepEqual(ev.duplicate.map((q) => q.seq), [6n, 4n]);
  assert.deepEqual(ev.gap, [{ topic: "A", expected: 7n, received: 9n, missed: 2, epoch: EPOCH_A, reason: "conflated" }]);
  assert.deepEqual(ev.epoch, [{ epoch: EPOCH_A, previous: null }]);
  assert.equal(client.lastSeq("A"), 10n);
  assert.deepEqual(
    { quotes: client.stats.quotes, duplicates: client.stats.duplicates, gaps: client.stats.gaps, missed: client.stats.missed },
    { quotes: 4, duplicates: 2, gaps: 1, missed: 2 },
  );

  // Reconnect to a restarted broker: new epoch, seq starts again at 1.
  const ws2 = reconnect(timers, WS, ws);
  const [resub] = await sentCount(ws2, 1);
  assert.deepEqual(resub, { op: "subscribe", topics: ["A"], snapshot: true, id: resub.id });
  ws2.serverSend({ type: "subscribed", id: resub.id, topics: ["A"], epoch: EPOCH_B });
  ws2.serverSend(binaryQuote({ topic: "A", seq: 1 }));
  ws2.serverSend(binaryQuote({ topic: "A", seq: 2 }));
  assert.equal(ev.gap.length, 1, "no gap across the epoch change");
  assert.deepEqual(ev.epoch[1], { epoch: EPOCH_B, previous: EPOCH_A });
  assert.deepEqual(ev.quote.slice(-2).map((q) => q.seq), [1n, 2n]);

  // Reconnect to the same broker: quotes missed meanwhile are a gap; the
  // snapshot repeating the last one seen is a duplicate.
  const ws3 = reconnect(timers, WS, ws2);
  const [resub3] = await sentCount(ws3, 1);
  ws3.serverSend({ type: "subscribed", id: resub3.id, topics: ["A"], epoch: EPOCH_B });
  ws3.serverSend(binaryQuote({ topic: "A", seq: 2 }));
  ws3.serverSend(binaryQuote({ topic: "A", seq: 7 }));
  assert.equal(ev.epoch.length, 2);
  assert.deepEqual(ev.gap[1], { topic: "A", expected: 3n, received: 7n, missed: 4, epoch: EPOCH_B, reason: "unrecovered" });
  await client.close();
});

test("JSON mode: seq and ts are Numbers, non-finite prices stay null, gaps counted the same way", async () => {
  const { client, ws } = await openClient({ format: "json" });
  assert.match(ws.url, /format=json/);
  const ev = record(client, ["quote", "gap"]);
  const sub = client.subscribe(["J"]);
  const [r1] = await sentCount(ws, 1);
  ws.serverSend({ type: "subscribed", id: r1.id, topics: ["J"], epoch: EPOCH_A });
  await sub;
  ws.serverSend(jsonQuote({ topic: "J", seq: 1, ts: 1732345678901234567, bid: null, ask: 2.5 }));
  ws.serverSend(jsonQuote({ topic: "J", seq: 4 }));
  assert.equal(ev.quote[0].seq, 1);
  assert.equal(typeof ev.quote[0].ts, "number");
  assert.equal(ev.quote[0].bid, null);
  assert.equal(ev.quote[0].ask, 2.5);
  assert.equal(ev.quote[0].tsMs, 1732345678901234567 / 1e6);
  assert.deepEqual(ev.gap, [{ topic: "J", expected: 2n, received: 4n, missed: 2, epoch: EPOCH_A, reason: "conflated" }]);
  await client.close();
});

test("reconnect: backoff doubles with jitter in [d/2, d], up to the maximum; resets once a connection answers", async (t) => {
  const timers = fakeTimers(t);
  const WS = makeFakeWebSocket();
  // transport "websocket": attempts that fail are retried over the WebSocket
  // (the default, "auto", would go on over SSE: see sse.test.js).
  const client = newClient({ WebSocket: WS, transport: "websocket", backoff: { initialMs: 4, maxMs: 16 } });
  const ev = record(client, ["reconnecting", "state", "connecting", "closed"]);
  await waitFor(() => WS.instances.length === 1, "connect attempt 1");
  for (let i = 1; i <= 5; i++) {
    assert.equal(WS.instances.length, i, `connect attempt ${i}`);
    WS.last.serverClose(1006); // refused before opening
    assert.equal(ev.reconnecting.length, i, `retry ${i} scheduled`);
    // The next attempt comes when the announced delay is over, not before.
    const { delayMs } = ev.reconnecting[i - 1];
    timers.tick(delayMs - 0.5);
    assert.equal(WS.instances.length, i, `no attempt ${i + 1} before ${delayMs} ms`);
    if (i === 5) break; // attempt 6 is for after the checks below
    timers.tick(1); // past it (by 0.5 ms: no float rounding at the edge)
  }
  assert.equal(ev.reconnecting.length, 5, "5 scheduled retries");
  const ceilings = [4, 8, 16, 16, 16];
  ev.reconnecting.forEach(({ attempt, delayMs }, i) => {
    assert.equal(attempt, i + 1);
    assert.ok(delayMs >= ceilings[i] / 2 && delayMs <= ceilings[i], `retry ${attempt}: ${delayMs} ms not in [${ceilings[i] / 2}, ${ceilings[i]}]`);
  });
  assert.deepEqual(ev.connecting.slice(0, 3).map((c) => c.attempt), [1, 2, 3]);
  assert.deepEqual(ev.closed[0], { code: 1006, reason: "", wasClean: false, reconnecting: true });
  assert.equal(client.state, "reconnecting");
  assert.ok(client.retryAt > 0);
  // The 6th attempt opens and gets an answer: the next failure starts over.
  timers.tick(1);
  assert.equal(WS.instances.length, 6, "attempt 6");
  const ws = WS.last;
  ws.serverOpen();
  const p = client.subscribe(["X"]);
  const [r] = await sentCount(ws, 1);
  ws.serverSend({ type: "subscribed", id: r.id, topics: ["X"], epoch: EPOCH_A });
  await p;
  ws.serverClose(1001, "going away", true);
  assert.equal(ev.reconnecting.length, 6, "a retry after the answered connection");
  assert.equal(ev.reconnecting[5].attempt, 1);
  assert.ok(ev.reconnecting[5].delayMs <= 4);
  assert.deepEqual(ev.closed.at(-1), { code: 1001, reason: "going away", wasClean: true, reconnecting: true });
  const states = ev.state.map((s) => s.state);
  for (const s of ["connecting", "reconnecting", "open"]) assert.ok(states.includes(s), `state ${s} seen`);
  await client.close();
  assert.equal(client.state, "closed");
});

test("several URLs: the format (and delta) goes on each; a conflicting format or an empty list is refused", () => {
  const WS = makeFakeWebSocket();
  const opts = { WebSocket: WS, autoConnect: false, delta: false };
  const c = new TickwireClient(["ws://a:1/ws", "http://b:2/ws?format=json"], opts);
  assert.equal(c.format, "json", "the first URL that names a format gives it");
  assert.deepEqual(c.urls, ["ws://a:1/ws?format=json", "ws://b:2/ws?format=json"]);
  assert.equal(c.url, "ws://a:1/ws?format=json", "the first one is tried first");
  const one = new TickwireClient(["ws://a:1/ws"], opts);
  assert.deepEqual(one.urls, ["ws://a:1/ws?format=binary"]);
  assert.deepEqual(new TickwireClient("ws://a:1/ws", opts).urls, ["ws://a:1/ws?format=binary"]);
  assert.deepEqual(new TickwireClient(["ws://a:1/ws", "ws://b:2/ws"], { WebSocket: WS, autoConnect: false }).urls, [
    "ws://a:1/ws?format=binary&delta=1",
    "ws://b:2/ws?format=binary&delta=1",
  ]);
  assert.throws(() => new TickwireClient(["ws://a/ws?format=binary", "ws://b/ws?format=json"], opts), TypeError);
  assert.throws(() => new TickwireClient(["ws://a/ws", "ws://b/ws?format=json"], { ...opts, format: "binary" }), TypeError);
  assert.throws(() => new TickwireClient([], opts), TypeError);
  assert.throws(() => new TickwireClient(["ws://a/ws", "ftp://b/ws"], opts), TypeError);
});

test("several URLs: each retry goes to the next one, round the list; the resubscription resumes on another broker", async (t) => {
  const timers = fakeTimers(t);
  const WS = makeFakeWebSocket();
  const client = newClient({ WebSocket: WS, transport: "websocket", backoff: FAST }, ["ws://a/ws", "ws://b/ws", "ws://c/ws"]);
  const ev = record(client, ["connecting", "open", "recovered"]);
  await waitFor(() => WS.instances.length === 1, "the first socket");
  const host = (ws) => new URL(ws.url).host;
  assert.equal(host(WS.last), "a");
  WS.last.serverOpen();
  const sub = client.subscribe(["A"]);
  const [r1] = await sentCount(WS.last, 1);
  WS.last.serverSend({ type: "subscribed", id: r1.id, topics: ["A"], epoch: EPOCH_A });
  await sub;
  WS.last.serverSend(binaryQuote({ topic: "A", seq: 5 }));
  // Broker a is lost: the retry goes to b, refused; then c, refused; then a again.
  WS.last.serverClose(1006);
  for (const expected of ["b", "c", "a"]) {
    timers.tick(FAST.maxMs);
    assert.equal(host(WS.last), expected);
    assert.equal(client.url, WS.last.url, "url: the current attempt's");
    WS.last.serverClose(1006); // refused before opening
  }
  // b answers: the resubscription carries the position reached on a.
  timers.tick(FAST.maxMs);
  const ws = WS.last;
  assert.equal(host(ws), "b");
  ws.serverOpen();
  const [resub] = await sentCount(ws, 1);
  assert.deepEqual(resub.since, { epoch: EPOCH_A, seqs: { A: 5 } });
  ws.serverSend({ type: "subscribed", id: resub.id, topics: ["A"], epoch: EPOCH_A, recovered: true });
  assert.deepEqual(ev.recovered.map((e) => e.topics), [["A"]]);
  assert.deepEqual(
    ev.connecting.map((e) => new URL(e.url).host),
    ["a", "b", "c", "a", "b"],
  );
  assert.deepEqual(ev.open.map((e) => new URL(e.url).host), ["a", "b"]);
  assert.equal(new URL(client.url).host, "b");
  // reconnectNow() also goes on to the next URL.
  ws.serverClose(1006);
  client.reconnectNow();
  assert.equal(host(WS.last), "c");
  await client.close();
});

test("reconnect: unanswered requests are sent again; retry:false ones reject with `disconnected`; waiting ones go after the resubscription", async (t) => {
  const timers = fakeTimers(t);
  const { client, WS, ws } = await openClient();
  const a = client.subscribe(["A"]);
  const [ra] = await sentCount(ws, 1);
  ws.serverSend({ type: "subscribed", id: ra.id, topics: ["A"], epoch: EPOCH_A });
  await a;
  const b = client.subscribe(["B"], { snapshot: false });
  const probe = client.subscribe(["P"], { retry: false });
  await sentCount(ws, 3);
  ws.serverClose(1006);
  await assert.rejects(probe, { code: "disconnected" });
  assert.equal(client.state, "reconnecting");
  // While disconnected: waits, and retry:false is refused at once.
  const c = client.unsubscribe(["C"]);
  await assert.rejects(client.subscribe(["Q"], { retry: false }), { code: "not_connected" });
  assert.equal(WS.instances.length, 1, "no second socket before the backoff");
  timers.tick(FAST.maxMs);
  assert.equal(WS.instances.length, 2, "second socket");
  const ws2 = WS.last;
  ws2.serverOpen();
  const sent = await sentCount(ws2, 3);
  assert.deepEqual(sent.map(({ op, topics, snapshot }) => ({ op, topics, snapshot })), [
    { op: "subscribe", topics: ["A"], snapshot: true }, // the resubscription
    { op: "subscribe", topics: ["B"], snapshot: false }, // sent again, as it was
    { op: "unsubscribe", topics: ["C"], snapshot: undefined }, // waited for the connection
  ]);
  assert.ok(sent[1].id > sent[0].id && sent[2].id > sent[1].id, "fresh ids");
  ws2.serverSend({ type: "subscribed", id: sent[0].id, topics: ["A"], epoch: EPOCH_A });
  ws2.serverSend({ type: "subscribed", id: sent[1].id, topics: ["B"], epoch: EPOCH_A });
  ws2.serverSend({ type: "unsubscribed", id: sent[2].id, topics: ["C"] });
  assert.deepEqual((await b).topics, ["B"]);
  assert.deepEqual((await c).topics, ["C"]);
  assert.deepEqual([...client.subscriptions.keys()].sort(), ["A", "B"]);
  await client.close();
});

test("resubscribe: grouped by max_hz; a refused group is retried entry by entry; entries still refused are dropped and reported", async (t) => {
  const timers = fakeTimers(t);
  const { client, WS, ws } = await openClient();
  const p1 = client.subscribe(["A", "B"]);
  const p2 = client.subscribe(["C"], { maxHz: 4 });
  const [r1, r2] = await sentCount(ws, 2);
  ws.serverSend({ type: "subscribed", id: r1.id, topics: ["A", "B"], epoch: EPOCH_A });
  ws.serverSend({ type: "subscribed", id: r2.id, topics: ["C"], epoch: EPOCH_A });
  await Promise.all([p1, p2]);
  const errors = record(client, ["error"]).error;
  const ws2 = reconnect(timers, WS, ws);
  const [g1, g2] = await sentCount(ws2, 2);
  assert.deepEqual([g1, g2].map(({ topics, snapshot, max_hz }) => ({ topics, snapshot, max_hz })), [
    { topics: ["A", "B"], snapshot: true, max_hz: undefined },
    { topics: ["C"], snapshot: true, max_hz: 4 },
  ]);
  ws2.serverSend({ type: "error", id: g1.id, code: "not_authorized", message: 'not authorized for "B"' });
  ws2.serverSend({ type: "subscribed", id: g2.id, topics: ["C"], epoch: EPOCH_A });
  const [, , e1, e2] = await sentCount(ws2, 4);
  assert.deepEqual([e1.topics, e2.topics], [["A"], ["B"]]);
  ws2.serverSend({ type: "subscribed", id: e1.id, topics: ["A"], epoch: EPOCH_A });
  ws2.serverSend({ type: "error", id: e2.id, code: "not_authorized", message: 'not authorized for "B"' });
  await waitFor(() => errors.length === 1, "the refusal reported");
  assert.equal(errors[0].code, "not_authorized");
  assert.deepEqual(errors[0].topics, ["B"]);
  assert.equal(errors[0].op, "subscribe");
  assert.deepEqual([...client.subscriptions], [["A", { maxHz: undefined }], ["C", { maxHz: 4 }]]);
  await client.close();
});

test("auth: the token callback on every connect, auth first, then the hook, then the resubscription", async (t) => {
  const timers = fakeTimers(t);
  let calls = 0;
  const order = [];
  const WS = makeFakeWebSocket();
  const client = newClient({
    WebSocket: WS,
    backoff: FAST,
    token: async () => `token-${++calls}`,
    beforeResubscribe: async (c) => {
      order.push("hook");
      await c.subscribe(["PROBE"], { snapshot: false, retry: false }).catch(() => {});
      order.push("hook done");
    },
  });
  const authed = record(client, ["authed"]).authed;
  const sub = client.subscribe(["A"]); // made before the connection: waits for the open sequence
  await waitFor(() => WS.instances.length === 1, "socket");
  let ws = WS.last;
  ws.serverOpen();
  const [auth1, probe1] = await sentCount(ws, 2);
  assert.deepEqual(auth1, { op: "auth", token: "token-1", id: auth1.id });
  assert.deepEqual(probe1.topics, ["PROBE"]);
  ws.serverSend({ type: "authed", id: auth1.id, sub: "alice", exp: Math.floor(Date.now() / 1000) + 3600 });
  assert.deepEqual(authed.map((a) => a.sub), ["alice"]);
  await new Promise((r) => setImmediate(r));
  assert.equal(ws.sent.length, 2, "the waiting request goes after the hook");
  ws.serverSend({ type: "subscribed", id: probe1.id, topics: ["PROBE"], epoch: EPOCH_A });
  const [, , s1] = await sentCount(ws, 3);
  assert.deepEqual(s1.topics, ["A"]);
  ws.serverSend({ type: "subscribed", id: s1.id, topics: ["A"], epoch: EPOCH_A });
  await sub;
  assert.deepEqual(order, ["hook", "hook done"]);

  ws = reconnect(timers, WS, ws);
  const [auth2, probe2] = await sentCount(ws, 2);
  assert.equal(auth2.token, "token-2", "the callback is asked again on reconnect");
  assert.deepEqual(probe2.topics, ["PROBE"]);
  ws.serverSend({ type: "error", id: auth2.id, code: "not_authorized", message: "token expired" });
  ws.serverSend({ type: "subscribed", id: probe2.id, topics: ["PROBE"], epoch: EPOCH_A });
  const [, , r3] = await sentCount(ws, 3);
  assert.deepEqual(r3.topics, ["A"], "PROBE is in flight from the hook: not subscribed twice");

  // An explicit auth() with a new token: sent now, and used on reconnects.
  const again = client.auth("fresh");
  const [, , , a3] = await sentCount(ws, 4);
  assert.deepEqual(a3, { op: "auth", token: "fresh", id: a3.id });
  ws.serverSend({ type: "error", id: a3.id, code: "not_authorized", message: "bad signature" });
  await assert.rejects(again, { code: "not_authorized", message: "bad signature", op: "auth" });
  await client.close();
});

test("auth() while disconnected is answered by the next connection's auth", async () => {
  const WS = makeFakeWebSocket();
  const client = newClient({ WebSocket: WS, backoff: FAST, autoConnect: false });
  const pending = client.auth("tok");
  client.connect();
  await waitFor(() => WS.instances.length === 1, "socket");
  const ws = WS.last;
  ws.serverOpen();
  const [a] = await sentCount(ws, 1);
  assert.deepEqual(a, { op: "auth", token: "tok", id: a.id });
  ws.serverSend({ type: "authed", id: a.id, exp: 2000000000 });
  assert.deepEqual(await pending, { type: "authed", id: a.id, exp: 2000000000 });
  await client.close();
});

test("entries the broker removes (a refreshed token) are forgotten and reported", async () => {
  const { client, ws } = await openClient();
  const p = client.subscribe(["MSFT", "AAPL"]);
  const [r] = await sentCount(ws, 1);
  ws.serverSend({ type: "subscribed", id: r.id, topics: ["MSFT", "AAPL"], epoch: EPOCH_A });
  await p;
  ws.serverSend(binaryQuote({ topic: "MSFT", seq: 3 }));
  assert.equal(client.lastSeq("MSFT"), 3n);
  const ev = nextEvent(client, "unsubscribed");
  ws.serverSend({ type: "unsubscribed", topics: ["MSFT"], reason: "not_authorized" });
  assert.deepEqual(await ev, { type: "unsubscribed", topics: ["MSFT"], reason: "not_authorized" });
  assert.equal(client.has("MSFT"), false);
  assert.equal(client.has("AAPL"), true);
  assert.equal(client.lastSeq("MSFT"), undefined, "no longer tracked");
  await client.close();
});

test("close(): waiting requests reject with `closed`, no reconnect; timeouts reject with `timeout`", async (t) => {
  const timers = fakeTimers(t);
  const { client, WS, ws } = await openClient({ requestTimeoutMs: 30 });
  const late = client.subscribe(["SLOW"]);
  let lateSettled = false;
  late.catch(() => {}).finally(() => (lateSettled = true));
  await sentCount(ws, 1);
  timers.tick(29);
  await new Promise((r) => setImmediate(r));
  assert.equal(lateSettled, false, "no timeout before requestTimeoutMs");
  timers.tick(1);
  await assert.rejects(late, { code: "timeout" });
  const waiting = client.subscribe(["W"]);
  const closed = nextEvent(client, "closed");
  await client.close();
  await assert.rejects(waiting, { code: "closed" });
  assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true, reconnecting: false });
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "" });
  await assert.rejects(client.subscribe(["X"]), { code: "closed" });
  timers.tick(10 * FAST.maxMs); // longer than the backoff: nothing reconnects
  await new Promise((r) => setImmediate(r));
  assert.equal(WS.instances.length, 1);
  assert.equal(client.state, "closed");
});

test("a message that does not decode is an `error` event (code bad_message), the connection goes on", async () => {
  const { client, ws } = await openClient();
  const err = nextEvent(client, "error");
  ws.serverSend(new Uint8Array([2, 0, 0]).buffer);
  assert.equal((await err).code, "bad_message");
  const q = nextEvent(client, "quote");
  ws.serverSend(binaryQuote({ topic: "OK", seq: 1 }));
  assert.equal((await q).topic, "OK");
  await client.close();
});

test("a throwing listener does not break the client (its error is reported, not swallowed)", async () => {
  const { client, ws } = await openClient();
  const seen = [];
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e.message);
  try {
    client.on("quote", () => {
      throw new Error("listener bug");
    });
    client.on("quote", (q) => seen.push(q.seq));
    ws.serverSend(binaryQuote({ topic: "T", seq: 1 }));
    ws.serverSend(binaryQuote({ topic: "T", seq: 2 }));
    assert.deepEqual(seen, [1n, 2n]);
    assert.deepEqual(reported, ["listener bug", "listener bug"]);
  } finally {
    if (saved === undefined) delete globalThis.reportError;
    else globalThis.reportError = saved;
  }
  await client.close();
});

test("the declarations name every export", () => {
  const dts = readFileSync(new URL("../src/tickwire-client.d.ts", import.meta.url), "utf8");
  for (const name of Object.keys(api)) {
    const re = new RegExp(`export (declare )?(class |function |const |\\{[^}]*)\\b${name}\\b`);
    assert.ok(re.test(dts), `${name} is declared in tickwire-client.d.ts`);
  }
});
