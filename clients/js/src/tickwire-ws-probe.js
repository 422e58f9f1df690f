// tickwire-ws-probe.js — while the client is on SSE (transport "auto", after
// a WebSocket that did not open), the periodic check of whether the
// WebSocket gets through now: a WebSocket opened and closed at once, never
// used for the protocol. ./tickwire-socket.js moves to the WebSocket when
// one opens (a reconnect, which resumes).

/**
 * Every `everyMs` (none unless a finite number > 0), opens a WebSocket
 * (`WS`) to `url`: one not open within `giveUpMs` is closed, and the next is
 * tried `everyMs` after it closed; the first that opens is closed at once
 * and calls through(), and no more are tried. Returns a function that stops
 * it (through() is not called after, a probe under way is closed).
 */
export function probeWebSocket(WS, url, { everyMs, giveUpMs }, through) {
  let stopped = false;
  let timer = null;
  let probe = null; // the WebSocket being tried, until it opens or closes
  const arm = () => {
    if (!(everyMs > 0) || !Number.isFinite(everyMs)) return;
    timer = setTimeout(() => {
      if (stopped) return;
      let ws;
      try {
        ws = new WS(url);
      } catch {
        arm();
        return;
      }
      probe = ws;
      const give = setTimeout(() => {
        try {
          ws.close();
        } catch {
          /* closing */
        }
      }, giveUpMs);
      ws.onerror = () => {};
      ws.onmessage = null;
      ws.onclose = () => {
        clearTimeout(give);
        if (probe !== ws) return;
        probe = null;
        if (!stopped) arm(); // not yet
      };
      ws.onopen = () => {
        clearTimeout(give);
        probe = null;
        try {
          ws.close(1000, "probe");
        } catch {
          /* closing */
        }
        if (!stopped) through();
      };
    }, everyMs);
  };
  arm();
  return () => {
    stopped = true;
    clearTimeout(timer);
    const ws = probe;
    probe = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        /* closing */
      }
    }
  };
}
