// The dashboard behind a real nginx (Debian's package) with a plain
// `proxy_pass` and no upgrade configuration (lib/nginx.js): the WebSocket
// upgrade does not get through (nginx speaks HTTP/1.0 to the broker and
// drops the hop-by-hop Upgrade/Connection headers), so the page's client
// falls back to Server-Sent Events (GET /sse) by itself. Checked in
// headless chromium:
// - through nginx: the header says SSE and prices move within 3 s of
//   opening the page (measured in the page, from navigation start);
// - the latency of quotes through the proxy, over SSE: 1,000 quotes
//   published by this test with their timestamp, read in the page
//   (p50 / p99 / max printed, and written to
//   target/browser-artifacts/sse-latency.json; reported, not asserted);
// - the same page without the proxy: WebSocket.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { Publisher } from "../clients/js/testing/publisher.js";
import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS, CHROMIUM } from "./lib/paths.js";
import { startBroker, stopBroker } from "./lib/broker.js";
import { NGINX, startNginx } from "./lib/nginx.js";

// Generous deadlines: a loaded 2-core machine, a cold chromium, a debug build.
const T_LOAD = 60_000;
const T_DATA = 45_000;
/** The requirement: prices move on SSE within this long of opening the page. */
const OPEN_TO_MOVING_MS = 3_000;
const LATENCY_QUOTES = 1_000;
const LATENCY_RATE = 200; // quotes/s (a feed paced by the clock: 5 s)

const LAST = '#rows tr[data-topic="AAPL"] td.last';

/**
 * In the page, before its scripts: the time (performance.now(), ms since
 * navigation start) at which AAPL's last price first changes from one
 * number to another, and the transport label then.
 */
