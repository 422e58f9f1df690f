// page.js — the dashboard page's fixed elements (index.html), the connection
// badge and the message line (see app.js).

const $ = (id) => document.getElementById(id);

export const el = {
  state: $("conn-state"),
  detail: $("conn-detail"),
  transport: $("conn-transport"),
  msgRate: $("msg-rate"),
  p50: $("lat-p50"),
  p99: $("lat-p99"),
  sparkP50: $("spark-p50"),
  sparkP99: $("spark-p99"),
  throttleBox: $("throttle-box"),
  throttle: $("throttle"),
  form: $("add-form"),
  input: $("add-input"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  authState: $("auth-state"),
  message: $("message"),
  chips: $("watchlist"),
  table: $("quotes"),
  tbody: $("rows"),
};

/** The table's placeholder row, shown while there is no other row. */
export const emptyRow = el.tbody.querySelector("tr.empty");

let messageTimer = null;
/** Shows a message (kind "error" or "info") for a while; "" clears it. */
export function showMessage(text, kind = "error") {
  el.message.textContent = text;
  el.message.className = `message${kind === "info" ? " info" : ""}`;
  clearTimeout(messageTimer);
  if (text) messageTimer = setTimeout(() => showMessage(""), kind === "info" ? 5000 : 12000);
}

const TRANSPORTS = {
  websocket: ["WS", "Connected over a WebSocket"],
  sse: ["SSE", "Connected over Server-Sent Events (GET /sse): the WebSocket does not get through (a proxy?); the WebSocket is tried again every few minutes"],
};

/** The transport label: "websocket" | "sse" (the client's `transport`). */
export function setTransport(transport) {
  const [label, title] = TRANSPORTS[transport] ?? ["", "The transport of the connection"];
  el.transport.dataset.transport = transport ?? "";
  el.transport.textContent = label;
  el.transport.title = title;
}

/** The connection badge ("connecting", "live", "reconnecting") and its detail. */
export function setState(state, detail = "") {
  const label = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" }[state] ?? state;
  if (el.state.dataset.state !== state) {
    el.state.dataset.state = state;
    el.state.textContent = label;
    document.title = state === "live" ? "tickwire · live quotes" : `tickwire · ${label}`;
    el.table.classList.toggle("stale", state !== "live");
  }
  if (el.detail.textContent !== detail) el.detail.textContent = detail;
}
