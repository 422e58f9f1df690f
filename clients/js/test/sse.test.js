// The Server-Sent Events transport (protocol v1.2 `GET /sse`) without a
// network: a scripted EventSource (testing/fake-es.js) and WebSocket
// (testing/fake-ws.js) play the broker. The fallback when the WebSocket does
// not open, the same API and events over SSE, one stream reopened with
// `since` for each subscribe / unsubscribe (nothing lost, nothing repeated),
// refusals, max_hz, reconnect and the move back to the WebSocket; the
// event-stream parser, and the reader used without EventSource (fetch).

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { TickwireClient } from "../src/tickwire-client.js";
import { eventStreamParser } from "../src/tickwire-sse-reader.js";
import { sseUrls } from "../src/tickwire-urls.js";
import { makeFakeEventSource } from "../testing/fake-es.js";
import { makeFakeWebSocket } from "../testing/fake-ws.js";
import { jsonQuote } from "../testing/frames.js";
import { record, waitFor } from "../testing/util.js";

const EPOCH_A = "9f3b2c71a0d4e815";
const FAST = { initialMs: 1, maxMs: 2 };

const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function newClient(options, url = "ws://broker.test:8080/ws") {
  const client = new TickwireClient(url, options);
  clients.push(client);
  return client;
}

/** The fetch an EventSource's failure is explained with: the broker's answer to `url`. */
function refusingFetch(answer) {
  return async (url) => {
    const r = answer(new URL(url));
    if (!r) return { ok: true, status: 200, json: async () => null };
    return { ok: false, status: r.status, json: async () => r.body };
  };
}

/**
 * A client whose WebSocket is refused: it goes on over SSE. Fake setTimeout
 * (the test ticks the client's timers). Returns {client, WS, ES, timers, ev}.
 */
async function onSse(t, options = {}, beforeFallback = () => {}) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const WS = makeFakeWebSocket();
  const ES = makeFakeEventSource();
  const client = newClient({ WebSocket: WS, EventSource: ES, fetch: refusingFetch(() => null), backoff: FAST, ...options });
  const ev = record(client, [
    "connecting", "open", "ready", "closed", "reconnecting", "transport", "quote", "gap", "duplicate",
    "recovered", "unrecovered", "error", "message",
  ]);
  await waitFor(() => WS.instances.length === 1, "the WebSocket attempt");
  const made = beforeFallback(client);
  WS.last.serverClose(1006); // refused before opening (a proxy without the upgrade)
  return { client, WS, ES, timers: t.mock.timers, ev, made };
}

/** Waits for the stream number `n` (from 1). */
async function stream(ES, n) {
  await waitFor(() => ES.instances.length >= n, `event stream ${n} (got ${ES.instances.length})`);
  return ES.instances[n - 1];
}

/** Opens stream `es` and sends its ack (the broker's `subscribed` event). */
function ack(es, extra = {}) {
  es.serverOpen();
  es.serverSend({ type: "subscribed", topics: es.params.topics, epoch: EPOCH_A, ...extra });
}

const q = (topic, seq, more = {}) => jsonQuote({ topic, seq, ts: 1_732_345_678_901_234_000 + seq, bid: seq, ...more });
const seqsOf = (quotes, topic) => quotes.filter((x) => x.topic === topic).map((x) => Number(x.seq));

test("sseUrls: the `sse` next to the WebSocket path, http(s), or the sseUrl option", () => {
  assert.deepEqual(sseUrls(["ws://h:8080/ws?format=binary"]), ["http://h:8080/sse"]);
  assert.deepEqual(sseUrls(["wss://h/feed/ws?format=json"]), ["https://h/feed/sse"]);
  assert.deepEqual(sseUrls(["ws://a/ws", "ws://b/ws"], "https://proxy.example/tw/sse?x=1"), [
    "https://proxy.example/tw/sse",
    "https://proxy.example/tw/sse",
  ]);
  assert.throws(() => sseUrls(["ws://a/ws", "ws://b/ws", "ws://c/ws"], ["http://a/sse", "http://b/sse"]), TypeError);
  assert.throws(() => sseUrls(["ws://a/ws"], "ftp://a/sse"), TypeError);
});

