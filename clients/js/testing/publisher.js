// A feed producer for the tests: Quote frames on the broker's ingest socket
// (docs/protocol.md section 5: u32 LE length, then bincode-legacy
// `IngestFrame::Quote`: u32 tag 1, u64 topic length, topic, six f64, u64 ts).

import net from "node:net";

export function encodeQuote({ topic, bid = NaN, ask = NaN, bid_size = 0, ask_size = 0, last = NaN, volume = 0, ts = 0n }) {
  const t = Buffer.from(topic, "ascii");
  const payload = Buffer.alloc(4 + 8 + t.length + 6 * 8 + 8);
  let o = 0;
  payload.writeUInt32LE(1, o); // tag: Quote
  o += 4;
  payload.writeBigUInt64LE(BigInt(t.length), o);
  o += 8;
  t.copy(payload, o);
  o += t.length;
  for (const x of [bid, ask, bid_size, ask_size, last, volume]) {
    payload.writeDoubleLE(x, o);
    o += 8;
  }
  payload.writeBigUInt64LE(BigInt(ts), o);
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

export class Publisher {
  static connect(addr) {
    const i = addr.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
      sock.setNoDelay(true);
      sock.once("connect", () => resolve(new Publisher(sock)));
      sock.once("error", reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    sock.on("error", () => {}); // a broker killed under it: the test sees the missing quotes
  }

  /** Publishes one quote; resolves once the bytes are written to the socket. */
  publish(quote) {
    return new Promise((resolve, reject) => this.sock.write(encodeQuote(quote), (e) => (e ? reject(e) : resolve())));
  }

  close() {
    this.sock.destroy();
  }
}
