// tickwire-decoder.js — decode tickwire v1 server messages in a browser (or Node).
//
// The one binary decoder of the project: the JavaScript client
// (clients/js/src/tickwire-client.js) and the broker's dashboard use it, the
// broker serves it as /tickwire-decoder.js, and docs/js/tickwire-decoder.js
// re-exports it. Layout and usage: docs/protocol.md, sections 3 and 4.
//
// Binary quote frame (WebSocket binary message), little-endian, 66 + L bytes:
//
//   offset size type   field
//   0      1    u8     message type (1 = quote)
//   1      1    u8     topic length L (1..=64)
//   2      8    u64    seq
//   10     8    u64    ts, ns since the Unix epoch
//   18     8    f64    bid
//   26     8    f64    ask
//   34     8    f64    bid_size
//   42     8    f64    ask_size
//   50     8    f64    last
//   58     8    f64    volume
//   66     L    ASCII  topic
//
// Binary delta frame (protocol v1.2, connections opened with `delta=1`),
// 19 + 8·k + L bytes: only the k fields that changed since the quote before
// (seq − 1) on the same connection:
//
//   0      1    u8     message type (2 = delta)
//   1      1    u8     topic length L (1..=64)
//   2      8    u64    seq
//   10     8    u64    ts
//   18     1    u8     mask: bit 0..5 = bid, ask, bid_size, ask_size, last, volume
//   19     8·k  f64    the fields whose bit is set, in that order
//   19+8k  L    ASCII  topic
//
// Everything else the server sends (subscribed / unsubscribed / error, and
// quotes and deltas in ?format=json) is a JSON text frame. A delta is not a
// quote: DeltaState (below) keeps the base of each topic and turns deltas
// back into full quotes.
//
// Usage:
//   import { decodeMessage, DeltaState } from "./tickwire-decoder.js";
//   const ws = new WebSocket("ws://localhost:8080/ws?format=binary&delta=1");
//   ws.binaryType = "arraybuffer";               // required: the default is "blob"
//   const deltas = new DeltaState();             // one per connection
//   ws.onmessage = (ev) => { const msg = deltas.resolve(decodeMessage(ev)); ... };

/** Binary message type of a quote. */
export const QUOTE_TYPE = 1;
/** Bytes before the topic in a binary quote frame. */
export const QUOTE_HEADER_LEN = 66;
/** Binary message type of a delta (protocol v1.2, `delta=1`). */
export const DELTA_TYPE = 2;
/** Bytes before the fields in a binary delta frame (type, L, seq, ts, mask). */
export const DELTA_HEADER_LEN = 19;
/** A quote's prices and sizes, in wire order: bit i of a delta's mask is QUOTE_FIELDS[i]. */
export const QUOTE_FIELDS = Object.freeze(["bid", "ask", "bid_size", "ask_size", "last", "volume"]);

const TOPIC_RE = /^[A-Za-z0-9._:\/-]{1,64}$/;

function toDataView(buf) {
  if (buf instanceof ArrayBuffer) return new DataView(buf);
  if (ArrayBuffer.isView(buf)) return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (typeof Blob !== "undefined" && buf instanceof Blob) {
    throw new TypeError('tickwire: got a Blob; set ws.binaryType = "arraybuffer"');
  }
  throw new TypeError("tickwire: expected an ArrayBuffer or a typed array");
}

/** ns since the epoch (BigInt) → ms since the epoch (Number), for Date/display. */
function nsToMs(ns) {
  return Number(ns / 1000000n) + Number(ns % 1000000n) / 1e6;
}

/** The frame's type byte, checked against `want`, and its topic length, checked against the frame's length. */
function header(v, want, name, fixed) {
  if (v.byteLength < 1) throw new Error("tickwire: empty binary frame");
  const type = v.getUint8(0);
  if (type !== want) throw new Error(`tickwire: binary message type ${type} is not a ${name} (${want})`);
  if (v.byteLength < fixed) {
    throw new Error(`tickwire: binary ${name} frame of ${v.byteLength} bytes, shorter than its ${fixed}-byte header`);
  }
  return v.getUint8(1);
}