test("eventStreamParser: events cut anywhere, CRLF / CR / LF, comments, multi-line data, ids", () => {
  const got = [];
  const text = ": hello\r\n\r\ndata: {\"a\":1}\r\nid: 7\r\n\r\ndata:x\ndata: y\n\n:keep-alive\n\nid: 8\rdata: z\r\rdata\n\n";
  for (const cut of [1, 2, 3, 5, 7, text.length]) {
    got.length = 0;
    const feed = eventStreamParser((data, id) => got.push([data, id]));
    for (let i = 0; i < text.length; i += cut) feed(text.slice(i, i + cut));
    assert.deepEqual(got, [['{"a":1}', "7"], ["x\ny", "7"], ["z", "8"], ["", "8"]], `chunks of ${cut}`);
  }
});

test("auto: a WebSocket that does not open → the same broker over SSE at once, the same API and events", async (t) => {
  const { client, WS, ES, ev, made: sub } = await onSse(t, {}, (c) => c.subscribe(["AAPL", "FX.*"]));
  const es = await stream(ES, 1);
  assert.equal(ev.reconnecting.length, 0, "no backoff before the fallback");
  assert.deepEqual(ev.connecting.map((c) => c.transport), ["websocket", "sse"]);
  assert.equal(ev.connecting[1].url, "http://broker.test:8080/sse");
  assert.equal(ev.connecting[1].attempt, 1, "the same attempt");
  assert.equal(client.transport, "sse");
  assert.equal(client.state, "connecting", "open once the broker answers");
  assert.deepEqual(es.params, {
    path: "/sse", topics: ["AAPL", "FX.*"], since: null, snapshot: null, max_hz: null, rewind: null, token: null,
  });
  ack(es);
  const reply = await sub;
  assert.equal(reply.type, "subscribed");
  assert.equal(typeof reply.id, "number");
  assert.deepEqual(reply.topics, ["AAPL", "FX.*"]);
  assert.equal(reply.epoch, EPOCH_A);
  assert.equal(client.state, "open");
  assert.equal(client.epoch, EPOCH_A);
  assert.deepEqual(ev.transport, [{ transport: "sse", previous: null }]);
  assert.deepEqual(ev.open.map((o) => o.transport), ["sse"]);
  await waitFor(() => ev.ready.length === 1, "ready");
  assert.equal(ev.ready[0].transport, "sse");
  // Binary format (the default): quotes as the binary decoder gives them.
  es.serverSend(q("AAPL", 1, { ask: null }), "e.i.1");
  es.serverSend(q("FX.EURUSD", 1), "e.i.2");
  es.serverSend(q("AAPL", 2), "e.i.3");
  assert.deepEqual(ev.quote.map((x) => [x.topic, x.seq]), [["AAPL", 1n], ["FX.EURUSD", 1n], ["AAPL", 2n]]);
  const first = ev.quote[0];
  assert.equal(typeof first.ts, "bigint");
  assert.ok(Number.isNaN(first.ask), "null → NaN, as in binary mode");
  assert.equal(first.bid, 1);
  assert.ok(Math.abs(first.tsMs - Number(first.ts) / 1e6) < 0.001);
  assert.equal(client.lastSeq("AAPL"), 2n);
  assert.equal(WS.instances.length, 1, "no other WebSocket");
});

test("auto: a WebSocket not upgraded within fallbackAfterMs (3 s) goes to SSE", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const WS = makeFakeWebSocket();
  const ES = makeFakeEventSource();
  const client = newClient({ WebSocket: WS, EventSource: ES, backoff: FAST, format: "json" });
  await waitFor(() => WS.instances.length === 1, "the WebSocket attempt");
  t.mock.timers.tick(2999);
  assert.equal(WS.last.closedWith, null, "still waiting");
  const sub = client.subscribe("A");
  t.mock.timers.tick(1);
  assert.ok(WS.last.closedWith, "given up after 3 s");
  const es = await stream(ES, 1);
  ack(es);
  await sub;
  es.serverSend(q("A", 1));
  await waitFor(() => client.lastSeq("A") === 1n, "a quote");
  assert.equal(client.transport, "sse");
});

