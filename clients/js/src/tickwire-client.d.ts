// Declarations of tickwire-client.js (hand-written; the module itself is
// plain JavaScript). Guide and examples: clients/js/README.md.

import type {
  AuthedReply,
  BinaryQuote,
  ErrorReply,
  JsonQuote,
  ServerMessage,
  SubscribedReply,
  UnsubscribedReply,
} from "./tickwire-decoder.js";

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
export type {
  AuthedReply,
  BinaryDelta,
  BinaryQuote,
  ControlMessage,
  JsonDelta,
  QuoteField,
  ErrorReply,
  JsonQuote,
  ServerMessage,
  SubscribedReply,
  UnsubscribedReply,
} from "./tickwire-decoder.js";

export type Format = "json" | "binary";
/** The quote type of a format: BigInt seq/ts and NaN in binary mode; Numbers and null in JSON mode. */
export type QuoteOf<F extends Format> = F extends "json" ? JsonQuote : BinaryQuote;
export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/**
 * The broker's error codes, and the client's own:
 * - "closed": the client was closed (close(), or the connection ended with reconnect off);
 * - "disconnected": a `retry: false` request whose connection closed before its reply;
 * - "not_connected": a `retry: false` request made while not connected;
 * - "timeout": no reply within `requestTimeoutMs` (reconnects included);
 * - "no_token": auth() without a token; "token_error": the token callback threw;
 * - "bad_message": a server message that does not decode; "connect_failed": the WebSocket constructor threw;
 * - "bad_delta": a field delta without its base (a broker bug): the connection is closed and the client reconnects (resuming);
 * - over SSE: "mixed_max_hz" (a subscribe whose maxHz differs from the other entries'), "too_long"
 *   (the stream's URL would be too long), "not_supported" (an op other than subscribe / unsubscribe / auth).
 */
export type ErrorCode =
  | "bad_request"
  | "bad_topic"
  | "too_many_subscriptions"
  | "not_authorized"
  | "rate_limited"
  | "closed"
  | "disconnected"
  | "not_connected"
  | "timeout"
  | "no_token"
  | "token_error"
  | "bad_message"
  | "bad_delta"
  | "connect_failed"
  | "mixed_max_hz"
  | "too_long"
  | "not_supported"
  | (string & {});

export declare class TickwireError extends Error {
  constructor(code: string, message: string, details?: { id?: number; reply?: ErrorReply; op?: string; topics?: string[] });
  readonly name: "TickwireError";
  /** The broker's `code` (from an `error` reply), or a client-side code. */
  code: ErrorCode;
  /** The id of the request it answers, if any. */
  id: number | undefined;
  /** The broker's `error` message; undefined for client-side errors. */
  reply: ErrorReply | undefined;
  /** The op of the failed request ("subscribe", "unsubscribe", "auth", ...). */
  op: string | undefined;
  /** The topics of the failed request. */
  topics: string[] | undefined;
}

/** A token, or a callback returning the current one (sync or async); called on every (re)connect. */
export type TokenSource = string | null | (() => string | null | undefined | Promise<string | null | undefined>);

export interface BackoffOptions {
  /** First retry delay ceiling (default 500 ms). */
  initialMs?: number;
  /** Largest ceiling (default 10 000 ms). */
  maxMs?: number;
  /** Growth per failed attempt (default 2). */
  multiplier?: number;
  /** Each delay is drawn from [ceiling × (1 − jitter), ceiling] (default 0.5). */
  jitter?: number;
}

/** The constructor of a browser-compatible WebSocket (the `ws` package's works). */
export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: { code: number; reason: string; wasClean: boolean }) => any) | null;
  onerror: ((ev: any) => any) | null;
}

/** How the client reaches the broker: a WebSocket, or Server-Sent Events (`GET /sse`, protocol v1.2). */
export type Transport = "websocket" | "sse";

/** The constructor of a browser-compatible EventSource. */
export interface EventSourceConstructor {
  new (url: string): {
    readonly readyState: number;
    close(): void;
    onopen: ((ev: any) => any) | null;
    onmessage: ((ev: { data: string; lastEventId: string }) => any) | null;
    onerror: ((ev: any) => any) | null;
  };
}

