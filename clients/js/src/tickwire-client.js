// tickwire-client.js — the JavaScript client of the tickwire broker (wire protocol v1).
//
// One dependency-free ES module for browsers and Node (>= 18); binary quotes
// are decoded by ./tickwire-decoder.js, the project's one decoder. The broker
// serves both files (/tickwire-client.js, /tickwire-decoder.js) and its
// dashboard is built on this client. API and examples: clients/js/README.md;
// the protocol: docs/protocol.md.
//
//   import { TickwireClient } from "./tickwire-client.js";
//   const client = new TickwireClient("ws://localhost:8080/ws", { format: "binary" });
//   client.on("quote", (q) => console.log(q.topic, q.seq, q.bid));
//   client.on("gap", (g) => console.warn(`${g.topic}: ${g.missed} quote(s) skipped`));
//   await client.subscribe(["AAPL", "BTC-*"]);
//
// How it works:
// - Requests (subscribe / unsubscribe / auth) carry an `id`; the reply with
//   that id settles the request's promise (an `error` reply rejects it with a
//   TickwireError carrying the broker's `code`). Requests made while not
//   connected wait and go out on the next connection; requests still without
//   a reply when a connection drops are sent again on the next one.
// - The acknowledged subscriptions (entry → max_hz) are remembered. On every
//   (re)connect: `auth` first (the token, or what the token callback returns
//   now), then the `beforeResubscribe` hook, then every remembered entry is
//   subscribed again (with `snapshot`, grouped by max_hz; a refused group is
//   retried one entry per request, and entries still refused are dropped and
//   reported), then the waiting requests.
// - Reconnect: exponential backoff with jitter, forever, until close().
// - Gap tracking: per topic the last `seq`; a quote whose seq is not above it
//   is a repeat (e.g. a snapshot after a resubscribe) and dropped; a jump is
//   a gap (`gap` event, then the quote). The `epoch` of every `subscribed`
//   ack tells when the broker's numbering restarted: tracking is reset, no gap.

import { decodeMessage } from "./tickwire-decoder.js";

export { decodeMessage, decodeQuote, QUOTE_TYPE, QUOTE_HEADER_LEN } from "./tickwire-decoder.js";

const OPEN = 1;
const CLOSED = 3;
/** Most topics per resubscribe request (a client message is at most 64 KiB). */
const RESUBSCRIBE_CHUNK = 256;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 });

/**
 * An error reply from the broker (`code` is the broker's: bad_request,
 * bad_topic, too_many_subscriptions, not_authorized, rate_limited, or a newer
 * one), or a client-side failure with one of the codes `closed`,
 * `disconnected`, `not_connected`, `timeout`, `no_token`, `token_error`,
 * `bad_message`, `connect_failed`.
 */
export class TickwireError extends Error {
  constructor(code, message, { id, reply, op, topics } = {}) {
    super(message);
    this.name = "TickwireError";
    /** The broker's error code, or a client-side code. */
    this.code = code;
    /** The request id, when the error answers a request. */
    this.id = id;
    /** The broker's `error` message as received; undefined for client-side errors. */
    this.reply = reply;
    /** The op of the request that failed ("subscribe", "unsubscribe", "auth"...). */
    this.op = op;
    /** The topics of the request that failed, if it had any. */
    this.topics = topics;
  }
}

function reportLater(e) {
  // A listener's exception must not break the client's own bookkeeping:
  // surface it as an uncaught error, outside this call stack.
  if (typeof globalThis.reportError === "function") globalThis.reportError(e);
  else
    queueMicrotask(() => {
      throw e;
    });
}

/** A small event emitter: on / off / once, listeners called in order. */
export class Emitter {
  #listeners = new Map();

