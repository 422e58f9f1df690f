// Declarations of tickwire-decoder.js, the binary decoder of wire protocol v1
// (docs/protocol.md, sections 3 and 4).

/** Binary message type of a quote (the first byte of a binary frame). */
export declare const QUOTE_TYPE: 1;
/** Bytes before the topic in a binary quote frame. */
export declare const QUOTE_HEADER_LEN: 66;
/** Binary message type of a field delta (protocol v1.2, `delta=1`). */
export declare const DELTA_TYPE: 2;
/** Bytes before the fields in a binary delta frame. */
export declare const DELTA_HEADER_LEN: 19;
/** A quote's prices and sizes, in wire order (bit i of a delta's mask is QUOTE_FIELDS[i]). */
export declare const QUOTE_FIELDS: readonly ["bid", "ask", "bid_size", "ask_size", "last", "volume"];
export type QuoteField = (typeof QUOTE_FIELDS)[number];

/** A quote decoded from a binary frame: seq and ts exact. */
export interface BinaryQuote {
  type: "quote";
  /** The concrete topic (never a pattern). */
  topic: string;
  /** Per-topic sequence number (u64, exact). */
  seq: bigint;
  /** Producer timestamp, ns since the Unix epoch (u64, exact). */
  ts: bigint;
  /** `ts` in ms since the epoch (sub-ms fraction kept), for `new Date(tsMs)`. */
  tsMs: number;
  /** May be NaN, Infinity or -Infinity (a feed's "no bid"); -0 stays -0. */
  bid: number;
  ask: number;
  bid_size: number;
  ask_size: number;
  last: number;
  volume: number;
}

/** A quote from a JSON text frame, as JSON.parse gives it (plus tsMs). */
export interface JsonQuote {
  type: "quote";
  topic: string;
  /** A Number (exact below 2^53). */
  seq: number;
  /** A Number: JSON.parse rounds it to ~256 ns. */
  ts: number;
  /** ts / 1e6. */
  tsMs: number;
  /** null where the broker had a non-finite value (NaN, ±Infinity). */
  bid: number | null;
  ask: number | null;
  bid_size: number | null;
  ask_size: number | null;
  last: number | null;
  volume: number | null;
}

/**
 * A field delta from a binary frame (type 2): seq, ts, and only the fields
 * that changed since the quote with seq − 1 on the same connection.
 * DeltaState.resolve() makes the full quote.
 */
export type BinaryDelta = { type: "delta"; topic: string; seq: bigint; ts: bigint; tsMs: number } & Partial<Record<QuoteField, number>>;

/** A field delta from a JSON text frame (or an SSE event): a changed non-finite value is null. */
export type JsonDelta = { type: "delta"; topic: string; seq: number; ts: number; tsMs: number } & Partial<Record<QuoteField, number | null>>;

export interface SubscribedReply {
  type: "subscribed";
  id?: number;
  /** Exactly as sent: same order, duplicates kept. */
  topics: string[];
  /** Changes whenever per-topic seq numbering restarts (e.g. a broker restart). */
  epoch: string;
  /** Only when the request carried `since` (v1.2): whether every topic of its `seqs` was recovered. */
  recovered?: boolean;
  /** With `recovered: false`: the topics of `since.seqs` not recovered (they got the snapshot). */
  unrecovered?: string[];
}

export interface UnsubscribedReply {
  type: "unsubscribed";
  id?: number;
  topics: string[];
  /** Present when the broker removed the entries itself (e.g. "not_authorized" after a token refresh); then no id. */
  reason?: string;
}

export interface AuthedReply {
  type: "authed";
  id?: number;
  /** The token's `sub` claim, when it has one. */
  sub?: string;
  /** The token's `exp` (Unix seconds). */
  exp: number;
}

export interface ErrorReply {
  type: "error";
  id?: number;
  /** bad_request, bad_topic, too_many_subscriptions, not_authorized, rate_limited, or a newer code. */
  code: string;
  message: string;
}

export type ControlMessage = SubscribedReply | UnsubscribedReply | AuthedReply | ErrorReply;
/** What decodeMessage returns: a quote, a delta, or a JSON control message (or any JSON a later broker sends). */
export type ServerMessage = BinaryQuote | JsonQuote | BinaryDelta | JsonDelta | ControlMessage;

/**
 * Decodes one binary quote frame. Throws (messages start with "tickwire:")
 * on a message type other than 1, a length other than 66 + L, a topic that
 * breaks the topic syntax, or a Blob (set `binaryType = "arraybuffer"`).
 */
export declare function decodeQuote(data: ArrayBuffer | ArrayBufferView): BinaryQuote;

/**
 * Decodes one binary delta frame (type 2). Throws (messages start with
 * "tickwire:") on a message type other than 2, a mask with bits above 5, a
 * length other than 19 + 8·popcount(mask) + L, or a bad topic.
 */
export declare function decodeDelta(data: ArrayBuffer | ArrayBufferView): BinaryDelta;

/**
 * Decodes one server message: a MessageEvent or its data. A string is a
 * text frame (JSON.parse; a JSON quote or delta also gets tsMs); binary data
 * goes to decodeQuote, or decodeDelta when its type byte is 2.
 */
export declare function decodeMessage(
  eventOrData: { data: string | ArrayBuffer | ArrayBufferView } | string | ArrayBuffer | ArrayBufferView,
): ServerMessage;

/**
 * The field-delta state of ONE connection: per topic, the last quote
 * received, the base of its next delta. Use a new one (or clear()) for each
 * connection, and for each event stream over SSE.
 */
export declare class DeltaState {
  /**
   * A decoded message as the application should see it: a quote is kept
   * (and returned); a delta whose seq is the base's + 1 becomes the full
   * quote (a new object; unchanged fields bit for bit the base's); a delta
   * without a usable base gives null (and drops the topic's base); any other
   * message is returned as it is.
   */
  resolve<M>(m: M): (M extends BinaryDelta ? BinaryQuote : M extends JsonDelta ? JsonQuote : M) | null;
  /** Forgets the bases of these topics (or of those the predicate picks). */
  forget(topics: Iterable<string> | ((topic: string) => boolean)): void;
  /** Forgets every base. */
  clear(): void;
  /** Topics with a base. */
  readonly size: number;
}
