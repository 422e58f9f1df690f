// tickwire-socket.js — the connection of the tickwire client: one at a
// time, a WebSocket or, where the WebSocket does not get through (a proxy
// that does not pass the upgrade), a Server-Sent Events stream (`GET /sse`,
// protocol v1.2); its states, the connect timeout, and reconnect with
// exponential backoff and jitter, forever, until close(); with several
// broker URLs (one cluster), each retry goes to the next URL.
//
// What is said on a connection (auth, subscriptions, requests, quotes) is
// the client's (./tickwire-client.js): this module calls its hooks when a
// connection opens, receives a message, is lost, and when the client stops.
//
// Transports (option `transport`, default "auto"): a WebSocket attempt that
// does not open (an error, or no upgrade within `fallbackAfterMs`, 3 s) is
// followed at once by the same broker over SSE. Reconnects then go to SSE
// for `wsRetryMs` (5 min); meanwhile, every `wsRetryMs` on SSE, a WebSocket
// is opened and closed at once to see whether it gets through now: if it
// does, the client moves to it (a reconnect, which resumes). "websocket" /
// "sse": that transport only.
//
// SSE (SseConnection) looks like a WebSocket to the client: it takes the
// same requests, and turns them into ONE event stream that carries every
// entry (its query: the topics, max_hz, rewind, the token, and `since`, the
// positions of the topics already received, so a reopened stream resumes).
// Each subscribe / unsubscribe / auth reopens that stream (requests made
// together reopen it once); its `subscribed` event answers them, as the
// broker's acks would. A stream has one max_hz: over SSE every entry has the
// same one, and a subscribe that would mix them is refused (mixed_max_hz).
// The stream is read by the global EventSource when there is one
// (browsers), else by fetch (Node: the token then goes in an Authorization
// header rather than the query).

import { TickwireError } from "./tickwire-errors.js";
import { MAX_SINCE_KEYS } from "./tickwire-subscriptions.js";

export const OPEN = 1;
const CLOSED = 3;

const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 });
/** "auto": a WebSocket attempt not open by then goes to SSE. */
const FALLBACK_AFTER_MS = 3_000;
/** "auto": on SSE, how long before the WebSocket is tried again. */
const WS_RETRY_MS = 300_000;
/**
 * The longest `/sse` URL made (the broker's request-head limit, 8 KiB by
 * default, also holds the headers): `since` keeps the positions that fit;
 * entries that do not fit are refused (code too_long).
 */
export const SSE_MAX_URL = 6_000;
/** A stream read by fetch with no byte for this long is dead (the broker sends a comment every 15 s when idle). */
const SSE_IDLE_MS = 45_000;

/**
 * The delay before retry `attempt` (from 1): random in
 * [c × (1 − jitter), c], c = min(maxMs, initialMs × multiplier^(attempt − 1)).
 */
export function backoffDelay({ initialMs, maxMs, multiplier, jitter }, attempt) {
  const ceiling = Math.min(maxMs, initialMs * multiplier ** (attempt - 1));
  return ceiling * (1 - jitter) + Math.random() * ceiling * jitter;
}

/**
 * The WebSocket URLs of `url` (one URL, or an array of them: brokers of one
 * cluster, tried in turn), each with the `format` parameter, and the format.
 * The format comes from the option, else from the first URL that names one;
 * URLs that name another are refused.
 */
export function wsUrls(url, format) {
  const list = Array.isArray(url) ? url : [url];
  if (list.length === 0) throw new TypeError("tickwire: expected at least one broker URL");
  let f = format;
  if (f === undefined) {
    for (const one of list) {
      const named = parseUrl(one).searchParams.get("format");
      if (named !== null) {
        f = named;
        break;
      }
    }
  }
  const hrefs = list.map((one) => wsUrl(one, f).href);
  return { hrefs, format: wsUrl(list[0], f).format };
}

function parseUrl(url) {
  const base = globalThis.location?.href;
  return base === undefined ? new URL(String(url)) : new URL(String(url), base);
}

/** The WebSocket URL (ws:// or wss://) with its `format` parameter, and the format. */
export function wsUrl(url, format) {
  const u = parseUrl(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`tickwire: expected a ws:// or wss:// URL, got ${u.protocol}`);
  }
  const inUrl = u.searchParams.get("format");
  if (format !== undefined && inUrl !== null && inUrl !== format) {
    throw new TypeError(`tickwire: the URL says format=${inUrl} but the format option is ${format}`);
  }
  const f = format ?? inUrl ?? "binary";
  if (f !== "json" && f !== "binary") throw new TypeError(`tickwire: format must be "json" or "binary", got ${f}`);
  u.searchParams.set("format", f);
  return { href: u.href, format: f };
}