  /** Adds a listener; returns a function that removes it. */
  on(type, listener) {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  /** once(type, listener) → remover; once(type) → a Promise of the next event. */
  once(type, listener) {
    if (listener === undefined) return new Promise((resolve) => this.once(type, resolve));
    const off = this.on(type, (ev) => {
      off();
      listener(ev);
    });
    return off;
  }

  emit(type, ev) {
    const set = this.#listeners.get(type);
    if (!set || set.size === 0) return;
    for (const listener of set) {
      try {
        listener(ev);
      } catch (e) {
        reportLater(e);
      }
    }
  }
}

/**
 * Epoch-aware `seq` tracking, without I/O (the client uses one; usable on its
 * own). Sequence numbers are compared as BigInt, whatever the format.
 */
export class SeqTracker {
  #last = new Map(); // topic -> BigInt
  /** The broker epoch the tracked numbers belong to (null: none seen yet). */
  epoch = null;

  /**
   * Records the broker's epoch. Returns true if it differs from the one
   * before (the first one included); the tracking is then forgotten, since
   * `seq` numbering restarted.
   */
  setEpoch(epoch) {
    if (epoch === this.epoch) return false;
    this.epoch = epoch;
    this.#last.clear();
    return true;
  }

  /**
   * Records a quote's seq. Returns -1 for a repeat (seq not above the last
   * one seen: drop the quote, tracking unchanged), 0 for the next one (or the
   * first of the topic), n > 0 when n quotes were skipped before it.
   */
  accept(topic, seq) {
    const s = typeof seq === "bigint" ? seq : BigInt(seq);
    const last = this.#last.get(topic);
    if (last === undefined) {
      this.#last.set(topic, s);
      return 0;
    }
    if (s <= last) return -1;
    this.#last.set(topic, s);
    return s === last + 1n ? 0 : Number(s - last - 1n);
  }

  /** The last seq accepted for the topic (BigInt), or undefined. */
  lastSeq(topic) {
    return this.#last.get(topic);
  }

