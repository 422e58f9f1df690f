// tickwire dashboard: live quotes over /ws in binary mode.
//
// Plain ES module, no build step. It is served by the broker
// (crates/broker/src/session/http.rs) next to the JavaScript client
// (clients/js/src/tickwire-client.js, served as /tickwire-client.js) and its
// decoder (/tickwire-decoder.js); see clients/js/README.md for the client and
// docs/protocol.md for the wire protocol.
//
// How it works:
// - The connection is a TickwireClient (binary format: seq/ts as exact
//   BigInt): it connects, reconnects, sends the token, keeps the
//   subscriptions and restores them on every reconnect, and tracks gaps.
//   This file is the UI on top of its events.
// - Incoming quotes only update the in-memory model (one Row per topic) and
//   mark the row dirty; the DOM is written once per animation frame for the
//   dirty rows only, and only the cells whose text changed. Header figures
//   (msg/s, latency, per-row rates) are computed once a second. Columns have
//   fixed widths and numbers use tabular figures, so nothing moves at
//   1,000+ updates/s.
// - The watchlist (tickers and `PREFIX*` patterns) lives in localStorage and
//   is subscribed with snapshot:true, so rows fill at once; the client
//   resubscribes it (with snapshots) on every reconnect.
//   On a first visit (nothing saved) it is DEFAULT_WATCHLIST, the demo feed's
//   best-known tickers, so the page is live without typing; once the user
//   changes the list, their own list (even an empty one) is saved and wins.
// - Gaps (the client's `gap` events): per topic the client keeps the last
//   seq seen; a quote with seq <= last is a repeat (e.g. a snapshot of a quote
//   already received) and dropped; a jump of more than 1 counts the skipped
//   quotes in the Gaps column (conflation by the broker, or quotes missed
//   while disconnected). seq numbering restarts when the broker restarts,
//   which the `epoch` in every `subscribed` reply tells: the client then
//   resets its tracking and the page every row's gap count.
// - Reconnect (the client's): exponential backoff (0.5 s doubling up to 10 s)
//   with jitter (each delay drawn from [d/2, d]), shown as "reconnecting…";
//   the backoff resets once the new connection has answered.
//
// Entitlements: with a token in the token field (kept in sessionStorage, so
// it goes with the tab), the client sends {"op":"auth","token":...} first on
// every connect; the broker's `authed` reply says until when. Under
// entitlements the watchlist is subscribed one entry per request, so one
// ticker the user is not entitled to does not refuse the others (a request is
// all or nothing; the client's resubscription retries a refused group one
// entry at a time for the same reason). A `not_authorized` refusal of the
// max_hz probe still proves max_hz is understood (it is checked before
// entitlements).
//
// max_hz detection (throttle selector): the broker may not support `max_hz`
// yet; an old release answers a subscribe that carries one with
// {"type":"error","code":"bad_request","message":"max_hz is not supported yet"}.
// So right after each connect (the client's beforeResubscribe hook: after the
// token, before the watchlist), the page sends ONE probe:
// {"op":"subscribe","topics":[PROBE_TOPIC],"snapshot":false,"max_hz":1}
// to a dummy topic nobody publishes. If the reply is `subscribed`, max_hz is
// supported: the selector is shown and the probe is unsubscribed at once.
// If the reply is an error, the selector stays hidden and subscribes never
// carry max_hz. (Each probe on an old broker counts once in
// tickwire_request_errors_total{code="bad_request"}.) The probe runs on every
// connect because a reconnect may reach an upgraded or downgraded broker.

import { TickwireClient, entryMatches as matches } from "./tickwire-client.js";