/**
 * The `/sse` URL of each WebSocket URL: the `sse` next to its path's last
 * segment (`ws://h:8080/ws` → `http://h:8080/sse`, `wss://h/feed/ws` →
 * `https://h/feed/sse`), or `sseUrl` (one URL, or one per WebSocket URL).
 */
export function sseUrls(wsHrefs, sseUrl) {
  const given = sseUrl === undefined || sseUrl === null ? null : Array.isArray(sseUrl) ? sseUrl : [sseUrl];
  if (given && given.length !== 1 && given.length !== wsHrefs.length) {
    throw new TypeError("tickwire: sseUrl must be one URL or one per broker URL");
  }
  return wsHrefs.map((ws, i) => {
    const u = given ? parseUrl(given[given.length === 1 ? 0 : i]) : new URL("sse", ws);
    if (u.protocol === "ws:") u.protocol = "http:";
    else if (u.protocol === "wss:") u.protocol = "https:";
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(`tickwire: expected an http(s):// SSE URL, got ${u.protocol}`);
    }
    u.search = "";
    u.hash = "";
    return u.href;
  });
}

// ------------------------------------------------------ event streams ----

/**
 * An event-stream parser (the text/event-stream format): feed it text as it
 * comes; it calls dispatch(data, lastEventId) for each event with data.
 * Comments and other fields are skipped.
 */
export function eventStreamParser(dispatch) {
  let buf = "";
  let data = null; // the data lines of the event being read
  let id = "";
  const eol = /\r\n|\r|\n/g;
  return (text) => {
    buf += text;
    let pos = 0;
    eol.lastIndex = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      if (m[0] === "\r" && m.index === buf.length - 1) break; // perhaps a \r\n cut in two
      const line = buf.slice(pos, m.index);
      pos = eol.lastIndex;
      if (line === "") {
        if (data !== null) dispatch(data.join("\n"), id);
        data = null;
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") (data ??= []).push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
    }
    buf = buf.slice(pos);
  };
}

const SSE_HEADERS = { Accept: "text/event-stream", "Cache-Control": "no-cache" };

/** Why an `/sse` request is refused: {status, body} (the broker's JSON error), or null when it is not. */
async function refusalOf(fetchFn, url, headers) {
  const ac = new AbortController();
  try {
    const res = await fetchFn(url, { headers: { ...SSE_HEADERS, ...headers }, signal: ac.signal, cache: "no-store" });
    if (res.ok) return null;
    return { status: res.status, body: await res.json().catch(() => null) };
  } catch {
    return null;
  } finally {
    ac.abort();
  }
}

/**
 * Opens one event stream and reports on it through `on`: open() once the
 * 200 came, event(data, id) per event, alive() per chunk read (fetch only),
 * refused(status, body) for an error response, end(why) when it ends or
 * fails. Returns a function that stops it (nothing is reported after).
 */
function openEventStream(url, { EventSource: ES, fetch: fetchFn, headers }, on) {
  let stopped = false;
  if (ES) {
    // An EventSource reconnects by itself; the client does it instead (its
    // own backoff, and `since` from what it passed on), so it is closed on
    // its first error. Why a stream that never opened failed, it does not
    // say: one fetch asks.
    const es = new ES(url);
    let opened = false;
    const stop = () => {
      stopped = true;
      es.onopen = es.onmessage = es.onerror = null;
      es.close();
    };
    es.onopen = () => {
      opened = true;
      if (!stopped) on.open();
    };
    es.onmessage = (ev) => {
      if (!stopped) on.event(ev.data, ev.lastEventId);
    };
    es.onerror = () => {
      if (stopped) return;
      stop();
      if (opened || typeof fetchFn !== "function") on.end("the event stream ended");
      else refusalOf(fetchFn, url, {}).then((r) => (r ? on.refused(r.status, r.body) : on.end("the event stream did not open")));
    };
    return stop;
  }
  const ac = new AbortController();
  (async () => {
    let res;
    try {
      res = await fetchFn(url, { headers: { ...SSE_HEADERS, ...headers }, signal: ac.signal, cache: "no-store" });
    } catch (e) {
      if (!stopped) on.end(`cannot open the event stream: ${e?.cause?.message ?? e?.message ?? e}`);
      return;
    }
    if (stopped) return;
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      if (!stopped) on.refused(res.status, body);
      return;
    }
    on.open();
    const parse = eventStreamParser((data, id) => {
      if (!stopped) on.event(data, id);
    });
    const decoder = new TextDecoder();
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (stopped) return;
        if (done) break;
        on.alive();
        parse(decoder.decode(value, { stream: true }));
        if (stopped) return;
      }
      on.end("the event stream ended");
    } catch (e) {
      if (!stopped) on.end(`the event stream failed: ${e?.message ?? e}`);
    }
  })();
  return () => {
    stopped = true;
    ac.abort();
  };
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

