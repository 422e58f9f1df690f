// tickwire-socket.js — the connection of the tickwire client: one at a
// time, a WebSocket or, where the WebSocket does not get through (a proxy
// that does not pass the upgrade), a Server-Sent Events stream (`GET /sse`,
// protocol v1.2: an SseConnection, ./tickwire-sse.js, which looks like a
// WebSocket); its states, the connect timeout, and reconnect with
// exponential backoff and jitter, forever, until close(); with several
// broker URLs (one cluster, ./tickwire-urls.js), each retry goes to the next.
//
// What is said on a connection (auth, subscriptions, requests, quotes) is
// the client's (./tickwire-session.js): this module calls its hooks when a
// connection opens, receives a message, is lost, and when the client stops.
//
// Transports (option `transport`, default "auto"): a WebSocket attempt that
// does not open (an error, or no upgrade within `fallbackAfterMs`, 3 s) is
// followed at once by the same broker over SSE. Reconnects then go to SSE
// for `wsRetryMs` (5 min); meanwhile, every `wsRetryMs` on SSE, a WebSocket
// is opened and closed at once to see whether it gets through now
// (./tickwire-ws-probe.js): if it does, the client moves to it (a
// reconnect, which resumes). "websocket" / "sse": that transport only.
// SSE is read by the global EventSource when there is one (browsers), else
// by fetch (Node).

import { DeltaState } from "./tickwire-decoder.js";
import { TickwireError } from "./tickwire-errors.js";
import { CLOSED, SseConnection } from "./tickwire-sse.js";
import { sseUrls, wsUrls } from "./tickwire-urls.js";
import { probeWebSocket } from "./tickwire-ws-probe.js";

// The session checks a connection of either transport against it.
export { OPEN } from "./tickwire-sse.js";

const DEFAULT_BACKOFF = Object.freeze({ initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 });
/** "auto": a WebSocket attempt not open by then goes to SSE. */
const FALLBACK_AFTER_MS = 3_000;
/** "auto": on SSE, how long before the WebSocket is tried again. */
const WS_RETRY_MS = 300_000;

/**
 * The delay before retry `attempt` (from 1): random in
 * [c × (1 − jitter), c], c = min(maxMs, initialMs × multiplier^(attempt − 1)).
 */
export function backoffDelay({ initialMs, maxMs, multiplier, jitter }, attempt) {
  const ceiling = Math.min(maxMs, initialMs * multiplier ** (attempt - 1));
  return ceiling * (1 - jitter) + Math.random() * ceiling * jitter;
}

/**
 * The connection of a client, reconnecting by itself. Emits the client's
 * `state`, `connecting`, `open`, `closed`, `reconnecting` and `transport`
 * events (and `error` with code connect_failed), and counts
 * `stats.reconnects`.
 *
 * Each connection has a record, `conn`: {ws (a WebSocket, or an
 * SseConnection), transport ("websocket" | "sse"), url, n (its number),
 * opened, answered (a message came: the backoff starts over), timer (the
 * connect timeout), fallback (an SSE attempt right after a WebSocket that
 * did not open), stopProbe (on SSE, "auto": stops the WebSocket probe),
 * upgrade (the probe got through: reconnect at once, over the WebSocket),
 * deltas (with field deltas on: the connection's DeltaState, the base of
 * each topic's next delta; a new connection starts from full quotes, and so
 * does each event stream over SSE, which clears it), and the client's own:
 * inflight, phase, lastToken, broken}.
 */
export class ReconnectingSocket {
  #client; // the TickwireClient: emit() and stats
  #hooks; // {opened(conn), message(conn, data), lost(conn), stopping(err), sse: SseConnection's ctx}
  #WS;
  #urls; // every broker URL, with its format parameter
  #sseUrls; // the /sse URL of each
  #urlIndex = 0; // the URL of the current (or last) attempt
  #format;
  #delta; // the URLs ask for field deltas (delta=1)
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
    const { hrefs, format, delta } = wsUrls(url, options.format, options.delta);
    this.#urls = hrefs;
    this.#sseUrls = sseUrls(hrefs, options.sseUrl);
    this.#format = format;
    this.#delta = delta;
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

  /** Whether the connections ask for field deltas. */
  get delta() {
    return this.#delta;
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
    const deltas = this.#delta ? new DeltaState() : null;
    let ws;
    try {
      ws =
        transport === "sse"
          ? new SseConnection(url, {
              ...this.#reader,
              format: this.#format,
              deltas,
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
      stopProbe: null,
      deltas,
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
   * "auto", on SSE: every wsRetryMs, a WebSocket probe says whether it gets
   * through now; if it does, the client moves to it (the SSE connection is
   * closed and the client reconnects at once, over the WebSocket, resuming).
   */
  #armProbe(conn) {
    conn.stopProbe = probeWebSocket(
      this.#WS,
      this.#urls[this.#urlIndex],
      { everyMs: this.#wsRetryMs, giveUpMs: this.#fallbackAfterMs },
      () => {
        if (this.#conn !== conn) return;
        this.#sseSince = null;
        conn.upgrade = true; // reconnect at once, over the WebSocket
        try {
          conn.ws.close(1000, "moving to the WebSocket");
        } catch {
          /* closing */
        }
      },
    );
  }

  #endProbe(conn) {
    conn.stopProbe?.();
    conn.stopProbe = null;
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
