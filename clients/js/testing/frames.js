// Binary quote frames as the broker writes them (docs/protocol.md section 3),
// for feeding the client without a network.

export function binaryQuote({ topic, seq, ts = 0n, bid = NaN, ask = NaN, bid_size = 0, ask_size = 0, last = NaN, volume = 0 }) {
  const buf = new ArrayBuffer(66 + topic.length);
  const v = new DataView(buf);
  v.setUint8(0, 1);
  v.setUint8(1, topic.length);
  v.setBigUint64(2, BigInt(seq), true);
  v.setBigUint64(10, BigInt(ts), true);
  [bid, ask, bid_size, ask_size, last, volume].forEach((x, i) => v.setFloat64(18 + 8 * i, x, true));
  for (let i = 0; i < topic.length; i++) v.setUint8(66 + i, topic.charCodeAt(i));
  return buf;
}

/** A JSON-mode quote message (as an object; the fake sends it as text). */
export function jsonQuote({ topic, seq, ts = 0, bid = null, ask = null, bid_size = 0, ask_size = 0, last = null, volume = 0 }) {
  return { type: "quote", topic, seq, bid, ask, bid_size, ask_size, last, volume, ts };
}

const FIELDS = ["bid", "ask", "bid_size", "ask_size", "last", "volume"];

/**
 * A binary delta frame as the broker writes it (protocol v1.2, type 2): the
 * fields given in `changed` (an object; any subset of the six) are in it.
 */
export function binaryDelta({ topic, seq, ts = 0n, ...changed }) {
  const present = FIELDS.filter((f) => Object.hasOwn(changed, f));
  const buf = new ArrayBuffer(19 + 8 * present.length + topic.length);
  const v = new DataView(buf);
  v.setUint8(0, 2);
  v.setUint8(1, topic.length);
  v.setBigUint64(2, BigInt(seq), true);
  v.setBigUint64(10, BigInt(ts), true);
  v.setUint8(18, FIELDS.reduce((mask, f, i) => (present.includes(f) ? mask | (1 << i) : mask), 0));
  present.forEach((f, i) => v.setFloat64(19 + 8 * i, changed[f], true));
  for (let i = 0; i < topic.length; i++) v.setUint8(19 + 8 * present.length + i, topic.charCodeAt(i));
  return buf;
}

/** A JSON-mode delta message (as an object): the fields given in `changed`, null for a non-finite one. */
export function jsonDelta({ topic, seq, ts = 0, ...changed }) {
  return { type: "delta", topic, seq, ts, ...changed };
}
