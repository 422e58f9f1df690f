// tickwire-session.js — what the tickwire client says on each connection:
// the open sequence, requests and their replies, and the token's refresh;
// the quotes go to ./tickwire-quotes.js (deltas resolved, gap tracking, the
// resume's holds). TickwireClient (./tickwire-client.js) is the API in front
// of it; the connection itself is ./tickwire-socket.js.
//
// On every (re)connect: `auth` first (the token, or what the token callback
// returns now), then the `beforeResubscribe` hook, then every remembered
// entry is subscribed again (with `snapshot`, grouped by max_hz and rewind;
// with resume on, each request carries `since`: the epoch and the last seq
// of the tracked topics it covers, so the broker replays what was missed;
// a refused group is retried one entry per request, and entries still
// refused are dropped and reported), then the waiting requests. The ack of
// a request with `since` says which topics were recovered: `recovered` and
// `unrecovered` events.
//
// Over SSE (the connection is then an SseConnection, ./tickwire-sse.js)
// the same requests go out and are answered the same way; the stream they
// make goes out once they are all sent (`ready` waits for its answer). A
// stream reopened for a subscribe or unsubscribe resumes the topics it
// already carried from the positions here; those it could not recover are
// reported as after a reconnect (`unrecovered`, then a gap).
//
// Field deltas (protocol v1.2, on unless `delta: false`): each message is
// resolved (./tickwire-quotes.js) before anything else sees it: a delta is
// its full quote by then. A delta without its base (a broker bug) closes the
// connection (nothing more is read from it: conn.broken); the reconnect
// resumes.

import { decodeMessage } from "./tickwire-decoder.js";
import { reportLater } from "./tickwire-emitter.js";
import { TickwireError } from "./tickwire-errors.js";
import { Quotes } from "./tickwire-quotes.js";
import { Requests, requestError } from "./tickwire-requests.js";
import { OPEN, ReconnectingSocket } from "./tickwire-socket.js";
import { Subscriptions, planResubscribe } from "./tickwire-subscriptions.js";

/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The protocol side of one TickwireClient (emits its events, counts its stats). */
export class Session {
  #client;
  #token;
  #refreshToken;
  #refreshMarginMs;
  #requestTimeoutMs;
  #resubscribeSnapshot;
  #resume;
  #beforeResubscribe;
  #refreshTimer = null;
  #requests = new Requests();

  /** The connection (a ReconnectingSocket). */
  socket;
  /** The acknowledged subscriptions, restored on every reconnect. */
  subs = new Subscriptions();
  /** The quotes passed on (deltas, tracking, resume). */
  quotes;
  /** Seq tracking of the quotes passed on (the quotes' own). */
  tracker;

