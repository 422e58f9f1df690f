// tickwire-requests.js — the request/ack bookkeeping of the tickwire client.
//
// Requests (subscribe / unsubscribe / auth / any op) carry an `id`; the reply
// with that id settles the request's promise (an `error` reply rejects it
// with a TickwireError carrying the broker's `code`). Requests made while not
// connected wait in a queue and go out on the next connection; requests still
// without a reply when a connection drops are sent again on the next one,
// ahead of those that were waiting. An explicit auth() without a reply is
// answered by the next connection's auth instead (the auth waiters).
//
// A request: {kind: "subscribe" | "resub" | "unsubscribe" | "auth" | "raw",
// msg (sent with the id added), topics?, maxHz?, retry?, auto? / refresh?
// (the connect's and the refresh's auth), single? (a resubscription retried
// alone), resolve, reject, and, once sent: id, conn, timer}.

import { TickwireError } from "./tickwire-errors.js";

/** A topics argument as an array (a copy). */
export function toTopics(topics) {
  if (typeof topics === "string") return [topics];
  if (Array.isArray(topics)) return [...topics];
  throw new TypeError("tickwire: topics must be a string or an array of strings");
}

/** A TickwireError about request `req` (its id, op and topics). */
export function requestError(req, code, message, reply) {
  return new TickwireError(code, message, { id: req.id, reply, op: req.msg?.op, topics: req.topics });
}

/** Counts subscribe requests in flight per entry on their connection. */
function inflight(req, delta) {
  if ((req.kind !== "subscribe" && req.kind !== "resub") || !req.conn) return;
  const m = req.conn.inflight;
  for (const t of req.topics) {
    const n = (m.get(t) ?? 0) + delta;
    if (n > 0) m.set(t, n);
    else m.delete(t);
  }
}

/** The requests of one client: sent and unanswered, waiting, and auth waiters. */
export class Requests {
  #nextId = 1;
  #pending = new Map(); // id -> request sent on the current connection
  #queue = []; // requests waiting for a connection
  #authWaiters = []; // auth() callers answered by the next connection's auth

  /** Sends `req` on connection `conn` ({ws, inflight, ...}) with a new id. */
  send(conn, req) {
    const id = this.#nextId++;
    req.id = id;
    req.conn = conn;
    this.#pending.set(id, req);
    inflight(req, +1);
    conn.ws.send(JSON.stringify({ ...req.msg, id }));
  }

  /** Keeps `req` for the next connection. */
  enqueue(req) {
    this.#queue.push(req);
  }

  /** The requests waiting for a connection, in order; none wait any more. */
  takeQueued() {
    const queued = this.#queue;
    this.#queue = [];
    return queued;
  }

  /**
   * The request a reply with this id answers, no longer pending (its timer
   * cleared); undefined if there is none.
   */
  take(id) {
    const req = id === undefined ? undefined : this.#pending.get(id);
    if (!req) return undefined;
    this.#pending.delete(id);
    clearTimeout(req.timer);
    inflight(req, -1);
    return req;
  }

  /** Drops `req`, waiting or pending (it timed out). */
  remove(req) {
    const i = this.#queue.indexOf(req);
    if (i >= 0) this.#queue.splice(i, 1);
    if (req.id !== undefined && this.#pending.get(req.id) === req) {
      this.#pending.delete(req.id);
      inflight(req, -1);
    }
  }

  /** An auth() caller answered by the next connection's auth. */
  waitForAuth(resolve, reject) {
    this.#authWaiters.push({ resolve, reject });
  }

  /** Answers the auth waiters: with the `authed` reply, or rejected with `err`. */
  answerAuthWaiters(reply, err) {
    const waiters = this.#authWaiters;
    this.#authWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve(reply);
    }
  }

  /**
   * Connection `conn` closed. Its unanswered requests: in order, ahead of
   * those that were waiting; an explicit auth() waits for the next
   * connection's auth; `retry: false` ones are rejected ("disconnected");
   * the resubscriptions and the automatic auths are dropped (done again on
   * the next connection).
   */
  connectionLost(conn) {
    const again = [];
    for (const [id, req] of this.#pending) {
      if (req.conn !== conn) continue;
      this.#pending.delete(id);
      req.conn = null;
      if (req.kind === "resub") continue; // the remembered entries are restored anyway
      if (req.kind === "auth") {
        // An explicit auth() is answered by the next connection's auth.
        if (!req.auto && !req.refresh) {
          clearTimeout(req.timer);
          this.#authWaiters.push({ resolve: req.resolve, reject: req.reject });
        }
        continue;
      }
      if (req.retry === false) {
        clearTimeout(req.timer);
        req.reject(requestError(req, "disconnected", "tickwire: the connection closed before the reply"));
        continue;
      }
      again.push(req);
    }
    this.#queue = again.concat(this.#queue);
  }

  /** Rejects every request and auth waiter with `err`'s code and message (the client stops). */
  rejectAll(err) {
    const reqs = [...this.#queue, ...this.#pending.values()];
    this.#queue = [];
    this.#pending.clear();
    for (const req of reqs) {
      clearTimeout(req.timer);
      if (req.kind === "resub") continue;
      if (req.kind === "auth" && (req.auto || req.refresh)) continue;
      req.reject(new TickwireError(err.code, err.message, { id: req.id, op: req.msg?.op, topics: req.topics }));
    }
    const waiters = this.#authWaiters;
    this.#authWaiters = [];
    for (const w of waiters) w.reject(new TickwireError(err.code, err.message, { op: "auth" }));
  }
}