export interface ClientOptions<F extends Format = Format> {
  /** "binary" (default; quotes as binary frames, seq/ts BigInt) or "json". Also taken from the URL's ?format= when not given. */
  format?: F;
  /**
   * Ask for field deltas (default true; protocol v1.2): `delta=1` on the
   * WebSocket and /sse URLs, so the broker sends only the fields that
   * changed; the client hands on full quotes either way (an old broker
   * ignores it). Also taken from the URL's `?delta=1` / `?delta=0` when not given.
   */
  delta?: boolean;
  /** The WebSocket implementation (default: globalThis.WebSocket). On Node < 22: `import WebSocket from "ws"`. */
  WebSocket?: WebSocketConstructor;
  /**
   * "auto" (default): the WebSocket; where it does not open (an error, or
   * no upgrade within `fallbackAfterMs`), Server-Sent Events (`GET /sse`)
   * with the same API and events, back to the WebSocket once it gets
   * through. "websocket" / "sse": that one only (no WebSocket needed for "sse").
   */
  transport?: "auto" | Transport;
  /** "auto": a WebSocket not open after this long goes to SSE (default 3 000 ms). */
  fallbackAfterMs?: number;
  /** "auto", on SSE: how often the WebSocket is tried again, and how long reconnects stay on SSE (default 300 000 ms). */
  wsRetryMs?: number;
  /** The `/sse` URL (one, or one per broker URL); default: the `sse` next to the WebSocket path, http(s). */
  sseUrl?: string | URL | ReadonlyArray<string | URL>;
  /**
   * What reads the event stream (default: globalThis.EventSource); null: the
   * built-in reader on `fetch` (the default where there is no EventSource,
   * e.g. Node), which sends the token in an Authorization header rather than the query.
   */
  EventSource?: EventSourceConstructor | null;
  /** The fetch of the built-in reader, also used to learn why an EventSource was refused (default: globalThis.fetch). */
  fetch?: (url: string, init?: any) => Promise<any>;
  /** Sent as `auth` first on every (re)connect. */
  token?: TokenSource;
  /** With a token callback: send a fresh token before `exp` (default true). */
  refreshToken?: boolean;
  /** Refresh this long before `exp`, but not before half the remaining life (default 30 000 ms). */
  tokenRefreshMarginMs?: number;
  /** Reconnect after the connection is lost (default true). */
  reconnect?: boolean;
  backoff?: BackoffOptions;
  /** Give up on a connect attempt not open after this long (default 10 000 ms; 0 = never); over SSE, each stream's time to answer. */
  connectTimeoutMs?: number;
  /** Reject a request without a reply after this long, reconnects included (default 30 000 ms; 0 = never). */
  requestTimeoutMs?: number;
  /** `snapshot` of the resubscription after a reconnect (default true: current values at once; repeats are dropped). */
  resubscribeSnapshot?: boolean;
  /**
   * Resume after a reconnect (default true; protocol v1.2): the resubscription
   * carries `since` (the epoch and the last seq received per topic it covers),
   * and the broker replays what was missed instead of the snapshot, where its
   * history still reaches back (`recovered` / `unrecovered` events). false:
   * the v1 resubscription (snapshots; what was missed is a gap).
   */
  resume?: boolean;
  /**
   * Awaited on every open, after the auth request and before the
   * resubscription and the waiting requests; requests it makes go out at
   * once (use `retry: false` for ones that only make sense on this connection).
   */
  beforeResubscribe?: (client: TickwireClient<F>) => void | Promise<void>;
  /** Connect right after construction (default true). */
  autoConnect?: boolean;
}

export interface SubscribeOptions {
  /** Send the last known quote of each topic right after the ack (the broker's default: true). */
  snapshot?: boolean;
  /** At most this many quotes per second per topic, conflated (0 < maxHz ≤ 1000). */
  maxHz?: number;
  /**
   * 1..1024 (protocol v1.2): in place of the snapshot, the up-to-`rewind`
   * most recent quotes the broker holds of each topic, oldest first per topic
   * (not with `snapshot: false`). Remembered with the entry: the
   * resubscription after a reconnect asks it for the topics whose position
   * the client does not know.
   */
  rewind?: number;
  /** Re-send after a reconnect if unanswered (default true); false: reject with "disconnected" / "not_connected". */
  retry?: boolean;
}

