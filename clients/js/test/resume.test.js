// Resume (protocol v1.2 `since`) without a network: the scripted WebSocket
// (testing/fake-ws.js) plays the broker. The positions a resubscription
// carries and how they are split, the ack's recovered / unrecovered, the
// gaps only where quotes were really skipped, the holds while a position is
// unanswered, no repeat ever passed on, the fallbacks for a broker that does
// not know `since`, and `rewind`.

import { afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { SeqTracker, TickwireClient } from "../src/tickwire-client.js";
import { HELD, REPEAT } from "../src/tickwire-gaps.js";
import { MAX_SINCE_KEYS, planResubscribe } from "../src/tickwire-subscriptions.js";
import { makeFakeWebSocket } from "../testing/fake-ws.js";
import { binaryQuote, jsonQuote } from "../testing/frames.js";
import { record, waitFor } from "../testing/util.js";

const EPOCH_A = "9f3b2c71a0d4e815";
const EPOCH_B = "0123456789abcdef";
const FAST = { initialMs: 1, maxMs: 2 };

const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** A client on a fake socket, opened, with fake setTimeout; returns {client, WS, ws, timers}. */
async function openClient(t, options = {}) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const WS = makeFakeWebSocket();
  const client = new TickwireClient("ws://broker.test/ws", { WebSocket: WS, backoff: FAST, ...options });
  clients.push(client);
  await waitFor(() => WS.instances.length === 1, "the first socket");
  const ws = WS.last;
  ws.serverOpen();
  return { client, WS, ws, timers: t.mock.timers };
}

async function sentCount(ws, n) {
  await waitFor(() => ws.sent.length >= n, `${n} request(s) sent (got ${JSON.stringify(ws.sent)})`);
  return ws.sent.slice(0, n);
}

/** Closes the socket from the broker's side, runs the backoff out, opens the next one. */
function reconnect(timers, WS, ws) {
  ws.serverClose(1006);
  timers.tick(FAST.maxMs);
  const next = WS.last;
  assert.notEqual(next, ws, "a new socket");
  next.serverOpen();
  return next;
}

/** Subscribes `topics` (options `opts`) and acknowledges it in epoch `epoch`. */
async function subscribed(client, ws, topics, opts = {}, epoch = EPOCH_A) {
  const p = client.subscribe(topics, opts);
  const req = await waitFor(() => ws.sent.some((m) => m.op === "subscribe" && JSON.stringify(m.topics) === JSON.stringify(topics)), "subscribe sent").then(
    () => ws.sent.findLast((m) => m.op === "subscribe" && JSON.stringify(m.topics) === JSON.stringify(topics)),
  );
  ws.serverSend({ type: "subscribed", id: req.id, topics, epoch });
  return [await p, req];
}

const seqsOf = (quotes, topic) => quotes.filter((q) => q.topic === topic).map((q) => Number(q.seq));
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

// ------------------------------------------------------------ SeqTracker ----

test("SeqTracker: gap reasons, unrecovered after a reconnect, conflated otherwise", () => {
  const t = new SeqTracker();
  t.setEpoch(EPOCH_A);
  t.accept("A", 1n);
  assert.equal(t.accept("A", 3n), 1);
  assert.equal(t.lastGapReason, "conflated");
  t.accept("B", 1n);
  t.disconnected();
  t.resumed("B", true); // B's position was recovered: its replay has no gap
  assert.equal(t.accept("A", 9n), 5);
  assert.equal(t.lastGapReason, "unrecovered", "the first quote of A after the reconnect");
  assert.equal(t.accept("A", 11n), 1);
  assert.equal(t.lastGapReason, "conflated", "later jumps are conflation again");
  assert.equal(t.accept("B", 4n), 2);
  assert.equal(t.lastGapReason, "conflated", "recovered: a jump is conflation (max_hz)");
});