/** The ASCII topic of `len` bytes at `at`, which must end the frame. */
function topicAt(v, at, len) {
  if (v.byteLength !== at + len) {
    throw new Error(`tickwire: binary frame is ${v.byteLength} bytes, topic length ${len} needs ${at + len}`);
  }
  let topic = "";
  for (let i = 0; i < len; i++) topic += String.fromCharCode(v.getUint8(at + i));
  if (!TOPIC_RE.test(topic)) throw new Error(`tickwire: invalid topic ${JSON.stringify(topic)}`);
  return topic;
}

/**
 * Decodes one binary quote frame.
 *
 * Returns {type:"quote", topic, seq, ts, tsMs, bid, ask, bid_size, ask_size, last, volume}.
 * `seq` and `ts` are BigInt (exact u64); `tsMs` is a Number (ms since the
 * epoch, sub-ms fraction kept), fine for `new Date(tsMs)`. Prices and sizes
 * are Numbers and may be NaN, Infinity or -Infinity (a feed's "no bid").
 *
 * Throws on a message type other than 1, a length that is not 66 + L, or a
 * topic that breaks the topic syntax.
 *
 * @param {ArrayBuffer | ArrayBufferView} arrayBuffer
 */
export function decodeQuote(arrayBuffer) {
  const v = toDataView(arrayBuffer);
  const len = header(v, QUOTE_TYPE, "quote", QUOTE_HEADER_LEN);
  const topic = topicAt(v, QUOTE_HEADER_LEN, len);
  const ts = v.getBigUint64(10, true);
  return {
    type: "quote",
    topic,
    seq: v.getBigUint64(2, true),
    ts,
    tsMs: nsToMs(ts),
    bid: v.getFloat64(18, true),
    ask: v.getFloat64(26, true),
    bid_size: v.getFloat64(34, true),
    ask_size: v.getFloat64(42, true),
    last: v.getFloat64(50, true),
    volume: v.getFloat64(58, true),
  };
}

/**
 * Decodes one binary delta frame (type 2).
 *
 * Returns {type:"delta", topic, seq, ts, tsMs, ...the fields whose mask bit
 * is set} (seq and ts BigInt, as in decodeQuote; a field that did not change
 * is absent). Not a quote: DeltaState.resolve() makes the full quote.
 *
 * Throws on a message type other than 2, a mask with bits above 5 (no such
 * field), a length that is not 19 + 8·k + L, or a topic that breaks the
 * topic syntax.
 *
 * @param {ArrayBuffer | ArrayBufferView} arrayBuffer
 */
export function decodeDelta(arrayBuffer) {
  const v = toDataView(arrayBuffer);
  const len = header(v, DELTA_TYPE, "delta", DELTA_HEADER_LEN);
  const mask = v.getUint8(18);
  if (mask >>> QUOTE_FIELDS.length !== 0) throw new Error(`tickwire: delta mask 0x${mask.toString(16)} names no field above bit 5`);
  let k = 0;
  for (let m = mask; m !== 0; m >>>= 1) k += m & 1;
  const topic = topicAt(v, DELTA_HEADER_LEN + 8 * k, len);
  const ts = v.getBigUint64(10, true);
  const d = { type: "delta", topic, seq: v.getBigUint64(2, true), ts, tsMs: nsToMs(ts) };
  let at = DELTA_HEADER_LEN;
  QUOTE_FIELDS.forEach((f, i) => {
    if ((mask & (1 << i)) === 0) return;
    d[f] = v.getFloat64(at, true);
    at += 8;
  });
  return d;
}