const QUOTE_FIELDS = ["bid", "ask", "bid_size", "ask_size", "last", "volume"];

/**
 * A JSON message of an event stream as the client's format has it: in
 * binary mode a quote's seq and ts become BigInt (ts as JSON rounded it,
 * to ~256 ns) and null prices NaN, as the binary decoder gives them.
 */
function fromEvent(text, format) {
  const m = JSON.parse(text);
  if (m === null || m.type !== "quote" || typeof m.ts !== "number") return m;
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

// ----------------------------------------------------- SSE connection ----

/**
 * The SSE transport, in the shape of a WebSocket (readyState, send, close,
 * onopen / onmessage / onclose / onerror) so the client speaks the same
 * protocol over it: it takes subscribe / unsubscribe / auth requests and
 * answers them from the `subscribed` event of the stream that carries them.
 *
 * - readyState is OPEN from the start (requests are taken at once). The
 *   client calls start() once its auth is sent (requests may then go out:
 *   its beforeResubscribe hook may wait for answers) and complete() once
 *   its open sequence is; until then nothing goes out without a subscribe
 *   in it, so the first stream carries the auth and as much as it can.
 *   `onopen` fires when the broker first answers (or, when there is
 *   nothing to ask, on complete()).
 * - Requests taken together (within one microtask) reopen the stream once:
 *   the current stream is closed, and the new one asks for every entry, with
 *   `since` (ctx.positions: the epoch and last seq of the topics received),
 *   so what came meanwhile is replayed. Its ack answers each request: a
 *   subscribe with `since` gets `recovered` / `unrecovered` for its own
 *   topics; topics the stream resumed for entries it already carried and
 *   could not recover go to ctx.unrecovered.
 * - A refused stream (400 / 403 before any event) refuses its request, or,
 *   when it carried several, they are tried again one by one; what was
 *   there before is reopened. Any other failure, or the end of the stream,
 *   closes the connection (code 1006): the client reconnects and resumes.
 * - Messages are delivered as text (a stream's events; decode() reads
 *   them) or as objects (the answers made here).
 */
export class SseConnection {
  sse = true;
  readyState = OPEN;
  /** The broker answered a stream (or there was nothing to ask). */
  established = false;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;

  #url;
  #reader; // {EventSource, fetch}
  #format;
  #ctx; // {positions(entries) → {epoch, seqs: [[topic, seq]]} | null, unrecovered(topics)}
  #headTimeoutMs;
  #started = false; // requests may go out
  #complete = false; // the client's open sequence is sent
  #whenEstablished;
  #resolveEstablished;
  #queue = []; // requests not yet tried
  #single = 0; // after a refused batch: how many at the queue's head go one at a time
  #flushQueued = false;
  #entries = new Map(); // entry -> max_hz (null: none): what the current stream carries
  #token = null; // ... and its token
  #epoch = null; // ... and the epoch of its ack
  #stop = null; // stops the current stream (open or opening)
  #gen = 0;
  #trying = null; // the stream being opened: {reqs, entries, token, sent (topics in its since), known (topics with a position)}
  #timer = null; // the stream being opened: its answer's deadline
  #idleTimer = null;
  #lastByte = 0;

  constructor(url, { EventSource = null, fetch = null, format = "json", headTimeoutMs = 10_000, ctx }) {
    this.url = url;
    this.#url = url;
    this.#reader = { EventSource, fetch };
    this.#format = format;
    this.#ctx = ctx;
    this.#headTimeoutMs = headTimeoutMs;
    this.#whenEstablished = new Promise((resolve) => (this.#resolveEstablished = resolve));
  }

  /** A delivered message as the client reads it (a stream's event is JSON text). */
  decode(data) {
    return typeof data === "string" ? fromEvent(data, this.#format) : data;
  }

  /** Takes a request (JSON text, as a WebSocket would send it). */
  send(text) {
    if (this.readyState !== OPEN) throw new Error("tickwire: the SSE connection is closed");
    const msg = JSON.parse(text);
    if (msg.op === "subscribe" || msg.op === "unsubscribe" || msg.op === "auth") {
      this.#queue.push(msg);
      this.#schedule();
    } else {
      const message = `tickwire: ${JSON.stringify(msg.op)} is not available over SSE`;
      queueMicrotask(() => this.#deliver({ type: "error", id: msg.id, code: "not_supported", message }));
    }
  }

  /** The client's auth is sent: requests may go out (in a microtask: those made right after go with them). */
  start() {
    this.#started = true;
    this.#schedule();
  }

  /** The client's open sequence is sent: what waits goes out. Resolves once established. */
  complete() {
    this.#started = true;
    this.#complete = true;
    this.#flush();
    return this.#whenEstablished;
  }

  close(code = 1000, reason = "") {
    if (this.readyState === CLOSED) return;
    this.#shut();
    queueMicrotask(() => this.onclose?.({ type: "close", code, reason, wasClean: true }));
  }

  #shut() {
    this.readyState = CLOSED;
    this.#trying = null;
    this.#closeStream();
  }

  #closeStream() {
    this.#gen++;
    clearTimeout(this.#timer);
    this.#timer = null;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const stop = this.#stop;
    this.#stop = null;
    stop?.();
  }

  /** The connection is lost: the client reconnects (and resumes). */
  #fail(why) {
    if (this.readyState === CLOSED) return;
    this.#shut();
    this.onerror?.({ type: "error", message: why });
    this.onclose?.({ type: "close", code: 1006, reason: why, wasClean: false });
  }

  #deliver(m) {
    if (this.readyState === OPEN) this.onmessage?.({ data: m });
  }

  #establish() {
    if (this.established) return;
    this.established = true;
    this.onopen?.({ type: "open" });
    this.#resolveEstablished();
  }

  #schedule() {
    if (!this.#started || this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** The entries and token with `reqs` applied, and the entries they name. */
  #candidate(reqs) {
    const entries = new Map(this.#entries);
    let token = this.#token;
    const touched = new Set();
    for (const m of reqs) {
      if (m.op === "auth") token = m.token;
      else
        for (const t of m.topics ?? []) {
          touched.add(t);
          if (m.op === "unsubscribe") entries.delete(t);
          else entries.set(t, m.max_hz ?? null);
        }
    }
    return { entries, token, touched };
  }

  #refuse(m, code, message) {
    this.#deliver({ type: "error", id: m.id, code, message });
  }

  /** Tries the requests waiting (all, or the next alone after a refusal), or reopens what is there. */
  #flush() {
    if (this.readyState !== OPEN || !this.#started || this.#trying) return;
    // Before the open sequence is complete, an auth alone waits for the entries to stream with.
    if (!this.#complete && this.#entries.size === 0 && !this.#queue.some((m) => m.op === "subscribe")) return;
    const reqs = this.#queue.splice(0, this.#single > 0 ? 1 : this.#queue.length);
    if (this.#single > 0) this.#single--;
    let c = this.#candidate(reqs);
    const rates = new Set(c.entries.values());
    if (rates.size > 1) {
      // One stream, one max_hz: the entries not named keep theirs; if every
      // entry is named, the last subscribe's wins.
      const kept = [...this.#entries.keys()].filter((e) => !c.touched.has(e));
      const subs = reqs.filter((m) => m.op === "subscribe");
      const rate = kept.length ? this.#entries.get(kept[0]) : subs[subs.length - 1].max_hz ?? null;
      for (const m of subs) {
        if ((m.max_hz ?? null) === rate) continue;
        reqs.splice(reqs.indexOf(m), 1);
        this.#refuse(
          m,
          "mixed_max_hz",
          `tickwire: over SSE every entry has the stream's max_hz (${rate ?? "none"}); this subscribe asks ${m.max_hz ?? "none"}`,
        );
      }
      c = this.#candidate(reqs);
    }
    const same = c.token === this.#token && c.entries.size === this.#entries.size &&
      [...c.entries].every(([e, hz]) => this.#entries.get(e) === hz);
    if (same && (this.#stop || c.entries.size === 0)) {
      // Nothing to reopen: answered by the stream there is (or none is needed).
      this.#token = c.token;
      this.#answer(reqs, this.#epoch);
      this.#establish();
      if (this.#queue.length) this.#schedule();
      return;
    }
    if (c.entries.size === 0) {
      this.#closeStream();
      this.#entries = c.entries;
      this.#token = c.token;
      this.#answer(reqs, this.#epoch);
      this.#establish();
      if (this.#queue.length) this.#schedule();
      return;
    }
    this.#open(reqs, c);
  }

  #open(reqs, c) {
    const subs = reqs.filter((m) => m.op === "subscribe");
    const snapshot = subs.length === 0 || subs.some((m) => m.snapshot !== false);
    let rewind = 0;
    if (snapshot) for (const m of subs) if (m.snapshot !== false && m.rewind > rewind) rewind = m.rewind;
    const topics = [...c.entries.keys()];
    const rate = c.entries.get(topics[0]);
    let q = `topics=${topics.map(encodeURIComponent).join(",")}`;
    if (!snapshot) q += "&snapshot=false";
    if (rate !== null) q += `&max_hz=${rate}`;
    if (rewind) q += `&rewind=${rewind}`;
    const viaQuery = Boolean(this.#reader.EventSource); // an EventSource sends no header of ours
    if (c.token && viaQuery) q += `&token=${encodeURIComponent(c.token)}`;
    let url = `${this.#url}?${q}`;
    if (url.length > SSE_MAX_URL) {
      // The stream there is goes on.
      if (reqs.length > 1) this.#again(reqs);
      else if (reqs.length === 1) {
        this.#refuse(reqs[0], "too_long", `tickwire: over SSE the entries would make a URL of ${url.length} characters (at most ${SSE_MAX_URL})`);
        this.#next();
      } else this.#fail("the SSE URL is too long");
      return;
    }
    // `since`: the positions that fit (those that do not: unrecovered).
    const sent = new Set();
    const pos = this.#ctx.positions(topics);
    const known = pos ? pos.seqs.map(([t]) => t) : [];
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
    this.#closeStream(); // the stream there was (what it would still bring, the new one replays)
    const gen = this.#gen;
    this.#trying = { reqs, entries: c.entries, token: c.token, sent, known };
    const mine = (f) => (...args) => {
      if (gen === this.#gen && this.readyState === OPEN) f(...args);
    };
    this.#timer = setTimeout(
      mine(() => {
        if (this.#trying) this.#fail(`no answer from ${this.#url} within ${this.#headTimeoutMs} ms`);
      }),
      this.#headTimeoutMs,
    );
    const headers = c.token && !viaQuery ? { Authorization: `Bearer ${c.token}` } : {};
    this.#stop = openEventStream(url, { ...this.#reader, headers }, {
      open: mine(() => {
        this.#lastByte = Date.now();
        if (!viaQuery) this.#watchIdle(gen);
      }),
      alive: () => {
        this.#lastByte = Date.now();
      },
      event: mine((data) => this.#onEvent(data)),
      refused: mine((status, body) => this.#refused(status, body)),
      end: mine((why) => this.#fail(why)),
    });
  }

  /** A stream read by fetch that goes quiet for SSE_IDLE_MS (the broker's keep-alive comes every 15 s) is dead. */
  #watchIdle(gen) {
    const check = () => {
      if (gen !== this.#gen || this.readyState !== OPEN) return;
      const idle = Date.now() - this.#lastByte;
      if (idle >= SSE_IDLE_MS) this.#fail(`nothing received for ${Math.round(idle / 1000)} s`);
      else this.#idleTimer = setTimeout(check, SSE_IDLE_MS - idle);
    };
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(check, SSE_IDLE_MS);
  }

  #onEvent(data) {
    const t = this.#trying;
    if (t) {
      let ack = null;
      try {
        const m = JSON.parse(data);
        if (m?.type === "subscribed") ack = m;
      } catch {
        /* the client reports it */
      }
      if (ack) {
        this.#acked(t, ack);
        return;
      }
    }
    this.#deliver(data);
  }

  /** The `subscribed` event of the stream being opened: it is the stream now; its requests are answered. */
  #acked(t, ack) {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#trying = null;
    this.#entries = t.entries;
    this.#token = t.token;
    if (typeof ack.epoch === "string") this.#epoch = ack.epoch;
    this.#establish();
    this.#deliver(ack); // its epoch
    const lost = new Set(Array.isArray(ack.unrecovered) ? ack.unrecovered : []);
    const knows = typeof ack.recovered === "boolean";
    const recovered = (k) => knows && t.sent.has(k) && !lost.has(k);
    const named = this.#answer(t.reqs, ack.epoch, recovered);
    const unrecovered = t.known.filter((k) => !named.has(k) && !recovered(k));
    if (unrecovered.length) this.#ctx.unrecovered(unrecovered);
    this.#next();
  }

  /** Answers `reqs` as the broker would have; returns the topics their `since` named. */
  #answer(reqs, epoch, recovered = () => true) {
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
        this.#deliver(reply);
      } else if (m.op === "unsubscribe") {
        this.#deliver({ type: "unsubscribed", id: m.id, topics: m.topics });
      } else {
        // Over SSE the token goes with the stream: accepted by the broker
        // with it, or (no stream) not checked; exp and sub are its claims.
        const { exp, sub } = claimsOf(m.token);
        const reply = { type: "authed", id: m.id };
        if (sub !== undefined) reply.sub = sub;
        if (exp !== undefined) reply.exp = exp;
        this.#deliver(reply);
      }
    }
    return named;
  }

  /** The requests of a refused stream, again one by one (a stream is all or nothing). */
  #again(reqs) {
    this.#queue.unshift(...reqs);
    this.#single = reqs.length;
    this.#flush();
  }

  #refused(status, body) {
    const t = this.#trying;
    this.#trying = null;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#stop = null;
    const code = typeof body?.code === "string" ? body.code : status === 403 ? "not_authorized" : "bad_request";
    const message = typeof body?.message === "string" ? body.message : `HTTP ${status}`;
    if (status !== 400 && status !== 403 && status !== 414 && status !== 431) {
      this.#fail(`HTTP ${status} (${code}: ${message})`);
      return;
    }
    if (t.reqs.length === 0) {
      // What the stream carried before is refused now (the token expired?): start over.
      this.#fail(`the stream was refused: HTTP ${status} (${code}: ${message})`);
      return;
    }
    this.#establish();
    if (t.reqs.length > 1) {
      this.#again(t.reqs);
      return;
    }
    this.#refuse(t.reqs[0], code, message);
    this.#next();
  }

  /** After an answer: the requests that came meanwhile, or (none) what is there, reopened if it has no stream. */
  #next() {
    if (this.#queue.length || (!this.#stop && this.#entries.size)) this.#flush();
  }
}