test("SeqTracker: a jump held while its position is asked; the replay fills in; the held copy goes out once in order", () => {
  const t = new SeqTracker();
  t.setEpoch(EPOCH_A);
  t.accept("T", 5n);
  t.resuming(["T"]);
  assert.equal(t.offer("T", 9n, "q9"), HELD, "9 jumps while T's position is unanswered");
  assert.equal(t.offer("T", 8n, "q8"), HELD);
  assert.equal(t.offer("T", 9n, "q9 again"), HELD, "already held");
  assert.equal(t.lastSeq("T"), 5n, "held quotes do not advance the tracking");
  assert.equal(t.nextHeld("T"), undefined, "6 and 7 first");
  t.resumed("T", true);
  assert.equal(t.nextHeld("T"), undefined, "recovered: the replay brings 6, 7");
  assert.equal(t.offer("T", 6n, "q6"), 0);
  assert.equal(t.nextHeld("T"), undefined);
  assert.equal(t.offer("T", 7n, "q7"), 0);
  assert.deepEqual(t.nextHeld("T"), { item: "q8", missed: 0 });
  assert.deepEqual(t.nextHeld("T"), { item: "q9", missed: 0 });
  assert.equal(t.nextHeld("T"), undefined);
  assert.equal(t.offer("T", 8n, "replayed 8"), REPEAT, "the replay's copy is a repeat");
  assert.equal(t.offer("T", 10n, "q10"), 0);
  assert.equal(t.offer("T", 12n, "q12"), HELD, "T's replay may still be coming (a snapshot overtook it)");
  assert.deepEqual(t.endReplays(), ["T"], "the client stops waiting");
  assert.deepEqual(t.nextHeld("T"), { item: "q12", missed: 1 });
  assert.equal(t.lastGapReason, "conflated");
  assert.equal(t.offer("T", 14n, "q14"), 1, "no hold left: a jump is a gap again");
  // Recovered under max_hz: only the newest comes, so nothing waits.
  t.resuming(["T"]);
  assert.equal(t.offer("T", 16n, "q16"), HELD);
  t.resumed("T", true, true);
  assert.deepEqual(t.nextHeld("T"), { item: "q16", missed: 1 });
  assert.equal(t.offer("T", 18n, "q18"), 1);
});

test("SeqTracker: not recovered → what is held goes out at once, in order, with its gap", () => {
  const t = new SeqTracker();
  t.setEpoch(EPOCH_A);
  t.accept("T", 5n);
  t.disconnected();
  t.resuming(["T"]);
  t.resuming(["T"]); // named by two requests
  assert.equal(t.offer("T", 12n, "q12"), HELD);
  assert.equal(t.offer("T", 10n, "q10"), HELD);
  t.resumed("T", false);
  assert.equal(t.nextHeld("T"), undefined, "another request still has T's position");
  t.resumed("T", false);
  assert.deepEqual(t.nextHeld("T"), { item: "q10", missed: 4 });
  assert.equal(t.lastGapReason, "unrecovered");
  assert.deepEqual(t.nextHeld("T"), { item: "q12", missed: 1 });
  assert.equal(t.nextHeld("T"), undefined);
  // Recovered, but the replay skipped (the broker conflated a slow
  // consumer): a quote newer than every held one lets them go out.
  t.resuming(["T"]);
  assert.equal(t.offer("T", 20n, "q20"), HELD);
  t.resumed("T", true);
  assert.equal(t.nextHeld("T"), undefined);
  assert.equal(t.offer("T", 19n, "q19"), HELD, "older than what is held: still the replay's hole");
  assert.equal(t.offer("T", 21n, "q21"), HELD);
  assert.deepEqual(t.nextHeld("T"), { item: "q19", missed: 6 });
  assert.deepEqual(t.nextHeld("T"), { item: "q20", missed: 0 });
  assert.deepEqual(t.nextHeld("T"), { item: "q21", missed: 0 });
  assert.equal(t.nextHeld("T"), undefined);
  // Lost connection: holds dropped (the next position is still the last passed on).
  t.resuming(["T"]);
  assert.equal(t.offer("T", 30n, "q30"), HELD);
  t.disconnected();
  assert.equal(t.nextHeld("T"), undefined);
  assert.equal(t.lastSeq("T"), 21n);
  assert.equal(t.offer("T", 30n, "q30"), 8, "no hold any more");
});

test("SeqTracker.covered: exact topics and prefix ranges, sorted", () => {
  const t = new SeqTracker();
  t.setEpoch(EPOCH_A);
  for (const topic of ["FX.EURUSD", "AAPL", "FX.GBPUSD", "FXX", "F"]) t.accept(topic, 1n);
  assert.deepEqual(t.covered("FX.*"), ["FX.EURUSD", "FX.GBPUSD"]);
  assert.deepEqual(t.covered("FX*"), ["FX.EURUSD", "FX.GBPUSD", "FXX"]);
  assert.deepEqual(t.covered("*"), ["AAPL", "F", "FX.EURUSD", "FX.GBPUSD", "FXX"]);
  assert.deepEqual(t.covered("AAPL"), ["AAPL"]);
  assert.deepEqual(t.covered("MSFT"), []);
  t.accept("FX.AUDUSD", 1n);
  assert.deepEqual(t.covered("FX.*"), ["FX.AUDUSD", "FX.EURUSD", "FX.GBPUSD"], "a new topic is seen");
});

