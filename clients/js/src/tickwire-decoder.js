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
// Everything else the server sends (subscribed / unsubscribed / error, and
// quotes in ?format=json) is a JSON text frame.
//
// Usage:
//   import { decodeMessage } from "./tickwire-decoder.js";
//   const ws = new WebSocket("ws://localhost:8080/ws?format=binary");
//   ws.binaryType = "arraybuffer";               // required: the default is "blob"
//   ws.onmessage = (ev) => { const msg = decodeMessage(ev); ... };

/** Binary message type of a quote. */
export const QUOTE_TYPE = 1;
/** Bytes before the topic in a binary quote frame. */
export const QUOTE_HEADER_LEN = 66;

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

/**
 * Decodes one binary quote frame.
 *
 * Returns {type:"quote", topic, seq, ts, tsMs, bid, ask, bid_size, ask_size, last, volume}.
 * `seq` and `ts` are BigInt (exact u64); `tsMs` is a Number (ms since the
 * epoch, sub-ms fraction kept), fine for `new Date(tsMs)`. Prices and sizes
 * are Numbers and may be NaN, Infinity or -Infinity (a feed's "no bid").
 *
 * Throws on an unknown message type, a length that is not 66 + L, or a topic
 * that breaks the topic syntax.
 *
 * @param {ArrayBuffer | ArrayBufferView} arrayBuffer
 */
export function decodeQuote(arrayBuffer) {
  const v = toDataView(arrayBuffer);
  if (v.byteLength < 1) throw new Error("tickwire: empty binary frame");
  const type = v.getUint8(0);
  if (type !== QUOTE_TYPE) throw new Error(`tickwire: unknown binary message type ${type}`);
  if (v.byteLength < QUOTE_HEADER_LEN) {
    throw new Error(`tickwire: binary frame of ${v.byteLength} bytes, shorter than the ${QUOTE_HEADER_LEN}-byte header`);
  }
  const len = v.getUint8(1);
  if (v.byteLength !== QUOTE_HEADER_LEN + len) {
    throw new Error(`tickwire: binary frame is ${v.byteLength} bytes, topic length ${len} needs ${QUOTE_HEADER_LEN + len}`);
  }
  let topic = "";
  for (let i = 0; i < len; i++) topic += String.fromCharCode(v.getUint8(QUOTE_HEADER_LEN + i));
  if (!TOPIC_RE.test(topic)) throw new Error(`tickwire: invalid topic ${JSON.stringify(topic)}`);
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
 * Decodes one server message: a WebSocket MessageEvent or its `data`.
 *
 * - string (text frame) → JSON.parse. JSON quotes keep the server's fields
 *   (seq and ts are Numbers; ts is rounded to ~256 ns by JSON.parse;
 *   non-finite prices/sizes are null); `tsMs` is added for display.
 * - ArrayBuffer / typed array (binary frame) → decodeQuote.
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
    if (msg !== null && msg.type === "quote" && typeof msg.ts === "number") {
      msg.tsMs = msg.ts / 1e6;
    }
    return msg;
  }
  return decodeQuote(data);
}
