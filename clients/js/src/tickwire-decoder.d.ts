// Declarations of tickwire-decoder.js, the binary decoder of wire protocol v1
// (docs/protocol.md, sections 3 and 4).

/** Binary message type of a quote (the first byte of a binary frame). */
export declare const QUOTE_TYPE: 1;
/** Bytes before the topic in a binary quote frame. */
export declare const QUOTE_HEADER_LEN: 66;

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
/** What decodeMessage returns: a quote, or a JSON control message (or any JSON a later broker sends). */
export type ServerMessage = BinaryQuote | JsonQuote | ControlMessage;

/**
 * Decodes one binary quote frame. Throws (messages start with "tickwire:")
 * on a message type other than 1, a length other than 66 + L, a topic that
 * breaks the topic syntax, or a Blob (set `binaryType = "arraybuffer"`).
 */
export declare function decodeQuote(data: ArrayBuffer | ArrayBufferView): BinaryQuote;

/**
 * Decodes one server message: a MessageEvent or its data. A string is a
 * text frame (JSON.parse; a JSON quote also gets tsMs); binary data goes to
 * decodeQuote.
 */
export declare function decodeMessage(
  eventOrData: { data: string | ArrayBuffer | ArrayBufferView } | string | ArrayBuffer | ArrayBufferView,
): ServerMessage;