  constructor(client, url, options) {
    this.#client = client;
    this.#resume = options.resume ?? true;
    this.quotes = new Quotes(client, this.subs, this.#resume);
    this.tracker = this.quotes.tracker;
    this.socket = new ReconnectingSocket(client, url, options, {
      opened: (conn) => this.#onOpen(conn),
      message: (conn, data) => this.#onMessage(conn, data),
      lost: (conn) => this.#onClose(conn),
      stopping: (err) => this.#onStop(err),
      sse: {
        positions: (entries) => this.quotes.positions(entries),
        unrecovered: (topics) => this.quotes.streamUnrecovered(topics),
      },
    });
    this.#token = options.token ?? null;
    this.#refreshToken = options.refreshToken ?? true;
    this.#refreshMarginMs = options.tokenRefreshMarginMs ?? 30_000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#resubscribeSnapshot = options.resubscribeSnapshot ?? true;
    this.#beforeResubscribe = options.beforeResubscribe ?? null;
  }

  // ----------------------------------------------------------- requests ----

  /** TickwireClient.auth(): see there. */
  auth(token) {
    if (token !== undefined) this.#token = token;
    return new Promise((resolve, reject) => {
      if (this.socket.stopped) {
        reject(new TickwireError("closed", "tickwire: the client was closed", { op: "auth" }));
        return;
      }
      const conn = this.socket.current;
      if (!conn || conn.ws.readyState !== OPEN || conn.phase === "auth") {
        this.#requests.waitForAuth(resolve, reject);
        return;
      }
      this.#currentToken().then((t) => {
        if (!t) reject(new TickwireError("no_token", "tickwire: no token to send", { op: "auth" }));
        else if (this.socket.current !== conn) this.#requests.waitForAuth(resolve, reject);
        else this.#requests.send(conn, { kind: "auth", msg: { op: "auth", token: t }, resolve, reject });
      });
    });
  }

  /**
   * Sends request `req` ({kind, msg, topics?, maxHz?, retry}) now, or on the
   * next connection; resolves with its reply.
   */
  request(req) {
    return new Promise((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
      if (this.socket.stopped || this.socket.state === "closed") {
        reject(requestError(req, "closed", "tickwire: the client is closed"));
        return;
      }
      const conn = this.socket.current;
      const canSend = conn && conn.ws.readyState === OPEN && conn.phase !== "auth";
      if (!canSend && req.retry === false) {
        reject(requestError(req, "not_connected", "tickwire: not connected"));
        return;
      }
      if (this.#requestTimeoutMs > 0) {
        req.timer = setTimeout(() => this.#expire(req), this.#requestTimeoutMs);
      }
      if (canSend) this.#requests.send(conn, req);
      else this.#requests.enqueue(req);
    });
  }

  #expire(req) {
    this.#requests.remove(req);
    req.reject(requestError(req, "timeout", `tickwire: no reply within ${this.#requestTimeoutMs} ms`));
  }

  // --------------------------------------------------------- connection ----

  async #onOpen(conn) {
    // 1. auth, first: requests are handled in order, so everything after it
    //    is checked against its grants.
    let source;
    let token;
    do {
      source = this.#token; // auth(newToken) while the callback runs: use the new one
      token = await this.#currentToken();
      if (this.socket.current !== conn) return;
    } while (source !== this.#token);
    if (token) this.#requests.send(conn, { kind: "auth", auto: true, msg: { op: "auth", token } });
    else this.#requests.answerAuthWaiters(null, new TickwireError("no_token", "tickwire: no token to send", { op: "auth" }));
    // 2. the caller's hook; requests it makes go out at once.
    conn.phase = "hook";
    if (conn.ws.sse) conn.ws.start(); // (over SSE: with the auth, in one stream)
    if (this.#beforeResubscribe) {
      try {
        await this.#beforeResubscribe(this.#client);
      } catch (e) {
        reportLater(e);
      }
      if (this.socket.current !== conn) return;
    }
    // 3. the remembered subscriptions, 4. the requests that waited.
    conn.phase = "ready";
    this.#restore(conn, this.subs.toRestore(conn), false);
    for (const req of this.#requests.takeQueued()) this.#requests.send(conn, req);
    if (conn.ws.sse) {
      // What was just sent goes out (one stream): ready once it is answered.
      await conn.ws.complete();
      if (this.socket.current !== conn) return;
    }
    this.#client.emit("ready", { url: conn.url, transport: conn.transport });
  }

  async #currentToken() {
    const t = this.#token;
    if (typeof t !== "function") return t || null;
    try {
      return (await t()) || null;
    } catch (e) {
      this.#client.emit(
        "error",
        new TickwireError("token_error", `tickwire: the token callback failed: ${e?.message ?? e}`, { op: "auth" }),
      );
      return null;
    }
  }

  /** Subscribes `groups` ([{topics, maxHz, rewind}]) again on `conn`, with `since` when resuming. */
  #restore(conn, groups, single) {
    const plan = planResubscribe(groups, {
      snapshot: this.#resubscribeSnapshot,
      resume: this.#resume && !conn.noSince,
      tracker: this.tracker,
    });
    for (const { topics, maxHz, rewind, keys, msg } of plan) {
      // Before it is sent: a quote of these topics that jumps ahead is held until its ack.
      this.tracker.resuming(keys);
      this.#requests.send(conn, { kind: "resub", topics, maxHz, rewind, keys, single, msg });
    }
  }

  /** The connection was lost: its unanswered requests go out again on the next one. */
  #onClose(conn) {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#requests.connectionLost(conn);
    this.quotes.connectionEnded();
  }

  /** close(), or the connection ended with reconnect off: every request rejects with `err`. */
  #onStop(err) {
    clearTimeout(this.#refreshTimer);
    this.#requests.rejectAll(err);
    this.quotes.connectionEnded();
  }

  // ----------------------------------------------------------- messages ----

  #onMessage(conn, data) {
    const client = this.#client;
    // After a delta without its base: what follows is redone on the next connection.
    if (conn.broken) return;
    let m;
    try {
      m = conn.ws.sse ? conn.ws.decode(data) : decodeMessage(data);
    } catch (e) {
      client.emit("error", new TickwireError("bad_message", e?.message ?? String(e)));
      return;
    }
    m = this.quotes.resolve(conn, m);
    if (m === undefined) return; // a delta without its base: dropped, the connection is closing
    client.stats.messages++;
    this.socket.answered(conn); // the connection works: the backoff starts over
    client.emit("message", m);
    if (m === null || typeof m !== "object") return;
    switch (m.type) {
      case "quote":
        this.quotes.quote(m);
        return;
      case "subscribed":
        if (typeof m.epoch === "string") this.quotes.setEpoch(m.epoch);
        break;
      case "unsubscribed":
        if (m.reason !== undefined && m.id === undefined) {
          // The broker removed these itself (a refreshed token no longer covers them).
          this.subs.delete(m.topics ?? []);
          this.quotes.forgetUncovered(conn, m.topics ?? []);
          client.emit("unsubscribed", m);
          return;
        }
        break;
      default:
        break;
    }
    const req = this.#requests.take(m.id);
    if (!req) {
      if (m.type === "error") {
        client.emit("error", new TickwireError(m.code, m.message, { id: m.id, reply: m }));
      }
      return;
    }
    this.#settle(conn, req, m);
  }

  #settle(conn, req, m) {
    if (m.type === "error") {
      const err = requestError(req, m.code, m.message, m);
      if (req.kind === "resub") this.#resubRefused(conn, req, err);
      else if (req.kind === "auth" && req.auto) {
        this.#client.emit("error", err);
        this.#requests.answerAuthWaiters(null, err);
      } else req.reject(err);
      return;
    }
    switch (req.kind) {
      case "subscribe":
      case "resub":
        this.subs.acknowledged(req.topics, req.maxHz, req.rewind, conn);
        if (req.keys?.length) this.quotes.resumed(req.keys, m);
        break;
      case "unsubscribe":
        this.subs.delete(req.topics);
        this.quotes.forgetUncovered(conn, req.topics);
        break;
      case "auth":
        if (m.type === "authed") {
          conn.lastToken = req.msg.token;
          this.#scheduleRefresh(conn, m.exp);
          this.#client.emit("authed", m);
          if (req.auto) this.#requests.answerAuthWaiters(m, null);
        }
        break;
      default:
        break;
    }
    req.resolve?.(m);
  }

  #resubRefused(conn, req, err) {
    const keys = req.keys ?? [];
    const again = (topics, single) => this.#restore(conn, [{ topics, maxHz: req.maxHz, rewind: req.rewind }], single);
    if (req.msg.since && err.code === "bad_request") {
      // Entries the broker took before, refused with positions: a broker
      // that does not take `since`. The same entries without it (snapshots),
      // and no more `since` on this connection.
      conn.noSince = true;
      again(req.topics, req.single);
      this.quotes.resumed(keys, null);
      return;
    }
    // One entry may spoil the group (a request is all or nothing): one by one.
    const oneByOne = !req.single && req.topics.length > 1;
    if (oneByOne) for (const t of req.topics) if (this.subs.needsRestore(conn, t)) again([t], true);
    // Positions those requests carry again keep their holds; others' held quotes go out.
    this.quotes.refused(keys);
    if (oneByOne) return;
    this.subs.dropUnrestored(conn, req.topics);
    this.quotes.forgetUncovered(conn, req.topics);
    this.#client.emit("error", err);
  }

  // -------------------------------------------------------------- token ----

  #scheduleRefresh(conn, exp) {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (!this.#refreshToken || typeof this.#token !== "function" || typeof exp !== "number") return;
    const remaining = exp * 1000 - Date.now();
    if (remaining <= 0) return;
    // Refresh `margin` before exp, but not before half the token's remaining life.
    const delay = Math.min(MAX_TIMER_MS, Math.max(remaining - this.#refreshMarginMs, remaining / 2));
    this.#refreshTimer = setTimeout(async () => {
      this.#refreshTimer = null;
      if (this.socket.current !== conn || conn.ws.readyState !== OPEN) return;
      const t = await this.#currentToken();
      if (!t || t === conn.lastToken || this.socket.current !== conn) return; // nothing new to send
      this.#requests.send(conn, {
        kind: "auth",
        refresh: true,
        msg: { op: "auth", token: t },
        resolve: () => {},
        reject: (e) => this.#client.emit("error", e),
      });
    }, delay);
  }
}
