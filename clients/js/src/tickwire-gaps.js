// tickwire-gaps.js — epoch-aware `seq` gap tracking of the tickwire client
// (SeqTracker, exported by ./tickwire-client.js).
//
// Per topic the last `seq` passed on: a quote whose seq is not above it is a
// repeat (e.g. a snapshot after a resubscribe) and dropped; a jump is a gap
// (the client emits `gap`, then the quote). The `epoch` of every `subscribed`
// ack tells when the broker's numbering restarted: tracking is reset, no gap.

/**
 * Epoch-aware `seq` tracking, without I/O (the client uses one; usable on its
 * own). Sequence numbers are compared as BigInt, whatever the format.
 */
export class SeqTracker {
  #last = new Map(); // topic -> BigInt
  /** The broker epoch the tracked numbers belong to (null: none seen yet). */
  epoch = null;

  /**
   * Records the broker's epoch. Returns true if it differs from the one
   * before (the first one included); the tracking is then forgotten, since
   * `seq` numbering restarted.
   */
  setEpoch(epoch) {
    if (epoch === this.epoch) return false;
    this.epoch = epoch;
    this.#last.clear();
    return true;
  }

  /**
   * Records a quote's seq. Returns -1 for a repeat (seq not above the last
   * one seen: drop the quote, tracking unchanged), 0 for the next one (or the
   * first of the topic), n > 0 when n quotes were skipped before it.
   */
  accept(topic, seq) {
    const s = typeof seq === "bigint" ? seq : BigInt(seq);
    const last = this.#last.get(topic);
    if (last === undefined) {
      this.#last.set(topic, s);
      return 0;
    }
    if (s <= last) return -1;
    this.#last.set(topic, s);
    return s === last + 1n ? 0 : Number(s - last - 1n);
  }

  /** The last seq accepted for the topic (BigInt), or undefined. */
  lastSeq(topic) {
    return this.#last.get(topic);
  }

  /** Forgets topics: an iterable of topics, or a predicate. */
  forget(topics) {
    if (typeof topics === "function") {
      for (const t of [...this.#last.keys()]) if (topics(t)) this.#last.delete(t);
    } else {
      for (const t of topics) this.#last.delete(t);
    }
  }

  /** Forgets every topic (the epoch is kept). */
  clear() {
    this.#last.clear();
  }

  /** Topics tracked. */
  get size() {
    return this.#last.size;
  }

  topics() {
    return this.#last.keys();
  }
}
