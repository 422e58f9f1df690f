// tickwire-urls.js — the broker URLs of a tickwire client: the WebSocket URL
// of each broker (ws:// or wss://, with the `format` parameter) and the
// `/sse` URL of each (the Server-Sent Events transport, ./tickwire-sse.js).
// Relative URLs resolve against the page's location in a browser.

/**
 * The WebSocket URLs of `url` (one URL, or an array of them: brokers of one
 * cluster, tried in turn), each with the `format` parameter, and the format.
 * The format comes from the option, else from the first URL that names one;
 * URLs that name another are refused.
 */
export function wsUrls(url, format) {
  const list = Array.isArray(url) ? url : [url];
  if (list.length === 0) throw new TypeError("tickwire: expected at least one broker URL");
  let f = format;
  if (f === undefined) {
    for (const one of list) {
      const named = parseUrl(one).searchParams.get("format");
      if (named !== null) {
        f = named;
        break;
      }
    }
  }
  const hrefs = list.map((one) => wsUrl(one, f).href);
  return { hrefs, format: wsUrl(list[0], f).format };
}

function parseUrl(url) {
  const base = globalThis.location?.href;
  return base === undefined ? new URL(String(url)) : new URL(String(url), base);
}

/** The WebSocket URL (ws:// or wss://) with its `format` parameter, and the format. */
export function wsUrl(url, format) {
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