// ----------------------------------------------------------- reconnect ----

/**
 * The connection of a client, reconnecting by itself. Emits the client's
 * `state`, `connecting`, `open`, `closed`, `reconnecting` and `transport`
 * events (and `error` with code connect_failed), and counts
 * `stats.reconnects`.
 *
 * Each connection has a record, `conn`: {ws (a WebSocket, or an
 * SseConnection), transport ("websocket" | "sse"), url, n (its number),
 * opened, answered (a message came: the backoff starts over), timer (the
 * connect timeout), and the client's own: inflight, phase, lastToken}.
 */
export class ReconnectingSocket {
  #client; // the TickwireClient: emit() and stats
  #hooks; // {opened(conn), message(conn, data), lost(conn), stopping(err), sse: SseConnection's ctx}
  #WS;
  #urls; // every broker URL, with its format parameter
  #sseUrls; // the /sse URL of each
  #urlIndex = 0; // the URL of the current (or last) attempt
  #format;
  #reconnect;
  #backoff;
  #connectTimeoutMs;
  #mode; // "auto" | "websocket" | "sse"
  #reader; // {EventSource, fetch}: how SSE is read
  #fallbackAfterMs;
  #wsRetryMs;
  #sseSince = null; // "auto": on SSE since (ms), after a WebSocket that did not open
  #transport = null; // of the last connection that opened