// ------------------------------------------------------- planResubscribe ----

function trackerWith(entries, epoch = EPOCH_A) {
  const t = new SeqTracker();
  if (epoch) t.setEpoch(epoch);
  for (const [topic, seq] of entries) t.accept(topic, BigInt(seq));
  return t;
}

/** Every key of each request is covered by one of its own entries; limits kept. */
function checkPlan(plan) {
  for (const { msg } of plan) {
    const keys = Object.keys(msg.since?.seqs ?? {});
    assert.ok(keys.length <= MAX_SINCE_KEYS, `${keys.length} keys`);
    assert.ok(msg.topics.length <= 256);
    assert.ok(JSON.stringify({ ...msg, id: Number.MAX_SAFE_INTEGER }).length <= 60_000, "under 60,000 bytes");
    for (const k of keys) {
      assert.ok(
        msg.topics.some((e) => (e.endsWith("*") ? k.startsWith(e.slice(0, -1)) : e === k)),
        `${k} is covered by an entry of its request`,
      );
    }
  }
}

test("planResubscribe: positions of the covered topics; a topic covered by several requests is named in each", () => {
  const tracker = trackerWith([["AAPL", 1041], ["FX.EURUSD", 77], ["FX.GBPUSD", 3], ["MSFT", 9], ["constructor", 4], ["__proto__", 2]]);
  const plan = planResubscribe(
    [
      { topics: ["AAPL", "FX.*", "TSLA", "constructor", "__proto__"], maxHz: undefined, rewind: 64 },
      { topics: ["FX.GBPUSD"], maxHz: 4, rewind: undefined },
    ],
    { snapshot: true, resume: true, tracker },
  );
  checkPlan(plan);
  assert.equal(plan.length, 2);
  assert.deepEqual(JSON.parse(JSON.stringify(plan[0].msg)), {
    op: "subscribe",
    topics: ["AAPL", "FX.*", "TSLA", "constructor", "__proto__"],
    snapshot: true,
    rewind: 64,
    since: { epoch: EPOCH_A, seqs: JSON.parse('{"AAPL":1041,"FX.EURUSD":77,"FX.GBPUSD":3,"constructor":4,"__proto__":2}') },
  });
  assert.deepEqual(plan[0].keys, ["AAPL", "FX.EURUSD", "FX.GBPUSD", "constructor", "__proto__"]);
  assert.deepEqual(JSON.parse(JSON.stringify(plan[1].msg)), {
    op: "subscribe",
    topics: ["FX.GBPUSD"],
    snapshot: true,
    max_hz: 4,
    since: { epoch: EPOCH_A, seqs: { "FX.GBPUSD": 3 } },
  });
  // No position known, no epoch, or resume off: the v1 request.
  for (const [opts, why] of [
    [{ resume: true, tracker: trackerWith([["OTHER", 1]]) }, "no covered topic"],
    [{ resume: true, tracker: trackerWith([], null) }, "no epoch"],
    [{ resume: false, tracker }, "resume off"],
  ]) {
    const [r] = planResubscribe([{ topics: ["AAPL"], maxHz: undefined, rewind: undefined }], { snapshot: true, ...opts });
    assert.deepEqual(r.msg, { op: "subscribe", topics: ["AAPL"], snapshot: true }, why);
    assert.deepEqual(r.keys, []);
  }
  // snapshot:false: no rewind (the broker refuses the pair).
  const [quiet] = planResubscribe([{ topics: ["AAPL"], maxHz: undefined, rewind: 64 }], { snapshot: false, resume: true, tracker });
  assert.equal(quiet.msg.rewind, undefined);
  assert.equal(quiet.msg.snapshot, false);
});

