// tickwire-gaps.js — epoch-aware `seq` gap tracking of the tickwire client
// (SeqTracker, exported by ./tickwire-client.js), and the positions a
// reconnect resumes from (protocol v1.2 `since`).
//
// Per topic the last `seq` passed on: a quote whose seq is not above it is a
// repeat (e.g. a snapshot after a resubscribe, a replay seen twice) and
// dropped; a jump is a gap (the client emits `gap`, then the quote). The
// `epoch` of every `subscribed` ack tells when the broker's numbering
// restarted: tracking is reset, no gap.
//
// A gap has a reason: "unrecovered" for the first quote of a topic after a
// reconnect that did not resume it (quotes published while the client was
// away, which the broker did not replay), "conflated" otherwise (`max_hz`,
// slow-consumer conflation). A recovered replay has no gap.
//
// Resume holds: while a subscribe carrying a topic's position (`since`) is
// unanswered, and once it is recovered while its replay is still coming, a
// quote of that topic that jumps ahead is held rather than passed on: it
// came under another entry (a live quote of a pattern acknowledged first, or
// the snapshot of another request, which the broker may send before this
// one's replay). The replay fills the hole, and the held quote goes out once
// it is next in order (or is dropped as a repeat). What is held goes out at
// once, in order, with its gap, when the topic is not recovered, when its
// options conflate it (max_hz: the broker sends only the newest), when a
// quote newer than every held one comes (the broker conflated the replay),
// or when the client ends the replay wait (endReplays).

/** accept()/offer(): a repeat (seq not above the last one passed on). */
export const REPEAT = -1;
/** offer(): held until the quotes before it arrive (see nextHeld). */
export const HELD = -2;

const toBig = (seq) => (typeof seq === "bigint" ? seq : BigInt(seq));

/**
 * Epoch-aware `seq` tracking, without I/O (the client uses one; usable on its
 * own). Sequence numbers are compared as BigInt, whatever the format.
 */
export class SeqTracker {
  #last = new Map(); // topic -> BigInt
  #sorted = null; // the tracked topics, sorted (for prefix ranges); null: stale
  #afterReconnect = new Set(); // topics not yet quoted since a reconnect that did not resume them
  #pending = new Map(); // topic -> {count, replaying, release, held: [{seq, item}] sorted}
  /** The broker epoch the tracked numbers belong to (null: none seen yet). */
  epoch = null;
  /** The reason of the gap accept() last reported: "unrecovered" | "conflated". */
  lastGapReason = null;

  /**
   * Records the broker's epoch. Returns true if it differs from the one
   * before (the first one included); the tracking is then forgotten, since
   * `seq` numbering restarted.
   */
  setEpoch(epoch) {
    if (epoch === this.epoch) return false;
    this.epoch = epoch;
    this.#clearTracking();
    return true;
  }

  /**
   * Records a quote's seq. Returns -1 for a repeat (seq not above the last
   * one seen: drop the quote, tracking unchanged), 0 for the next one (or the
   * first of the topic), n > 0 when n quotes were skipped before it
   * (`lastGapReason` says why).
   */
  accept(topic, seq) {
    const s = toBig(seq);
    const last = this.#last.get(topic);
    if (last === undefined) {
      this.#last.set(topic, s);
      this.#sorted = null;
      this.#afterReconnect.delete(topic);
      return 0;
    }
    if (s <= last) return REPEAT;
    this.#last.set(topic, s);
    const fresh = this.#afterReconnect.delete(topic);
    if (s === last + 1n) return 0;
    this.lastGapReason = fresh ? "unrecovered" : "conflated";
    return Number(s - last - 1n);
  }

  /**
   * accept() with the resume holds: REPEAT, HELD (kept: see nextHeld), or
   * what accept() returns. `item` is what nextHeld() gives back for a held
   * quote (the quote itself). After any result but REPEAT, call nextHeld()
   * until it returns undefined: held quotes that now follow in order.
   */
  offer(topic, seq, item) {
    const p = this.#pending.get(topic);
    if (p === undefined) return this.accept(topic, seq);
    const s = toBig(seq);
    const last = this.#last.get(topic);
    if (last === undefined || s === last + 1n) return this.accept(topic, s);
    if (s <= last) return REPEAT;
    // A jump, once every request naming the topic is answered: newer than
    // all that is held while the replay is awaited (the broker conflated
    // it), or nothing awaited: what is held goes out in order, this one too.
    if (p.count === 0 && p.replaying && p.held.length && s > p.held[p.held.length - 1].seq) p.replaying = false;
    if (p.count === 0 && !p.replaying) p.release = true;
    let i = p.held.length;
    while (i > 0 && p.held[i - 1].seq > s) i--;
    if (i > 0 && p.held[i - 1].seq === s) return HELD; // held already (drain: it may go out now)
    p.held.splice(i, 0, { seq: s, item });
    return HELD;
  }

