// A scripted stand-in for EventSource, for the unit tests of the SSE
// transport: the test plays the broker (serverOpen / serverSend /
// serverError) and reads what each stream asked for (`params`: its query,
// decoded). Each makeFakeEventSource() class keeps its own instances.

export function makeFakeEventSource() {
  class FakeEventSource {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      FakeEventSource.instances.push(this);
    }

    static get last() {
      return FakeEventSource.instances[FakeEventSource.instances.length - 1];
    }

    /** The streams not closed by the client. */
    static get live() {
      return FakeEventSource.instances.filter((es) => es.readyState !== 2);
    }

    /** The query, decoded: {topics: [...], since: {...} | null, snapshot, max_hz, rewind, token}. */
    get params() {
      const u = new URL(this.url);
      const raw = u.search.slice(1).split("&").map((p) => p.split("="));
      const q = Object.fromEntries(raw);
      return {
        path: u.pathname,
        topics: (q.topics ?? "").split(",").filter(Boolean).map(decodeURIComponent),
        since: q.since === undefined ? null : JSON.parse(decodeURIComponent(q.since)),
        snapshot: q.snapshot ?? null,
        max_hz: q.max_hz ?? null,
        rewind: q.rewind ?? null,
        token: q.token === undefined ? null : decodeURIComponent(q.token),
      };
    }

    close() {
      this.readyState = 2;
    }

    // ---- the test's side ----

    serverOpen() {
      this.readyState = 1;
      this.onopen?.({ type: "open" });
    }

    /** An object (sent as JSON), with an optional event id. */
    serverSend(msg, id = "") {
      const data = typeof msg === "string" ? msg : JSON.stringify(msg);
      this.onmessage?.({ type: "message", data, lastEventId: id });
    }

    /** The stream failed or ended (a real EventSource would then reconnect by itself). */
    serverError() {
      if (this.readyState === 2) return;
      this.readyState = 0;
      this.onerror?.({ type: "error" });
    }
  }
  return FakeEventSource;
}
