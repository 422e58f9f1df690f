// End-to-end test of the dashboard (`GET /`) in Debian's chromium, driven by
// playwright-core, against the real `tickwire` binary with the demo feed.
//
//   cd browser-tests && npm ci && node --test
//
// Env: TICKWIRE_BIN (default target/debug/tickwire), CHROMIUM (default
// /usr/bin/chromium), UPDATE_SCREENSHOT=1 also writes docs/dashboard.png.
// Artifacts: target/browser-artifacts/ (dashboard.png; failure.png and the
// broker log on failure).

import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

import { launchChromium } from "./lib/browser.js";
import { ARTIFACTS, CHROMIUM, REPO } from "./lib/paths.js";
import { portOf, startBroker, startBrokerOnPort, stopBroker } from "./lib/broker.js";

// Generous: a loaded 2-core machine, a cold chromium, a debug build.
const T_LOAD = 60_000;
const T_DATA = 45_000;
const T_RECONNECT = 60_000;

const NUMBER = /^[+\u2212-]?[\d,]+(\.\d+)?$/;

const cell = (topic, col) => `#rows tr[data-topic="${topic}"] td.${col}`;

/** Waits until the cell shows a number; returns its text. */
async function numberIn(page, topic, col, timeout = T_DATA) {
  const sel = cell(topic, col);
  await page.waitForFunction(
    ({ sel, re }) => new RegExp(re).test(document.querySelector(sel)?.textContent ?? ""),
    { sel, re: NUMBER.source },
    { timeout, polling: 100 },
  );
  return page.textContent(sel);
}

/** Waits until the cell shows a number different from `before`. */
async function changes(page, topic, col, before, timeout = T_DATA) {
  const sel = cell(topic, col);
  await page.waitForFunction(
    ({ sel, before, re }) => {
      const t = document.querySelector(sel)?.textContent ?? "";
      return t !== before && new RegExp(re).test(t);
    },
    { sel, before, re: NUMBER.source },
    { timeout, polling: 100 },
  );
  return page.textContent(sel);
}

/** Waits until the row's Upd/s (quotes in the last second) is in [lo, hi]. */
async function rateBetween(page, topic, lo, hi) {
  await page.waitForFunction(
    ({ sel, lo, hi }) => {
      const r = Number(document.querySelector(sel)?.textContent);
      return r >= lo && r <= (hi === null ? Infinity : hi);
    },
    { sel: cell(topic, "rate"), lo, hi: Number.isFinite(hi) ? hi : null },
    { timeout: T_DATA, polling: 250 },
  );
}

/** A subtest that leaves a screenshot and the header's text if it fails. */
let aborted = false; // after a failed step the rest are skipped, not timed out one by one
function step(t, page, name, fn) {
  return t.test(name, async (tt) => {
    if (aborted) {
      tt.skip("an earlier step failed");
      return;
    }
    try {
      await fn(tt);
    } catch (e) {
      aborted = true;
      const slug = name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40);
      await page().screenshot({ path: path.join(ARTIFACTS, `failure-${slug}.png`) }).catch(() => {});
      const header = await page().textContent("header").catch(() => "?");
      e.message += `\n(page header: ${header.replace(/\s+/g, " ").trim()}; screenshot: target/browser-artifacts/failure-${slug}.png)`;
      throw e;
    }
  });
}

async function connState(page, state, timeout) {
  await page.waitForSelector(`#conn-state[data-state="${state}"]`, { timeout });
}

async function addTicker(page, text) {
  await page.fill("#add-input", text);
  await page.press("#add-input", "Enter");
}