const WATCHLIST_KEY = "tickwire.dashboard.watchlist";
const DEFAULT_WATCHLIST = ["AAPL", "MSFT", "NVDA", "BTC-USD", "ETH-USD", "EURUSD"];
const THROTTLE_KEY = "tickwire.dashboard.max_hz";
const TOKEN_KEY = "tickwire.dashboard.token";
const PROBE_TOPIC = "tickwire.dashboard.max_hz-probe";
const TOPIC_RE = /^[A-Za-z0-9._:/-]{1,64}$/;
const PATTERN_RE = /^[A-Za-z0-9._:/-]{0,63}\*$/;
const BACKOFF = { initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 };
const GAP_HIGHLIGHT_MS = 3_000;
const SPARK_POINTS = 60;
const MAX_LATENCY_SAMPLES = 20_000; // per second; beyond that, reservoir sampling
const reducedMotion = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;

const $ = (id) => document.getElementById(id);
const el = {
  state: $("conn-state"),
  detail: $("conn-detail"),
  msgRate: $("msg-rate"),
  p50: $("lat-p50"),
  p99: $("lat-p99"),
  sparkP50: $("spark-p50"),
  sparkP99: $("spark-p99"),
  throttleBox: $("throttle-box"),
  throttle: $("throttle"),
  form: $("add-form"),
  input: $("add-input"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  authState: $("auth-state"),
  message: $("message"),
  chips: $("watchlist"),
  table: $("quotes"),
  tbody: $("rows"),
};
const emptyRow = el.tbody.querySelector("tr.empty");

// ---------------------------------------------------------------- state ----

let watchlist = loadWatchlist(); // entries as typed: "AAPL", "BTC*"
let throttle = loadThrottle(); // "off" | "10" | "4" | "1"
let token = loadToken(); // JWT for `auth`, or ""
let entitled = false; // the broker checks entitlements (a token was used)

const rows = new Map(); // topic -> Row
const sortedTopics = []; // display order

let ready = false; // probe answered and watchlist subscribed on this connection
let everConnected = false;
let retryAttempt = 0; // the client's attempt number of the pending retry
let maxHzSupported = false;

let msgCount = 0;
// Totals since the page loaded, for the console and the browser tests.
const stats = { messages: 0, quotes: 0, reconnects: 0 };
let latSamples = [];
let latSeen = 0; // samples offered this second (for the reservoir)
const latHistory = []; // [{p50, p99}] per second, null when no samples

// ------------------------------------------------------------- helpers ----

function loadWatchlist() {
  try {
    const saved = localStorage.getItem(WATCHLIST_KEY);
    if (saved === null) return [...DEFAULT_WATCHLIST];
    const v = JSON.parse(saved);
    return Array.isArray(v) ? [...new Set(v.filter((t) => typeof t === "string" && isValidEntry(t)))] : [];
  } catch {
    return [...DEFAULT_WATCHLIST];
  }
}

function saveWatchlist() {
  try {
    localStorage.setItem(WATCHLIST_KEY, JSON.stringify(watchlist));
  } catch {
    /* private mode or quota: the list still works for this page */
  }
}

function loadToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

function saveToken() {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* private mode: the token still works for this page */
  }
}

function loadThrottle() {
  try {
    const v = localStorage.getItem(THROTTLE_KEY);
    return ["off", "10", "4", "1"].includes(v) ? v : "off";
  } catch {
    return "off";
  }
}

function isValidEntry(s) {
  return TOPIC_RE.test(s) || PATTERN_RE.test(s);
}

function isWatched(topic) {
  return watchlist.some((e) => matches(e, topic));
}

function nowMs() {
  return performance.timeOrigin + performance.now();
}

function fin(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** Decimal places of the shortest representation of x (display precision). */
function decimalsOf(x) {
  if (!fin(x)) return 0;
  const s = String(Math.abs(x));
  if (s.includes("e")) return 8;
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

const MINUS = "\u2212";

function fmtPx(x, decimals) {
  if (!fin(x)) return "\u2014";
  const s = x.toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
  return s.replace("-", MINUS);
}

function fmtSigned(x, decimals, suffix = "") {
  if (!fin(x)) return "\u2014";
  const abs = Math.abs(x).toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
  if (Number(abs.replace(/,/g, "")) === 0) return `0${decimals ? "." + "0".repeat(decimals) : ""}${suffix}`;
  return (x > 0 ? "+" : MINUS) + abs + suffix;
}

const volFull = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const volCompact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 3 });
function fmtVol(x) {
  if (!fin(x)) return "\u2014";
  return Math.abs(x) >= 1e9 ? volCompact.format(x) : volFull.format(x);
}

