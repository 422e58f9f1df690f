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