test("subscribe / unsubscribe on SSE: the stream is reopened with every entry and `since`; nothing lost, nothing repeated", async (t) => {
  const { client, ES, ev } = await onSse(t);
  const sub = client.subscribe(["A"]);
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  for (let i = 1; i <= 3; i++) s1.serverSend(q("A", i), `id${i}`);

  const subB = client.subscribe(["B*"], { rewind: 8 });
  const s2 = await stream(ES, 2);
  assert.equal(s1.readyState, 2, "the first stream is closed");
  s1.serverSend(q("A", 4)); // what it would still have brought: not passed on (the new stream replays it)
  assert.deepEqual(s2.params.topics, ["A", "B*"]);
  assert.deepEqual(s2.params.since, { epoch: EPOCH_A, seqs: { A: 3 } });
  assert.equal(s2.params.rewind, "8");
  ack(s2, { recovered: true });
  const r = await subB;
  assert.deepEqual(r.topics, ["B*"]);
  assert.equal(r.recovered, undefined, "a new entry's subscribe: no since of its own");
  s2.serverSend(q("A", 4));
  s2.serverSend(q("B1", 7)); // rewound
  s2.serverSend(q("B1", 8));
  s2.serverSend(q("A", 5));

  // Two requests together: one stream.
  const unA = client.unsubscribe("A");
  const subC = client.subscribe("C");
  const s3 = await stream(ES, 3);
  await Promise.resolve();
  assert.equal(ES.instances.length, 3, "one stream for both");
  assert.deepEqual(s3.params.topics, ["B*", "C"]);
  assert.deepEqual(s3.params.since, { epoch: EPOCH_A, seqs: { B1: 8 } });
  ack(s3, { recovered: true });
  assert.deepEqual((await unA).topics, ["A"]);
  assert.equal((await subC).type, "subscribed");
  s3.serverSend(q("B1", 9));
  s3.serverSend(q("C", 1));
  assert.deepEqual([...client.subscriptions.keys()].sort(), ["B*", "C"]);

  // The last entries go: no stream.
  const off = client.unsubscribe(["B*", "C"]);
  assert.deepEqual((await off).topics, ["B*", "C"]);
  assert.equal(s3.readyState, 2);
  assert.equal(ES.instances.length, 3, "nothing to stream");

  assert.deepEqual(seqsOf(ev.quote, "A"), [1, 2, 3, 4, 5]);
  assert.deepEqual(seqsOf(ev.quote, "B1"), [7, 8, 9]);
  assert.deepEqual(seqsOf(ev.quote, "C"), [1]);
  assert.deepEqual(ev.gap, []);
  assert.deepEqual(ev.duplicate, []);
  assert.deepEqual(ev.recovered, [], "a reopened stream is no reconnect");
  assert.deepEqual(ev.unrecovered, []);
  assert.equal(client.state, "open");
});

test("a reopened stream that cannot resume a topic: `unrecovered`, then the snapshot with an `unrecovered` gap", async (t) => {
  const { client, ES, ev } = await onSse(t, { format: "json" });
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  s1.serverSend(q("A", 3));
  const subB = client.subscribe("B");
  const s2 = await stream(ES, 2);
  ack(s2, { recovered: false, unrecovered: ["A"] });
  await subB;
  s2.serverSend(q("A", 9)); // the snapshot
  assert.deepEqual(ev.unrecovered.map((u) => u.topics), [["A"]]);
  assert.equal(ev.gap.length, 1);
  assert.equal(ev.gap[0].reason, "unrecovered");
  assert.equal(ev.gap[0].missed, 5);
  assert.equal(client.stats.unrecovered, 1);
});

test("max_hz over SSE: one per stream; a subscribe that would mix them is refused (mixed_max_hz); naming every entry changes it", async (t) => {
  const { client, ES } = await onSse(t);
  const a = client.subscribe("A", { maxHz: 4 });
  const b = client.subscribe("B", { maxHz: 4 });
  const s1 = await stream(ES, 1);
  assert.deepEqual(s1.params.topics, ["A", "B"]);
  assert.equal(s1.params.max_hz, "4");
  ack(s1);
  await Promise.all([a, b]);
  await assert.rejects(client.subscribe("C"), (e) => e.code === "mixed_max_hz" && /max_hz/.test(e.message));
  await assert.rejects(client.subscribe("C", { maxHz: 2 }), { code: "mixed_max_hz" });
  assert.equal(ES.instances.length, 1, "nothing reopened");
  // Requests made together that leave one max_hz are fine (the dashboard's throttle, one entry per request).
  const all = [client.subscribe("A", { maxHz: 1, snapshot: false }), client.subscribe("B", { maxHz: 1, snapshot: false })];
  const s2 = await stream(ES, 2);
  assert.equal(s2.params.max_hz, "1");
  assert.equal(s2.params.snapshot, "false");
  ack(s2);
  await Promise.all(all);
  assert.deepEqual([...client.subscriptions].map(([e, o]) => [e, o.maxHz]), [["A", 1], ["B", 1]]);
});