/**
 * Decodes one server message: a WebSocket MessageEvent or its `data`.
 *
 * - string (text frame) → JSON.parse. JSON quotes and deltas keep the
 *   server's fields (seq and ts are Numbers; ts is rounded to ~256 ns by
 *   JSON.parse; non-finite prices/sizes are null); `tsMs` is added for
 *   display.
 * - ArrayBuffer / typed array (binary frame) → decodeQuote, or decodeDelta
 *   for a frame of type 2.
 *
 * @param {MessageEvent | string | ArrayBuffer | ArrayBufferView} eventOrData
 */
export function decodeMessage(eventOrData) {
  const data =
    eventOrData !== null && typeof eventOrData === "object" && "data" in eventOrData &&
    !(eventOrData instanceof ArrayBuffer) && !ArrayBuffer.isView(eventOrData)
      ? eventOrData.data
      : eventOrData;
  if (typeof data === "string") {
    const msg = JSON.parse(data);
    if (msg !== null && (msg.type === "quote" || msg.type === "delta") && typeof msg.ts === "number") {
      msg.tsMs = msg.ts / 1e6;
    }
    return msg;
  }
  const v = toDataView(data);
  return v.byteLength > 0 && v.getUint8(0) === DELTA_TYPE ? decodeDelta(v) : decodeQuote(v);
}

/** Whether `seq` is `prev` + 1 (both BigInt, binary; or both Numbers, JSON). */
function follows(seq, prev) {
  if (typeof seq === "bigint" && typeof prev === "bigint") return seq === prev + 1n;
  return Number.isSafeInteger(seq) && Number.isSafeInteger(prev) && seq === prev + 1;
}

/**
 * The delta state of ONE connection (protocol v1.2, `delta=1`): per topic,
 * the last quote received on it, the base of the topic's next delta.
 * resolve() turns each decoded message into what the application sees:
 *
 * - a quote: recorded as its topic's base, returned as it is;
 * - a delta whose seq is the base's + 1: the full quote it stands for (a new
 *   object shaped like the base, with the delta's seq, ts, tsMs and changed
 *   fields; every other field bit for bit the base's), recorded as the base;
 * - a delta with no usable base (none, or not seq − 1): null, and the topic's
 *   base is dropped (the broker's idea of this connection is not ours: every
 *   later delta of the topic is refused too, until a full quote comes);
 * - anything else: returned as it is.
 *
 * The broker sends a delta only after the quote with seq − 1 on the same
 * connection, so a new connection needs a new DeltaState (or clear()); so
 * does each new event stream over SSE.
 */
export class DeltaState {
  #last = new Map(); // topic -> a copy of its last quote (a copy: the application may change the one it got)

  /** @param {object} m a decoded message (decodeMessage) */
  resolve(m) {
    if (m === null || typeof m !== "object") return m;
    if (m.type === "quote") {
      if (typeof m.topic === "string") this.#last.set(m.topic, { ...m });
      return m;
    }
    if (m.type !== "delta") return m;
    const base = typeof m.topic === "string" ? this.#last.get(m.topic) : undefined;
    if (base === undefined || !follows(m.seq, base.seq)) {
      this.#last.delete(m.topic);
      return null;
    }
    const q = { ...base };
    q.seq = m.seq;
    q.ts = m.ts;
    if (m.tsMs !== undefined) q.tsMs = m.tsMs;
    for (const f of QUOTE_FIELDS) if (Object.hasOwn(m, f)) q[f] = m[f];
    this.#last.set(m.topic, { ...q });
    return q;
  }

  /** Forgets the bases of topics: an iterable of topics, or a predicate. */
  forget(topics) {
    if (typeof topics === "function") {
      for (const t of [...this.#last.keys()]) if (topics(t)) this.#last.delete(t);
    } else {
      for (const t of topics) this.#last.delete(t);
    }
  }

  /** Forgets every base (a new connection, a new event stream). */
  clear() {
    this.#last.clear();
  }

  /** Topics with a base. */
  get size() {
    return this.#last.size;
  }
}
