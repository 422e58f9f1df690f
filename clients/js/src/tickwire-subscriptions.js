// tickwire-subscriptions.js — the subscriptions a tickwire client remembers
// and restores on every reconnect (entryMatches is exported by
// ./tickwire-client.js).
//
// The acknowledged entries (topics and `PREFIX*` patterns, with their
// max_hz) are remembered. On every (re)connect they are subscribed again,
// grouped by max_hz; a refused group is retried one entry per request (a
// request is all or nothing), and entries still refused are dropped.

/** Most topics per resubscribe request (a client message is at most 64 KiB). */
const RESUBSCRIBE_CHUNK = 256;

/** Whether subscription entry `entry` (a topic or `PREFIX*`) covers `topic`. */
export function entryMatches(entry, topic) {
  return entry.endsWith("*") ? topic.startsWith(entry.slice(0, -1)) : entry === topic;
}

/**
 * The acknowledged entries: entry → {maxHz, conn}, `conn` being the number
 * of the connection whose ack it was. A connection record (`conn`) has its
 * number `n` and `inflight`, the entries of its subscribe requests still
 * unanswered (see ./tickwire-requests.js).
 */
export class Subscriptions {
  #subs = new Map();

  /** A copy: entry → {maxHz}. */
  copy() {
    const out = new Map();
    for (const [entry, s] of this.#subs) out.set(entry, { maxHz: s.maxHz });
    return out;
  }

  has(entry) {
    return this.#subs.has(entry);
  }

  /** Forgets entries. */
  delete(entries) {
    for (const t of entries) this.#subs.delete(t);
  }

  /** Records entries acknowledged on connection `conn`. */
  acknowledged(entries, maxHz, conn) {
    for (const t of entries) this.#subs.set(t, { maxHz, conn: conn.n });
  }

  /**
   * The resubscription on connection `conn`: the entries not yet restored
   * there nor being, grouped by max_hz, in requests of at most
   * RESUBSCRIBE_CHUNK entries: [{topics, maxHz}].
   */
  toRestore(conn) {
    const groups = new Map(); // max_hz (or "") -> entries
    for (const [entry, s] of this.#subs) {
      if (s.conn === conn.n || conn.inflight.has(entry)) continue; // already done on this connection
      const key = s.maxHz ?? "";
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(entry);
    }
    const requests = [];
    for (const [key, entries] of groups) {
      for (let i = 0; i < entries.length; i += RESUBSCRIBE_CHUNK) {
        requests.push({ topics: entries.slice(i, i + RESUBSCRIBE_CHUNK), maxHz: key === "" ? undefined : key });
      }
    }
    return requests;
  }

  /** Whether `entry` is remembered, not yet restored on `conn`, and no request for it is in flight there. */
  needsRestore(conn, entry) {
    const s = this.#subs.get(entry);
    return Boolean(s && s.conn !== conn.n && !conn.inflight.has(entry));
  }

  /** Forgets the entries, among `entries`, that were not restored on `conn` (their resubscription was refused). */
  dropUnrestored(conn, entries) {
    for (const t of entries) {
      const s = this.#subs.get(t);
      if (s && s.conn !== conn.n) this.#subs.delete(t);
    }
  }

  /** Makes `tracker` (a SeqTracker) forget the topics of `removed` entries that no remembered entry covers. */
  forgetUncovered(tracker, removed) {
    if (tracker.size === 0 || removed.length === 0) return;
    const entries = [...this.#subs.keys()];
    tracker.forget((topic) => removed.some((r) => entryMatches(r, topic)) && !entries.some((e) => entryMatches(e, topic)));
  }
}