function fmtLatency(ms) {
  if (ms === null || !Number.isFinite(ms)) return "\u2014";
  if (Math.abs(ms) < 1) return `${ms.toFixed(2)} ms`;
  if (Math.abs(ms) < 100) return `${ms.toFixed(1)} ms`;
  if (Math.abs(ms) < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

let messageTimer = null;
function showMessage(text, kind = "error") {
  el.message.textContent = text;
  el.message.className = `message${kind === "info" ? " info" : ""}`;
  clearTimeout(messageTimer);
  if (text) messageTimer = setTimeout(() => showMessage(""), kind === "info" ? 5000 : 12000);
}

// ---------------------------------------------------------------- rows ----

class Row {
  constructor(topic) {
    this.topic = topic;
    this.q = null; // latest accepted quote
    this.first = NaN; // reference price when first seen (last, else mid)
    this.gaps = 0; // quotes skipped (seq gaps) in this epoch
    this.lastGapAt = 0;
    this.count = 0; // quotes this second
    this.rate = 0; // quotes in the last full second
    this.decimals = 2;
    // The first quote after a (re)subscribe may be a snapshot, possibly old:
    // it is not a latency sample.
    this.latencyArmed = false;

    const tr = document.createElement("tr");
    tr.dataset.topic = topic;
    const mk = (cls, text = "\u2014") => {
      const td = document.createElement("td");
      td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
      return { td, text, value: NaN, cls, extra: null, flash: null, flashUntil: 0 };
    };
    const sym = mk("sym", topic);
    sym.td.title = topic;
    this.cells = {
      bid: mk("bid"),
      ask: mk("ask"),
      spread: mk("spread"),
      last: mk("last"),
      chg: mk("chg"),
      pct: mk("pct"),
      vol: mk("vol"),
      rate: mk("rate", "0"),
      gap: mk("gap", "0"),
    };
    this.tr = tr;
  }
}

function ensureRow(topic) {
  let row = rows.get(topic);
  if (row) return row;
  row = new Row(topic);
  rows.set(topic, row);
  // Sorted insert (binary search) so the order is stable and predictable.
  let lo = 0;
  let hi = sortedTopics.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedTopics[mid] < topic) lo = mid + 1;
    else hi = mid;
  }
  const before = lo < sortedTopics.length ? rows.get(sortedTopics[lo]).tr : null;
  sortedTopics.splice(lo, 0, topic);
  el.tbody.insertBefore(row.tr, before);
  if (emptyRow.isConnected) emptyRow.remove();
  scheduleChips();
  return row;
}

function dropRow(topic) {
  const row = rows.get(topic);
  if (!row) return;
  rows.delete(topic);
  dirty.delete(row);
  for (const c of Object.values(row.cells)) flashing.delete(c);
  const i = sortedTopics.indexOf(topic);
  if (i >= 0) sortedTopics.splice(i, 1);
  row.tr.remove();
  if (rows.size === 0) el.tbody.appendChild(emptyRow);
  scheduleChips();
}

/** Rows for exact tickers exist at once (values "—" until a quote comes). */
function ensureExactRows() {
  for (const e of watchlist) if (!e.endsWith("*")) ensureRow(e);
}

// ------------------------------------------------------- render (rAF) ----

const dirty = new Set();
let rafPending = false;

function markDirty(row) {
  dirty.add(row);
  if (!rafPending) {
    rafPending = true;
    requestAnimationFrame(flush);
  }
}

function flush(ts) {
  rafPending = false;
  frameNow = ts;
  const now = nowMs();
  for (const row of dirty) renderRow(row, now);
  dirty.clear();
  endFlashes();
  if (flashing.size && !rafPending) {
    rafPending = true;
    requestAnimationFrame(flush);
  }
}

