// watchlist.js — the dashboard's watchlist (see app.js): the tickers and
// `PREFIX*` patterns the page shows, as chips, and their table rows.
//
// It lives in localStorage (settings.js) and is subscribed with
// snapshot:true, so rows fill at once; the client resubscribes it (with
// snapshots) on every reconnect. On a first visit (nothing saved) it is
// the demo feed's best-known tickers, so the page is live without typing;
// once the user changes the list, their own list (even an empty one) is
// saved and wins. Subscribing is app.js's: it is told of entries added and
// removed (setWatchlistHandlers).

import { entryMatches as matches } from "./tickwire-client.js";
import { el, showMessage } from "./page.js";
import { isValidEntry, loadWatchlist, saveWatchlist } from "./settings.js";
import { dropRow, ensureRow, onRowsChanged, rows } from "./table.js";

/** The entries as typed: "AAPL", "BTC*". */
export let watchlist = loadWatchlist();

let handlers = { added: () => {}, removed: () => {} };
/** added(entries): entries were added; removed(entry): an entry was removed. */
export function setWatchlistHandlers({ added, removed }) {
  handlers = { added, removed };
}

export function isWatched(topic) {
  return watchlist.some((e) => matches(e, topic));
}

/** Rows for exact tickers exist at once (values "—" until a quote comes). */
export function ensureExactRows() {
  for (const e of watchlist) if (!e.endsWith("*")) ensureRow(e);
}

function dropUnwatchedRows() {
  for (const t of [...rows.keys()]) if (!isWatched(t)) dropRow(t);
}

let chipsPending = false;
function scheduleChips() {
  if (chipsPending) return;
  chipsPending = true;
  queueMicrotask(() => {
    chipsPending = false;
    renderChips();
  });
}
// A pattern's chip counts its rows.
onRowsChanged(scheduleChips);

export function renderChips() {
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

/** Adds the entries typed (separated by spaces, commas or semicolons); false if there were none or one is invalid. */
export function addEntries(text) {
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
  saveWatchlist(watchlist);
  ensureExactRows();
  renderChips();
  handlers.added(fresh);
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
  saveWatchlist(watchlist);
  handlers.removed(entry);
  dropUnwatchedRows();
  renderChips();
  if (hadFocus >= 0) {
    const rest = el.chips.querySelectorAll("button");
    (rest[Math.min(hadFocus, rest.length - 1)] ?? el.input).focus();
  }
}

/** Takes entries back out of the list (their subscription was refused). */
export function unwatch(entries) {
  watchlist = watchlist.filter((w) => !entries.includes(w));
  saveWatchlist(watchlist);
  dropUnwatchedRows();
  renderChips();
}