test("planResubscribe: an entry covering more than 1,024 topics goes in shares, all but the last quiet", () => {
  const known = range(1, 2500).map((i) => [`S.${String(i).padStart(5, "0")}`, i]);
  const tracker = trackerWith([...known, ["AAPL", 5]]);
  const plan = planResubscribe([{ topics: ["AAPL", "S.*", "MSFT"], maxHz: undefined, rewind: 32 }], { snapshot: true, resume: true, tracker });
  checkPlan(plan);
  assert.deepEqual(plan.map((r) => [r.msg.topics, r.keys.length, r.msg.snapshot, r.msg.rewind]), [
    [["AAPL"], 1, true, 32], // the batch before the big entry
    [["S.*"], 1024, false, undefined],
    [["S.*"], 1024, false, undefined],
    [["S.*"], 452, true, 32], // the last share: the snapshots / rewind of what it does not name
    [["MSFT"], 0, true, 32],
  ]);
  const named = plan.flatMap((r) => r.keys).filter((k) => k.startsWith("S."));
  assert.equal(new Set(named).size, 2500, "every topic named once");
  // Long topics: the byte limit splits before the key limit.
  const long = range(1, 1500).map((i) => [`L.${"x".repeat(55)}${String(i).padStart(5, "0")}`, 2 ** 40 + i]);
  const plan2 = planResubscribe([{ topics: ["L.*"], maxHz: 2, rewind: undefined }], {
    snapshot: true,
    resume: true,
    tracker: trackerWith(long),
  });
  checkPlan(plan2);
  assert.ok(plan2.length >= 2 && plan2[0].keys.length < MAX_SINCE_KEYS, `${plan2.length} requests, the first cut by size`);
  assert.ok(plan2.every((r) => r.msg.max_hz === 2), "max_hz on every share");
  assert.equal(plan2.reduce((n, r) => n + r.keys.length, 0), 1500);
});

test("planResubscribe: many entries are batched under 1,024 keys, 256 entries and 60,000 bytes", () => {
  const entries = range(1, 600).map((i) => `E${i}.*`);
  const known = entries.flatMap((e, i) => [[`${e.slice(0, -1)}a`, i + 1], [`${e.slice(0, -1)}b`, i + 2]]);
  const plan = planResubscribe([{ topics: entries, maxHz: undefined, rewind: undefined }], {
    snapshot: true,
    resume: true,
    tracker: trackerWith(known),
  });
  checkPlan(plan);
  assert.deepEqual(plan.flatMap((r) => r.msg.topics), entries, "every entry once, in order");
  assert.equal(plan.reduce((n, r) => n + r.keys.length, 0), 1200);
  assert.ok(plan.every((r) => r.msg.snapshot === true));
});

// ---------------------------------------------------------- the client ----

