// tickwire-sse.js — the Server-Sent Events transport of the tickwire client
// (`GET /sse`, protocol v1.2), for where the WebSocket does not get through
// (a proxy that does not pass the upgrade): SseConnection, which
// ./tickwire-socket.js opens in place of a WebSocket.
//
// It turns the client's requests into ONE event stream that carries every
// entry (./tickwire-sse-protocol.js makes its URL and the replies), read by
// ./tickwire-sse-reader.js. Each subscribe / unsubscribe / auth reopens that
// stream, resuming with `since` (requests made together reopen it once); its
// `subscribed` event answers them, as the broker's acks would. A stream has
// one max_hz: over SSE every entry has the same one, and a subscribe that
// would mix them is refused (mixed_max_hz). With field deltas on, each
// stream asks `delta=1`; a stream is a connection of its own to the broker,
// so each new one starts from full quotes: the connection's DeltaState is
// cleared when it opens.

import { SSE_MAX_URL, answersTo, messageFromEvent, streamUrl, withSince } from "./tickwire-sse-protocol.js";
import { openEventStream } from "./tickwire-sse-reader.js";

/** readyState values, a WebSocket's (the client reads either the same way). */
export const OPEN = 1;
export const CLOSED = 3;

/** A stream read by fetch with no byte for this long is dead (the broker sends a comment every 15 s when idle). */
const SSE_IDLE_MS = 45_000;

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
  #deltas; // the connection's DeltaState (field deltas on), or null
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

  constructor(url, { EventSource = null, fetch = null, format = "json", deltas = null, headTimeoutMs = 10_000, ctx }) {
    this.url = url;
    this.#url = url;
    this.#reader = { EventSource, fetch };
    this.#format = format;
    this.#deltas = deltas;
    this.#ctx = ctx;
    this.#headTimeoutMs = headTimeoutMs;
    this.#whenEstablished = new Promise((resolve) => (this.#resolveEstablished = resolve));
  }

  /** A delivered message as the client reads it (a stream's event is JSON text). */
  decode(data) {
    return typeof data === "string" ? messageFromEvent(data, this.#format) : data;
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
    const viaQuery = Boolean(this.#reader.EventSource); // an EventSource sends no header of ours
    const bare = streamUrl(this.#url, reqs, c.entries, c.token, viaQuery, this.#deltas !== null);
    if (bare.length > SSE_MAX_URL) {
      // The stream there is goes on.
      if (reqs.length > 1) this.#again(reqs);
      else if (reqs.length === 1) {
        this.#refuse(reqs[0], "too_long", `tickwire: over SSE the entries would make a URL of ${bare.length} characters (at most ${SSE_MAX_URL})`);
        this.#next();
      } else this.#fail("the SSE URL is too long");
      return;
    }
    // `since`: the positions that fit (those that do not: unrecovered).
    const pos = this.#ctx.positions([...c.entries.keys()]);
    const known = pos ? pos.seqs.map(([t]) => t) : [];
    const { url, sent } = withSince(bare, pos);
    this.#closeStream(); // the stream there was (what it would still bring, the new one replays)
    // A new stream is a new broker connection: its first quote of each topic is full.
    this.#deltas?.clear();
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
  #answer(reqs, epoch, recovered) {
    const { replies, named } = answersTo(reqs, epoch, recovered);
    for (const reply of replies) this.#deliver(reply);
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