test("a refused stream (400/403 before any event) rejects its request with the broker's code; the entries there before are reopened; several are tried one by one", async (t) => {
  const fetch = refusingFetch((u) =>
    /%20/.test(u.search) ? { status: 400, body: { type: "error", code: "bad_topic", message: 'invalid topic "x y"' } } : null,
  );
  const { client, ES, ev } = await onSse(t, { fetch, format: "json" });
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  s1.serverSend(q("A", 1));

  const bad = client.subscribe("x y");
  const s2 = await stream(ES, 2);
  s2.serverError(); // an EventSource says nothing more: the client asks why with fetch
  await assert.rejects(bad, (e) => e.code === "bad_topic" && e.message === 'invalid topic "x y"' && e.reply?.code === "bad_topic");
  const s3 = await stream(ES, 3);
  assert.deepEqual(s3.params.topics, ["A"], "what was there, reopened");
  assert.deepEqual(s3.params.since, { epoch: EPOCH_A, seqs: { A: 1 } });
  ack(s3, { recovered: true });
  s3.serverSend(q("A", 2));

  // Two together, one bad: the stream is refused; then one at a time.
  const good = client.subscribe("B");
  const bad2 = client.subscribe("x y");
  const s4 = await stream(ES, 4);
  assert.deepEqual(s4.params.topics, ["A", "B", "x y"]);
  s4.serverError();
  const s5 = await stream(ES, 5);
  assert.deepEqual(s5.params.topics, ["A", "B"]);
  ack(s5, { recovered: true });
  assert.equal((await good).type, "subscribed");
  const s6 = await stream(ES, 6);
  assert.deepEqual(s6.params.topics, ["A", "B", "x y"]);
  s6.serverError();
  await assert.rejects(bad2, { code: "bad_topic" });
  const s7 = await stream(ES, 7);
  assert.deepEqual(s7.params.topics, ["A", "B"]);
  ack(s7, { recovered: true });
  s7.serverSend(q("A", 3));
  assert.deepEqual(seqsOf(ev.quote, "A"), [1, 2, 3]);
  assert.equal(ev.closed.length, 1, "only the WebSocket attempt closed: the SSE connection went on");
  assert.equal(client.state, "open");
});

test("a lost stream: reconnect over SSE (for wsRetryMs), resubscribed with `since`: `recovered`, the replay, no gap", async (t) => {
  const { client, WS, ES, ev, timers } = await onSse(t);
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  s1.serverSend(q("A", 1));
  s1.serverSend(q("A", 2));
  s1.serverError(); // cut after it opened
  assert.equal(s1.readyState, 2, "closed: the client reconnects itself (its backoff, its positions)");
  assert.equal(ev.closed.at(-1).code, 1006);
  assert.equal(client.state, "reconnecting");
  timers.tick(FAST.maxMs);
  const s2 = await stream(ES, 2);
  assert.equal(WS.instances.length, 1, "straight to SSE: the WebSocket did not get through a moment ago");
  assert.deepEqual(s2.params.since, { epoch: EPOCH_A, seqs: { A: 2 } });
  ack(s2, { recovered: true });
  await waitFor(() => ev.recovered.length === 1, "recovered");
  assert.deepEqual(ev.recovered[0].topics, ["A"]);
  s2.serverSend(q("A", 3));
  s2.serverSend(q("A", 2)); // a repeat is never passed on
  assert.deepEqual(seqsOf(ev.quote, "A"), [1, 2, 3]);
  assert.deepEqual(ev.gap, []);
  assert.equal(client.stats.reconnects, 1);
  assert.deepEqual(ev.transport, [{ transport: "sse", previous: null }], "still SSE");
});

