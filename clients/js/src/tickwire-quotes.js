// tickwire-quotes.js — the quotes a tickwire client passes on, for its
// session (./tickwire-session.js): each connection's field deltas turned
// back into full quotes (its DeltaState, ./tickwire-decoder.js), then `seq`
// tracking (./tickwire-gaps.js: repeats dropped, gaps reported, the epoch)
// and the resume: the positions a resubscription or an SSE stream resumes
// from, what its ack recovered, and the quotes held meanwhile. It emits the
// client's quote, gap, duplicate, epoch, recovered and unrecovered events.
//
// Field deltas (protocol v1.2, `delta=1`): a delta becomes its full quote
// before anything else sees it (the `message` event included), so events,
// tracking and resume are the same with or without deltas. A delta without
// its base (a broker bug) is never guessed at: see #badDelta.

import { TickwireError } from "./tickwire-errors.js";
import { HELD, REPEAT, SeqTracker } from "./tickwire-gaps.js";

/**
 * How long after the last ack with positions a jump of a recovered topic is
 * still held for its replay (see tickwire-gaps.js); then it is a gap.
 */
const REPLAY_WAIT_MS = 5_000;

/** The quote side of one client's session (emits its events, counts its stats). */
export class Quotes {
  #client;
  #subs;
  #resume;
  #replayTimer = null;
  /** Seq tracking of the quotes passed on. */
  tracker = new SeqTracker();

  /** `client`: emit() and stats; `subs`: the Subscriptions; `resume`: the option. */
  constructor(client, subs, resume) {
    this.#client = client;
    this.#subs = subs;
    this.#resume = resume;
  }

  /**
   * A decoded message of connection `conn` as the application sees it: a
   * quote is kept as the base of its topic's next delta, a delta becomes
   * the full quote it stands for. undefined: a delta without its base,
   * dropped (the connection is being closed).
   */
  resolve(conn, m) {
    if (m?.type === "quote") {
      conn.deltas?.resolve(m);
      return m;
    }
    if (m?.type !== "delta") return m;
    const q = conn.deltas?.resolve(m);
    if (q?.type !== "quote") {
      this.#badDelta(conn, m);
      return undefined;
    }
    this.#client.stats.deltas++;
    return q;
  }

  /**
   * A delta without its base (none on this connection, or not seq − 1), or
   * on a connection that did not ask for deltas: the broker's idea of what
   * this connection received is not the client's. No quote is made up:
   * `error` (bad_delta), and the connection is closed (nothing more is read
   * from it: conn.broken). The reconnect starts from full quotes and resumes
   * from the last quote passed on (`since`), so the broker replays this
   * quote and those after it; with resume off they are a gap.
   */
  #badDelta(conn, m) {
    conn.broken = true;
    this.#client.stats.badDeltas++;
    const topic = typeof m.topic === "string" ? m.topic : undefined;
    const why = conn.deltas ? "does not follow the quote before it on this connection" : "came on a connection without delta=1";
    this.#client.emit(
      "error",
      new TickwireError("bad_delta", `tickwire: a delta of ${topic} seq ${m.seq} ${why}: reconnecting`, {
        topics: topic === undefined ? undefined : [topic],
      }),
    );
    try {
      conn.ws.close(1000, "delta without its base");
    } catch {
      /* closing already */
    }
  }

  /** Entries were removed: the topics no remembered entry covers lose their tracking and `conn`'s delta bases. */
  forgetUncovered(conn, removed) {
    this.#subs.forgetUncovered(this.tracker, removed);
    if (conn?.deltas) this.#subs.forgetUncovered(conn.deltas, removed);
  }

  /** The epoch of a `subscribed` ack. */
  setEpoch(epoch) {
    const previous = this.tracker.epoch;
    if (this.tracker.setEpoch(epoch)) this.#client.emit("epoch", { epoch, previous });
  }

  /** The connection ended (lost, or the client stopped). */
  connectionEnded() {
    clearTimeout(this.#replayTimer);
    this.tracker.disconnected();
  }

  // ------------------------------------------------------------- resume ----

  /**
   * SSE: the positions a stream of `entries` resumes from ({epoch, seqs:
   * [[topic, seq]]}: the tracked topics they cover), or null (resume off,
   * no epoch yet).
   */
  positions(entries) {
    const t = this.tracker;
    if (!this.#resume || typeof t.epoch !== "string" || t.size === 0) return null;
    const seqs = new Map();
    for (const e of entries) {
      for (const topic of t.covered(e)) {
        const seq = t.lastSeq(topic);
        if (!seqs.has(topic) && seq <= BigInt(Number.MAX_SAFE_INTEGER)) seqs.set(topic, Number(seq));
      }
    }
    return { epoch: t.epoch, seqs: [...seqs] };
  }

  /** SSE: a reopened stream could not resume these topics (history too short): as after a reconnect. */
  streamUnrecovered(topics) {
    this.tracker.unresumed(topics);
    this.#client.stats.unrecovered += topics.length;
    this.#client.emit("unrecovered", { topics, epoch: this.tracker.epoch, id: undefined });
  }

  /**
   * The ack of a request that carried `since` for `keys` (null: refused,
   * or a broker that does not know `since`): which were recovered (the
   * ack's `recovered` / `unrecovered`; a broker that does not know `since`
   * answers neither: none was), the events, and what the resume holds kept.
   */
  resumed(keys, m) {
    const lost = new Set(m?.recovered === true ? [] : m?.recovered === false && Array.isArray(m.unrecovered) ? m.unrecovered : keys);
    const recovered = [];
    const unrecovered = [];
    for (const t of keys) (lost.has(t) ? unrecovered : recovered).push(t);
    const client = this.#client;
    client.stats.recovered += recovered.length;
    client.stats.unrecovered += unrecovered.length;
    const conflated = this.#subs.conflation();
    for (const t of keys) this.tracker.resumed(t, !lost.has(t), conflated(t));
    if (recovered.length) {
      clearTimeout(this.#replayTimer);
      this.#replayTimer = setTimeout(() => {
        for (const t of this.tracker.endReplays()) this.#drain(t);
      }, REPLAY_WAIT_MS);
    }
    const epoch = this.tracker.epoch;
    if (recovered.length) client.emit("recovered", { topics: recovered, epoch, id: m?.id });
    if (unrecovered.length) client.emit("unrecovered", { topics: unrecovered, epoch, id: m?.id });
    for (const t of keys) this.#drain(t);
  }

  /** A request that carried `keys`' positions was refused: what their holds kept goes out (unless another request asks them again). */
  refused(keys) {
    for (const t of keys) this.tracker.resumed(t, false);
    for (const t of keys) this.#drain(t);
  }

  // ------------------------------------------------------------- quotes ----

  /** A full quote (deltas resolved): through the tracking and the holds, then passed on. */
  quote(q) {
    const r = this.tracker.offer(q.topic, q.seq, q);
    if (r === REPEAT) {
      this.#client.stats.duplicates++;
      this.#client.emit("duplicate", q);
      return;
    }
    if (r !== HELD) this.#deliver(q, r);
    this.#drain(q.topic);
  }

  /** Passes on the quotes the resume holds of `topic` kept that now follow in order. */
  #drain(topic) {
    for (let h = this.tracker.nextHeld(topic); h !== undefined; h = this.tracker.nextHeld(topic)) this.#deliver(h.item, h.missed);
  }

  /** A quote in order, `missed` quotes after the one before. */
  #deliver(q, missed) {
    const client = this.#client;
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
        reason: this.tracker.lastGapReason,
      });
    }
    client.stats.quotes++;
    client.emit("quote", q);
  }
}
