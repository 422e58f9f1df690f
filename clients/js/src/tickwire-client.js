// tickwire-client.js — the JavaScript client of the tickwire broker (wire protocol v1).
//
// Dependency-free ES modules for browsers and Node (>= 18). This one is the
// entry point (the package's exports: TickwireClient and its helpers); the
// others are its parts, imported by relative URL:
//   tickwire-session.js        what is said on each connection: auth,
//                              resubscription, replies, token refresh
//   tickwire-quotes.js         the quotes passed on: field deltas resolved,
//                              gap tracking, the resume's holds, their events
//   tickwire-socket.js         the connection: a WebSocket, or the SSE
//                              fallback (GET /sse); states, reconnect with backoff
//   tickwire-urls.js           the WebSocket and /sse URL of each broker
//   tickwire-ws-probe.js       on SSE, the periodic check that the WebSocket
//                              gets through again
//   tickwire-sse.js            the SSE transport: one event stream for every
//                              entry, in the shape of a WebSocket
//   tickwire-sse-protocol.js   a stream's URL (and `since`), the replies its
//                              ack stands for, its events as messages
//   tickwire-sse-reader.js     reading a stream: EventSource, or fetch and
//                              an event-stream parser
//   tickwire-requests.js       request/ack bookkeeping
//   tickwire-subscriptions.js  the subscriptions restored on reconnect, and
//                              the resubscription's `since` (resume)
//   tickwire-gaps.js           epoch-aware seq gap tracking (SeqTracker),
//                              the holds of a resume
//   tickwire-emitter.js        the event emitter
//   tickwire-errors.js         TickwireError
// Binary quotes (and deltas) are decoded by ./tickwire-decoder.js, the
// project's one decoder, whose DeltaState turns deltas back into quotes.
// The broker serves every one of these files by its name
// (/tickwire-client.js, /tickwire-decoder.js, ...), and its dashboard is built
// on this client. API and examples: clients/js/README.md; the protocol:
// docs/protocol.md.
//
//   import { TickwireClient } from "./tickwire-client.js";
//   const client = new TickwireClient("ws://localhost:8080/ws", { format: "binary" });
//   client.on("quote", (q) => console.log(q.topic, q.seq, q.bid));
//   client.on("gap", (g) => console.warn(`${g.topic}: ${g.missed} quote(s) skipped (${g.reason})`));
//   await client.subscribe(["AAPL", "BTC-*"]);
//
// Resume (protocol v1.2, on unless `resume: false`): after a reconnect the
// subscriptions go out again with `since` (the epoch and the last seq seen
// per topic); the broker replays what was missed, so the `quote` events
// continue with no gap and no repeat (`recovered` / `unrecovered` events).
//
// Field deltas (protocol v1.2, on unless `delta: false`): the URLs ask
// `delta=1`, the broker sends only the fields that changed since the quote
// before, and the client hands on full quotes, rebuilt bit for bit (an old
// broker ignores `delta=1`: full quotes only). permessage-deflate is the
// WebSocket's own business (browsers offer it by themselves).

import { Emitter } from "./tickwire-emitter.js";
import { toTopics } from "./tickwire-requests.js";
import { Session } from "./tickwire-session.js";

export {
  decodeDelta,
  decodeMessage,
  decodeQuote,
  DeltaState,
  DELTA_HEADER_LEN,
  DELTA_TYPE,
  QUOTE_FIELDS,
  QUOTE_HEADER_LEN,
  QUOTE_TYPE,
} from "./tickwire-decoder.js";
export { Emitter } from "./tickwire-emitter.js";
export { TickwireError } from "./tickwire-errors.js";
export { SeqTracker } from "./tickwire-gaps.js";
export { entryMatches } from "./tickwire-subscriptions.js";

/**
 * A tickwire subscriber connection that reconnects by itself: to its one
 * URL, or, given an array of URLs (brokers of one cluster), each retry to
 * the next of them.
 *
 * Events (`on(type, listener)`): state, connecting, open, ready, closed,
 * reconnecting, transport, message, quote, gap, duplicate, epoch,
 * recovered, unrecovered, authed, unsubscribed, error. See
 * clients/js/README.md.
 *
 * Where the WebSocket does not get through (a proxy that does not pass the
 * upgrade), the client goes on over Server-Sent Events (`GET /sse`) by
 * itself, with the same API and events: option `transport`, and the README.
 */
export class TickwireClient extends Emitter {
  #session;
  #socket;

  /** Totals since the client was made. */
  stats = {
    messages: 0,
    quotes: 0,
    duplicates: 0,
    gaps: 0,
    missed: 0,
    reconnects: 0,
    recovered: 0,
    unrecovered: 0,
    /** Field deltas received and turned into quotes (counted in `messages` too). */
    deltas: 0,
    /** Deltas without their base: each an `error` (bad_delta) and a reconnect. */
    badDeltas: 0,
  };

