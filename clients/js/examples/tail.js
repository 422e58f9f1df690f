#!/usr/bin/env node
// Prints live quotes of topics or patterns, one line each, with gaps,
// reconnects and resumes: a small tour of the client.
//
//   node examples/tail.js [--url ws://127.0.0.1:8080/ws] [--json] [--count N] [--token JWT] [--sse] AAPL "BTC*"
//
// --sse: Server-Sent Events only (GET /sse), e.g. to check a proxy path; by
// default the client falls back to it by itself where the WebSocket does
// not get through.
//
// Node >= 22 has a global WebSocket; on older Node the `ws` package is used
// (npm install ws; this package has it as a dev dependency).

import { TickwireClient } from "../src/tickwire-client.js";

const args = process.argv.slice(2);
let url = "ws://127.0.0.1:8080/ws";
let format = "binary";
let count = Infinity;
let token = null;
let transport = "auto";
const topics = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--url") url = args[++i];
  else if (a === "--json") format = "json";
  else if (a === "--count") count = Number(args[++i]);
  else if (a === "--token") token = args[++i];
  else if (a === "--sse") transport = "sse";
  else topics.push(a);
}
if (topics.length === 0) {
  console.error("usage: node examples/tail.js [--url URL] [--json] [--count N] [--token JWT] [--sse] TOPIC...");
  process.exit(2);
}

const WebSocket = globalThis.WebSocket ?? (await import("ws")).default;
const client = new TickwireClient(url, { WebSocket, format, token, transport });

client.on("state", ({ state }) => console.error(`[${state}]`));
client.on("transport", ({ transport }) => console.error(`[over ${transport === "sse" ? "Server-Sent Events" : "the WebSocket"}]`));
client.on("epoch", ({ epoch, previous }) => console.error(`[epoch ${epoch}${previous ? `, was ${previous}: seq restarted` : ""}]`));
client.on("gap", (g) => console.error(`[gap] ${g.topic}: ${g.missed} quote(s) skipped (${g.expected}..${g.received - 1n}, ${g.reason})`));
// After a reconnect the client resumes (protocol v1.2): the quotes missed meanwhile follow in order.
client.on("recovered", ({ topics }) => console.error(`[resumed ${topics.join(" ")}]`));
client.on("unrecovered", ({ topics }) => console.error(`[not resumed, snapshot instead: ${topics.join(" ")}]`));
client.on("error", (e) => console.error(`[error] ${e.code}: ${e.message}`));

let seen = 0;
client.on("quote", (q) => {
  const px = (x) => (Number.isFinite(x) ? x.toFixed(4) : "—");
  console.log(`${q.topic} seq=${q.seq} bid=${px(q.bid)} ask=${px(q.ask)} last=${px(q.last)} ts=${new Date(q.tsMs).toISOString()}`);
  if (++seen >= count) client.close();
});

try {
  const ack = await client.subscribe(topics);
  console.error(`[subscribed ${ack.topics.join(" ")}]`);
} catch (e) {
  console.error(`subscribe refused: ${e.code}: ${e.message}`);
  await client.close();
  process.exitCode = 1;
}