test("reconnect with resume: since carries the epoch and last seqs; recovered replay has no gap, no snapshot, no repeat", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  await subscribed(client, ws, ["AAPL", "FX.*"]);
  await subscribed(client, ws, ["SLOW"], { maxHz: 4 });
  for (const seq of [1, 2, 3]) ws.serverSend(binaryQuote({ topic: "AAPL", seq }));
  ws.serverSend(binaryQuote({ topic: "FX.EURUSD", seq: 77 }));
  ws.serverSend(binaryQuote({ topic: "SLOW", seq: 10 }));

  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  assert.deepEqual(r1, {
    op: "subscribe",
    topics: ["AAPL", "FX.*"],
    snapshot: true,
    since: { epoch: EPOCH_A, seqs: { AAPL: 3, "FX.EURUSD": 77 } },
    id: r1.id,
  });
  assert.deepEqual(r2, { op: "subscribe", topics: ["SLOW"], snapshot: true, max_hz: 4, since: { epoch: EPOCH_A, seqs: { SLOW: 10 } }, id: r2.id });
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["AAPL", "FX.*"], epoch: EPOCH_A, recovered: true });
  // Published while away, replayed in order, then live.
  for (const seq of [4, 5, 6]) ws2.serverSend(binaryQuote({ topic: "AAPL", seq }));
  ws2.serverSend(binaryQuote({ topic: "FX.EURUSD", seq: 78 }));
  ws2.serverSend({ type: "subscribed", id: r2.id, topics: ["SLOW"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend(binaryQuote({ topic: "SLOW", seq: 14 })); // max_hz: only the newest (conflation)
  assert.deepEqual(seqsOf(ev.quote, "AAPL"), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seqsOf(ev.quote, "FX.EURUSD"), [77, 78]);
  assert.deepEqual(ev.recovered, [
    { topics: ["AAPL", "FX.EURUSD"], epoch: EPOCH_A, id: r1.id },
    { topics: ["SLOW"], epoch: EPOCH_A, id: r2.id },
  ]);
  assert.deepEqual(ev.unrecovered, []);
  assert.deepEqual(ev.gap, [{ topic: "SLOW", expected: 11n, received: 14n, missed: 3, epoch: EPOCH_A, reason: "conflated" }]);
  assert.deepEqual(ev.duplicate, []);
  assert.equal(client.stats.recovered, 3);
  assert.equal(client.stats.unrecovered, 0);
});

test("reconnect with resume: unrecovered topics get the snapshot, reported as an `unrecovered` gap; a repeat never reaches `quote`", async (t) => {
  const { client, WS, ws, timers } = await openClient(t, { format: "json" });
  const ev = record(client, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  await subscribed(client, ws, ["A", "B"]);
  ws.serverSend(jsonQuote({ topic: "A", seq: 3 }));
  ws.serverSend(jsonQuote({ topic: "B", seq: 7 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r] = await sentCount(ws2, 1);
  assert.deepEqual(r.since, { epoch: EPOCH_A, seqs: { A: 3, B: 7 } });
  assert.equal(typeof r.since.seqs.A, "number", "JSON numbers");
  ws2.serverSend({ type: "subscribed", id: r.id, topics: ["A", "B"], epoch: EPOCH_A, recovered: false, unrecovered: ["A"] });
  ws2.serverSend(jsonQuote({ topic: "A", seq: 9 })); // A's snapshot (history no longer reaches back)
  ws2.serverSend(jsonQuote({ topic: "B", seq: 8 })); // B's replay
  ws2.serverSend(jsonQuote({ topic: "B", seq: 8 })); // a repeat (a broker bug): never passed on
  ws2.serverSend(jsonQuote({ topic: "A", seq: 10 }));
  assert.deepEqual(ev.recovered.map((e) => e.topics), [["B"]]);
  assert.deepEqual(ev.unrecovered.map((e) => e.topics), [["A"]]);
  assert.deepEqual(ev.gap, [{ topic: "A", expected: 4n, received: 9n, missed: 5, epoch: EPOCH_A, reason: "unrecovered" }]);
  assert.deepEqual(seqsOf(ev.quote, "A"), [3, 9, 10]);
  assert.deepEqual(seqsOf(ev.quote, "B"), [7, 8]);
  assert.equal(ev.duplicate.length, 1);
});

test("reconnect with resume to a restarted broker: new epoch, nothing recovered, tracking reset, no gap", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "epoch", "unrecovered"]);
  await subscribed(client, ws, ["A"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 40 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r] = await sentCount(ws2, 1);
  assert.deepEqual(r.since, { epoch: EPOCH_A, seqs: { A: 40 } });
  ws2.serverSend({ type: "subscribed", id: r.id, topics: ["A"], epoch: EPOCH_B, recovered: false, unrecovered: ["A"] });
  ws2.serverSend(binaryQuote({ topic: "A", seq: 1 }));
  ws2.serverSend(binaryQuote({ topic: "A", seq: 2 }));
  assert.deepEqual(ev.epoch.at(-1), { epoch: EPOCH_B, previous: EPOCH_A });
  assert.deepEqual(ev.unrecovered, [{ topics: ["A"], epoch: EPOCH_B, id: r.id }]);
  assert.deepEqual(seqsOf(ev.quote, "A"), [40, 1, 2]);
  assert.deepEqual(ev.gap, []);
  // The next reconnect resumes in the new epoch.
  const ws3 = reconnect(timers, WS, ws2);
  const [r3] = await sentCount(ws3, 1);
  assert.deepEqual(r3.since, { epoch: EPOCH_B, seqs: { A: 2 } });
});

test("a broker that ignores `since` (no `recovered` in the ack): every topic unrecovered; snapshots dropped as repeats or reported as gaps", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  await subscribed(client, ws, ["A", "B"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 3 }));
  ws.serverSend(binaryQuote({ topic: "B", seq: 3 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r] = await sentCount(ws2, 1);
  ws2.serverSend({ type: "subscribed", id: r.id, topics: ["A", "B"], epoch: EPOCH_A });
  ws2.serverSend(binaryQuote({ topic: "A", seq: 3 })); // nothing new: the snapshot repeats
  ws2.serverSend(binaryQuote({ topic: "B", seq: 6 }));
  assert.deepEqual(ev.unrecovered.map((e) => e.topics), [["A", "B"]]);
  assert.deepEqual(ev.recovered, []);
  assert.deepEqual(seqsOf(ev.quote, "A"), [3]);
  assert.deepEqual(ev.gap.map((g) => [g.topic, g.missed, g.reason]), [["B", 2, "unrecovered"]]);
  assert.equal(ev.duplicate.length, 1);
});

test("a broker that refuses `since` (bad_request): the entries again without it, and none on that connection", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["error", "unrecovered", "quote"]);
  await subscribed(client, ws, ["A", "B"]);
  await subscribed(client, ws, ["C"], { maxHz: 2 });
  ws.serverSend(binaryQuote({ topic: "A", seq: 3 }));
  ws.serverSend(binaryQuote({ topic: "C", seq: 3 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  assert.ok(r1.since && r2.since);
  ws2.serverSend({ type: "error", id: r1.id, code: "bad_request", message: "unknown field since" });
  const [, , r3] = await sentCount(ws2, 3);
  assert.deepEqual(r3, { op: "subscribe", topics: ["A", "B"], snapshot: true, id: r3.id });
  ws2.serverSend({ type: "subscribed", id: r3.id, topics: ["A", "B"], epoch: EPOCH_A });
  ws2.serverSend({ type: "error", id: r2.id, code: "bad_request", message: "unknown field since" });
  const [, , , r4] = await sentCount(ws2, 4);
  assert.deepEqual(r4, { op: "subscribe", topics: ["C"], snapshot: true, max_hz: 2, id: r4.id });
  ws2.serverSend({ type: "subscribed", id: r4.id, topics: ["C"], epoch: EPOCH_A });
  assert.deepEqual(ev.unrecovered.map((e) => e.topics), [["A"], ["C"]]);
  assert.deepEqual(ev.error, [], "not an error the application has to handle");
  assert.deepEqual([...client.subscriptions.keys()], ["A", "B", "C"]);
  // The next connection tries `since` again.
  const ws3 = reconnect(timers, WS, ws2);
  const [r5] = await sentCount(ws3, 1);
  assert.deepEqual(r5.since, { epoch: EPOCH_A, seqs: { A: 3 } });
});

test("resume: false sends v1 resubscriptions", async (t) => {
  const { client, WS, ws, timers } = await openClient(t, { resume: false });
  await subscribed(client, ws, ["A"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 3 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r] = await sentCount(ws2, 1);
  assert.deepEqual(r, { op: "subscribe", topics: ["A"], snapshot: true, id: r.id });
});

test("overlapping entries in two requests: a jump under the first is held until the second's position is answered", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "duplicate"]);
  await subscribed(client, ws, ["P*"], { rewind: 8 }); // other options: another request
  await subscribed(client, ws, ["P.X"]);
  ws.serverSend(binaryQuote({ topic: "P.X", seq: 5 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  assert.deepEqual([r1.topics, r1.since.seqs, r2.topics, r2.since.seqs], [["P*"], { "P.X": 5 }, ["P.X"], { "P.X": 5 }]);
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["P*"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 6 })); // r1's replay
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 9 })); // a jump while r2 is unanswered: held
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5, 6]);
  ws2.serverSend({ type: "subscribed", id: r2.id, topics: ["P.X"], epoch: EPOCH_A, recovered: true });
  for (const seq of [7, 8, 9, 10]) ws2.serverSend(binaryQuote({ topic: "P.X", seq })); // r2's replay, then live
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5, 6, 7, 8, 9, 10]);
  assert.deepEqual(ev.gap, []);
  assert.deepEqual(ev.duplicate.map((q) => Number(q.seq)), [9], "the replay's copy of the held quote");
});