export interface GapEvent {
  topic: string;
  /** The seq that should have come next. */
  expected: bigint;
  /** The seq that came. */
  received: bigint;
  /** Quotes skipped: received − expected. */
  missed: number;
  epoch: string | null;
  /**
   * "unrecovered": the first quote of the topic after a reconnect that did
   * not resume it (quotes published while the client was away, not
   * replayed); "conflated": max_hz or slow-consumer conflation.
   */
  reason: "unrecovered" | "conflated";
}

/** The outcome of a resubscription with `since`, from its ack. */
export interface ResumeEvent {
  /** The topics (of the ack's request's `since.seqs`) recovered, or not. */
  topics: string[];
  epoch: string | null;
  /** The ack's id. */
  id: number | undefined;
}

export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
  /** Whether a reconnect follows. */
  reconnecting: boolean;
}

export interface ClientEvents<F extends Format = Format> {
  state: { state: ClientState; previous: ClientState };
  /** A connect attempt starts (attempt 1 after a connection that worked; the SSE fallback keeps the WebSocket attempt's number). */
  connecting: { attempt: number; url: string; transport: Transport };
  /** The connection is open (over SSE: the broker answered its first stream). */
  open: { attempt: number; url: string; transport: Transport };
  /** A connection opened on another transport than the one before (previous null the first time). */
  transport: { transport: Transport; previous: Transport | null };
  /** The open sequence is done: auth sent, hook run, subscriptions restored, waiting requests sent (over SSE: and answered). */
  ready: { url: string; transport: Transport };
  /** A connection closed (or close() was called). */
  closed: CloseInfo;
  /** A retry is scheduled in delayMs. */
  reconnecting: { attempt: number; delayMs: number };
  /** Every decoded server message, before it is handled (quotes included; a field delta as the full quote it stands for). */
  message: ServerMessage;
  /** A quote in order (repeats dropped). */
  quote: QuoteOf<F>;
  /** Quotes were skipped before the next quote event of this topic. */
  gap: GapEvent;
  /** A quote whose seq is not above the last one seen (dropped). */
  duplicate: QuoteOf<F>;
  /** The broker's epoch changed (previous null: the first one); gap tracking was reset. */
  epoch: { epoch: string; previous: string | null };
  /** After a reconnect: these topics resume where they were; the quotes missed follow in order (no gap, no snapshot). */
  recovered: ResumeEvent;
  /**
   * After a reconnect: these topics could not be resumed (a new epoch, the
   * history no longer reaches back, or a broker without `since`): they get
   * the snapshot, and a jump past the last quote seen is a `gap` (reason "unrecovered").
   */
  unrecovered: ResumeEvent;
  /** Every `authed` reply (connect, auth(), refresh). */
  authed: AuthedReply;
  /** The broker removed entries itself (`reason` set); they are forgotten. */
  unsubscribed: UnsubscribedReply;
  /** Errors no promise receives: a refused auth on (re)connect or refresh, a resubscription refused, an unmatched error reply, an undecodable message, a delta without its base. */
  error: TickwireError;
}

/** A small event emitter: on / off / once. */
export declare class Emitter<Events extends Record<string, any> = Record<string, any>> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: (ev: Events[K]) => void): () => void;
  off<K extends keyof Events>(type: K, listener: (ev: Events[K]) => void): void;
  once<K extends keyof Events>(type: K, listener: (ev: Events[K]) => void): () => void;
  /** The next event of this type. */
  once<K extends keyof Events>(type: K): Promise<Events[K]>;
  emit<K extends keyof Events>(type: K, ev: Events[K]): void;
}

