// A browser's own EventSource on the broker's `GET /sse`, cut mid-stream:
// the page (chromium) reads three topics through a loopback TCP proxy this
// test controls (clients/js/testing/tcp-proxy.js); while the feed runs, the
// test resets every connection through it. The EventSource reconnects by
// itself with `Last-Event-ID` (checked in the request the proxy saw), the
// broker resumes every topic from there, and the page receives every quote
// exactly once, in order (its seqs per topic compared with what was
// published). Plain EventSource, no tickwire client.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { Publisher } from "../clients/js/testing/publisher.js";
import { startTcpProxy } from "../clients/js/testing/tcp-proxy.js";
import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS } from "./lib/paths.js";
import { startBroker, stopBroker } from "./lib/broker.js";

const T_LOAD = 60_000;
const T_DATA = 60_000;
const TOPICS = ["CUT.A", "CUT.B", "CUT.C"];
const PER_TOPIC = 300;
const EVERY_MS = 4; // one quote every 4 ms, round the topics (a feed paced by the clock, ~3.6 s)

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test("an EventSource cut mid-stream reconnects by itself with Last-Event-ID and gets every quote exactly once", { timeout: 240_000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // History deep enough for everything published while the browser waits to reconnect (~3 s).
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickwire-es-"));
  const config = path.join(dir, "tickwire.toml");
  writeFileSync(config, "[history]\nsize = 1024\n");
  const broker = await startBroker({ demoRate: 0, config });
  let proxy;
  let browser;
  let pub;
  try {
    proxy = await startTcpProxy(broker.wsAddr);
    pub = await Publisher.connect(broker.ingestAddr);
    browser = await launchChromium(T_LOAD);
    const page = await (await browser.newContext()).newPage();
    // A blank page of the proxy's origin (so the stream is same-origin); /sse goes through the proxy.
    const origin = `http://${proxy.addr}`;
    await page.route(`${origin}/blank.html`, (r) => r.fulfill({ contentType: "text/html", body: "<!doctype html><title>es</title>" }));
    await page.goto(`${origin}/blank.html`, { timeout: T_LOAD });
    await page.evaluate((topics) => {
      window.__got = {};
      window.__acks = [];
      window.__opens = 0;
      window.__errors = 0;
      const es = new EventSource(`/sse?topics=${topics.join(",")}&snapshot=false`);
      es.onopen = () => window.__opens++;
      es.onerror = () => window.__errors++;
      es.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === "quote") (window.__got[m.topic] ??= []).push(m.seq);
        else window.__acks.push(m);
      };
      window.__es = es;
    }, TOPICS);
    await page.waitForFunction(() => window.__acks.length === 1, null, { timeout: T_DATA });

    // The feed: PER_TOPIC quotes of each topic, round the topics; half-way it
    // waits for the cut (on a slow machine the page may lag behind), so the
    // cut always comes mid-stream, with half the quotes still to come.
    let published = 0;
    let cutDone;
    const cut = new Promise((r) => (cutDone = r));
    const feeding = (async () => {
      let start = performance.now();
      const total = PER_TOPIC * TOPICS.length;
      for (let i = 0; i < total; i++) {
        if (i === total / 2) {
          await cut;
          start = performance.now() - i * EVERY_MS;
        }
        const wait = start + i * EVERY_MS - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await pub.publish({ topic: TOPICS[i % TOPICS.length], bid: i, ask: i + 1 });
        published++;
      }
    })();

    // Mid-stream: once the page has some of every topic, reset the connection.
    await page.waitForFunction(
      (topics) => topics.every((tp) => (window.__got[tp]?.length ?? 0) >= 40),
      TOPICS,
      { timeout: T_DATA, polling: 20 },
    );
    proxy.cut();
    cutDone();
    const atCut = await page.evaluate(() => Object.fromEntries(Object.entries(window.__got).map(([k, v]) => [k, v.length])));
    const publishedAtCut = published;
    t.diagnostic(`cut after ${publishedAtCut} of ${PER_TOPIC * TOPICS.length} quotes published; the page had ${JSON.stringify(atCut)}`);

    await feeding;
    await page.waitForFunction(
      ({ topics, n }) => topics.every((tp) => (window.__got[tp]?.length ?? 0) >= n),
      { topics: TOPICS, n: PER_TOPIC },
      { timeout: T_DATA, polling: 100 },
    );
    const got = await page.evaluate(() => window.__got);
    const acks = await page.evaluate(() => window.__acks);
    const opens = await page.evaluate(() => window.__opens);
    await page.evaluate(() => window.__es.close());

    assert.ok(publishedAtCut < PER_TOPIC * TOPICS.length, "cut while the feed ran");
    for (const tp of TOPICS) assert.ok(atCut[tp] < PER_TOPIC, `${tp}: cut before its last quote`);
    for (const tp of TOPICS) assert.deepEqual(got[tp], range(PER_TOPIC), `${tp}: every quote exactly once, in order`);
    assert.equal(opens, 2, "opened, cut, reopened by itself");
    assert.equal(acks.length, 2);
    assert.equal(acks[1].type, "subscribed");
    assert.equal(acks[1].recovered, true, `the reconnect resumed every topic: ${JSON.stringify(acks[1])}`);
    // The browser's own reconnect carried the id of the last event it had.
    const requests = proxy.heads.filter((h) => h.startsWith("GET /sse?"));
    assert.equal(requests.length, 2, requests.join("\n---\n"));
    assert.doesNotMatch(requests[0], /^last-event-id:/im);
    const id = /^last-event-id: *(\S+)/im.exec(requests[1])?.[1];
    assert.ok(id, `Last-Event-ID in the reconnect:\n${requests[1]}`);
    assert.match(id, /^[0-9a-f]{16}\.[0-9a-f]{16}\.[0-9a-f]{1,16}$/);
  } catch (e) {
    e.message += `\nbroker log:\n${broker.log.slice(-20).join("\n")}`;
    throw e;
  } finally {
    pub?.close();
    if (browser) await browser.close().catch(() => {});
    await proxy?.close();
    await stopBroker(broker);
    rmSync(dir, { recursive: true, force: true });
  }
});
