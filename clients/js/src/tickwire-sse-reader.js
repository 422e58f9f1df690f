// tickwire-sse-reader.js — reading one Server-Sent Events stream for the SSE
// transport (./tickwire-sse.js): by an EventSource where there is one (a
// browser's, or the client's `EventSource` option), else by fetch and the
// event-stream parser here (Node: no EventSource; fetch also lets the token
// go in a header). Either way the stream is reported through the same
// callbacks, and it never reconnects by itself: the client does (its own
// backoff, and `since` from what it passed on).

/**
 * An event-stream parser (the text/event-stream format): feed it text as it
 * comes; it calls dispatch(data, lastEventId) for each event with data.
 * Comments and other fields are skipped.
 */
export function eventStreamParser(dispatch) {
  let buf = "";
  let data = null; // the data lines of the event being read
  let id = "";
  const eol = /\r\n|\r|\n/g;
  return (text) => {
    buf += text;
    let pos = 0;
    eol.lastIndex = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      if (m[0] === "\r" && m.index === buf.length - 1) break; // perhaps a \r\n cut in two
      const line = buf.slice(pos, m.index);
      pos = eol.lastIndex;
      if (line === "") {
        if (data !== null) dispatch(data.join("\n"), id);
        data = null;
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") (data ??= []).push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
    }
    buf = buf.slice(pos);
  };
}

const SSE_HEADERS = { Accept: "text/event-stream", "Cache-Control": "no-cache" };

/** Why an `/sse` request is refused: {status, body} (the broker's JSON error), or null when it is not. */
async function refusalOf(fetchFn, url, headers) {
  const ac = new AbortController();
  try {
    const res = await fetchFn(url, { headers: { ...SSE_HEADERS, ...headers }, signal: ac.signal, cache: "no-store" });
    if (res.ok) return null;
    return { status: res.status, body: await res.json().catch(() => null) };
  } catch {
    return null;
  } finally {
    ac.abort();
  }
}

/**
 * Opens one event stream and reports on it through `on`: open() once the
 * 200 came, event(data, id) per event, alive() per chunk read (fetch only),
 * refused(status, body) for an error response, end(why) when it ends or
 * fails. Returns a function that stops it (nothing is reported after).
 */
export function openEventStream(url, { EventSource: ES, fetch: fetchFn, headers }, on) {
  let stopped = false;
  if (ES) {
    // An EventSource reconnects by itself; the client does it instead (its
    // own backoff, and `since` from what it passed on), so it is closed on
    // its first error. Why a stream that never opened failed, it does not
    // say: one fetch asks.
    const es = new ES(url);
    let opened = false;
    const stop = () => {
      stopped = true;
      es.onopen = es.onmessage = es.onerror = null;
      es.close();
    };
    es.onopen = () => {
      opened = true;
      if (!stopped) on.open();
    };
    es.onmessage = (ev) => {
      if (!stopped) on.event(ev.data, ev.lastEventId);
    };
    es.onerror = () => {
      if (stopped) return;
      stop();
      if (opened || typeof fetchFn !== "function") on.end("the event stream ended");
      else refusalOf(fetchFn, url, {}).then((r) => (r ? on.refused(r.status, r.body) : on.end("the event stream did not open")));
    };
    return stop;
  }
  const ac = new AbortController();
  (async () => {
    let res;
    try {
      res = await fetchFn(url, { headers: { ...SSE_HEADERS, ...headers }, signal: ac.signal, cache: "no-store" });
    } catch (e) {
      if (!stopped) on.end(`cannot open the event stream: ${e?.cause?.message ?? e?.message ?? e}`);
      return;
    }
    if (stopped) return;
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      if (!stopped) on.refused(res.status, body);
      return;
    }
    on.open();
    const parse = eventStreamParser((data, id) => {
      if (!stopped) on.event(data, id);
    });
    const decoder = new TextDecoder();
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (stopped) return;
        if (done) break;
        on.alive();
        parse(decoder.decode(value, { stream: true }));
        if (stopped) return;
      }
      on.end("the event stream ended");
    } catch (e) {
      if (!stopped) on.end(`the event stream failed: ${e?.message ?? e}`);
    }
  })();
  return () => {
    stopped = true;
    ac.abort();
  };
}
