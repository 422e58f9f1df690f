// format.js — the dashboard's number formatting (pure functions; see app.js).
//
// Prices keep the decimals the feed uses; negative numbers use a real minus
// sign; missing or non-finite values show as an em dash.

/** Now, in ms since the Unix epoch (sub-millisecond). */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

/** Whether x is a finite number (not null, NaN or ±Infinity). */
export function fin(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** Decimal places of the shortest representation of x (display precision). */
export function decimalsOf(x) {
  if (!fin(x)) return 0;
  const s = String(Math.abs(x));
  if (s.includes("e")) return 8;
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

const MINUS = "\u2212";

export function fmtPx(x, decimals) {
  if (!fin(x)) return "\u2014";
  const s = x.toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
  return s.replace("-", MINUS);
}

export function fmtSigned(x, decimals, suffix = "") {
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
export function fmtVol(x) {
  if (!fin(x)) return "\u2014";
  return Math.abs(x) >= 1e9 ? volCompact.format(x) : volFull.format(x);
}

export function fmtLatency(ms) {
  if (ms === null || !Number.isFinite(ms)) return "\u2014";
  if (Math.abs(ms) < 1) return `${ms.toFixed(2)} ms`;
  if (Math.abs(ms) < 100) return `${ms.toFixed(1)} ms`;
  if (Math.abs(ms) < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The reference price of a quote: the last price, else the mid, else NaN. */
export function refPrice(q) {
  if (fin(q.last)) return q.last;
  if (fin(q.bid) && fin(q.ask)) return (q.bid + q.ask) / 2;
  return NaN;
}
