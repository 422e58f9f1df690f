// tickwire-session.js — what the tickwire client says on each connection:
// the open sequence, requests and their replies, quotes through gap
// tracking, and the token's refresh. TickwireClient (./tickwire-client.js) is
// the API in front of it; the connection itself is ./tickwire-socket.js.
//
// On every (re)connect: `auth` first (the token, or what the token callback
// returns now), then the `beforeResubscribe` hook, then every remembered
// entry is subscribed again (with `snapshot`, grouped by max_hz; a refused
// group is retried one entry per request, and entries still refused are
// dropped and reported), then the waiting requests.

import { decodeMessage } from "./tickwire-decoder.js";
import { reportLater } from "./tickwire-emitter.js";
import { TickwireError } from "./tickwire-errors.js";
import { SeqTracker } from "./tickwire-gaps.js";
import { Requests, requestError } from "./tickwire-requests.js";
import { OPEN, ReconnectingSocket } from "./tickwire-socket.js";
import { Subscriptions } from "./tickwire-subscriptions.js";

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
  #beforeResubscribe;
  #refreshTimer = null;
  #requests = new Requests();

  /** The connection (a ReconnectingSocket). */
  socket;
  /** The acknowledged subscriptions, restored on every reconnect. */
  subs = new Subscriptions();
  /** Seq tracking of the quotes passed on. */
  tracker = new SeqTracker();

  constructor(client, url, options) {
    this.#client = client;
    this.socket = new ReconnectingSocket(client, url, options, {
      opened: (conn) => this.#onOpen(conn),
      message: (conn, data) => this.#onMessage(conn, data),
      lost: (conn) => this.#onClose(conn),
      stopping: (err) => this.#onStop(err),
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
    for (const { topics, maxHz } of this.subs.toRestore(conn)) this.#sendResub(conn, topics, maxHz, false);
    for (const req of this.#requests.takeQueued()) this.#requests.send(conn, req);
    this.#client.emit("ready", { url: this.socket.url });
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

  #sendResub(conn, topics, maxHz, single) {
    const msg = { op: "subscribe", topics, snapshot: this.#resubscribeSnapshot };
    if (maxHz !== undefined) msg.max_hz = maxHz;
    this.#requests.send(conn, { kind: "resub", topics, maxHz, single, msg });
  }

  /** The connection was lost: its unanswered requests go out again on the next one. */
  #onClose(conn) {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#requests.connectionLost(conn);
  }

  /** close(), or the connection ended with reconnect off: every request rejects with `err`. */
  #onStop(err) {
    clearTimeout(this.#refreshTimer);
    this.#requests.rejectAll(err);
  }

  // ----------------------------------------------------------- messages ----

  #onMessage(conn, data) {
    const client = this.#client;
    let m;
    try {
      m = decodeMessage(data);
    } catch (e) {
      client.emit("error", new TickwireError("bad_message", e?.message ?? String(e)));
      return;
    }
    client.stats.messages++;
    this.socket.answered(conn); // the connection works: the backoff starts over
    client.emit("message", m);
    if (m === null || typeof m !== "object") return;
    switch (m.type) {
      case "quote":
        this.#onQuote(m);
        return;
      case "subscribed":
        if (typeof m.epoch === "string") this.#setEpoch(m.epoch);
        break;
      case "unsubscribed":
        if (m.reason !== undefined && m.id === undefined) {
          // The broker removed these itself (a refreshed token no longer covers them).
          this.subs.delete(m.topics ?? []);
          this.subs.forgetUncovered(this.tracker, m.topics ?? []);
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
        this.subs.acknowledged(req.topics, req.maxHz, conn);
        break;
      case "unsubscribe":
        this.subs.delete(req.topics);
        this.subs.forgetUncovered(this.tracker, req.topics);
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
    if (!req.single && req.topics.length > 1) {
      // One entry may spoil the group (a request is all or nothing): one by one.
      for (const t of req.topics) {
        if (this.subs.needsRestore(conn, t)) this.#sendResub(conn, [t], req.maxHz, true);
      }
      return;
    }
    this.subs.dropUnrestored(conn, req.topics);
    this.subs.forgetUncovered(this.tracker, req.topics);
    this.#client.emit("error", err);
  }

  #setEpoch(epoch) {
    const previous = this.tracker.epoch;
    if (this.tracker.setEpoch(epoch)) this.#client.emit("epoch", { epoch, previous });
  }

  #onQuote(q) {
    const client = this.#client;
    const missed = this.tracker.accept(q.topic, q.seq);
    if (missed < 0) {
      client.stats.duplicates++;
      client.emit("duplicate", q);
      return;
    }
    if (missed > 0) {
      client.stats.gaps++;
      client.stats.missed += missed;
      const received = typeof q.seq === "bigint" ? q.seq : BigInt(q.seq);
      client.emit("gap", {
        topic: q.topic,
        expected: received - BigInt(missed),
        received,
        missed,
        epoch: this.tracker.epoch,
      });
    }
    client.stats.quotes++;
    client.emit("quote", q);
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