  /** Forgets topics: an iterable of topics, or a predicate. */
  forget(topics) {
    if (typeof topics === "function") {
      for (const t of [...this.#last.keys()]) if (topics(t)) this.#last.delete(t);
    } else {
      for (const t of topics) this.#last.delete(t);
    }
  }

  /** Forgets every topic (the epoch is kept). */
  clear() {
    this.#last.clear();
  }

  /** Topics tracked. */
  get size() {
    return this.#last.size;
  }

  topics() {
    return this.#last.keys();
  }
}

/** Whether subscription entry `entry` (a topic or `PREFIX*`) covers `topic`. */
export function entryMatches(entry, topic) {
  return entry.endsWith("*") ? topic.startsWith(entry.slice(0, -1)) : entry === topic;
}

function toTopics(topics) {
  if (typeof topics === "string") return [topics];
  if (Array.isArray(topics)) return [...topics];
  throw new TypeError("tickwire: topics must be a string or an array of strings");
}

function wsUrl(url, format) {
  const base = globalThis.location?.href;
  const u = base === undefined ? new URL(String(url)) : new URL(String(url), base);
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
 * A tickwire subscriber connection that reconnects by itself.
 *
 * Events (`on(type, listener)`): state, connecting, open, ready, closed,
 * reconnecting, message, quote, gap, duplicate, epoch, authed,
 * unsubscribed, error. See clients/js/README.md.
 */
export class TickwireClient extends Emitter {
  #WS;
  #url;
  #format;
  #token;
  #refreshToken;
  #refreshMarginMs;
  #reconnect;
  #backoff;
  #connectTimeoutMs;
  #requestTimeoutMs;
  #resubscribeSnapshot;
  #beforeResubscribe;

  #state = "idle";
  #stopped = false;
  #conn = null; // {ws, n, inflight: Map<entry, count>, phase, answered, timer, lastToken}
  #connCount = 0;
  #attempt = 0; // consecutive connects without an answer
  #retryTimer = null;
  #retryAt = null;
  #refreshTimer = null;
  #nextId = 1;
  #pending = new Map(); // id -> request sent on the current connection
  #queue = []; // requests waiting for a connection
  #authWaiters = []; // auth() callers answered by the next connection's auth
  #subs = new Map(); // entry -> {maxHz, conn}
  #tracker = new SeqTracker();

  /** Totals since the client was made. */
  stats = { messages: 0, quotes: 0, duplicates: 0, gaps: 0, missed: 0, reconnects: 0 };

  constructor(url, options = {}) {
    super();
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "tickwire: no WebSocket implementation; pass one: new TickwireClient(url, { WebSocket }) (e.g. from the ws package)",
      );
    }
    this.#WS = WS;
    const { href, format } = wsUrl(url, options.format);
    this.#url = href;
    this.#format = format;
    this.#token = options.token ?? null;
    this.#refreshToken = options.refreshToken ?? true;
    this.#refreshMarginMs = options.tokenRefreshMarginMs ?? 30_000;
    this.#reconnect = options.reconnect ?? true;
    this.#backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#resubscribeSnapshot = options.resubscribeSnapshot ?? true;
    this.#beforeResubscribe = options.beforeResubscribe ?? null;
    if (options.autoConnect ?? true) {
      // After the caller's synchronous code, so listeners added right after
      // construction see the first `connecting`.
      queueMicrotask(() => {
        if (this.#state === "idle") this.connect();
      });
    }
  }

  // ------------------------------------------------------------ getters ----

  /** "idle" | "connecting" | "open" | "reconnecting" | "closed" */
  get state() {
    return this.#state;
  }

  /** The WebSocket URL, with its `format` parameter. */
  get url() {
    return this.#url;
  }

  /** "json" | "binary" */
  get format() {
    return this.#format;
  }

  /** The broker's epoch from the latest `subscribed` ack (null before the first). */
  get epoch() {
    return this.#tracker.epoch;
  }

  /** When the next connect attempt is due (ms since the epoch), while reconnecting; else null. */
  get retryAt() {
    return this.#retryAt;
  }

  /** The acknowledged subscription entries: a copy, entry → {maxHz}. */
  get subscriptions() {
    const out = new Map();
    for (const [entry, s] of this.#subs) out.set(entry, { maxHz: s.maxHz });
    return out;
  }

  /** Whether `entry` is an acknowledged subscription (restored on reconnect). */
  has(entry) {
    return this.#subs.has(entry);
  }

  /** The last seq accepted for `topic` in this epoch (BigInt), or undefined. */
  lastSeq(topic) {
    return this.#tracker.lastSeq(topic);
  }

  // ---------------------------------------------------------- lifecycle ----

  /** Starts connecting (done by the constructor unless autoConnect is false). */
  connect() {
    if (this.#state !== "idle" && this.#state !== "closed") return;
    this.#stopped = false;
    this.#attempt = 0;
    this.#open();
  }

  /** While waiting to reconnect: try now (e.g. on the browser's `online` event). */
  reconnectNow() {
    if (this.#state === "reconnecting") this.#open();
  }

  /**
   * Closes the connection for good (until connect() is called again):
   * requests waiting for a reply reject with code "closed". Resolves once the
   * socket has closed.
   */
  close(code = 1000, reason = "") {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryAt = null;
    clearTimeout(this.#refreshTimer);
    const conn = this.#conn;
    this.#conn = null;
    this.#rejectAll(new TickwireError("closed", "tickwire: the client was closed"));
    let done = Promise.resolve();
    if (conn) {
      clearTimeout(conn.timer);
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
      this.emit("closed", { code, reason, wasClean: true, reconnecting: false });
    }
    return done;
  }

  // ----------------------------------------------------------- requests ----

  /**
   * Subscribes to topics and/or `PREFIX*` patterns. Resolves with the
   * `subscribed` ack ({type, id, topics, epoch}); rejects with a
   * TickwireError carrying the broker's code. Options: snapshot (default
   * true on the broker), maxHz, retry (default true: re-sent after a
   * reconnect if unanswered; false: rejected with "disconnected" instead).
   */
  subscribe(topics, { snapshot, maxHz, retry = true } = {}) {
    let list;
    try {
      list = toTopics(topics);
    } catch (e) {
      return Promise.reject(e);
    }
    const msg = { op: "subscribe", topics: list };
    if (snapshot !== undefined) msg.snapshot = snapshot;
    if (maxHz !== undefined && maxHz !== null) msg.max_hz = maxHz;
    return this.#request({ kind: "subscribe", topics: list, maxHz: msg.max_hz, msg, retry });
  }

  /**
   * Unsubscribes entries exactly as they were subscribed. They are forgotten
   * at once (not restored by a reconnect); resolves with the `unsubscribed` ack.
   */
  unsubscribe(topics, { retry = true } = {}) {
    let list;
    try {
      list = toTopics(topics);
    } catch (e) {
      return Promise.reject(e);
    }
    for (const t of list) this.#subs.delete(t);
    return this.#request({ kind: "unsubscribe", topics: list, msg: { op: "unsubscribe", topics: list }, retry });
  }

  /**
   * Sends `auth`. With an argument (a token string or a token callback), it
   * replaces the token used on every (re)connect; without, the current one
   * (a callback is called again: a refresh). Resolves with the `authed` reply
   * ({type, id, sub?, exp}); rejects with a TickwireError (not_authorized,
   * bad_request when the broker has no [auth], no_token). While not
   * connected it is answered by the next connection's auth.
   */
  auth(token) {
    if (token !== undefined) this.#token = token;
    return new Promise((resolve, reject) => {
      if (this.#stopped) {
        reject(new TickwireError("closed", "tickwire: the client was closed", { op: "auth" }));
        return;
      }
      const conn = this.#conn;
      if (!conn || conn.ws.readyState !== OPEN || conn.phase === "auth") {
        this.#authWaiters.push({ resolve, reject });
        return;
      }
      this.#currentToken().then((t) => {
        if (!t) reject(new TickwireError("no_token", "tickwire: no token to send", { op: "auth" }));
        else if (this.#conn !== conn) this.#authWaiters.push({ resolve, reject });
        else this.#send(conn, { kind: "auth", msg: { op: "auth", token: t }, resolve, reject });
      });
    });
  }

  /**
   * Sends any request object (an `id` is added) and resolves with the reply
   * carrying that id (rejects on an `error` reply). For ops this client does
   * not know yet.
   */
  request(message, { retry = true } = {}) {
    const topics = Array.isArray(message?.topics) ? message.topics : undefined;
    return this.#request({ kind: "raw", topics, msg: { ...message }, retry });
  }

  #request(req) {
    return new Promise((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
      if (this.#stopped || this.#state === "closed") {
        reject(this.#error(req, "closed", "tickwire: the client is closed"));
        return;
      }
      const conn = this.#conn;
      const canSend = conn && conn.ws.readyState === OPEN && conn.phase !== "auth";
      if (!canSend && req.retry === false) {
        reject(this.#error(req, "not_connected", "tickwire: not connected"));
        return;
      }
      if (this.#requestTimeoutMs > 0) {
        req.timer = setTimeout(() => this.#expire(req), this.#requestTimeoutMs);
      }
      if (canSend) this.#send(conn, req);
      else this.#queue.push(req);
    });
  }

  #error(req, code, message, reply) {
    return new TickwireError(code, message, { id: req.id, reply, op: req.msg?.op, topics: req.topics });
  }

  #expire(req) {
    const i = this.#queue.indexOf(req);
    if (i >= 0) this.#queue.splice(i, 1);
    if (req.id !== undefined && this.#pending.get(req.id) === req) {
      this.#pending.delete(req.id);
      this.#inflight(req, -1);
    }
    req.reject(this.#error(req, "timeout", `tickwire: no reply within ${this.#requestTimeoutMs} ms`));
  }

  #send(conn, req) {
    const id = this.#nextId++;
    req.id = id;
    req.conn = conn;
    this.#pending.set(id, req);
    this.#inflight(req, +1);
    conn.ws.send(JSON.stringify({ ...req.msg, id }));
  }

  /** Counts subscribe requests in flight per entry on their connection. */
  #inflight(req, delta) {
    if ((req.kind !== "subscribe" && req.kind !== "resub") || !req.conn) return;
    const m = req.conn.inflight;
    for (const t of req.topics) {
      const n = (m.get(t) ?? 0) + delta;
      if (n > 0) m.set(t, n);
      else m.delete(t);
    }
  }

  #rejectAll(err) {
    const reqs = [...this.#queue, ...this.#pending.values()];
    this.#queue = [];
    this.#pending.clear();
    for (const req of reqs) {
      clearTimeout(req.timer);
      if (req.kind === "resub") continue;
      if (req.kind === "auth" && (req.auto || req.refresh)) continue;
      req.reject(new TickwireError(err.code, err.message, { id: req.id, op: req.msg?.op, topics: req.topics }));
    }
    const waiters = this.#authWaiters;
    this.#authWaiters = [];
    for (const w of waiters) w.reject(new TickwireError(err.code, err.message, { op: "auth" }));
  }

  // --------------------------------------------------------- connection ----

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.emit("state", { state, previous });
  }

  #open() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryAt = null;
    this.#setState("connecting");
    this.emit("connecting", { attempt: this.#attempt + 1, url: this.#url });
    let ws;
    try {
      ws = new this.#WS(this.#url);
    } catch (e) {
      this.emit("error", new TickwireError("connect_failed", `tickwire: cannot open the WebSocket: ${e?.message ?? e}`));
      this.#scheduleReconnect();
      return;
    }
    if (this.#format === "binary") ws.binaryType = "arraybuffer"; // what the decoder reads
    const conn = { ws, n: ++this.#connCount, inflight: new Map(), phase: "auth", answered: false, timer: null, lastToken: null };
    this.#conn = conn;
    if (this.#connectTimeoutMs > 0) {
      conn.timer = setTimeout(() => {
        if (this.#conn === conn && ws.readyState !== OPEN) {
          try {
            ws.close(); // the close event follows and schedules the retry
          } catch {
            /* already closing */
          }
        }
      }, this.#connectTimeoutMs);
    }
    ws.onopen = () => {
      if (this.#conn === conn) this.#onOpen(conn);
    };
    ws.onmessage = (ev) => {
      if (this.#conn === conn) this.#onMessage(conn, ev.data);
    };
    ws.onclose = (ev) => {
      if (this.#conn === conn) this.#onClose(conn, ev);
    };
    ws.onerror = () => {
      /* always followed by close */
    };
  }

  async #onOpen(conn) {
    clearTimeout(conn.timer);
    this.#setState("open");
    this.emit("open", { url: this.#url, attempt: this.#attempt + 1 });
    // 1. auth, first: requests are handled in order, so everything after it
    //    is checked against its grants.
    let source;
    let token;
    do {
      source = this.#token; // auth(newToken) while the callback runs: use the new one
      token = await this.#currentToken();
      if (this.#conn !== conn) return;
    } while (source !== this.#token);
    if (token) this.#send(conn, { kind: "auth", auto: true, msg: { op: "auth", token } });
    else this.#drainAuthWaiters(null, new TickwireError("no_token", "tickwire: no token to send", { op: "auth" }));
    // 2. the caller's hook; requests it makes go out at once.
    conn.phase = "hook";
    if (this.#beforeResubscribe) {
      try {
        await this.#beforeResubscribe(this);
      } catch (e) {
        reportLater(e);
      }
      if (this.#conn !== conn) return;
    }
    // 3. the remembered subscriptions, 4. the requests that waited.
    conn.phase = "ready";
    this.#resubscribe(conn);
    const queued = this.#queue;
    this.#queue = [];
    for (const req of queued) this.#send(conn, req);
    this.emit("ready", { url: this.#url });
  }

  async #currentToken() {
    const t = this.#token;
    if (typeof t !== "function") return t || null;
    try {
      return (await t()) || null;
    } catch (e) {
      this.emit("error", new TickwireError("token_error", `tickwire: the token callback failed: ${e?.message ?? e}`, { op: "auth" }));
      return null;
    }
  }

  #resubscribe(conn) {
    const groups = new Map(); // max_hz (or "") -> entries
    for (const [entry, s] of this.#subs) {
      if (s.conn === conn.n || conn.inflight.has(entry)) continue; // already done on this connection
      const key = s.maxHz ?? "";
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(entry);
    }
    for (const [key, entries] of groups) {
      for (let i = 0; i < entries.length; i += RESUBSCRIBE_CHUNK) {
        this.#sendResub(conn, entries.slice(i, i + RESUBSCRIBE_CHUNK), key === "" ? undefined : key, false);
      }
    }
  }

  #sendResub(conn, topics, maxHz, single) {
    const msg = { op: "subscribe", topics, snapshot: this.#resubscribeSnapshot };
    if (maxHz !== undefined) msg.max_hz = maxHz;
    this.#send(conn, { kind: "resub", topics, maxHz, single, msg });
  }

  #onMessage(conn, data) {
    let m;
    try {
      m = decodeMessage(data);
    } catch (e) {
      this.emit("error", new TickwireError("bad_message", e?.message ?? String(e)));
      return;
    }
    this.stats.messages++;
    if (!conn.answered) {
      conn.answered = true; // the connection works: the backoff starts over
      this.#attempt = 0;
    }
    this.emit("message", m);
    if (m === null || typeof m !== "object") return;
    switch (m.type) {
      case "quote":
        this.#onQuote(m);
        return;
      case "subscribed":
        if (typeof m.epoch === "string") this.#setEpoch(m.epoch);
        break;
      case "unsubscribed":
        if (m.reason !== undefined && m.id === undefined) {
          // The broker removed these itself (a refreshed token no longer covers them).
          for (const t of m.topics ?? []) this.#subs.delete(t);
          this.#forgetUncovered(m.topics ?? []);
          this.emit("unsubscribed", m);
          return;
        }
        break;
      default:
        break;
    }
    const req = m.id === undefined ? undefined : this.#pending.get(m.id);
    if (!req) {
      if (m.type === "error") {
        this.emit("error", new TickwireError(m.code, m.message, { id: m.id, reply: m }));
      }
      return;
    }
    this.#pending.delete(m.id);
    clearTimeout(req.timer);
    this.#inflight(req, -1);
    this.#settle(conn, req, m);
  }

  #settle(conn, req, m) {
    if (m.type === "error") {
      const err = this.#error(req, m.code, m.message, m);
      if (req.kind === "resub") this.#resubRefused(conn, req, err);
      else if (req.kind === "auth" && req.auto) {
        this.emit("error", err);
        this.#drainAuthWaiters(null, err);
      } else req.reject(err);
      return;
    }
    switch (req.kind) {
      case "subscribe":
      case "resub":
        for (const t of req.topics) this.#subs.set(t, { maxHz: req.maxHz, conn: conn.n });
        break;
      case "unsubscribe":
        for (const t of req.topics) this.#subs.delete(t);
        this.#forgetUncovered(req.topics);
        break;
      case "auth":
        if (m.type === "authed") {
          conn.lastToken = req.msg.token;
          this.#scheduleRefresh(conn, m.exp);
          this.emit("authed", m);
          if (req.auto) this.#drainAuthWaiters(m, null);
        }
        break;
      default:
        break;
    }
    req.resolve?.(m);
  }

  #drainAuthWaiters(reply, err) {
    const waiters = this.#authWaiters;
    this.#authWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve(reply);
    }
  }

  #resubRefused(conn, req, err) {
    if (!req.single && req.topics.length > 1) {
      // One entry may spoil the group (a request is all or nothing): one by one.
      for (const t of req.topics) {
        const s = this.#subs.get(t);
        if (s && s.conn !== conn.n && !conn.inflight.has(t)) this.#sendResub(conn, [t], req.maxHz, true);
      }
      return;
    }
    for (const t of req.topics) {
      const s = this.#subs.get(t);
      if (s && s.conn !== conn.n) this.#subs.delete(t);
    }
    this.#forgetUncovered(req.topics);
    this.emit("error", err);
  }

  /** Stops tracking the topics of `removed` entries that no remembered entry covers. */
  #forgetUncovered(removed) {
    if (this.#tracker.size === 0 || removed.length === 0) return;
    const entries = [...this.#subs.keys()];
    this.#tracker.forget(
      (topic) => removed.some((r) => entryMatches(r, topic)) && !entries.some((e) => entryMatches(e, topic)),
    );
  }

  #setEpoch(epoch) {
    const previous = this.#tracker.epoch;
    if (this.#tracker.setEpoch(epoch)) this.emit("epoch", { epoch, previous });
  }

  #onQuote(q) {
    const missed = this.#tracker.accept(q.topic, q.seq);
    if (missed < 0) {
      this.stats.duplicates++;
      this.emit("duplicate", q);
      return;
    }
    if (missed > 0) {
      this.stats.gaps++;
      this.stats.missed += missed;
      const received = typeof q.seq === "bigint" ? q.seq : BigInt(q.seq);
      this.emit("gap", {
        topic: q.topic,
        expected: received - BigInt(missed),
        received,
        missed,
        epoch: this.#tracker.epoch,
      });
    }
    this.stats.quotes++;
    this.emit("quote", q);
  }

  #scheduleRefresh(conn, exp) {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (!this.#refreshToken || typeof this.#token !== "function" || typeof exp !== "number") return;
    const remaining = exp * 1000 - Date.now();
    if (remaining <= 0) return;
    // Refresh `margin` before exp, but not before half the token's remaining life.
    const delay = Math.min(MAX_TIMER_MS, Math.max(remaining - this.#refreshMarginMs, remaining / 2));
    this.#refreshTimer = setTimeout(async () => {
      this.#refreshTimer = null;
      if (this.#conn !== conn || conn.ws.readyState !== OPEN) return;
      const t = await this.#currentToken();
      if (!t || t === conn.lastToken || this.#conn !== conn) return; // nothing new to send
      this.#send(conn, {
        kind: "auth",
        refresh: true,
        msg: { op: "auth", token: t },
        resolve: () => {},
        reject: (e) => this.emit("error", e),
      });
    }, delay);
  }

  #onClose(conn, ev) {
    clearTimeout(conn.timer);
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#conn = null;
    // Requests sent on this connection and not answered: in order, ahead of
    // those that were waiting.
    const again = [];
    for (const [id, req] of this.#pending) {
      if (req.conn !== conn) continue;
      this.#pending.delete(id);
      req.conn = null;
      if (req.kind === "resub") continue; // the remembered entries are restored anyway
      if (req.kind === "auth") {
        // An explicit auth() is answered by the next connection's auth.
        if (!req.auto && !req.refresh) {
          clearTimeout(req.timer);
          this.#authWaiters.push({ resolve: req.resolve, reject: req.reject });
        }
        continue;
      }
      if (req.retry === false) {
        clearTimeout(req.timer);
        req.reject(this.#error(req, "disconnected", "tickwire: the connection closed before the reply"));
        continue;
      }
      again.push(req);
    }
    this.#queue = again.concat(this.#queue);
    const info = {
      code: ev?.code ?? 1006,
      reason: ev?.reason ?? "",
      wasClean: ev?.wasClean ?? false,
      reconnecting: this.#reconnect,
    };
    this.emit("closed", info);
    if (!this.#reconnect) {
      this.#stopped = true;
      this.#rejectAll(new TickwireError("closed", "tickwire: the connection closed (reconnect is off)"));
      this.#setState("closed");
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.#stopped) return;
    this.#attempt++;
    this.stats.reconnects++;
    const { initialMs, maxMs, multiplier, jitter } = this.#backoff;
    const ceiling = Math.min(maxMs, initialMs * multiplier ** (this.#attempt - 1));
    const delayMs = ceiling * (1 - jitter) + Math.random() * ceiling * jitter;
    this.#retryAt = Date.now() + delayMs;
    this.#retryTimer = setTimeout(() => this.#open(), delayMs);
    this.#setState("reconnecting");
    this.emit("reconnecting", { attempt: this.#attempt, delayMs });
  }
}
