// A loopback TCP proxy the tests control, in front of the broker: it can
// cut every connection at once (no FIN from the broker: the client sees a
// reset) and hold new ones off (accepted and dropped at once) until let
// through again. Each connection's first bytes (its request head) are kept.

import net from "node:net";

export async function startTcpProxy(targetAddr) {
  const i = targetAddr.lastIndexOf(":");
  const target = { host: targetAddr.slice(0, i), port: Number(targetAddr.slice(i + 1)) };
  const pairs = new Set();
  const heads = [];
  let held = false;
  const server = net.createServer((client) => {
    if (held) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once("data", (b) => heads.push(b.toString("latin1")));
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const addr = `127.0.0.1:${server.address().port}`;
  return {
    addr,
    heads,
    /** Connections open through the proxy. */
    get open() {
      return pairs.size;
    },
    /** Resets every connection; with hold, new ones are dropped until release(). */
    cut({ hold = false } = {}) {
      held = hold;
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    release() {
      held = false;
    },
    close() {
      this.cut();
      return new Promise((r) => server.close(r));
    },
  };
}