  /**
   * The next held quote of `topic` that can go out now, as {item, missed}
   * (missed as accept() returns it), or undefined. Held quotes no longer
   * above the last seq are dropped as repeats.
   */
  nextHeld(topic) {
    const p = this.#pending.get(topic);
    if (p === undefined) return undefined;
    const last = this.#last.get(topic);
    while (p.held.length && last !== undefined && p.held[0].seq <= last) p.held.shift();
    if (p.held.length === 0) {
      if (p.count === 0 && !p.replaying) this.#pending.delete(topic);
      return undefined;
    }
    const h = p.held[0];
    if (!(last === undefined || h.seq === last + 1n || (p.release && p.count === 0))) return undefined;
    p.held.shift();
    if (p.held.length === 0 && p.count === 0 && !p.replaying) this.#pending.delete(topic);
    return { item: h.item, missed: this.accept(topic, h.seq) };
  }

  /** A subscribe carrying these topics' positions was sent: hold their jumps until its ack. */
  resuming(topics) {
    for (const t of topics) {
      let p = this.#pending.get(t);
      if (!p) this.#pending.set(t, (p = { count: 0, replaying: false, release: false, held: [] }));
      p.count++;
    }
  }

  /**
   * The ack (or refusal) of a subscribe that carried `topic`'s position:
   * recovered, its replay to come (what is held waits for it, and so do
   * jumps until endReplays()), or not recovered, or recovered under options
   * that conflate (max_hz: only the newest comes) — what is held then goes
   * out once no other request naming the topic is unanswered. Then call
   * nextHeld(topic) until it returns undefined.
   */
  resumed(topic, recovered, conflated = false) {
    const p = this.#pending.get(topic);
    if (p !== undefined) {
      if (p.count > 0) p.count--;
      p.replaying = recovered && !conflated;
      p.release = !p.replaying;
    }
    if (recovered) this.#afterReconnect.delete(topic);
  }

  /**
   * Stops waiting for the replays of the recovered topics: returns the
   * topics that hold quotes, which now go out (call nextHeld for each).
   */
  endReplays() {
    const out = [];
    for (const [t, p] of this.#pending) {
      if (p.count > 0 || !p.replaying) continue;
      p.replaying = false;
      p.release = true;
      if (p.held.length) out.push(t);
      else this.#pending.delete(t);
    }
    return out;
  }

  /**
   * The connection was lost: the resume holds are dropped (what they held
   * is replayed or reported on the next connection: the tracking did not
   * advance), and the next jump of every topic is "unrecovered" unless its
   * position is recovered.
   */
  disconnected() {
    this.#pending.clear();
    for (const t of this.#last.keys()) this.#afterReconnect.add(t);
  }

  /**
   * These topics could not be resumed (a stream reopened without their
   * history): their next jump is "unrecovered", as after a reconnect.
   */
  unresumed(topics) {
    for (const t of topics) if (this.#last.has(t)) this.#afterReconnect.add(t);
  }

  /** The last seq accepted for the topic (BigInt), or undefined. */
  lastSeq(topic) {
    return this.#last.get(topic);
  }

  /**
   * The tracked topics that subscription entry `entry` (a topic or
   * `PREFIX*`) covers, in sorted order.
   */
  covered(entry) {
    if (!entry.endsWith("*")) return this.#last.has(entry) ? [entry] : [];
    const prefix = entry.slice(0, -1);
    const sorted = (this.#sorted ??= [...this.#last.keys()].sort());
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out = [];
    for (let i = lo; i < sorted.length && sorted[i].startsWith(prefix); i++) out.push(sorted[i]);
    return out;
  }

  /** Forgets topics: an iterable of topics, or a predicate. */
  forget(topics) {
    const drop = (t) => {
      this.#last.delete(t);
      this.#afterReconnect.delete(t);
      this.#pending.delete(t);
    };
    if (typeof topics === "function") {
      for (const t of [...this.#last.keys()]) if (topics(t)) drop(t);
    } else {
      for (const t of topics) drop(t);
    }
    this.#sorted = null;
  }

  /** Forgets every topic (the epoch is kept). */
  clear() {
    this.#clearTracking();
  }

  #clearTracking() {
    this.#last.clear();
    this.#sorted = null;
    this.#afterReconnect.clear();
    // Awaited requests keep their count (their acks still come); nothing
    // jumps any more until a topic is seen again.
    for (const p of this.#pending.values()) p.held.length = 0;
  }

  /** Topics tracked. */
  get size() {
    return this.#last.size;
  }

  topics() {
    return this.#last.keys();
  }
}
