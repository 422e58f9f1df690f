// tickwire dashboard: live quotes over /ws in binary mode (or over /sse,
// Server-Sent Events, where the WebSocket does not get through).
//
// Plain ES modules, no build step. They are served by the broker
// (crates/broker/src/session/http.rs) next to the JavaScript client
// (clients/js/src/tickwire-client.js, served as /tickwire-client.js, with its
// parts and its decoder /tickwire-decoder.js); see clients/js/README.md for
// the client and docs/protocol.md for the wire protocol. This one (app.js,
// loaded by index.html) wires the client to the page:
//   page.js       the page's elements, the connection badge, the message line
//   table.js      the quote table: one row per topic (with its sparkline),
//                 rendered per frame
//   watchlist.js  the watched tickers and patterns, as chips
//   settings.js   what is kept in localStorage / sessionStorage
//   latency.js    end-to-end latency: p50 / p99 and the sparkline
//   format.js     number formatting
//
// How it works:
// - The connection is a TickwireClient (binary format: seq/ts as exact
//   BigInt): it connects, reconnects, sends the token, keeps the
//   subscriptions and restores them on every reconnect, and tracks gaps.
//   The page is the UI on top of its events.
// - Gaps (the client's `gap` events): per topic the client keeps the last
//   seq seen; a quote with seq <= last is a repeat (e.g. a snapshot of a quote
//   already received) and dropped; a jump of more than 1 counts the skipped
//   quotes in the Gaps column (conflation by the broker, or quotes missed
//   while disconnected that the broker could not replay). seq numbering
//   restarts when the broker restarts, which the `epoch` in every
//   `subscribed` reply tells: the client then resets its tracking and the
//   page every row's gap count.
// - Resume (the client's, protocol v1.2): after a reconnect the client asks
//   the broker for the quotes missed meanwhile (`since`), so rows and
//   sparklines continue without a hole; topics it cannot resume get the
//   snapshot (and a gap).
// - Sparklines: the watchlist is subscribed with `rewind: REWIND` (in place
//   of the one-quote snapshot), so each row's trend line opens with the
//   broker's recent history, then follows every quote. Quotes older than the
//   subscribe (rewound, or replayed after a reconnect) are history: drawn,
//   but not latency samples and not counted in Upd/s. A broker without
//   `rewind` sends the snapshot instead: the line starts from there.
// - Reconnect (the client's): exponential backoff (0.5 s doubling up to 10 s)
//   with jitter (each delay drawn from [d/2, d]), shown as "reconnecting…";
//   the backoff resets once the new connection has answered.
// - Fewer bytes (protocol v1.2): the client asks for field deltas by
//   default (`delta=1`: the broker sends only the fields that changed) and
//   hands the page full quotes, rebuilt, with the same events as without
//   deltas; the browser offers permessage-deflate by itself. So every
//   `quote` event here is a whole quote, and `message` (counted in msg/s)
//   is one per message received, delta or not.
// - Transport (the client's): where the WebSocket does not open (a proxy
//   that does not pass the upgrade, e.g. nginx with a plain proxy_pass), the
//   client goes on over Server-Sent Events (GET /sse) with the same events,
//   and moves back to the WebSocket once it gets through. The header shows
//   which one (WebSocket / SSE). Over SSE every watched entry shares one
//   max_hz (the throttle selector sets it for all), and the probe below is
//   not needed (a broker with /sse has max_hz).
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

import { TickwireClient } from "./tickwire-client.js";
import { decimalsOf, fin, nowMs, refPrice } from "./format.js";
import { addLatency, tickLatency } from "./latency.js";
import { el, setState, setTransport, showMessage } from "./page.js";
import { loadThrottle, loadToken, saveThrottle, saveToken } from "./settings.js";
import { addPoint, ensureRow, markDirty, rows, tickRows } from "./table.js";
import {
  addEntries,
  ensureExactRows,
  isWatched,
  renderChips,
  setWatchlistHandlers,
  unwatch,
  watchlist,
} from "./watchlist.js";

const PROBE_TOPIC = "tickwire.dashboard.max_hz-probe";
/** Quotes of history per topic asked on subscribe, for the sparklines (the broker keeps 64 by default). */
const REWIND = 64;
const BACKOFF = { initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.5 };

// ---------------------------------------------------------------- state ----

let throttle = loadThrottle(); // "off" | "10" | "4" | "1"
let token = loadToken(); // JWT for `auth`, or ""
let entitled = false; // the broker checks entitlements (a token was used)