export declare class TickwireClient<F extends Format = "binary"> extends Emitter<ClientEvents<F>> {
  /**
   * `url`: one broker URL, or several (brokers of one cluster): the first
   * connect goes to the first, and each retry (after a failed attempt or a
   * lost connection) to the next one, round the list.
   */
  constructor(url: string | URL | ReadonlyArray<string | URL>, options?: ClientOptions<F>);
  readonly state: ClientState;
  /** The WebSocket URL of the current (or last) connection attempt, with its format parameter. */
  readonly url: string;
  /** Every broker URL given, with its format parameter, in the order retries try them. */
  readonly urls: string[];
  readonly format: F;
  /** Whether the connections ask for field deltas (`delta=1`). */
  readonly delta: boolean;
  /** Of the current connection (open or being opened), else of the last one that opened; null before the first attempt. */
  readonly transport: Transport | null;
  /** The broker epoch of the latest `subscribed` ack (null before the first). */
  readonly epoch: string | null;
  /** When the next attempt is due (ms since the Unix epoch) while reconnecting, else null. */
  readonly retryAt: number | null;
  /** A copy of the acknowledged entries (restored on reconnect): entry → options (`rewind` only when it was set). */
  readonly subscriptions: Map<string, { maxHz: number | undefined; rewind?: number }>;
  readonly stats: {
    messages: number;
    quotes: number;
    duplicates: number;
    gaps: number;
    missed: number;
    reconnects: number;
    /** Topics resumed after a reconnect (`recovered` events). */
    recovered: number;
    /** Topics not resumed after a reconnect (`unrecovered` events). */
    unrecovered: number;
    /** Field deltas received and turned into quotes (counted in `messages` too). */
    deltas: number;
    /** Deltas without their base: each an `error` (bad_delta) and a reconnect. */
    badDeltas: number;
  };
  has(entry: string): boolean;
  /** The last seq accepted for the topic in this epoch. */
  lastSeq(topic: string): bigint | undefined;
  connect(): void;
  reconnectNow(): void;
  close(code?: number, reason?: string): Promise<void>;
  subscribe(topics: string | string[], options?: SubscribeOptions): Promise<SubscribedReply>;
  unsubscribe(topics: string | string[], options?: { retry?: boolean }): Promise<UnsubscribedReply>;
  /** With a token (or callback), replaces the one used on every (re)connect; sends it now (or on the next connection). */
  auth(token?: TokenSource): Promise<AuthedReply>;
  /** Any request object (an id is added); resolves with the reply carrying that id. */
  request(message: { op: string; [key: string]: unknown }, options?: { retry?: boolean }): Promise<ServerMessage>;
}

/** Epoch-aware seq tracking without I/O, with the holds of a resume (see tickwire-gaps.js). */
export declare class SeqTracker {
  epoch: string | null;
  /** The reason of the gap accept() last reported. */
  lastGapReason: "unrecovered" | "conflated" | null;
  /** True if the epoch differs from the one before (tracking is then forgotten). */
  setEpoch(epoch: string): boolean;
  /** -1: a repeat (drop it); 0: in order or first; n > 0: n quotes skipped before it. */
  accept(topic: string, seq: bigint | number): number;
  /** accept() with the resume holds: -2 when the quote is held (nextHeld gives it back later). */
  offer<T>(topic: string, seq: bigint | number, item: T): number;
  /** The next held item of the topic that can go out now, or undefined. */
  nextHeld<T = unknown>(topic: string): { item: T; missed: number } | undefined;
  /** A subscribe carrying these topics' positions (`since`) was sent. */
  resuming(topics: Iterable<string>): void;
  /** Its ack: whether the topic was recovered, and whether its options conflate it (max_hz). */
  resumed(topic: string, recovered: boolean, conflated?: boolean): void;
  /** Stops waiting for recovered replays; returns the topics whose held quotes now go out. */
  endReplays(): string[];
  /** The connection was lost: holds dropped; the next jump of each topic is "unrecovered" unless resumed. */
  disconnected(): void;
  /** These topics could not be resumed (a reopened SSE stream): their next jump is "unrecovered". */
  unresumed(topics: Iterable<string>): void;
  /** The tracked topics a subscription entry (a topic or PREFIX*) covers, sorted. */
  covered(entry: string): string[];
  lastSeq(topic: string): bigint | undefined;
  forget(topics: Iterable<string> | ((topic: string) => boolean)): void;
  clear(): void;
  readonly size: number;
  topics(): IterableIterator<string>;
}

/** Whether a subscription entry (a topic or PREFIX*) covers a topic. */
export declare function entryMatches(entry: string, topic: string): boolean;
