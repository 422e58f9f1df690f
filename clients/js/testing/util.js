// Waiting helpers: every wait is for a condition or an event, with a deadline.
//
// They keep to the real timers, taken when this module loads: a test that
// fakes setTimeout (node:test's `t.mock.timers`) to drive the client's
// backoff and request timers can still wait here for what the client does
// next, and the deadlines still run out in real time.

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/** The next `type` event of `emitter` for which `pred` holds; rejects after `timeoutMs`. */
export function nextEvent(emitter, type, pred = () => true, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = realSetTimeout(() => {
      off();
      reject(new Error(`no "${type}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = emitter.on(type, (ev) => {
      if (!pred(ev)) return;
      realClearTimeout(timer);
      off();
      resolve(ev);
    });
  });
}

/**
 * Resolves once `cond()` is true, checked after every event loop turn
 * (setImmediate) and every 5 ms; rejects with `what` after `timeoutMs`.
 */
export async function waitFor(cond, what = "condition", timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => realSetTimeout(r, 5));
  }
}

/** Collects every event of the given types into arrays: {quote: [...], gap: [...], ...}. */
export function record(emitter, types) {
  const out = {};
  for (const t of types) {
    out[t] = [];
    emitter.on(t, (ev) => out[t].push(ev));
  }
  return out;
}