test("dashboard: watchlist, live updates, reconnect after a broker restart", { timeout: 300_000 }, async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`,
  );
  mkdirSync(ARTIFACTS, { recursive: true });

  let broker = await startBroker();
  let browser;
  let page;
  const pageErrors = [];
  try {
    const port = portOf(broker.wsAddr);
    browser = await launchChromium(T_LOAD);
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
    // Layout Instability API: record every layout shift, to check that
    // streaming quotes never move anything.
    await context.addInitScript(() => {
      window.__shifts = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          window.__shifts.push({
            t: e.startTime,
            value: e.value,
            input: e.hadRecentInput,
            sources: (e.sources || []).map((s) => ({
              node: s.node ? `${s.node.nodeName}#${s.node.id || ""}.${s.node.className || ""} ${(s.node.textContent || "").slice(0, 30)}` : null,
              from: s.previousRect && [s.previousRect.x, s.previousRect.y, s.previousRect.width, s.previousRect.height],
              to: s.currentRect && [s.currentRect.x, s.currentRect.y, s.currentRect.width, s.currentRect.height],
            })),
          });
        }
      }).observe({ type: "layout-shift", buffered: true });
    });
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    let probeReply = null;
    let maxHzSupported = false;
    page.on("websocket", (ws) =>
      ws.on("framereceived", ({ payload }) => {
        if (typeof payload !== "string") return;
        const m = JSON.parse(payload);
        if (m.id === 1 && probeReply === null) probeReply = m;
      }),
    );

    await step(t, () => page, "page loads with its assets, connects live", async () => {
      const resp = await page.goto(`http://${broker.wsAddr}/`, { timeout: T_LOAD });
      assert.equal(resp.status(), 200);
      assert.match(resp.headers()["content-type"], /^text\/html/);
      for (const [asset, type] of [
        ["/app.js", /^text\/javascript/],
        ["/style.css", /^text\/css/],
        ["/tickwire-client.js", /^text\/javascript/],
        ["/tickwire-decoder.js", /^text\/javascript/],
      ]) {
        const r = await page.request.get(`http://${broker.wsAddr}${asset}`);
        assert.equal(r.status(), 200, asset);
        assert.match(r.headers()["content-type"], type, asset);
      }
      await connState(page, "live", T_LOAD);
      // The page probes max_hz support once per connection (request id 1)
      // and shows the throttle selector only if the broker accepted it.
      await page.waitForSelector("body[data-max-hz]", { state: "attached", timeout: T_LOAD });
      const detected = await page.getAttribute("body", "data-max-hz");
      assert.ok(probeReply, "the page sent the max_hz probe and got a reply");
      maxHzSupported = probeReply.type === "subscribed";
      if (!maxHzSupported) assert.equal(probeReply.code, "bad_request");
      assert.equal(detected, maxHzSupported ? "supported" : "unsupported");
      assert.equal(await page.isVisible("#throttle-box"), maxHzSupported);
    });

    await step(t, () => page, "first visit (fresh profile): default watchlist, prices move untouched", async () => {
      const chips = await page.$$eval("#watchlist li", (lis) => lis.map((li) => li.dataset.entry));
      assert.deepEqual(chips, ["AAPL", "MSFT", "NVDA", "BTC-USD", "ETH-USD", "EURUSD"]);
      for (const topic of ["AAPL", "BTC-USD", "EURUSD"]) {
        await changes(page, topic, "last", await numberIn(page, topic, "last"));
      }
      // Nothing is saved until the user changes the list.
      assert.equal(await page.evaluate(() => localStorage.getItem("tickwire.dashboard.watchlist")), null);
    });

    await step(t, () => page, "the user's own list replaces the defaults", async () => {
      for (const entry of ["AAPL", "MSFT", "NVDA", "BTC-USD", "ETH-USD", "EURUSD"]) {
        await page.click(`#watchlist li[data-entry="${entry}"] button`);
      }
      await page.waitForSelector("#watchlist li", { state: "detached", timeout: T_DATA });
      assert.deepEqual(JSON.parse(await page.evaluate(() => localStorage.getItem("tickwire.dashboard.watchlist"))), []);
      // An empty saved list stays empty on reload: the defaults do not come back.
      await page.reload({ timeout: T_LOAD });
      await connState(page, "live", T_LOAD);
      assert.equal((await page.$$("#watchlist li")).length, 0);
    });

    await step(t, () => page, "add a ticker: its row fills and its price moves", async () => {
      await page.focus("#add-input");
      await addTicker(page, "AAPL");
      const first = await numberIn(page, "AAPL", "bid");
      await changes(page, "AAPL", "bid", first);
      await numberIn(page, "AAPL", "ask");
      await numberIn(page, "AAPL", "spread");
      await numberIn(page, "AAPL", "vol");
      // The row's sparkline: opened with the broker's recent history (rewind), then every quote.
      await page.waitForFunction(
        (sel) => (document.querySelector(sel)?.getAttribute("points") ?? "").trim().split(/\s+/).length >= 2,
        `${cell("AAPL", "trend")} svg.row-spark polyline`,
        { timeout: T_DATA, polling: 100 },
      );
      const stored = await page.evaluate(() => localStorage.getItem("tickwire.dashboard.watchlist"));
      assert.deepEqual(JSON.parse(stored), ["AAPL"]);
    });

    await step(t, () => page, "patterns, invalid input, removal by keyboard, persistence", async () => {
      await addTicker(page, "BTC* EURUSD MSFT");
      await numberIn(page, "BTC-USD", "last");
      await numberIn(page, "EURUSD", "last");
      await numberIn(page, "MSFT", "last");

      await addTicker(page, "bad ticker!");
      await page.waitForFunction(() => /Invalid ticker/.test(document.querySelector("#message").textContent), null, {
        timeout: T_DATA,
      });

      // Remove MSFT with the keyboard: focus its remove button, press Enter.
      await page.focus('#watchlist li[data-entry="MSFT"] button');
      await page.keyboard.press("Enter");
      await page.waitForSelector(cell("MSFT", "last"), { state: "detached", timeout: T_DATA });

      // Reload: the watchlist comes back from localStorage, rows fill at once.
      await page.reload({ timeout: T_LOAD });
      await connState(page, "live", T_LOAD);
      await numberIn(page, "AAPL", "last");
      await numberIn(page, "BTC-USD", "last");
      assert.equal(await page.$(cell("MSFT", "last")), null);
      const chips = await page.$$eval("#watchlist li", (lis) => lis.map((li) => li.dataset.entry));
      assert.deepEqual(chips, ["AAPL", "BTC*", "EURUSD"]);
    });

    await step(t, () => page, "throttle selector (only where the broker supports max_hz)", async (tt) => {
      if (!maxHzSupported) {
        tt.skip("this broker refuses max_hz: the selector is hidden (checked above)");
        return;
      }
      // The demo feed gives AAPL ~20 quotes/s (1,000/s over ~50 tickers).
      await rateBetween(page, "AAPL", 5, Infinity);
      await page.selectOption("#throttle", "1");
      await rateBetween(page, "AAPL", 1, 2);
      // Conflated quotes leave seq gaps: the Gaps column shows them.
      await page.waitForSelector(`${cell("AAPL", "gap")}.has`, { timeout: T_DATA });
      assert.match(await page.textContent(cell("AAPL", "gap")), /\d/);
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-throttled.png") });
      await page.selectOption("#throttle", "off");
      await rateBetween(page, "AAPL", 5, Infinity);
      const stored = await page.evaluate(() => localStorage.getItem("tickwire.dashboard.max_hz"));
      assert.equal(stored, "off");
    });

    await step(t, () => page, "broker killed: reconnecting; restarted on the same port: live again", async () => {
      const before = await numberIn(page, "AAPL", "bid");
      // The page's connection is the JavaScript client (clients/js).
      const epochBefore = await page.evaluate(() => window.tickwireDashboard.client.epoch);
      assert.match(epochBefore, /^[0-9a-f]{16}$/);
      await stopBroker(broker, "SIGKILL");
      await connState(page, "reconnecting", T_RECONNECT);
      const shown = await page.textContent("#conn-state");
      assert.match(shown, /reconnecting/);

      broker = await startBrokerOnPort(port, { deadlineMs: 20_000 });
      assert.equal(portOf(broker.wsAddr), port);
      await connState(page, "live", T_RECONNECT);
      // Resubscribed: prices move again (a new demo feed, new epoch).
      const after = await changes(page, "AAPL", "bid", before, T_RECONNECT);
      await changes(page, "AAPL", "bid", after);
      await changes(page, "BTC-USD", "last", await numberIn(page, "BTC-USD", "last"));
      // A new epoch: seq restarted at 1, which is not a gap; the Gaps column
      // (which the throttle step filled) starts over.
      const epochAfter = await page.evaluate(() => window.tickwireDashboard.client.epoch);
      assert.notEqual(epochAfter, epochBefore);
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "0", cell("AAPL", "gap"), {
        timeout: T_DATA,
        polling: 100,
      });
    });

    await step(t, () => page, "screenshot", async () => {
      if (process.env.UPDATE_SCREENSHOT === "1") {
        // For docs/dashboard.png: a fuller watchlist and a longer sparkline.
        await addTicker(page, "ETH-USD NVDA MSFT TSLA SPY GBPUSD XAUUSD");
        await numberIn(page, "XAUUSD", "last");
        await page.waitForFunction(
          () => document.querySelector("#spark-p50").getAttribute("points").split(" ").length >= 30,
          null,
          { timeout: 90_000, polling: 500 },
        );
      }
      // Let the per-second figures (msg/s, latency, Upd/s) fill in.
      await page.waitForFunction(
        () => Number(document.querySelector("#msg-rate").textContent) > 0 &&
          /ms|s$/.test(document.querySelector("#lat-p50").textContent),
        null,
        { timeout: T_DATA, polling: 250 },
      );
      await page.focus("#add-input");
      const file = path.join(ARTIFACTS, "dashboard.png");
      // The header, the watchlist and the table, without the empty space below.
      const table = await page.locator("#quotes").boundingBox();
      await page.screenshot({ path: file, clip: { x: 0, y: 0, width: 1280, height: Math.min(720, Math.ceil(table.y + table.height + 20)) } });
      if (process.env.UPDATE_SCREENSHOT === "1") {
        copyFileSync(file, path.join(REPO, "docs", "dashboard.png"));
      }
    });

    await step(t, () => page, "every ticker (~1,000 quotes/s): keeps up, no layout shift", async () => {
      await addTicker(page, "*");
      // Every demo ticker has a row (snapshot), and the page takes the full
      // feed: the demo publishes 1,000 quotes/s in total.
      await page.waitForFunction(() => document.querySelectorAll("#rows tr[data-topic]").length >= 45, null, {
        timeout: T_DATA,
      });
      // The feed publishes 1,000 quotes/s; the bar is lower so a loaded
      // machine does not fail the test, but the page must clearly keep up.
      await page.waitForFunction(() => Number(document.querySelector("#msg-rate").textContent) >= 300, null, {
        timeout: T_DATA,
        polling: 250,
      });
      const start = await page.evaluate(() => ({ t: performance.now(), n: window.tickwireDashboard.stats.quotes }));
      // A 3-second window of pure streaming (a measurement window, not a sync).
      await page.waitForFunction((t0) => performance.now() > t0 + 3000, start.t, { timeout: T_DATA, polling: 250 });
      const end = await page.evaluate(() => ({ t: performance.now(), n: window.tickwireDashboard.stats.quotes }));
      const shifts = await page.evaluate((t0) => window.__shifts.filter((s) => s.t >= t0), start.t);
      const total = shifts.reduce((a, s) => a + s.value, 0);
      assert.equal(total, 0, `layout shifts while streaming: ${JSON.stringify(shifts)}`);
      const rate = ((end.n - start.n) * 1000) / (end.t - start.t);
      assert.ok(rate >= 300, `quotes/s taken by the page over 3 s: ${rate.toFixed(0)}`);
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-all.png"), fullPage: true });
    });

    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, "failure.png") }).catch(() => {});
    throw e;
  } finally {
    writeFileSync(path.join(ARTIFACTS, "broker.log"), broker.log.join("\n") + "\n");
    if (browser) await browser.close().catch(() => {});
    await stopBroker(broker);
  }
});
