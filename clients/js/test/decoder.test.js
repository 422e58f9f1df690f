// The decoder (src/tickwire-decoder.js) is the project's one binary decoder:
// the documented path docs/js/tickwire-decoder.js re-exports it,
// docs/protocol.md shows its source verbatim, and it reads the frames the
// Rust encoder wrote (browser-tests/golden/quotes.json, also checked field by
// field, bits included, by browser-tests/golden.test.js).

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import * as decoder from "../src/tickwire-decoder.js";
import * as client from "../src/tickwire-client.js";
import { REPO } from "../testing/broker.js";

const DOCS_DECODER = path.join(REPO, "docs", "js", "tickwire-decoder.js");
const PROTOCOL_MD = path.join(REPO, "docs", "protocol.md");
const GOLDEN = path.join(REPO, "browser-tests", "golden", "quotes.json");
const inRepo = existsSync(PROTOCOL_MD);

test("one implementation: the client and docs/js re-export the same functions", { skip: !inRepo && "not in the repository" }, async () => {
  const docs = await import(pathToFileURL(DOCS_DECODER).href);
  for (const name of Object.keys(decoder)) {
    assert.equal(docs[name], decoder[name], `docs/js: ${name}`);
    assert.equal(client[name], decoder[name], `client: ${name}`);
  }
  // The client's modules (src/*.js) import the decoder; none decodes frames itself.
  const dir = new URL("../src/", import.meta.url);
  const modules = readdirSync(dir).filter((f) => f.endsWith(".js") && f !== "tickwire-decoder.js");
  assert.ok(modules.includes("tickwire-client.js"), "src/tickwire-client.js");
  const sources = modules.map((f) => readFileSync(new URL(f, dir), "utf8"));
  assert.ok(
    sources.some((src) => /^import \{ decodeMessage \} from "\.\/tickwire-decoder\.js";$/m.test(src)),
    "a client module imports decodeMessage from ./tickwire-decoder.js",
  );
  modules.forEach((f, i) => assert.doesNotMatch(sources[i], /getBigUint64|getFloat64/, `no second decoder in the client (${f})`));
});

test("docs/protocol.md section 3 example frame", () => {
  const hex = `01 04 01 00 00 00 00 00 00 00 87 4b 17 73 37 87
    0a 18 a4 70 3d 0a d7 a3 67 40 14 ae 47 e1 7a a4
    67 40 00 00 00 00 00 c0 72 40 00 00 00 00 00 00
    69 40 5c 8f c2 f5 28 a4 67 40 00 00 00 00 87 d6
    32 41 41 41 50 4c`.replace(/\s+/g, "");
  const q = decoder.decodeMessage({ data: new Uint8Array(Buffer.from(hex, "hex")).buffer });
  assert.deepEqual(q, {
    type: "quote",
    topic: "AAPL",
    seq: 1n,
    ts: 1732345678901234567n,
    tsMs: 1732345678901.2346,
    bid: 189.12,
    ask: 189.14,
    bid_size: 300,
    ask_size: 200,
    last: 189.13,
    volume: 1234567,
  });
  assert.throws(() => decoder.decodeQuote(new Uint8Array(65)), /tickwire:/);
});

test("docs/protocol.md section 4 shows the decoder's source verbatim", { skip: !inRepo && "not in the repository" }, () => {
  const md = readFileSync(PROTOCOL_MD, "utf8");
  const section = md.slice(md.indexOf("## 4. JavaScript"), md.indexOf("## 5. Ingest"));
  const m = section.match(/### Source[\s\S]*?```js\n([\s\S]*?)```/);
  assert.ok(m, "a ```js block under ### Source in section 4");
  const src = readFileSync(new URL("../src/tickwire-decoder.js", import.meta.url), "utf8");
  assert.equal(m[1], src, "update docs/protocol.md section 4 (### Source) from clients/js/src/tickwire-decoder.js");
});

test("frames written by the Rust encoder (golden file)", { skip: !existsSync(GOLDEN) && "no golden file" }, () => {
  const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));
  assert.ok(golden.quotes.length >= 5);
  for (const want of golden.quotes) {
    const q = decoder.decodeQuote(new Uint8Array(Buffer.from(want.hex, "hex")));
    assert.equal(q.topic, want.topic, want.name);
    assert.equal(q.seq, BigInt(want.seq), want.name);
    assert.equal(q.ts, BigInt(want.ts), want.name);
  }
  for (const bad of golden.rejects) {
    assert.throws(() => decoder.decodeQuote(new Uint8Array(Buffer.from(bad.hex, "hex"))), /tickwire:/, bad.name);
  }
});
