// tickwire-socket.js — the connection of the tickwire client: one WebSocket
// at a time, its states, the connect timeout, and reconnect with exponential
// backoff and jitter, forever, until close(); with several broker URLs (one
// cluster), each retry goes to the next URL.
//
// What is said on a connection (auth, subscriptions, requests, quotes) is
// the client's (./tickwire-client.js): this module calls its hooks when a
// connection opens, receives a message, is lost, and when the client stops.

import { TickwireError } from "./tickwire-errors.js";

export const OPEN = 1;
const CLOSED = 3;

const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 });

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
 * The WebSocket of a client, reconnecting by itself. Emits the client's
 * `state`, `connecting`, `open`, `closed` and `reconnecting` events (and
 * `error` with code connect_failed), and counts `stats.reconnects`.
 *
 * Each connection has a record, `conn`: {ws, n (its number), answered (a
 * message came: the backoff starts over), timer (the connect timeout), and
 * the client's own: inflight, phase, lastToken}.
 */
export class ReconnectingSocket {
  #client; // the TickwireClient: emit() and stats
  #hooks; // {opened(conn), message(conn, data), lost(conn), stopping(err)}
  #WS;
  #urls; // every broker URL, with its format parameter
  #urlIndex = 0; // the URL of the current (or last) attempt
  #format;
  #reconnect;
  #backoff;
  #connectTimeoutMs;

  #state = "idle";
  #stopped = false;
  #conn = null;
  #connCount = 0;
  #attempt = 0; // consecutive connects without an answer
  #retryTimer = null;
  #retryAt = null;

  constructor(client, url, options, hooks) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "tickwire: no WebSocket implementation; pass one: new TickwireClient(url, { WebSocket }) (e.g. from the ws package)",
      );
    }
    this.#client = client;
    this.#hooks = hooks;
    this.#WS = WS;
    const { hrefs, format } = wsUrls(url, options.format);
    this.#urls = hrefs;
    this.#format = format;
    this.#reconnect = options.reconnect ?? true;
    this.#backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** "idle" | "connecting" | "open" | "reconnecting" | "closed" */
  get state() {
    return this.#state;
  }

  /** The URL of the current (or last) connection attempt. */
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

  /** `next`: a retry, which goes to the URL after the one last tried (several URLs). */
  #open(next = false) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryAt = null;
    if (next) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    const url = this.#urls[this.#urlIndex];
    this.#setState("connecting");
    this.#client.emit("connecting", { attempt: this.#attempt + 1, url });
    let ws;
    try {
      ws = new this.#WS(url);
    } catch (e) {
      this.#client.emit(
        "error",
        new TickwireError("connect_failed", `tickwire: cannot open the WebSocket: ${e?.message ?? e}`),
      );
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
  }

  #opened(conn) {
    clearTimeout(conn.timer);
    this.#setState("open");
    this.#client.emit("open", { url: this.url, attempt: this.#attempt + 1 });
    this.#hooks.opened(conn);
  }

  #lost(conn, ev) {
    clearTimeout(conn.timer);
    this.#conn = null;
    this.#hooks.lost(conn);
    const info = {
      code: ev?.code ?? 1006,
      reason: ev?.reason ?? "",
      wasClean: ev?.wasClean ?? false,
      reconnecting: this.#reconnect,
    };
    this.#client.emit("closed", info);
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