// Flashes are a class held for FLASH_MS after an up/down tick, not a CSS
// animation: a cell repaints when it changes and once when the flash ends,
// instead of on every frame of a fade (which, with every cell of a busy
// table fading at once, costs more than everything else together).
const FLASH_MS = 300;
const flashing = new Set(); // cells with a flash class on
let frameNow = 0;

function applyClass(cell) {
  let full = cell.cls;
  if (cell.extra) full += ` ${cell.extra}`;
  if (cell.flash) full += ` ${cell.flash}`;
  if (cell.td.className !== full) cell.td.className = full;
}

/**
 * Writes a cell only if its text changed. With `tick`, a numeric rise or
 * fall flashes the cell green/red and colours its text by the last move.
 */
function setCell(cell, text, value, { tick = false, cls = null } = {}) {
  if (cell.text !== text) {
    cell.td.textContent = text;
    cell.text = text;
  }
  if (tick) {
    if (fin(value) && fin(cell.value) && value !== cell.value) {
      const up = value > cell.value;
      cell.extra = up ? "up" : "down";
      if (!reducedMotion) {
        cell.flash = up ? "fu" : "fd";
        cell.flashUntil = frameNow + FLASH_MS;
        flashing.add(cell);
      }
    }
  } else {
    cell.extra = cls;
  }
  applyClass(cell);
  cell.value = value;
}

function endFlashes() {
  for (const cell of flashing) {
    if (frameNow >= cell.flashUntil) {
      cell.flash = null;
      applyClass(cell);
      flashing.delete(cell);
    }
  }
}

function renderRow(row, now) {
  const c = row.cells;
  const q = row.q;
  if (q) {
    const d = row.decimals;
    setCell(c.bid, fmtPx(q.bid, d), q.bid, { tick: true });
    setCell(c.ask, fmtPx(q.ask, d), q.ask, { tick: true });
    const spread = fin(q.bid) && fin(q.ask) ? q.ask - q.bid : NaN;
    setCell(c.spread, fmtPx(spread, d), spread);
    setCell(c.last, fmtPx(q.last, d), q.last, { tick: true });
    const ref = refPrice(q);
    const chg = fin(ref) && fin(row.first) ? ref - row.first : NaN;
    const pct = fin(chg) && row.first !== 0 ? (chg / row.first) * 100 : NaN;
    const sign = (x) => (!fin(x) || x === 0 ? null : x > 0 ? "up" : "down");
    setCell(c.chg, fmtSigned(chg, d), chg, { cls: sign(chg) });
    setCell(c.pct, fmtSigned(pct, 2, "%"), pct, { cls: sign(pct) });
    setCell(c.vol, fmtVol(q.volume), q.volume);
  }
  setCell(c.rate, String(row.rate), row.rate);
  const recent = row.gaps > 0 && now - row.lastGapAt < GAP_HIGHLIGHT_MS;
  setCell(c.gap, row.gaps > 0 ? `\u26A1${row.gaps}` : "0", row.gaps, {
    cls: row.gaps === 0 ? null : recent ? "has recent" : "has",
  });
  const title = row.gaps > 0 ? `${row.gaps} quote(s) skipped (seq gaps): conflated by the broker or missed while disconnected` : "";
  if (c.gap.td.title !== title) c.gap.td.title = title;
}

function refPrice(q) {
  if (fin(q.last)) return q.last;
  if (fin(q.bid) && fin(q.ask)) return (q.bid + q.ask) / 2;
  return NaN;
}

// ---------------------------------------------------------- watchlist ----

let chipsPending = false;
function scheduleChips() {
  if (chipsPending) return;
  chipsPending = true;
  queueMicrotask(() => {
    chipsPending = false;
    renderChips();
  });
}

