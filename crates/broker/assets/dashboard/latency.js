// latency.js — the dashboard's end-to-end latency figures (see app.js):
// now − ts (the producer's timestamp) of the quotes of the last second, as
// p50 / p99 and a 60-second sparkline.

import { fmtLatency } from "./format.js";
import { el } from "./page.js";

const SPARK_POINTS = 60;
const MAX_LATENCY_SAMPLES = 20_000; // per second; beyond that, reservoir sampling

let latSamples = [];
let latSeen = 0; // samples offered this second (for the reservoir)
const latHistory = []; // [{p50, p99}] per second, null when no samples

/** A latency sample (ms). */
export function addLatency(ms) {
  if (!Number.isFinite(ms)) return;
  latSeen++;
  if (latSamples.length < MAX_LATENCY_SAMPLES) latSamples.push(ms);
  else {
    const j = Math.floor(Math.random() * latSeen);
    if (j < MAX_LATENCY_SAMPLES) latSamples[j] = ms;
  }
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Once a second: the last second's p50 / p99, and the sparkline. */
export function tickLatency() {
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
