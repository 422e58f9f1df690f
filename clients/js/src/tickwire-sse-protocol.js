// tickwire-sse-protocol.js — protocol v1 over `GET /sse` (v1.2), for the SSE
// transport (./tickwire-sse.js): the URL of a stream (its query: the topics,
// max_hz, snapshot, rewind, the token, `delta=1`, and `since`, the
// positions it resumes from), the replies the broker would have made over a
// WebSocket to the requests a stream carries (answered by its `subscribed`
// event), and a stream's events as the client's messages in its format.

import { QUOTE_FIELDS } from "./tickwire-decoder.js";
import { MAX_SINCE_KEYS } from "./tickwire-subscriptions.js";

/**
 * The longest `/sse` URL made (the broker's request-head limit, 8 KiB by
 * default, also holds the headers): `since` keeps the positions that fit;
 * entries that do not fit are refused (code too_long).
 */
export const SSE_MAX_URL = 6_000;

/**
 * The URL (at `base`) of the stream that carries `entries` (topic → max_hz,
 * null: none; over SSE one for all), opened for `reqs`: a snapshot unless
 * the subscribes among them all ask none, the longest rewind they ask, the
 * token when it goes in the query (`tokenInQuery`: an EventSource sends no
 * header of ours), and `delta=1` with `delta` (field deltas, as JSON `delta`
 * events). `since` is added by withSince.
 */
export function streamUrl(base, reqs, entries, token, tokenInQuery, delta = false) {
  const subs = reqs.filter((m) => m.op === "subscribe");
  const snapshot = subs.length === 0 || subs.some((m) => m.snapshot !== false);
  let rewind = 0;
  if (snapshot) for (const m of subs) if (m.snapshot !== false && m.rewind > rewind) rewind = m.rewind;
  const topics = [...entries.keys()];
  const rate = entries.get(topics[0]);
  let q = `topics=${topics.map(encodeURIComponent).join(",")}`;
  if (!snapshot) q += "&snapshot=false";
  if (rate !== null) q += `&max_hz=${rate}`;
  if (rewind) q += `&rewind=${rewind}`;
  if (delta) q += "&delta=1";
  if (token && tokenInQuery) q += `&token=${encodeURIComponent(token)}`;
  return `${base}?${q}`;
}

/**
 * `url` with `since`: of `pos` ({epoch, seqs: [[topic, seq]]}, or null), the
 * positions that keep it within SSE_MAX_URL, at most MAX_SINCE_KEYS; and
 * `sent`, the topics it names (the others cannot be recovered).
 */
export function withSince(url, pos) {
  const sent = new Set();
  if (pos && pos.seqs.length) {
    const head = `{"epoch":${JSON.stringify(pos.epoch)},"seqs":{`;
    let body = "";
    let room = SSE_MAX_URL - url.length - "&since=".length - encodeURIComponent(`${head}}}`).length;
    for (const [t, v] of pos.seqs) {
      if (sent.size >= MAX_SINCE_KEYS) break;
      const item = `${sent.size ? "," : ""}${JSON.stringify(t)}:${v}`;
      const cost = encodeURIComponent(item).length;
      if (cost > room) continue;
      room -= cost;
      body += item;
      sent.add(t);
    }
    if (sent.size) url += `&since=${encodeURIComponent(`${head}${body}}}`)}`;
  }
  return { url, sent };
}

/**
 * The replies the broker would have made to `reqs` (subscribe, unsubscribe,
 * auth), answered by a stream of `epoch` (null: none yet); `recovered(topic)`
 * says whether a topic of a subscribe's `since` was resumed. Also `named`:
 * the topics their `since` named.
 */
export function answersTo(reqs, epoch, recovered = () => true) {
  const replies = [];
  const named = new Set();
  for (const m of reqs) {
    if (m.op === "subscribe") {
      const reply = { type: "subscribed", id: m.id, topics: m.topics };
      if (epoch !== null) reply.epoch = epoch;
      const keys = m.since?.seqs ? Object.keys(m.since.seqs) : [];
      if (keys.length) {
        for (const k of keys) named.add(k);
        const lost = keys.filter((k) => !recovered(k));
        reply.recovered = lost.length === 0;
        if (lost.length) reply.unrecovered = lost;
      }
      replies.push(reply);
    } else if (m.op === "unsubscribe") {
      replies.push({ type: "unsubscribed", id: m.id, topics: m.topics });
    } else {
      // Over SSE the token goes with the stream: accepted by the broker
      // with it, or (no stream) not checked; exp and sub are its claims.
      const { exp, sub } = claimsOf(m.token);
      const reply = { type: "authed", id: m.id };
      if (sub !== undefined) reply.sub = sub;
      if (exp !== undefined) reply.exp = exp;
      replies.push(reply);
    }
  }
  return { replies, named };
}

/** The claims of a JWT (unverified), or {}. */
function claimsOf(token) {
  try {
    const b64 = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims !== null && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

/** ns since the epoch (BigInt) → ms since the epoch (Number), as the decoder gives it. */
function nsToMs(ns) {
  return Number(ns / 1000000n) + Number(ns % 1000000n) / 1e6;
}

/**
 * A JSON message of an event stream as the client's format has it: in
 * binary mode a quote's (or a delta's) seq and ts become BigInt (ts as JSON
 * rounded it, to ~256 ns) and null prices NaN, as the binary decoder gives
 * them (a delta's unchanged fields stay absent).
 */
export function messageFromEvent(text, format) {
  const m = JSON.parse(text);
  if (m === null || (m.type !== "quote" && m.type !== "delta") || typeof m.ts !== "number") return m;
  if (format !== "binary" || !Number.isInteger(m.seq) || !Number.isInteger(m.ts)) {
    m.tsMs = m.ts / 1e6;
    return m;
  }
  m.seq = BigInt(m.seq);
  m.ts = BigInt(m.ts);
  m.tsMs = nsToMs(m.ts);
  for (const f of QUOTE_FIELDS) if (m[f] === null) m[f] = NaN;
  return m;
}