test("overlap with max_hz deciding: the held jump goes out on the second ack (only the newest comes), a conflated gap", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "duplicate"]);
  await subscribed(client, ws, ["P*"]);
  await subscribed(client, ws, ["P.X"], { maxHz: 4 });
  ws.serverSend(binaryQuote({ topic: "P.X", seq: 5 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["P*"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 9 })); // held: r2 unanswered
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5]);
  ws2.serverSend({ type: "subscribed", id: r2.id, topics: ["P.X"], epoch: EPOCH_A, recovered: true });
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5, 9]);
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 9 })); // r2: the newest only
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 12 }));
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5, 9, 12]);
  assert.deepEqual(ev.gap.map((g) => [g.missed, g.reason]), [[3, "conflated"], [2, "conflated"]]);
});

test("a snapshot of another request overtakes a recovered replay: held until the replay reaches it, or until the wait ends", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap", "duplicate"]);
  await subscribed(client, ws, ["P*"], { rewind: 8 });
  await subscribed(client, ws, ["P.X"]);
  ws.serverSend(binaryQuote({ topic: "P.X", seq: 5 }));
  ws.serverSend(binaryQuote({ topic: "P.Y", seq: 5 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["P*"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend({ type: "subscribed", id: r2.id, topics: ["P.X"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 8 })); // before the replay
  ws2.serverSend(binaryQuote({ topic: "P.Y", seq: 9 })); // its replay never comes (a broker bug)
  for (const seq of [6, 7, 8]) ws2.serverSend(binaryQuote({ topic: "P.X", seq }));
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5, 6, 7, 8]);
  assert.deepEqual(seqsOf(ev.quote, "P.Y"), [5]);
  timers.tick(4_999);
  assert.deepEqual(seqsOf(ev.quote, "P.Y"), [5]);
  timers.tick(1);
  assert.deepEqual(seqsOf(ev.quote, "P.Y"), [5, 9], "the wait is over: a gap");
  assert.deepEqual(ev.gap.map((g) => [g.topic, g.missed]), [["P.Y", 3]]);
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 10 }));
  assert.equal(ev.gap.length, 2, "no more holds: a jump is a gap at once");
});

