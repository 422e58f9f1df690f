// Fewer bytes per quote (protocol v1.2) in a real browser: the dashboard
// (`GET /`) in Debian's chromium against the real `tickwire` binary with the
// demo feed. Chromium offers permessage-deflate by itself: the page's
// WebSocket must have negotiated it (its `extensions`), ask for field deltas
// (`delta=1`, the JavaScript client's default) and receive them, and the
// prices must move. Then a JSON-mode client in the same page: its quotes
// come compressed, which the broker's /metrics shows as
// tickwire_bytes_out_total{encoding="json+deflate"} growing.
//
//   cd browser-tests && npm ci && node --test deflate.test.js
//
// Env: TICKWIRE_BIN (default target/debug/tickwire), CHROMIUM (default
// /usr/bin/chromium). Artifacts on failure: target/browser-artifacts/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS, CHROMIUM } from "./lib/paths.js";
import { startBroker, stopBroker } from "./lib/broker.js";

// Generous: a loaded 2-core machine, a cold chromium, a debug build.
const T_LOAD = 60_000;
const T_DATA = 45_000;

const NUMBER = /^[+\u2212-]?[\d,]+(\.\d+)?$/;

/** The samples of tickwire_bytes_out_total in a /metrics text: encoding → bytes. */
function bytesOut(text) {
  const out = {};
  for (const m of text.matchAll(/^tickwire_bytes_out_total\{encoding="([^"]+)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

test("dashboard: permessage-deflate negotiated, field deltas received, prices move; JSON quotes go compressed", { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const broker = await startBroker();
  let browser;
  let page;
  const pageErrors = [];
  const metrics = async () => {
    const r = await page.request.get(`http://${broker.wsAddr}/metrics`);
    assert.equal(r.status(), 200);
    return bytesOut(await r.text());
  };
  try {
    browser = await launchChromium(T_LOAD);
    const context = await browser.newContext();
    // Every WebSocket the page makes, kept where the test can read it
    // (the client's own is private): its URL and negotiated `extensions`.
    await context.addInitScript(() => {
      const Native = window.WebSocket;
      window.__sockets = [];
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          window.__sockets.push(this);
        }
      };
    });
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));

    await t.test("the page's WebSocket negotiated permessage-deflate and asks for deltas", async () => {
      const resp = await page.goto(`http://${broker.wsAddr}/`, { timeout: T_LOAD });
      assert.equal(resp.status(), 200);
      await page.waitForSelector('#conn-state[data-state="live"]', { timeout: T_LOAD });
      const sockets = await page.evaluate(() =>
        window.__sockets.filter((ws) => ws.readyState === WebSocket.OPEN).map((ws) => ({ url: ws.url, extensions: ws.extensions })),
      );
      assert.equal(sockets.length, 1, `one open WebSocket: ${JSON.stringify(sockets)}`);
      assert.match(sockets[0].url, /\/ws\?format=binary&delta=1$/);
      assert.match(sockets[0].extensions, /^permessage-deflate\b/, `negotiated extensions: "${sockets[0].extensions}"`);
      assert.equal(await page.evaluate(() => window.tickwireDashboard.client.transport), "websocket");
    });

    await t.test("prices move, carried by field deltas", async () => {
      const sel = '#rows tr[data-topic="AAPL"] td.last';
      await page.waitForFunction(({ sel, re }) => new RegExp(re).test(document.querySelector(sel)?.textContent ?? ""), { sel, re: NUMBER.source }, {
        timeout: T_DATA,
        polling: 100,
      });
      let seen = await page.textContent(sel);
      for (let i = 0; i < 2; i++) {
        await page.waitForFunction(
          ({ sel, before, re }) => {
            const text = document.querySelector(sel)?.textContent ?? "";
            return text !== before && new RegExp(re).test(text);
          },
          { sel, before: seen, re: NUMBER.source },
          { timeout: T_DATA, polling: 100 },
        );
        seen = await page.textContent(sel);
      }
      await page.waitForFunction(() => window.tickwireDashboard.client.stats.deltas > 0, null, { timeout: T_DATA, polling: 250 });
      const stats = await page.evaluate(() => ({ ...window.tickwireDashboard.client.stats }));
      assert.equal(stats.badDeltas, 0, `every delta applied: ${JSON.stringify(stats)}`);
      // The broker counts the bytes of compressed messages (the acks at least: JSON of 64 bytes or more).
      const bytes = await metrics();
      const deflated = Object.entries(bytes).filter(([enc]) => enc.endsWith("+deflate")).reduce((a, [, n]) => a + n, 0);
      assert.ok(deflated > 0, `bytes out with deflate: ${JSON.stringify(bytes)}`);
    });

    await t.test("a JSON-mode client in the page: its quotes go compressed (json+deflate grows)", async () => {
      const before = (await metrics())["json+deflate"] ?? 0;
      await page.evaluate(async () => {
        const { TickwireClient } = await import("/tickwire-client.js");
        const c = new TickwireClient("/ws", { format: "json" });
        window.__jsonClient = c;
        await c.subscribe(["AAPL", "MSFT", "BTC-USD"]);
      });
      await page.waitForFunction(() => window.__jsonClient.stats.deltas > 10 && window.__jsonClient.stats.quotes > 20, null, {
        timeout: T_DATA,
        polling: 250,
      });
      const url = await page.evaluate(() => window.__jsonClient.url);
      assert.match(url, /\?format=json&delta=1$/);
      // The broker's counter, read by the page until it has grown (a condition, with a deadline).
      await page.waitForFunction(
        async (before) => {
          const text = await (await fetch("/metrics", { cache: "no-store" })).text();
          const m = text.match(/^tickwire_bytes_out_total\{encoding="json\+deflate"\} (\S+)$/m);
          return m !== null && Number(m[1]) > before;
        },
        before,
        { timeout: T_DATA, polling: 250 },
      );
      const stats = await page.evaluate(() => ({ ...window.__jsonClient.stats }));
      assert.equal(stats.badDeltas, 0, JSON.stringify(stats));
      await page.evaluate(() => window.__jsonClient.close());
    });

    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, "failure-deflate.png") }).catch(() => {});
    throw e;
  } finally {
    writeFileSync(path.join(ARTIFACTS, "broker-deflate.log"), broker.log.join("\n") + "\n");
    if (browser) await browser.close().catch(() => {});
    await stopBroker(broker);
  }
});