function renderChips() {
  const focused = document.activeElement?.closest?.("li.chip")?.dataset.entry;
  el.chips.replaceChildren(
    ...watchlist.map((entry) => {
      const li = document.createElement("li");
      li.className = "chip";
      li.dataset.entry = entry;
      const name = document.createElement("span");
      name.textContent = entry;
      li.appendChild(name);
      if (entry.endsWith("*")) {
        let n = 0;
        for (const t of rows.keys()) if (matches(entry, t)) n++;
        const count = document.createElement("span");
        count.className = "count";
        count.textContent = `(${n})`;
        li.appendChild(count);
      }
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = "\u00D7";
      btn.title = `Remove ${entry}`;
      btn.setAttribute("aria-label", `Remove ${entry}`);
      btn.addEventListener("click", () => removeEntry(entry));
      li.appendChild(btn);
      return li;
    }),
  );
  if (focused) el.chips.querySelector(`li.chip[data-entry="${CSS.escape(focused)}"] button`)?.focus();
}

function addEntries(text) {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const bad = parts.filter((p) => !isValidEntry(p));
  if (bad.length) {
    showMessage(
      `Invalid ticker ${JSON.stringify(bad[0])}: use 1–64 characters of A–Z a–z 0–9 . _ - : / with an optional trailing * (e.g. BTC*).`,
    );
    return false;
  }
  const fresh = [...new Set(parts)].filter((p) => !watchlist.includes(p));
  if (!fresh.length) {
    if (parts.length) showMessage(`Already watching ${parts.join(", ")}.`, "info");
    return parts.length > 0;
  }
  watchlist.push(...fresh);
  saveWatchlist();
  ensureExactRows();
  renderChips();
  if (ready) subscribe(fresh, "add");
  showMessage("");
  return true;
}

function removeEntry(entry) {
  const i = watchlist.indexOf(entry);
  if (i < 0) return;
  // Keep keyboard focus in the list: next chip, else previous, else the input.
  const buttons = [...el.chips.querySelectorAll("button")];
  const hadFocus = buttons.indexOf(document.activeElement);
  watchlist.splice(i, 1);
  saveWatchlist();
  // Always: the client forgets the entry at once (no resubscription on a
  // reconnect), and sends the unsubscribe now or on the next connection.
  client.unsubscribe([entry]).catch((e) => {
    if (e.reply) showMessage(`Broker error: ${e.code}: ${e.message}`);
  });
  for (const t of [...rows.keys()]) if (!isWatched(t)) dropRow(t);
  renderChips();
  if (hadFocus >= 0) {
    const rest = el.chips.querySelectorAll("button");
    (rest[Math.min(hadFocus, rest.length - 1)] ?? el.input).focus();
  }
}

// --------------------------------------------------------- connection ----

function setState(state, detail = "") {
  const label = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" }[state] ?? state;
  if (el.state.dataset.state !== state) {
    el.state.dataset.state = state;
    el.state.textContent = label;
    document.title = state === "live" ? "tickwire · live quotes" : `tickwire · ${label}`;
    el.table.classList.toggle("stale", state !== "live");
  }
  if (el.detail.textContent !== detail) el.detail.textContent = detail;
}

function wsUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "?format=binary";
  return url.href;
}

const client = new TickwireClient(wsUrl(), {
  format: "binary",
  // Read at every (re)connect: the token field's current value.
  token: () => token,
  refreshToken: false, // a pasted token cannot be refreshed
  backoff: BACKOFF,
  beforeResubscribe: onConnected,
  autoConnect: false,
});
// Totals since the page loaded, for the console and the browser tests.
window.tickwireDashboard = { stats, client };

client.on("connecting", ({ attempt }) => {
  ready = false;
  setState(everConnected ? "reconnecting" : "connecting", attempt > 1 ? `attempt ${attempt}…` : "");
});
client.on("open", () => {
  everConnected = true;
  setState("live", "subscribing…");
});
client.on("closed", () => {
  ready = false;
  stats.reconnects++;
});
client.on("reconnecting", ({ attempt }) => {
  retryAttempt = attempt;
  showRetry();
});
client.on("message", () => {
  msgCount++;
  stats.messages++;
});
client.on("quote", onQuote);
client.on("gap", onGap);
client.on("epoch", ({ previous }) => {
  if (previous === null) return;
  // The broker restarted: seq numbering starts again at 1 (the client has
  // reset its tracking); so do the gap counts.
  for (const row of rows.values()) {
    row.gaps = 0;
    markDirty(row);
  }
});
client.on("authed", onAuthed);
client.on("unsubscribed", (m) => {
  // The broker removed entries itself: a refreshed token no longer covers them.
  showMessage(`No longer entitled to ${m.topics.join(", ")} (${m.reason}).`);
});
client.on("error", (e) => {
  if (e.code === "bad_message") showMessage(`Undecodable message from the broker: ${e.message}`);
  else if (e.op === "auth") authRefused(e);
  else if (e.op === "subscribe" && e.reply) showMessage(`Subscribe refused (${e.code}): ${e.message}`);
  else showMessage(`Broker error: ${e.code}: ${e.message}`);
});

