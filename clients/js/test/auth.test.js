// The `auth` op against a real broker with [auth] (an HS256 secret): the
// token callback on connect, on reconnect and before `exp`; grants decide
// what a subscribe may name; a refused token rejects with not_authorized;
// entries a refreshed token no longer covers are removed and reported.
// JWTs are made here with node:crypto (HMAC-SHA256).

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import WebSocket from "ws";

import { TickwireClient } from "../src/tickwire-client.js";
import { configFile, startBroker, stopBroker } from "../testing/broker.js";
import { Publisher } from "../testing/publisher.js";
import { nextEvent, record, waitFor } from "../testing/util.js";

const SECRET = "js client test secret, 32 bytes or more";

const b64url = (x) => Buffer.from(x).toString("base64url");

function jwt(claims, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

const inSeconds = (s) => Math.floor(Date.now() / 1000) + s;

let broker;
let config;
let pub;
const clients = [];

before(async () => {
  config = configFile(`[auth]\njwt_hs256_secret = "${SECRET}"\n`);
  broker = await startBroker({ config: config.file });
  pub = await Publisher.connect(broker.ingestAddr);
});

after(async () => {
  pub?.close();
  await stopBroker(broker);
  config?.remove();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function client(options) {
  const c = new TickwireClient(broker.url, { WebSocket, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  clients.push(c);
  return c;
}

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

test("the token callback is used on connect and on every reconnect; grants decide what may be subscribed", async () => {
  let calls = 0;
  const { WebSocket: Tracking, sockets } = trackingWebSocket();
  const c = client({
    WebSocket: Tracking,
    token: async () => {
      calls++;
      return jwt({ exp: inSeconds(600), sub: `alice-${calls}`, topics: ["AUTH.*"] });
    },
  });
  const authed = record(c, ["authed"]).authed;
  // Subscribed right away: it waits for the connection, so it is checked
  // against the token's grants (auth goes first).
  await c.subscribe(["AUTH.A"]);
  assert.equal(calls, 1);
  assert.equal(authed.length, 1);
  assert.equal(authed[0].sub, "alice-1");
  assert.equal(typeof authed[0].exp, "number");
  await assert.rejects(c.subscribe(["OTHER"]), (e) => {
    assert.equal(e.code, "not_authorized");
    assert.match(e.message, /OTHER/);
    return true;
  });

  // A refused token: rejected with its code; the grants of before stay.
  await assert.rejects(c.auth(jwt({ exp: inSeconds(600), topics: ["*"] }, "another secret, also 32 bytes long")), {
    code: "not_authorized",
    op: "auth",
  });
  await assert.rejects(c.auth(jwt({ exp: inSeconds(-10), topics: ["*"] })), { code: "not_authorized", message: "token expired" });
  const q = nextEvent(c, "quote", (x) => x.topic === "AUTH.A");
  await pub.publish({ topic: "AUTH.A", bid: 1 });
  assert.equal((await q).seq, 1n);

  // Back to a callback (the last auth() argument was a string): sent now,
  // and asked again on every reconnect.
  const reply = await c.auth(async () => {
    calls++;
    return jwt({ exp: inSeconds(600), sub: `alice-${calls}`, topics: ["AUTH.*"] });
  });
  assert.equal(reply.sub, "alice-2");
  const n = calls;
  const resubscribed = nextEvent(c, "message", (m) => m.type === "subscribed" && m.topics.includes("AUTH.A"));
  sockets[sockets.length - 1].terminate();
  await resubscribed;
  assert.equal(calls, n + 1, "called again for the new connection");
  assert.equal(authed.at(-1).sub, `alice-${calls}`);
  const q2 = nextEvent(c, "quote", (x) => x.topic === "AUTH.A");
  await pub.publish({ topic: "AUTH.A", bid: 2 });
  assert.equal((await q2).seq, 2n, "resubscribed under the new connection's grants");
});

test("the token is refreshed before exp without reconnecting; entries it no longer covers are removed", async () => {
  let calls = 0;
  // Token 1 (5 s) grants REF.*; token 2 only REF.A. The refresh is due at
  // half the remaining life (the margin, 30 s, is longer than the token).
  const c = client({
    token: () => {
      calls++;
      return calls === 1
        ? jwt({ exp: inSeconds(5), sub: "r1", topics: ["REF.*"] })
        : jwt({ exp: inSeconds(600), sub: "r2", topics: ["REF.A"] });
    },
  });
  const ev = record(c, ["authed", "unsubscribed", "closed", "error"]);
  await c.subscribe(["REF.A", "REF.B"]);
  assert.equal(ev.authed.length, 1);
  const removed = await nextEvent(c, "unsubscribed", () => true, 10_000);
  assert.deepEqual(removed.topics, ["REF.B"]);
  assert.equal(removed.reason, "not_authorized");
  assert.equal(calls, 2);
  assert.deepEqual(ev.authed.map((a) => a.sub), ["r1", "r2"]);
  assert.equal(c.has("REF.A"), true);
  assert.equal(c.has("REF.B"), false);
  assert.deepEqual(ev.closed, [], "no reconnect");
  assert.deepEqual(ev.error, []);
});

test("over SSE the token goes with the stream (an Authorization header): its grants decide what may be subscribed", async () => {
  const c = client({ transport: "sse", token: () => jwt({ exp: inSeconds(600), sub: "sse-1", topics: ["SSEAUTH.*"] }) });
  const ev = record(c, ["authed", "error"]);
  await c.subscribe("SSEAUTH.A");
  assert.equal(c.transport, "sse");
  assert.deepEqual(ev.authed.map((a) => a.sub), ["sse-1"]);
  assert.equal(typeof ev.authed[0].exp, "number");
  await assert.rejects(c.subscribe("OTHER"), { code: "not_authorized" });
  await pub.publish({ topic: "SSEAUTH.A", bid: 1 });
  await waitFor(() => c.lastSeq("SSEAUTH.A") !== undefined, "a quote on the entitled entry");
  // Without a token: refused with the broker's code.
  const anon = client({ transport: "sse" });
  await assert.rejects(anon.subscribe("SSEAUTH.A"), { code: "not_authorized" });
  assert.deepEqual(ev.error, []);
});