test("auto, on SSE: after wsRetryMs a WebSocket probe; when it gets through, the client moves to it and resumes", async (t) => {
  const { client, WS, ES, ev, timers } = await onSse(t, { wsRetryMs: 1000 });
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  s1.serverSend(q("A", 1));
  timers.tick(1000);
  assert.equal(WS.instances.length, 2, "a probe");
  WS.last.serverClose(1006); // still blocked
  assert.equal(s1.readyState, 1, "stays on SSE");
  timers.tick(1000);
  assert.equal(WS.instances.length, 3, "probed again");
  const probe = WS.last;
  probe.serverOpen();
  assert.ok(probe.closedWith, "the probe is closed at once");
  await waitFor(() => WS.instances.length === 4, "a WebSocket connection");
  assert.equal(s1.readyState, 2, "the stream is closed");
  const ws = WS.last;
  ws.serverOpen();
  await waitFor(() => ws.sent.length >= 1, "the resubscription");
  const [resub] = ws.sent;
  assert.deepEqual(resub.since, { epoch: EPOCH_A, seqs: { A: 1 } });
  ws.serverSend({ type: "subscribed", id: resub.id, topics: ["A"], epoch: EPOCH_A, recovered: true });
  assert.equal(client.transport, "websocket");
  assert.deepEqual(ev.transport, [{ transport: "sse", previous: null }, { transport: "websocket", previous: "sse" }]);
  assert.deepEqual(ev.recovered.map((r) => r.topics), [["A"]]);
  assert.equal(client.stats.reconnects, 0, "a move, not a failure");
});

test('transport "sse": no WebSocket at all; auth goes with the stream (token in the query of an EventSource); other ops are refused', async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const ES = makeFakeEventSource();
  const claims = { sub: "desk-7", exp: 2_000_000_000, topics: ["A"] };
  const token = `h.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.s`;
  const client = newClient({ transport: "sse", EventSource: ES, token, WebSocket: () => assert.fail("no WebSocket") }, "http://broker.test/ws");
  const ev = record(client, ["authed", "connecting"]);
  const sub = client.subscribe("A");
  const s1 = await stream(ES, 1);
  assert.equal(s1.params.token, token);
  assert.equal(ev.connecting[0].transport, "sse");
  ack(s1);
  await sub;
  assert.deepEqual(ev.authed.map((a) => [a.sub, a.exp]), [["desk-7", 2_000_000_000]]);
  await assert.rejects(client.request({ op: "ping" }), { code: "not_supported" });
  // A new token reopens the stream with it.
  const next = `h.${Buffer.from(JSON.stringify({ ...claims, exp: 2_000_000_600 })).toString("base64url")}.s`;
  const authed = client.auth(next);
  const s2 = await stream(ES, 2);
  assert.equal(s2.params.token, next);
  ack(s2, { recovered: true });
  assert.equal((await authed).exp, 2_000_000_600);
});

