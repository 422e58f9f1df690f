// The dashboard served over https (the broker's [tls] listener) in Debian's
// chromium: the page connects with wss:// (a ws:// socket from an https
// page would be blocked as mixed content) and shows live prices at once.
// The certificate is self-signed, made at test time with openssl; the test
// profile ignores certificate errors (nothing else about TLS is relaxed).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS } from "./lib/paths.js";
import { selfSignedCert, startBroker, stopBroker } from "./lib/broker.js";

const T_LOAD = 60_000;
const T_DATA = 45_000;

test("dashboard over https: wss:// and moving prices", { timeout: 180_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickwire-https-"));
  const broker = await startBroker({ tls: selfSignedCert(dir) });
  let browser;
  try {
    assert.ok(broker.tlsAddr && broker.tlsAddr !== "off", "the broker logs its TLS listener");
    browser = await launchChromium(T_LOAD);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    const resp = await page.goto(`https://${broker.tlsAddr}/`, { timeout: T_LOAD });
    assert.equal(resp.status(), 200);
    assert.equal(new URL(resp.url()).protocol, "https:");
    await page.waitForSelector('#conn-state[data-state="live"]', { timeout: T_LOAD });
    // The default watchlist fills and moves, no typing needed.
    const sel = '#rows tr[data-topic="AAPL"] td.last';
    await page.waitForFunction((s) => /\d/.test(document.querySelector(s)?.textContent ?? ""), sel, { timeout: T_DATA });
    const first = await page.textContent(sel);
    await page.waitForFunction(
      ({ s, first }) => {
        const t = document.querySelector(s)?.textContent ?? "";
        return t !== first && /\d/.test(t);
      },
      { s: sel, first },
      { timeout: T_DATA, polling: 100 },
    );
    assert.ok(sockets.length >= 1, "the page opened a WebSocket");
    for (const url of sockets) assert.match(url, /^wss:\/\//, `WebSocket over TLS: ${url}`);
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-https.png") });
  } catch (e) {
    e.message += `\nbroker log:\n${broker.log.slice(-30).join("\n")}`;
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopBroker(broker, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
