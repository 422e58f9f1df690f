// settings.js — what the dashboard keeps in the browser's storage (see
// app.js): the watchlist and the max rate in localStorage, the access token
// in sessionStorage (it goes with the tab). Storage may be unavailable
// (private mode, quota): the values then still work for this page.

const WATCHLIST_KEY = "tickwire.dashboard.watchlist";
const THROTTLE_KEY = "tickwire.dashboard.max_hz";
const TOKEN_KEY = "tickwire.dashboard.token";
/** The watchlist of a first visit: the demo feed's best-known tickers. */
const DEFAULT_WATCHLIST = ["AAPL", "MSFT", "NVDA", "BTC-USD", "ETH-USD", "EURUSD"];
const TOPIC_RE = /^[A-Za-z0-9._:/-]{1,64}$/;
const PATTERN_RE = /^[A-Za-z0-9._:/-]{0,63}\*$/;

/** Whether `s` is a valid watchlist entry: a topic, or a `PREFIX*` pattern. */
export function isValidEntry(s) {
  return TOPIC_RE.test(s) || PATTERN_RE.test(s);
}

/** The saved watchlist (entries as typed: "AAPL", "BTC*"); DEFAULT_WATCHLIST if none was saved. */
export function loadWatchlist() {
  try {
    const saved = localStorage.getItem(WATCHLIST_KEY);
    if (saved === null) return [...DEFAULT_WATCHLIST];
    const v = JSON.parse(saved);
    return Array.isArray(v) ? [...new Set(v.filter((t) => typeof t === "string" && isValidEntry(t)))] : [];
  } catch {
    return [...DEFAULT_WATCHLIST];
  }
}

export function saveWatchlist(watchlist) {
  try {
    localStorage.setItem(WATCHLIST_KEY, JSON.stringify(watchlist));
  } catch {
    /* private mode or quota: the list still works for this page */
  }
}

/** The saved token (a JWT for `auth`), or "". */
export function loadToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* private mode: the token still works for this page */
  }
}

/** The saved max rate: "off" | "10" | "4" | "1". */
export function loadThrottle() {
  try {
    const v = localStorage.getItem(THROTTLE_KEY);
    return ["off", "10", "4", "1"].includes(v) ? v : "off";
  } catch {
    return "off";
  }
}

export function saveThrottle(throttle) {
  try {
    localStorage.setItem(THROTTLE_KEY, throttle);
  } catch {
    /* ignore */
  }
}