test("without EventSource (Node): fetch reads the stream; the token in an Authorization header; its end is a lost connection", async (t) => {
  const requests = [];
  const bodies = [];
  const fetch = async (url, init) => {
    requests.push({ url: new URL(url), headers: init.headers });
    let ctl;
    const body = new ReadableStream({ start: (c) => (ctl = c) });
    bodies.push(ctl);
    init.signal.addEventListener("abort", () => ctl.error(new DOMException("aborted", "AbortError")));
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  const enc = new TextEncoder();
  const client = newClient({ transport: "sse", EventSource: null, fetch, token: "t0k3n", format: "json", backoff: FAST });
  const ev = record(client, ["quote", "closed", "recovered"]);
  const sub = client.subscribe("A");
  await waitFor(() => bodies.length === 1, "a request");
  assert.equal(requests[0].headers.Authorization, "Bearer t0k3n");
  assert.equal(requests[0].headers.Accept, "text/event-stream");
  assert.equal(requests[0].url.searchParams.get("token"), null, "not in the URL");
  assert.equal(requests[0].url.pathname, "/sse");
  const send = (ctl, text) => ctl.enqueue(enc.encode(text));
  send(bodies[0], `data: {"type":"subscribed","topics":["A"],"epoch":"${EPOCH_A}"}\n\nid: x.y.1\ndata: ${JSON.stringify(q("A", 1)).slice(0, 20)}`);
  send(bodies[0], `${JSON.stringify(q("A", 1)).slice(20)}\n\n: keep-alive\n\n`);
  await sub;
  await waitFor(() => ev.quote.length === 1, "the quote cut in two chunks");
  assert.equal(ev.quote[0].seq, 1);
  bodies[0].close(); // the broker ended the stream
  await waitFor(() => bodies.length === 2, "a reconnect");
  assert.equal(ev.closed[0].code, 1006);
  assert.deepEqual(JSON.parse(requests[1].url.searchParams.get("since")), { epoch: EPOCH_A, seqs: { A: 1 } });
  send(bodies[1], `data: {"type":"subscribed","topics":["A"],"epoch":"${EPOCH_A}","recovered":true}\n\n`);
  await waitFor(() => ev.recovered.length === 1, "recovered");
  await client.close();
  assert.equal(bodies.length, 2);
});

test("requests made while the first stream is being opened wait for it, then reopen it once", async (t) => {
  const { client, ES } = await onSse(t);
  const a = client.subscribe("A");
  const s1 = await stream(ES, 1);
  const b = client.subscribe("B");
  const c = client.subscribe("C");
  await new Promise((r) => setImmediate(r));
  assert.equal(ES.instances.length, 1, "not before the first one is answered");
  ack(s1);
  await a;
  const s2 = await stream(ES, 2);
  assert.deepEqual(s2.params.topics, ["A", "B", "C"]);
  ack(s2);
  await Promise.all([b, c]);
  assert.equal(s1.readyState, 2);
});

test("the URL budget: `since` keeps the positions that fit (the others unrecovered); entries that do not fit are refused (too_long)", async (t) => {
  const { client, ES, ev } = await onSse(t, { format: "json" });
  const names = Array.from({ length: 70 }, (_, i) => `T${String(i).padStart(2, "0")}.${"x".repeat(56)}`);
  const sub = client.subscribe(names);
  const s1 = await stream(ES, 1);
  ack(s1);
  await sub;
  for (const n of names) s1.serverSend(q(n, 5));
  const subB = client.subscribe("B");
  const s2 = await stream(ES, 2);
  assert.ok(s2.url.length <= 6000, `${s2.url.length} characters`);
  const named = Object.keys(s2.params.since.seqs);
  assert.ok(named.length > 0 && named.length < names.length, `${named.length} positions`);
  ack(s2, { recovered: true });
  await subB;
  const left = names.filter((n) => !named.includes(n));
  assert.deepEqual(ev.unrecovered.flatMap((u) => u.topics).sort(), left.sort(), "those left out: unrecovered");
  const more = Array.from({ length: 40 }, (_, i) => `U${i}.${"y".repeat(56)}`);
  await assert.rejects(client.subscribe(more), (e) => e.code === "too_long" && /6000/.test(e.message));
  assert.equal(ES.instances.length, 2, "nothing reopened");
  assert.equal(s2.readyState, 1, "the stream goes on");
});

test("a stream that does not answer within connectTimeoutMs is a lost connection", async (t) => {
  const { client, ES, ev, timers } = await onSse(t, { connectTimeoutMs: 5000 }, (c) => c.subscribe("A").catch(() => {}));
  const s1 = await stream(ES, 1);
  s1.serverOpen(); // the head, but no event
  timers.tick(4999);
  assert.equal(ev.closed.length, 1, "only the WebSocket attempt so far");
  timers.tick(1);
  assert.equal(s1.readyState, 2);
  assert.equal(ev.closed.length, 2);
  assert.match(ev.closed[1].reason, /no answer/);
  assert.equal(client.state, "reconnecting");
});

test("beforeResubscribe over SSE: requests it waits for go out (with the auth); one stream when it waits for none", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const ES = makeFakeEventSource();
  const hookAcks = [];
  const token = `h.${Buffer.from(JSON.stringify({ exp: 2_000_000_000 })).toString("base64url")}.s`;
  const client = newClient({
    transport: "sse",
    EventSource: ES,
    token,
    backoff: FAST,
    beforeResubscribe: async (c) => {
      if (hookAcks.length === 0) hookAcks.push(await c.subscribe("HOOK")); // waits for its answer
    },
  });
  const ev = record(client, ["ready", "authed", "open"]);
  const s1 = await stream(ES, 1);
  assert.deepEqual(s1.params.topics, ["HOOK"]);
  assert.equal(s1.params.token, token, "the auth goes with it");
  ack(s1);
  await waitFor(() => ev.ready.length === 1, "ready");
  assert.equal(hookAcks.length, 1);
  assert.equal(ev.authed.length, 1);
  assert.equal(ev.open.length, 1);
  // Reconnect: the hook asks nothing; auth and the resubscription: one stream.
  s1.serverSend(q("HOOK", 4));
  s1.serverError();
  t.mock.timers.tick(FAST.maxMs);
  const s2 = await stream(ES, 2);
  await new Promise((r) => setImmediate(r));
  assert.equal(ES.instances.length, 2);
  assert.deepEqual(s2.params.topics, ["HOOK"]);
  assert.deepEqual(s2.params.since, { epoch: EPOCH_A, seqs: { HOOK: 4 } });
  ack(s2, { recovered: true });
  await waitFor(() => ev.ready.length === 2, "ready again");
});