  constructor(url, options = {}) {
    super();
    this.#session = new Session(this, url, options);
    this.#socket = this.#session.socket;
    if (options.autoConnect ?? true) {
      // After the caller's synchronous code, so listeners added right after
      // construction see the first `connecting`.
      queueMicrotask(() => {
        if (this.#socket.state === "idle") this.connect();
      });
    }
  }

  // ------------------------------------------------------------ getters ----

  /** "idle" | "connecting" | "open" | "reconnecting" | "closed" */
  get state() {
    return this.#socket.state;
  }

  /** The WebSocket URL of the current (or last) connection attempt, with its `format` parameter. */
  get url() {
    return this.#socket.url;
  }

  /** Every broker URL given (with its `format` parameter), in the order reconnects try them. */
  get urls() {
    return this.#socket.urls;
  }

  /** "json" | "binary" */
  get format() {
    return this.#socket.format;
  }

  /**
   * Whether the client asks for field deltas (`delta=1`, protocol v1.2; the
   * option `delta`, default true). Quotes are handed on whole either way.
   */
  get delta() {
    return this.#socket.delta;
  }

  /**
   * "websocket" | "sse": the transport of the current connection (open or
   * being opened), else of the last one that opened; null before the first
   * attempt. The `transport` event says when a connection opens on another
   * one than the connection before.
   */
  get transport() {
    return this.#socket.transport;
  }

  /** The broker's epoch from the latest `subscribed` ack (null before the first). */
  get epoch() {
    return this.#session.tracker.epoch;
  }

  /** When the next connect attempt is due (ms since the epoch), while reconnecting; else null. */
  get retryAt() {
    return this.#socket.retryAt;
  }

  /** The acknowledged subscription entries: a copy, entry → {maxHz, rewind?}. */
  get subscriptions() {
    return this.#session.subs.copy();
  }

  /** Whether `entry` is an acknowledged subscription (restored on reconnect). */
  has(entry) {
    return this.#session.subs.has(entry);
  }

  /** The last seq accepted for `topic` in this epoch (BigInt), or undefined. */
  lastSeq(topic) {
    return this.#session.tracker.lastSeq(topic);
  }

  // ---------------------------------------------------------- lifecycle ----

  /** Starts connecting (done by the constructor unless autoConnect is false). */
  connect() {
    this.#socket.connect();
  }

  /** While waiting to reconnect: try now (e.g. on the browser's `online` event). */
  reconnectNow() {
    this.#socket.reconnectNow();
  }

  /**
   * Closes the connection for good (until connect() is called again):
   * requests waiting for a reply reject with code "closed". Resolves once the
   * socket has closed.
   */
  close(code = 1000, reason = "") {
    return this.#socket.close(code, reason);
  }

  // ----------------------------------------------------------- requests ----

  /**
   * Subscribes to topics and/or `PREFIX*` patterns. Resolves with the
   * `subscribed` ack ({type, id, topics, epoch}); rejects with a
   * TickwireError carrying the broker's code. Options: snapshot (default
   * true on the broker), maxHz, rewind (1..1024: the most recent quotes of
   * each topic instead of the snapshot; also on the resubscription, for
   * topics whose position is not known), retry (default true: re-sent after
   * a reconnect if unanswered; false: rejected with "disconnected" instead).
   */
  subscribe(topics, { snapshot, maxHz, rewind, retry = true } = {}) {
    let list;
    try {
      list = toTopics(topics);
    } catch (e) {
      return Promise.reject(e);
    }
    const msg = { op: "subscribe", topics: list };
    if (snapshot !== undefined) msg.snapshot = snapshot;
    if (maxHz !== undefined && maxHz !== null) msg.max_hz = maxHz;
    if (rewind !== undefined && rewind !== null) msg.rewind = rewind;
    return this.#session.request({ kind: "subscribe", topics: list, maxHz: msg.max_hz, rewind: msg.rewind, msg, retry });
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
    this.#session.subs.delete(list);
    return this.#session.request({ kind: "unsubscribe", topics: list, msg: { op: "unsubscribe", topics: list }, retry });
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
    return this.#session.auth(token);
  }

  /**
   * Sends any request object (an `id` is added) and resolves with the reply
   * carrying that id (rejects on an `error` reply). For ops this client does
   * not know yet.
   */
  request(message, { retry = true } = {}) {
    const topics = Array.isArray(message?.topics) ? message.topics : undefined;
    return this.#session.request({ kind: "raw", topics, msg: { ...message }, retry });
  }
}
