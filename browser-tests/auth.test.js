// Entitlements from a browser: a broker with [auth] (HS256), the dashboard
// in Debian's chromium. Without a token nothing is granted; with a token in
// the token field, what it grants streams and the rest stays refused — all
// through the page's plain WebSocket (no custom headers).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS } from "./lib/paths.js";
import { startBroker, stopBroker } from "./lib/broker.js";

const T_LOAD = 60_000;
const T_DATA = 45_000;
const SECRET = "browser-test secret, 32 bytes or more";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function hs256(claims) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

test("dashboard with entitlements: refused without a token, granted topics stream with one", { timeout: 180_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickwire-auth-"));
  const config = path.join(dir, "tickwire.toml");
  writeFileSync(config, `[auth]\njwt_hs256_secret = "${SECRET}"\n`);
  const broker = await startBroker({ config });
  let browser;
  try {
    browser = await launchChromium(T_LOAD);
    const page = await (await browser.newContext()).newPage();
    await page.goto(`http://${broker.wsAddr}/`, { timeout: T_LOAD });
    await page.waitForSelector('#conn-state[data-state="live"]', { timeout: T_LOAD });
    // The default watchlist is refused: no token, no anonymous topics.
    await page.waitForFunction(() => /not_authorized/.test(document.querySelector("#message").textContent), null, {
      timeout: T_DATA,
    });

    const exp = Math.floor(Date.now() / 1000) + 600;
    await page.fill("#token-input", hs256({ exp, sub: "trader-7", topics: ["AAPL", "BTC*"] }));
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('body[data-auth="ok"]', { timeout: T_DATA });
    assert.match(await page.textContent("#auth-state"), /authorized as trader-7/);
    // Granted topics stream...
    for (const topic of ["AAPL", "BTC-USD"]) {
      const sel = `#rows tr[data-topic="${topic}"] td.last`;
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
    }
    // ...the others do not.
    const msft = await page.textContent('#rows tr[data-topic="MSFT"] td.last').catch(() => null);
    assert.ok(msft === null || !/\d/.test(msft), `MSFT must not stream: ${msft}`);

    // A refused token: the page says so and keeps its grants.
    await page.fill("#token-input", "not.a.token");
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('body[data-auth="refused"]', { timeout: T_DATA });
    assert.match(await page.textContent("#message"), /Token refused \(not_authorized\)/);
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-auth.png") });
  } catch (e) {
    e.message += `\nbroker log:\n${broker.log.slice(-30).join("\n")}`;
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopBroker(broker, "SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});