function showRetry() {
  const at = client.retryAt;
  if (client.state !== "reconnecting" || at === null) return;
  const s = Math.max(0, (at - Date.now()) / 1000);
  setState(everConnected ? "reconnecting" : "connecting", `retry ${retryAttempt} in ${s.toFixed(1)} s`);
}

// Back online (laptop lid, Wi-Fi): try now instead of waiting out the backoff.
window.addEventListener("online", () => client.reconnectNow());

/**
 * On every connect, after the token went out and before the client restores
 * the subscriptions it already has: the max_hz probe, then the watchlist
 * entries the client does not have yet (all of them on the first connect).
 */
async function onConnected() {
  let ok;
  try {
    // retry: false — a probe belongs to this connection; the next one probes again.
    await client.subscribe([PROBE_TOPIC], { snapshot: false, maxHz: 1, retry: false });
    ok = true;
  } catch (e) {
    if (e.code === "disconnected" || e.code === "closed") return; // this connection is gone
    // not_authorized: the broker parsed max_hz, then checked entitlements.
    ok = e.code === "not_authorized";
    if (ok) entitled = true;
  }
  maxHzSupported = ok;
  el.throttleBox.hidden = !ok;
  document.body.dataset.maxHz = ok ? "supported" : "unsupported";
  if (ok) client.unsubscribe([PROBE_TOPIC], { retry: false }).catch(() => {});
  ready = true;
  for (const row of rows.values()) row.latencyArmed = false;
  ensureExactRows();
  subscribe(watchlist.filter((e) => !client.has(e)), "all");
  setState("live", client.epoch ? `epoch ${client.epoch}` : "");
}

function subscribe(entries, kind, snapshot = true) {
  if (!entries.length) return;
  // Under entitlements, one request per entry: a refusal names one entry
  // and takes nothing else down with it.
  const groups = entitled ? entries.map((e) => [e]) : [entries];
  const maxHz = maxHzSupported && throttle !== "off" ? Number(throttle) : undefined;
  for (const group of groups) {
    client.subscribe(group, { snapshot, maxHz }).then(
      () => setState("live", client.epoch ? `epoch ${client.epoch}` : ""),
      (e) => {
        if (!e.reply) return; // the client was closed, or no answer in time
        showMessage(`Subscribe refused (${e.code}): ${e.message}`);
        if (kind === "add") {
          // Refused as a whole: take the entries back out of the list.
          watchlist = watchlist.filter((w) => !group.includes(w));
          saveWatchlist();
          for (const t of [...rows.keys()]) if (!isWatched(t)) dropRow(t);
          renderChips();
        }
        setState("live", client.epoch ? `epoch ${client.epoch}` : "");
      },
    );
  }
}

function onAuthed(m) {
  entitled = true;
  document.body.dataset.auth = "ok";
  const until = new Date(Number(m.exp) * 1000).toLocaleTimeString();
  el.authState.textContent = `authorized${m.sub ? ` as ${m.sub}` : ""} until ${until}`;
  showMessage("");
}

function authRefused(e) {
  document.body.dataset.auth = "refused";
  el.authState.textContent = "";
  showMessage(`Token refused (${e.code}): ${e.message}`);
}