function watchFirstMove(sel) {
  const NUM = /^[+\u2212-]?[\d,]+(\.\d+)?$/;
  let first = null;
  const check = () => {
    const text = document.querySelector(sel)?.textContent?.trim() ?? "";
    if (!NUM.test(text)) return;
    if (first === null) first = text;
    else if (text !== first && window.__moved === undefined) {
      window.__moved = { at: performance.now(), from: first, to: text, transport: document.querySelector("#conn-transport")?.dataset.transport };
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
}

/** Quantile of sorted numbers. */
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * Publishes LATENCY_QUOTES quotes of `topic` at LATENCY_RATE/s, each stamped
 * with the wall clock (ns) as it is sent, and returns what the page
 * measured: now − ts per quote, in ms, read with the page's own client.
 */
async function measureLatency(page, pub, topic) {
  await page.evaluate((topic) => {
    window.__lat = [];
    window.tickwireDashboard.client.on("quote", (q) => {
      if (q.topic === topic) window.__lat.push(performance.timeOrigin + performance.now() - q.tsMs);
    });
  }, topic);
  const start = performance.now();
  for (let i = 0; i < LATENCY_QUOTES; i++) {
    // Paced by the clock: quote i goes out at start + i / rate.
    const due = start + (i * 1000) / LATENCY_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const nowNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    await pub.publish({ topic, bid: 100 + (i % 50) / 100, ask: 100.5, last: 100.25, ts: nowNs });
  }
  await page.waitForFunction((n) => window.__lat.length >= n, LATENCY_QUOTES, { timeout: T_DATA, polling: 250 });
  const lat = await page.evaluate(() => window.__lat);
  const sorted = Float64Array.from(lat).sort();
  return { n: lat.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] };
}

async function addTicker(page, text) {
  await page.fill("#add-input", text);
  await page.press("#add-input", "Enter");
}

const fmt = (r) => `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms over ${r.n} quotes`;

test("behind nginx (plain proxy_pass, no upgrade): the dashboard streams over SSE within 3 s; without the proxy it uses the WebSocket", { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  assert.ok(existsSync(NGINX), `nginx not found at ${NGINX}: apt-get install -y nginx (or set NGINX)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const broker = await startBroker();
  let nginx;
  let browser;
  let pub;
  const pageErrors = [];
  try {
    nginx = await startNginx(broker.wsAddr);
    pub = await Publisher.connect(broker.ingestAddr);
    browser = await launchChromium(T_LOAD);

    // ---- through nginx: SSE ----
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    await context.addInitScript(watchFirstMove, LAST);
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    const resp = await page.goto(`http://${nginx.addr}/`, { timeout: T_LOAD });
    assert.equal(resp.status(), 200);
    assert.equal(resp.headers().server?.split("/")[0], "nginx", "served through nginx");
    await page.waitForFunction(() => window.__moved !== undefined, null, { timeout: T_DATA, polling: 100 });
    const moved = await page.evaluate(() => window.__moved);
    t.diagnostic(`through nginx: AAPL moved ${moved.from} → ${moved.to} at ${moved.at.toFixed(0)} ms after navigation start, on ${moved.transport}`);
    assert.equal(moved.transport, "sse", "the first move came over SSE");
    assert.equal(await page.textContent("#conn-transport"), "SSE");
    assert.equal(await page.getAttribute("#conn-state", "data-state"), "live");
    assert.ok(moved.at <= OPEN_TO_MOVING_MS, `prices moved ${moved.at.toFixed(0)} ms after opening the page (at most ${OPEN_TO_MOVING_MS})`);
    const client = await page.evaluate(() => ({
      transport: window.tickwireDashboard.client.transport,
      quotes: window.tickwireDashboard.client.stats.quotes,
    }));
    assert.equal(client.transport, "sse");
    assert.ok(client.quotes > 0);

    // Adding a ticker reopens the stream (every entry, with since); the
    // latency of quotes through the proxy.
    await addTicker(page, "LAT.SSE");
    await page.waitForSelector('#rows tr[data-topic="LAT.SSE"]', { timeout: T_DATA });
    await page.waitForFunction(() => window.tickwireDashboard.client.has("LAT.SSE"), null, { timeout: T_DATA });
    const viaProxy = await measureLatency(page, pub, "LAT.SSE");
    t.diagnostic(`quote latency through nginx over SSE: ${fmt(viaProxy)}`);
    console.log(`SSE through nginx: quote latency ${fmt(viaProxy)}`);
    assert.equal(await page.evaluate(() => window.tickwireDashboard.client.transport), "sse", "still on SSE");
    const gaps = await page.evaluate(() => window.tickwireDashboard.client.stats.gaps);
    assert.equal(gaps, 0, "no quote skipped");
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-sse-nginx.png") });
    await context.close(); // the next measurement has the browser to itself

    // ---- without the proxy: WebSocket ----
    const direct = await (await browser.newContext()).newPage();
    direct.on("pageerror", (e) => pageErrors.push(String(e)));
    const sockets = [];
    direct.on("websocket", (ws) => sockets.push(ws.url()));
    await direct.goto(`http://${broker.wsAddr}/`, { timeout: T_LOAD });
    await direct.waitForSelector('#conn-transport[data-transport="websocket"]', { timeout: T_DATA });
    assert.equal(await direct.textContent("#conn-transport"), "WS");
    await direct.waitForSelector('#conn-state[data-state="live"]', { timeout: T_DATA });
    await direct.waitForFunction((sel) => /\d/.test(document.querySelector(sel)?.textContent ?? ""), LAST, { timeout: T_DATA });
    const before = await direct.textContent(LAST);
    await direct.waitForFunction(({ sel, before }) => (document.querySelector(sel)?.textContent ?? before) !== before, { sel: LAST, before }, {
      timeout: T_DATA,
      polling: 100,
    });
    assert.equal(await direct.evaluate(() => window.tickwireDashboard.client.transport), "websocket");
    assert.ok(sockets.some((u) => u.startsWith(`ws://${broker.wsAddr}/ws`)), `a WebSocket to the broker (${sockets})`);
    // For comparison (reported only): the same measurement straight over the WebSocket.
    await addTicker(direct, "LAT.WS");
    await direct.waitForFunction(() => window.tickwireDashboard.client.has("LAT.WS"), null, { timeout: T_DATA });
    const viaWs = await measureLatency(direct, pub, "LAT.WS");
    t.diagnostic(`quote latency straight over the WebSocket: ${fmt(viaWs)}`);
    console.log(`WebSocket, no proxy: quote latency ${fmt(viaWs)}`);
    writeFileSync(
      path.join(ARTIFACTS, "sse-latency.json"),
      `${JSON.stringify({ quotes: LATENCY_QUOTES, ratePerS: LATENCY_RATE, sseViaNginx: viaProxy, websocketDirect: viaWs, openToMovingMs: moved.at }, null, 2)}\n`,
    );

    await browser.close();
    browser = null;
    // nginx logged what went through it: the upgrade refused, the page and /sse served.
    const access = nginx.accessLog();
    // (The client asks for field deltas: `&delta=1`.)
    assert.match(access, /"GET \/ws\?format=binary(&delta=1)? HTTP\/1\.1" 400 /, "the WebSocket upgrade did not get through");
    assert.match(access, /"GET \/sse\?topics=[^"]* HTTP\/1\.1" 200 /, "the event stream did");
    assert.match(access, /"GET \/tickwire-client\.js HTTP\/1\.1" 200 /, "and the page's modules");
    assert.deepEqual(pageErrors, [], "uncaught errors in the pages");
  } catch (e) {
    e.message += `\nbroker log:\n${broker.log.slice(-20).join("\n")}${nginx ? `\nnginx log:\n${nginx.log().slice(-2000)}` : ""}`;
    throw e;
  } finally {
    pub?.close();
    if (browser) await browser.close().catch(() => {});
    await nginx?.stop();
    await stopBroker(broker);
  }
});
