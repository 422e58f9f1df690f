// table.js — the dashboard's quote table (see app.js): one Row per topic in
// memory, written to the DOM once per animation frame.
//
// Incoming quotes only update the in-memory model and mark the row dirty;
// the DOM is written once per animation frame for the dirty rows only, and
// only the cells whose text changed. Per-row rates are computed once a
// second (tickRows). Columns have fixed widths and numbers use tabular
// figures, so nothing moves at 1,000+ updates/s.
//
// Trend: each row keeps its last SPARK_POINTS prices (the last price, else
// the mid; addPoint) and draws them as an inline SVG polyline of fixed size,
// redrawn with the row (at most once per animation frame). The page opens
// its subscriptions with `rewind`, so the line starts with recent history.

import { fin, fmtPx, fmtSigned, fmtVol, nowMs, refPrice } from "./format.js";
import { el, emptyRow } from "./page.js";

const GAP_HIGHLIGHT_MS = 3_000;
/** Prices kept per row for its sparkline. */
export const SPARK_POINTS = 120;
const SPARK_W = 80;
const SPARK_H = 20;
const SVG_NS = "http://www.w3.org/2000/svg";
const reducedMotion = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;

export const rows = new Map(); // topic -> Row
const sortedTopics = []; // display order

let rowsChanged = () => {};
/** Calls `fn` whenever a row is added or removed. */
export function onRowsChanged(fn) {
  rowsChanged = fn;
}

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
    this.points = []; // the last SPARK_POINTS prices, oldest first
    this.sparkDirty = false;

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
    const cells = {};
    for (const name of ["bid", "ask", "spread", "last", "chg", "pct"]) cells[name] = mk(name);
    this.spark = sparkCell(tr);
    cells.vol = mk("vol");
    cells.rate = mk("rate", "0");
    cells.gap = mk("gap", "0");
    this.cells = cells;
    this.tr = tr;
  }
}

/** The trend cell: an empty SVG of fixed size, and its polyline. */
function sparkCell(tr) {
  const td = document.createElement("td");
  td.className = "trend";
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "row-spark");
  svg.setAttribute("width", String(SPARK_W));
  svg.setAttribute("height", String(SPARK_H));
  svg.setAttribute("viewBox", `0 0 ${SPARK_W} ${SPARK_H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", "");
  svg.appendChild(line);
  td.appendChild(svg);
  tr.appendChild(td);
  return { svg, line, cls: "" };
}

/** Adds a price to the row's sparkline (non-finite prices are left out); the caller marks the row dirty. */
export function addPoint(row, price) {
  if (!fin(price)) return;
  row.points.push(price);
  if (row.points.length > SPARK_POINTS) row.points.shift();
  row.sparkDirty = true;
}

function drawSpark(row) {
  row.sparkDirty = false;
  const pts = row.points;
  const n = pts.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of pts) {
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  const span = hi - lo;
  const pad = 2;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    // Newest at the right edge; a short history starts part way.
    const x = ((SPARK_POINTS - n + i) / (SPARK_POINTS - 1)) * SPARK_W;
    const y = span > 0 ? pad + ((hi - pts[i]) / span) * (SPARK_H - 2 * pad) : SPARK_H / 2;
    out[i] = `${x.toFixed(1)},${y.toFixed(1)}`;
  }
  row.spark.line.setAttribute("points", out.join(" "));
  const cls = n < 2 || pts[n - 1] === pts[0] ? "row-spark" : pts[n - 1] > pts[0] ? "row-spark up" : "row-spark down";
  if (cls !== row.spark.cls) {
    row.spark.svg.setAttribute("class", cls);
    row.spark.cls = cls;
  }
}

/** The row of `topic`, added (in sorted order) if new. */
export function ensureRow(topic) {
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
  rowsChanged();
  return row;
}

export function dropRow(topic) {
  const row = rows.get(topic);
  if (!row) return;
  rows.delete(topic);
  dirty.delete(row);
  for (const c of Object.values(row.cells)) flashing.delete(c);
  const i = sortedTopics.indexOf(topic);
  if (i >= 0) sortedTopics.splice(i, 1);
  row.tr.remove();
  if (rows.size === 0) el.tbody.appendChild(emptyRow);
  rowsChanged();
}

// ------------------------------------------------------- render (rAF) ----

const dirty = new Set();
let rafPending = false;

/** The row is written on the next animation frame. */
export function markDirty(row) {
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
  if (row.sparkDirty) drawSpark(row);
  setCell(c.rate, String(row.rate), row.rate);
  const recent = row.gaps > 0 && now - row.lastGapAt < GAP_HIGHLIGHT_MS;
  setCell(c.gap, row.gaps > 0 ? `\u26A1${row.gaps}` : "0", row.gaps, {
    cls: row.gaps === 0 ? null : recent ? "has recent" : "has",
  });
  const title = row.gaps > 0 ? `${row.gaps} quote(s) skipped (seq gaps): conflated by the broker or missed while disconnected` : "";
  if (c.gap.td.title !== title) c.gap.td.title = title;
}

/** Once a second: the per-row rates, and the fading of gap highlights. */
export function tickRows() {
  const now = nowMs();
  for (const row of rows.values()) {
    const gapFading = row.gaps > 0 && now - row.lastGapAt < GAP_HIGHLIGHT_MS + 1000;
    if (row.rate !== row.count || gapFading) markDirty(row);
    row.rate = row.count;
    row.count = 0;
  }
}