/** A quote in order (the client dropped repeats and reported gaps before it). */
function onQuote(m) {
  const topic = m.topic;
  // Quotes still in flight for an entry just removed, or for the probe.
  if (!isWatched(topic)) return;
  const row = ensureRow(topic);
  stats.quotes++;
  row.q = m;
  row.count++;
  row.decimals = Math.min(8, Math.max(row.decimals, decimalsOf(m.bid), decimalsOf(m.ask), decimalsOf(m.last)));
  if (!fin(row.first)) row.first = refPrice(m);
  if (row.latencyArmed) addLatency(nowMs() - m.tsMs);
  row.latencyArmed = true;
  markDirty(row);
}

function onGap(g) {
  if (!isWatched(g.topic)) return;
  const row = ensureRow(g.topic);
  row.gaps += g.missed;
  row.lastGapAt = nowMs();
  markDirty(row);
}

function addLatency(ms) {
  if (!Number.isFinite(ms)) return;
  latSeen++;
  if (latSamples.length < MAX_LATENCY_SAMPLES) latSamples.push(ms);
  else {
    const j = Math.floor(Math.random() * latSeen);
    if (j < MAX_LATENCY_SAMPLES) latSamples[j] = ms;
  }
}

// ------------------------------------------------------ 1-second tick ----

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function tick() {
  el.msgRate.textContent = String(msgCount);
  msgCount = 0;

  let point = null;
  if (latSamples.length) {
    const s = Float64Array.from(latSamples).sort();
    point = { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
  }
  latSamples = [];
  latSeen = 0;
  el.p50.textContent = fmtLatency(point?.p50 ?? null);
  el.p99.textContent = fmtLatency(point?.p99 ?? null);
  latHistory.push(point);
  if (latHistory.length > SPARK_POINTS) latHistory.shift();
  drawSpark();

  const now = nowMs();
  for (const row of rows.values()) {
    const gapFading = row.gaps > 0 && now - row.lastGapAt < GAP_HIGHLIGHT_MS + 1000;
    if (row.rate !== row.count || gapFading) markDirty(row);
    row.rate = row.count;
    row.count = 0;
  }
  showRetry();
}

function drawSpark() {
  const w = 120;
  const h = 28;
  const max = Math.max(1, ...latHistory.map((p) => (p ? p.p99 : 0)));
  const line = (key) => {
    const pts = [];
    const offset = SPARK_POINTS - latHistory.length;
    latHistory.forEach((p, i) => {
      if (!p) return;
      const x = ((offset + i) / (SPARK_POINTS - 1)) * w;
      const y = h - 2 - (Math.max(0, p[key]) / max) * (h - 4);
      pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    return pts.join(" ");
  };
  el.sparkP50.setAttribute("points", line("p50"));
  el.sparkP99.setAttribute("points", line("p99"));
}

// ---------------------------------------------------------------- wire ----

el.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (addEntries(el.input.value.trim())) el.input.value = "";
  el.input.focus();
});
el.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") el.input.value = "";
});

el.tokenInput.value = token;
el.tokenForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = el.tokenInput.value.trim();
  saveToken();
  if (!token) {
    el.authState.textContent = "";
    return;
  }
  // Sent on the open connection now (a refresh replaces the grants); the
  // client sends it on every reconnect. Once accepted, subscribe what the
  // old grants refused.
  if (client.state !== "open") return;
  client.auth().then(
    () => {
      if (ready) subscribe(watchlist.filter((e) => !client.has(e)), "resub");
    },
    (e) => {
      if (e.reply) authRefused(e);
    },
  );
});

el.throttle.value = throttle;
el.throttle.addEventListener("change", () => {
  throttle = el.throttle.value;
  try {
    localStorage.setItem(THROTTLE_KEY, throttle);
  } catch {
    /* ignore */
  }
  if (ready && maxHzSupported && watchlist.length) {
    // Subscribing again to an existing entry replaces its options
    // (docs/protocol.md 2.4): the new max_hz, or none for "off".
    subscribe([...watchlist], "resub", false);
  }
});

ensureExactRows();
renderChips();
setInterval(tick, 1000);
client.connect();