test("a pattern over 1,500 known topics: two requests; quotes of the second's topics that come first wait for its replay", async (t) => {
  const { client, WS, ws, timers } = await openClient(t, { format: "json" });
  const ev = record(client, ["quote", "gap", "duplicate", "recovered", "unrecovered"]);
  await subscribed(client, ws, ["S.*"]);
  const topics = range(1, 1500).map((i) => `S.${String(i).padStart(4, "0")}`);
  for (const topic of topics) ws.serverSend(jsonQuote({ topic, seq: 10 }));
  ev.quote.length = 0;
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  assert.deepEqual([r1.topics, r1.snapshot, Object.keys(r1.since.seqs).length], [["S.*"], false, 1024]);
  assert.deepEqual([r2.topics, r2.snapshot, Object.keys(r2.since.seqs).length], [["S.*"], true, 476]);
  const late = topics[1499]; // named in r2 only
  const lost = topics[1498]; // named in r2 only, not recovered
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["S.*"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend(jsonQuote({ topic: topics[0], seq: 11 })); // r1's replay
  // Live under r1's entry before r2 is answered: seq 13 (11 and 12 were
  // published while away): held, not a gap.
  ws2.serverSend(jsonQuote({ topic: late, seq: 13 }));
  ws2.serverSend(jsonQuote({ topic: lost, seq: 13 }));
  assert.deepEqual(seqsOf(ev.quote, late), []);
  ws2.serverSend({ type: "subscribed", id: r2.id, topics: ["S.*"], epoch: EPOCH_A, recovered: false, unrecovered: [lost] });
  for (const seq of [11, 12, 13, 14]) ws2.serverSend(jsonQuote({ topic: late, seq })); // r2's replay, then live
  assert.deepEqual(seqsOf(ev.quote, late), [11, 12, 13, 14]);
  assert.deepEqual(seqsOf(ev.quote, lost), [13], "not recovered: the held quote goes out with its gap");
  assert.deepEqual(ev.gap.map((g) => [g.topic, g.missed, g.reason]), [[lost, 2, "unrecovered"]]);
  assert.deepEqual(seqsOf(ev.quote, topics[0]), [11]);
  assert.equal(ev.recovered.reduce((n, e) => n + e.topics.length, 0), 1499);
  assert.deepEqual(ev.unrecovered.map((e) => e.topics), [[lost]]);
});

test("a connection lost while positions are asked: the next one asks again from the last quote passed on", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote"]);
  await subscribed(client, ws, ["P*"]);
  await subscribed(client, ws, ["P.X"], { maxHz: 500 });
  ws.serverSend(binaryQuote({ topic: "P.X", seq: 5 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r1] = await sentCount(ws2, 2);
  ws2.serverSend({ type: "subscribed", id: r1.id, topics: ["P*"], epoch: EPOCH_A, recovered: false, unrecovered: ["P.X"] });
  ws2.serverSend(binaryQuote({ topic: "P.X", seq: 9 })); // held: r2 still has P.X's position
  const ws3 = reconnect(timers, WS, ws2);
  const [s1, s2] = await sentCount(ws3, 2);
  assert.deepEqual([s1.since.seqs, s2.since.seqs], [{ "P.X": 5 }, { "P.X": 5 }]);
  assert.deepEqual(seqsOf(ev.quote, "P.X"), [5]);
});

test("rewind: sent on subscribe, remembered per entry, sent again on the resubscription (never with snapshot:false)", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "gap"]);
  const [, req] = await subscribed(client, ws, ["CHART*"], { rewind: 64 });
  assert.deepEqual(req, { op: "subscribe", topics: ["CHART*"], rewind: 64, id: req.id });
  await subscribed(client, ws, ["PLAIN"]);
  assert.deepEqual([...client.subscriptions], [["CHART*", { maxHz: undefined, rewind: 64 }], ["PLAIN", { maxHz: undefined }]]);
  // The rewound history: oldest first per topic, topics interleaved.
  for (const [topic, seq] of [["CHART.A", 40], ["CHART.B", 7], ["CHART.A", 41], ["CHART.B", 8], ["CHART.A", 42]]) {
    ws.serverSend(binaryQuote({ topic, seq }));
  }
  assert.deepEqual(seqsOf(ev.quote, "CHART.A"), [40, 41, 42]);
  assert.deepEqual(ev.gap, []);
  const ws2 = reconnect(timers, WS, ws);
  const [r1, r2] = await sentCount(ws2, 2);
  assert.deepEqual(r1, {
    op: "subscribe",
    topics: ["CHART*"],
    snapshot: true,
    rewind: 64,
    since: { epoch: EPOCH_A, seqs: { "CHART.A": 42, "CHART.B": 8 } },
    id: r1.id,
  });
  assert.deepEqual(r2, { op: "subscribe", topics: ["PLAIN"], snapshot: true, id: r2.id });
  await client.close();

  const noSnap = new TickwireClient("ws://broker.test/ws", { WebSocket: WS, backoff: FAST, resubscribeSnapshot: false });
  clients.push(noSnap);
  await waitFor(() => WS.last !== ws2, "a socket");
  const ws4 = WS.last;
  ws4.serverOpen();
  await subscribed(noSnap, ws4, ["CHART*"], { rewind: 64 });
  const ws5 = reconnect(timers, WS, ws4);
  const [r5] = await sentCount(ws5, 1);
  assert.deepEqual(r5, { op: "subscribe", topics: ["CHART*"], snapshot: false, id: r5.id });
});