  #state = "idle";
  #stopped = false;
  #conn = null;
  #connCount = 0;
  #attempt = 0; // consecutive connects without an answer
  #retryTimer = null;
  #retryAt = null;

  constructor(client, url, options, hooks) {
    const mode = options.transport ?? "auto";
    if (mode !== "auto" && mode !== "websocket" && mode !== "sse") {
      throw new TypeError(`tickwire: transport must be "auto", "websocket" or "sse", got ${mode}`);
    }
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (mode !== "sse" && typeof WS !== "function") {
      throw new TypeError(
        "tickwire: no WebSocket implementation; pass one: new TickwireClient(url, { WebSocket }) (e.g. from the ws package), or transport: \"sse\"",
      );
    }
    const ES = options.EventSource === undefined ? globalThis.EventSource : options.EventSource;
    const fetchFn = options.fetch ?? (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : null);
    this.#reader = { EventSource: typeof ES === "function" ? ES : null, fetch: typeof fetchFn === "function" ? fetchFn : null };
    const canSse = Boolean(this.#reader.EventSource || this.#reader.fetch);
    if (mode === "sse" && !canSse) throw new TypeError("tickwire: transport \"sse\" needs EventSource or fetch");
    this.#mode = mode === "auto" && !canSse ? "websocket" : mode;
    this.#client = client;
    this.#hooks = hooks;
    this.#WS = WS;
    const { hrefs, format } = wsUrls(url, options.format);
    this.#urls = hrefs;
    this.#sseUrls = sseUrls(hrefs, options.sseUrl);
    this.#format = format;
    this.#reconnect = options.reconnect ?? true;
    this.#backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#fallbackAfterMs = options.fallbackAfterMs ?? FALLBACK_AFTER_MS;
    this.#wsRetryMs = options.wsRetryMs ?? WS_RETRY_MS;
  }

  /** "idle" | "connecting" | "open" | "reconnecting" | "closed" */
  get state() {
    return this.#state;
  }

  /** The WebSocket URL of the current (or last) connection attempt. */
  get url() {
    return this.#urls[this.#urlIndex];
  }

  /** Every broker URL, in the order they are tried. */
  get urls() {
    return [...this.#urls];
  }

  get format() {
    return this.#format;
  }

  /** "websocket" | "sse": of the current connection (open or being opened), else of the last one that opened; null before any. */
  get transport() {
    return this.#conn?.transport ?? this.#transport;
  }

  /** When the next connect attempt is due (ms since the epoch), while reconnecting; else null. */
  get retryAt() {
    return this.#retryAt;
  }

  /** Whether close() was called (or the connection ended with reconnect off). */
  get stopped() {
    return this.#stopped;
  }

  /** The current connection's record, or null. */
  get current() {
    return this.#conn;
  }

  /** Starts connecting, unless already connected or connecting. */
  connect() {
    if (this.#state !== "idle" && this.#state !== "closed") return;
    this.#stopped = false;
    this.#attempt = 0;
    this.#urlIndex = 0;
    this.#open();
  }

  /** While waiting to reconnect: try now. */
  reconnectNow() {
    if (this.#state === "reconnecting") this.#open(true);
  }

  /** A message came on `conn`: the connection works, the backoff starts over. */
  answered(conn) {
    if (!conn.answered) {
      conn.answered = true;
      this.#attempt = 0;
    }
  }

  /** Closes for good (until connect()); resolves once the socket has closed. */
  close(code, reason) {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryAt = null;
    const conn = this.#conn;
    this.#conn = null;
    this.#hooks.stopping(new TickwireError("closed", "tickwire: the client was closed"));
    let done = Promise.resolve();
    if (conn) {
      clearTimeout(conn.timer);
      this.#endProbe(conn);
      const ws = conn.ws;
      done = new Promise((resolve) => {
        const fallback = setTimeout(() => {
          ws.terminate?.();
          resolve();
        }, 2000);
        fallback.unref?.();
        const finish = () => {
          clearTimeout(fallback);
          resolve();
        };
        ws.onclose = finish;
        ws.onerror = () => {};
        ws.onmessage = null;
        ws.onopen = null;
        if (ws.readyState === CLOSED) finish();
        else {
          try {
            ws.close(code, reason);
          } catch {
            finish();
          }
        }
      });
    }
    if (this.#state !== "closed") {
      this.#setState("closed");
      this.#client.emit("closed", { code, reason, wasClean: true, reconnecting: false });
    }
    return done;
  }

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.#client.emit("state", { state, previous });
  }

  /** Whether the next attempt goes to SSE. */
  #sseFirst() {
    if (this.#mode !== "auto") return this.#mode === "sse";
    return this.#sseSince !== null && Date.now() - this.#sseSince < this.#wsRetryMs;
  }

  /**
   * `next`: a retry, which goes to the URL after the one last tried (several
   * URLs). `fallback`: the same broker over SSE, the WebSocket having failed.
   */
  #open(next = false, fallback = false) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryAt = null;
    if (next) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    const transport = fallback || this.#sseFirst() ? "sse" : "websocket";
    const url = (transport === "sse" ? this.#sseUrls : this.#urls)[this.#urlIndex];
    this.#setState("connecting");
    this.#client.emit("connecting", { attempt: this.#attempt + 1, url, transport });
    let ws;
    try {
      ws =
        transport === "sse"
          ? new SseConnection(url, {
              ...this.#reader,
              format: this.#format,
              headTimeoutMs: this.#connectTimeoutMs > 0 ? this.#connectTimeoutMs : 10_000,
              ctx: this.#hooks.sse,
            })
          : new this.#WS(url);
    } catch (e) {
      this.#client.emit(
        "error",
        new TickwireError("connect_failed", `tickwire: cannot open the ${transport === "sse" ? "event stream" : "WebSocket"}: ${e?.message ?? e}`),
      );
      this.#scheduleReconnect();
      return;
    }
    if (transport === "websocket" && this.#format === "binary") ws.binaryType = "arraybuffer"; // what the decoder reads
    const conn = {
      ws,
      transport,
      url,
      n: ++this.#connCount,
      inflight: new Map(),
      phase: "auth",
      opened: false,
      answered: false,
      timer: null,
      fallback,
      probe: null,
      lastToken: null,
    };
    this.#conn = conn;
    // "auto": a WebSocket not open within fallbackAfterMs goes to SSE. (Over
    // SSE each stream has its own timeout: it opens after the client's
    // open sequence, which may wait for a token.)
    let limit = transport === "sse" ? 0 : this.#connectTimeoutMs;
    if (transport === "websocket" && this.#mode === "auto" && (limit <= 0 || limit > this.#fallbackAfterMs)) limit = this.#fallbackAfterMs;
    if (limit > 0) {
      conn.timer = setTimeout(() => {
        if (this.#conn === conn && !conn.opened) {
          try {
            ws.close(); // the close event follows and schedules the retry (or the fallback)
          } catch {
            /* already closing */
          }
        }
      }, limit);
    }
    ws.onopen = () => {
      if (this.#conn === conn) this.#opened(conn);
    };
    ws.onmessage = (ev) => {
      if (this.#conn === conn) this.#hooks.message(conn, ev.data);
    };
    ws.onclose = (ev) => {
      if (this.#conn === conn) this.#lost(conn, ev);
    };
    ws.onerror = () => {
      /* always followed by close */
    };
    // Over SSE the client's requests make the stream: they go out first.
    if (transport === "sse") this.#hooks.opened(conn);
  }

  #opened(conn) {
    clearTimeout(conn.timer);
    conn.opened = true;
    if (conn.transport === "websocket") this.#sseSince = null;
    else if (this.#mode === "auto") {
      if (conn.fallback || this.#sseSince === null) this.#sseSince = Date.now();
      this.#armProbe(conn);
    }
    this.#setState("open");
    const previous = this.#transport;
    this.#transport = conn.transport;
    if (previous !== conn.transport) this.#client.emit("transport", { transport: conn.transport, previous });
    this.#client.emit("open", { url: conn.url, attempt: this.#attempt + 1, transport: conn.transport });
    if (conn.transport === "websocket") this.#hooks.opened(conn);
  }

  /**
   * "auto", on SSE: every wsRetryMs, a WebSocket opened and closed at once
   * says whether it gets through now; if it does, the client moves to it
   * (the SSE connection is closed and the client reconnects at once, over
   * the WebSocket, resuming).
   */
  #armProbe(conn) {
    if (!(this.#wsRetryMs > 0) || !Number.isFinite(this.#wsRetryMs)) return;
    conn.probeTimer = setTimeout(() => {
      if (this.#conn !== conn) return;
      let probe;
      try {
        probe = new this.#WS(this.#urls[this.#urlIndex]);
      } catch {
        this.#armProbe(conn);
        return;
      }
      conn.probe = probe;
      const give = setTimeout(() => {
        try {
          probe.close();
        } catch {
          /* closing */
        }
      }, this.#fallbackAfterMs);
      probe.onerror = () => {};
      probe.onmessage = null;
      probe.onclose = () => {
        clearTimeout(give);
        if (conn.probe !== probe) return;
        conn.probe = null;
        if (this.#conn === conn) this.#armProbe(conn); // not yet
      };
      probe.onopen = () => {
        clearTimeout(give);
        conn.probe = null;
        try {
          probe.close(1000, "probe");
        } catch {
          /* closing */
        }
        if (this.#conn !== conn) return;
        this.#sseSince = null;
        conn.upgrade = true; // reconnect at once, over the WebSocket
        try {
          conn.ws.close(1000, "moving to the WebSocket");
        } catch {
          /* closing */
        }
      };
    }, this.#wsRetryMs);
  }

  #endProbe(conn) {
    clearTimeout(conn.probeTimer);
    const probe = conn.probe;
    conn.probe = null;
    if (probe) {
      probe.onopen = probe.onclose = probe.onerror = null;
      try {
        probe.close();
      } catch {
        /* closing */
      }
    }
  }

  #lost(conn, ev) {
    clearTimeout(conn.timer);
    this.#endProbe(conn);
    this.#conn = null;
    this.#hooks.lost(conn);
    // "auto": a WebSocket that did not open → the same broker over SSE, now.
    const fallback = this.#mode === "auto" && conn.transport === "websocket" && !conn.opened;
    const info = {
      code: ev?.code ?? 1006,
      reason: ev?.reason ?? "",
      wasClean: ev?.wasClean ?? false,
      reconnecting: this.#reconnect || fallback,
    };
    this.#client.emit("closed", info);
    if (this.#stopped) return;
    if (fallback || conn.upgrade) {
      this.#open(false, fallback);
      return;
    }
    if (!this.#reconnect) {
      this.#stopped = true;
      this.#hooks.stopping(new TickwireError("closed", "tickwire: the connection closed (reconnect is off)"));
      this.#setState("closed");
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.#stopped) return;
    this.#attempt++;
    this.#client.stats.reconnects++;
    const delayMs = backoffDelay(this.#backoff, this.#attempt);
    this.#retryAt = Date.now() + delayMs;
    this.#retryTimer = setTimeout(() => this.#open(true), delayMs);
    this.#setState("reconnecting");
    this.#client.emit("reconnecting", { attempt: this.#attempt, delayMs });
  }
}
