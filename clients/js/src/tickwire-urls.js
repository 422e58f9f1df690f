// tickwire-urls.js — the broker URLs of a tickwire client: the WebSocket URL
// of each broker (ws:// or wss://, with the `format` parameter, and
// `delta=1` when the client asks for field deltas, protocol v1.2) and the
// `/sse` URL of each (the Server-Sent Events transport, ./tickwire-sse.js,
// which adds its own query). Relative URLs resolve against the page's
// location in a browser.

/**
 * The WebSocket URLs of `url` (one URL, or an array of them: brokers of one
 * cluster, tried in turn), each with the `format` parameter and, when field
 * deltas are asked, `delta=1`; the format; and whether deltas are asked.
 * Each comes from its option, else from the first URL that names it (a
 * `delta` parameter of `1` or `0`), else the default (binary; deltas on).
 * URLs that name another value are refused.
 */
export function wsUrls(url, format, delta) {
  const list = Array.isArray(url) ? url : [url];
  if (list.length === 0) throw new TypeError("tickwire: expected at least one broker URL");
  if (delta !== undefined && typeof delta !== "boolean") throw new TypeError(`tickwire: delta must be true or false, got ${delta}`);
  const named = (name) => {
    for (const one of list) {
      const v = parseUrl(one).searchParams.get(name);
      if (v !== null) return v;
    }
    return undefined;
  };
  const f = format ?? named("format");
  const inUrl = named("delta");
  const d = delta ?? (inUrl === undefined ? true : deltaParam(inUrl));
  const hrefs = list.map((one) => wsUrl(one, f, d).href);
  return { hrefs, format: wsUrl(list[0], f, d).format, delta: d };
}

function deltaParam(v) {
  if (v !== "0" && v !== "1") throw new TypeError(`tickwire: the URL's delta must be 1 or 0, got ${v}`);
  return v === "1";
}

function parseUrl(url) {
  const base = globalThis.location?.href;
  return base === undefined ? new URL(String(url)) : new URL(String(url), base);
}

/**
 * The WebSocket URL (ws:// or wss://) with its `format` parameter and, with
 * `delta`, `delta=1` (an old broker ignores it and sends full quotes only);
 * and the format.
 */
export function wsUrl(url, format, delta = false) {
  const u = parseUrl(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`tickwire: expected a ws:// or wss:// URL, got ${u.protocol}`);
  }
  const inUrl = u.searchParams.get("format");
  if (format !== undefined && inUrl !== null && inUrl !== format) {
    throw new TypeError(`tickwire: the URL says format=${inUrl} but the format option is ${format}`);
  }
  const f = format ?? inUrl ?? "binary";
  if (f !== "json" && f !== "binary") throw new TypeError(`tickwire: format must be "json" or "binary", got ${f}`);
  u.searchParams.set("format", f);
  const deltaInUrl = u.searchParams.get("delta");
  if (deltaInUrl !== null && deltaParam(deltaInUrl) !== delta) {
    throw new TypeError(`tickwire: the URL says delta=${deltaInUrl} but the client ${delta ? "asks" : "does not ask"} for deltas`);
  }
  if (delta) u.searchParams.set("delta", "1");
  else u.searchParams.delete("delta");
  return { href: u.href, format: f };
}

/**
 * The `/sse` URL of each WebSocket URL: the `sse` next to its path's last
 * segment (`ws://h:8080/ws` → `http://h:8080/sse`, `wss://h/feed/ws` →
 * `https://h/feed/sse`), or `sseUrl` (one URL, or one per WebSocket URL).
 */
export function sseUrls(wsHrefs, sseUrl) {
  const given = sseUrl === undefined || sseUrl === null ? null : Array.isArray(sseUrl) ? sseUrl : [sseUrl];
  if (given && given.length !== 1 && given.length !== wsHrefs.length) {
    throw new TypeError("tickwire: sseUrl must be one URL or one per broker URL");
  }
  return wsHrefs.map((ws, i) => {
    const u = given ? parseUrl(given[given.length === 1 ? 0 : i]) : new URL("sse", ws);
    if (u.protocol === "ws:") u.protocol = "http:";
    else if (u.protocol === "wss:") u.protocol = "https:";
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(`tickwire: expected an http(s):// SSE URL, got ${u.protocol}`);
    }
    u.search = "";
    u.hash = "";
    return u.href;
  });
}