test("a refused group with positions: retried one entry per request, each with its own positions", async (t) => {
  const { client, WS, ws, timers } = await openClient(t);
  const ev = record(client, ["quote", "error", "recovered", "gap"]);
  await subscribed(client, ws, ["A", "B*"]);
  ws.serverSend(binaryQuote({ topic: "A", seq: 3 }));
  ws.serverSend(binaryQuote({ topic: "B.1", seq: 4 }));
  const ws2 = reconnect(timers, WS, ws);
  const [r] = await sentCount(ws2, 1);
  assert.deepEqual(r.since.seqs, { A: 3, "B.1": 4 });
  ws2.serverSend({ type: "error", id: r.id, code: "not_authorized", message: 'not authorized for "B*"' });
  const [, a, b] = await sentCount(ws2, 3);
  assert.deepEqual([a.topics, a.since.seqs, b.topics, b.since.seqs], [["A"], { A: 3 }, ["B*"], { "B.1": 4 }]);
  ws2.serverSend({ type: "subscribed", id: a.id, topics: ["A"], epoch: EPOCH_A, recovered: true });
  ws2.serverSend({ type: "error", id: b.id, code: "not_authorized", message: 'not authorized for "B*"' });
  ws2.serverSend(binaryQuote({ topic: "A", seq: 4 }));
  assert.deepEqual(ev.recovered.map((e) => e.topics), [["A"]]);
  assert.deepEqual(ev.error.map((e) => [e.code, e.topics]), [["not_authorized", ["B*"]]]);
  assert.deepEqual([...client.subscriptions.keys()], ["A"]);
  assert.equal(client.lastSeq("B.1"), undefined, "no longer tracked");
  assert.deepEqual(seqsOf(ev.quote, "A"), [3, 4]);
  assert.deepEqual(ev.gap, []);
});