let ready = false; // probe answered and watchlist subscribed on this connection
let everConnected = false;
let retryAttempt = 0; // the client's attempt number of the pending retry
let maxHzSupported = false;

let msgCount = 0;
// Quotes whose producer timestamp is older than this (ms since the epoch)
// are history (rewound or replayed): no latency sample, not in Upd/s.
let liveSince = 0;
// Totals since the page loaded, for the console and the browser tests.
const stats = { messages: 0, quotes: 0, reconnects: 0 };

// --------------------------------------------------------- connection ----

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
  liveSince = nowMs();
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
client.on("transport", ({ transport }) => setTransport(transport));
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
  else if (e.code === "bad_delta") showMessage(`A field delta from the broker did not apply (${e.topics?.join(", ") ?? "?"}): reconnecting.`);
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
  // Over SSE: /sse came with max_hz (protocol v1.2), and there is no
  // request of its own to probe with.
  const ok = client.transport === "sse" ? true : await probeMaxHz();
  if (ok === null) return; // this connection is gone
  maxHzSupported = ok;
  el.throttleBox.hidden = !ok;
  document.body.dataset.maxHz = ok ? "supported" : "unsupported";
  ready = true;
  for (const row of rows.values()) row.latencyArmed = false;
  ensureExactRows();
  subscribe(watchlist.filter((e) => !client.has(e)), "all");
  // (Over SSE the connection opens once the stream these make is answered.)
  if (client.state === "open") setState("live", client.epoch ? `epoch ${client.epoch}` : "");
}

/** Whether the broker takes max_hz (see the top of this file); null: the connection is gone. */
async function probeMaxHz() {
  try {
    // retry: false — a probe belongs to this connection; the next one probes again.
    await client.subscribe([PROBE_TOPIC], { snapshot: false, maxHz: 1, retry: false });
  } catch (e) {
    if (e.code === "disconnected" || e.code === "closed") return null;
    // not_authorized: the broker parsed max_hz, then checked entitlements.
    if (e.code !== "not_authorized") return false;
    entitled = true;
    return true;
  }
  client.unsubscribe([PROBE_TOPIC], { retry: false }).catch(() => {});
  return true;
}

function subscribe(entries, kind, snapshot = true) {
  if (!entries.length) return;
  // Under entitlements, one request per entry: a refusal names one entry
  // and takes nothing else down with it.
  const groups = entitled ? entries.map((e) => [e]) : [entries];
  const maxHz = maxHzSupported && throttle !== "off" ? Number(throttle) : undefined;
  // With a snapshot: the recent history instead (the broker refuses rewind with snapshot:false).
  const rewind = snapshot ? REWIND : undefined;
  liveSince = nowMs();
  for (const group of groups) {
    client.subscribe(group, { snapshot, maxHz, rewind }).then(
      () => setState("live", client.epoch ? `epoch ${client.epoch}` : ""),
      (e) => {
        if (!e.reply) return; // the client was closed, or no answer in time
        showMessage(`Subscribe refused (${e.code}): ${e.message}`);
        if (kind === "add") {
          // Refused as a whole: take the entries back out of the list.
          unwatch(group);
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
  row.decimals = Math.min(8, Math.max(row.decimals, decimalsOf(m.bid), decimalsOf(m.ask), decimalsOf(m.last)));
  const price = refPrice(m);
  if (!fin(row.first)) row.first = price;
  addPoint(row, price);
  if (m.tsMs >= liveSince) {
    row.count++;
    if (row.latencyArmed) addLatency(nowMs() - m.tsMs);
    row.latencyArmed = true;
  }
  markDirty(row);
}

function onGap(g) {
  if (!isWatched(g.topic)) return;
  const row = ensureRow(g.topic);
  row.gaps += g.missed;
  row.lastGapAt = nowMs();
  markDirty(row);
}

// ------------------------------------------------------ 1-second tick ----

function tick() {
  el.msgRate.textContent = String(msgCount);
  msgCount = 0;
  tickLatency();
  tickRows();
  showRetry();
}

// ---------------------------------------------------------------- wire ----

setWatchlistHandlers({
  added: (fresh) => {
    if (ready) subscribe(fresh, "add");
  },
  removed: (entry) => {
    // Always: the client forgets the entry at once (no resubscription on a
    // reconnect), and sends the unsubscribe now or on the next connection.
    client.unsubscribe([entry]).catch((e) => {
      if (e.reply) showMessage(`Broker error: ${e.code}: ${e.message}`);
    });
  },
});

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
  saveToken(token);
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
  saveThrottle(throttle);
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
