// Several tickwire JavaScript clients (clients/js) in one node process, each
// recording what its application receives.
//
//   node js_subscribers.mjs CONFIG_JSON
//
// CONFIG_JSON: {"clients": [{"name", "urls": [...], "format", "entries": [...]}],
// and optionally "backoff_initial", "backoff_max" (seconds, as for the Python
// process; else the client's defaults)}.
// Each client is given its URL list (the first is connected first, each
// retry goes to the next), subscribes its entries and records, per topic,
// every `quote` event's seq (as runs of consecutive seqs, in arrival
// order), and the gap / recovered / unrecovered / open events.
//
// Commands on stdin, one per line: `status` prints one JSON line
// {"type": "status", "clients": [record, ...]}; EOF (or `exit`) closes the
// clients and exits.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

import { TickwireClient } from "../clients/js/src/tickwire-client.js";

// Node 20 has no global WebSocket: the `ws` package clients/js installs for its tests.
const require = createRequire(new URL("../clients/js/package.json", import.meta.url));
const WebSocket = globalThis.WebSocket ?? require("ws");

const config = JSON.parse(process.argv[2]);
// The client's default backoff unless the config gives one.
const backoff = {};
if (config.backoff_initial !== undefined) backoff.initialMs = 1000 * config.backoff_initial;
if (config.backoff_max !== undefined) backoff.maxMs = 1000 * config.backoff_max;

const now = () => Date.now() / 1000;

function makeRecord(spec) {
  const rec = {
    name: spec.name,
    lang: "js",
    format: spec.format,
    entries: spec.entries,
    subscribed: false,
    quotes: 0,
    topics: {}, // topic -> runs [first, last]
    connections: [],
    resumes: [],
    gaps: [],
    errors: [],
    client: null,
  };
  // WebSocket only: the test checks which broker each connection went to
  // by its ws:// URL (a slow open must not fall back to /sse here).
  const client = new TickwireClient(spec.urls, { WebSocket, format: spec.format, backoff, transport: "websocket" });
  rec.client = client;
  client.on("open", ({ url }) => rec.connections.push({ t: now(), url }));
  client.on("quote", (q) => {
    const seq = Number(q.seq); // seqs stay far below 2^53
    rec.quotes++;
    const runs = (rec.topics[q.topic] ??= []);
    const last = runs[runs.length - 1];
    if (last && seq === last[1] + 1) last[1] = seq;
    else runs.push([seq, seq]);
  });
  client.on("gap", (g) =>
    rec.gaps.push({ t: now(), topic: g.topic, expected: Number(g.expected), received: Number(g.received), reason: g.reason }),
  );
  client.on("recovered", (e) => rec.resumes.push({ t: now(), url: client.url, id: e.id, recovered: e.topics, unrecovered: [] }));
  client.on("unrecovered", (e) => rec.resumes.push({ t: now(), url: client.url, id: e.id, recovered: [], unrecovered: e.topics }));
  client.on("error", (e) => rec.errors.push(`${now().toFixed(3)} ${e.code}: ${e.message}`));
  client.subscribe(spec.entries).then(
    () => (rec.subscribed = true),
    (e) => rec.errors.push(`${now().toFixed(3)} subscribe: ${e.code}: ${e.message}`),
  );
  return rec;
}

function toJson(rec) {
  const c = rec.client;
  return {
    name: rec.name,
    lang: rec.lang,
    format: rec.format,
    entries: rec.entries,
    subscribed: rec.subscribed,
    state: c.state,
    url: c.url,
    quotes: rec.quotes,
    topics: rec.topics,
    connections: rec.connections,
    resumes: rec.resumes,
    gaps: rec.gaps,
    client_dropped_repeats: c.stats.duplicates,
    errors: rec.errors,
  };
}

const records = config.clients.map(makeRecord);
process.stdout.write(JSON.stringify({ type: "started", clients: records.length }) + "\n");

let closing = false;
async function exit() {
  if (closing) return;
  closing = true;
  await Promise.all(records.map((r) => r.client.close().catch(() => {})));
  process.exit(0);
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "status") {
    process.stdout.write(JSON.stringify({ type: "status", t: now(), clients: records.map(toJson) }) + "\n");
  } else if (cmd === "exit") {
    exit();
  }
});
rl.on("close", exit);
