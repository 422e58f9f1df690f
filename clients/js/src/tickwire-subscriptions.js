// tickwire-subscriptions.js — the subscriptions a tickwire client remembers
// and restores on every reconnect (entryMatches is exported by
// ./tickwire-client.js).
//
// The acknowledged entries (topics and `PREFIX*` patterns, with their
// max_hz and rewind) are remembered. On every (re)connect they are
// subscribed again, grouped by options; a refused group is retried one entry
// per request (a request is all or nothing), and entries still refused are
// dropped. With resume on, each of those requests carries `since`: the
// client's epoch and the last seq of every tracked topic its own entries
// cover (planResubscribe).

/** Most topics per resubscribe request (a client message is at most 64 KiB). */
const RESUBSCRIBE_CHUNK = 256;
/** Most keys in one request's `since.seqs` (protocol v1.2). */
export const MAX_SINCE_KEYS = 1024;
/** A resubscribe request is kept under this many bytes of JSON (the broker's default message limit: 65,536). */
const MAX_REQUEST_BYTES = 60_000;
/** Room for `,"id":<2^53 - 1>`. */
const ID_ROOM = 24;

/** Whether subscription entry `entry` (a topic or `PREFIX*`) covers `topic`. */
export function entryMatches(entry, topic) {
  return entry.endsWith("*") ? topic.startsWith(entry.slice(0, -1)) : entry === topic;
}

/**
 * The acknowledged entries: entry → {maxHz, rewind, conn}, `conn` being the number
 * of the connection whose ack it was. A connection record (`conn`) has its
 * number `n` and `inflight`, the entries of its subscribe requests still
 * unanswered (see ./tickwire-requests.js).
 */
export class Subscriptions {
  #subs = new Map();

  /** A copy: entry → {maxHz, rewind?}. */
  copy() {
    const out = new Map();
    for (const [entry, s] of this.#subs) {
      out.set(entry, s.rewind === undefined ? { maxHz: s.maxHz } : { maxHz: s.maxHz, rewind: s.rewind });
    }
    return out;
  }

  has(entry) {
    return this.#subs.has(entry);
  }

  /** Forgets entries. */
  delete(entries) {
    for (const t of entries) this.#subs.delete(t);
  }

  /** Records entries acknowledged on connection `conn` (with the options of their request). */
  acknowledged(entries, maxHz, rewind, conn) {
    for (const t of entries) this.#subs.set(t, { maxHz, rewind, conn: conn.n });
  }

  /**
   * The resubscription on connection `conn`: the entries not yet restored
   * there nor being, grouped by options: [{topics, maxHz, rewind}].
   */
  toRestore(conn) {
    const groups = new Map(); // "max_hz|rewind" -> {topics, maxHz, rewind}
    for (const [entry, s] of this.#subs) {
      if (s.conn === conn.n || conn.inflight.has(entry)) continue; // already done on this connection
      const key = `${s.maxHz ?? ""}|${s.rewind ?? ""}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { topics: [], maxHz: s.maxHz, rewind: s.rewind }));
      g.topics.push(entry);
    }
    return [...groups.values()];
  }

  /** The options entry `entry` was acknowledged with ({maxHz, rewind}), or undefined. */
  options(entry) {
    const s = this.#subs.get(entry);
    return s && { maxHz: s.maxHz, rewind: s.rewind };
  }

  /**
   * A function telling whether the options of `topic` conflate it: the most
   * specific remembered entry covering it (an exact topic over any pattern,
   * a longer prefix over a shorter one) has a max_hz.
   */
  conflation() {
    const patterns = [];
    let any = false;
    for (const [entry, s] of this.#subs) {
      if (s.maxHz !== undefined) any = true;
      if (entry.endsWith("*")) patterns.push([entry.slice(0, -1), s.maxHz !== undefined]);
    }
    if (!any) return () => false;
    patterns.sort((a, b) => b[0].length - a[0].length);
    return (topic) => {
      const exact = this.#subs.get(topic);
      if (exact) return exact.maxHz !== undefined;
      for (const [prefix, throttled] of patterns) if (topic.startsWith(prefix)) return throttled;
      return false;
    };
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

  /**
   * Makes `store` (a SeqTracker, or a connection's DeltaState) forget the
   * topics of `removed` entries that no remembered entry covers.
   */
  forgetUncovered(store, removed) {
    if (store.size === 0 || removed.length === 0) return;
    const entries = [...this.#subs.keys()];
    store.forget((topic) => removed.some((r) => entryMatches(r, topic)) && !entries.some((e) => entryMatches(e, topic)));
  }
}

const jsonSize = (v) => JSON.stringify(v).length;

/**
 * The subscribe requests that restore `groups` ([{topics, maxHz, rewind}],
 * as toRestore gives them): [{topics, maxHz, rewind, keys, msg}], `msg`
 * without its id, `keys` the topics named in its `since` (empty: none).
 *
 * - snapshot: the resubscription's `snapshot`; `rewind` goes only with a
 *   snapshot (the broker refuses it with snapshot:false).
 * - tracker (a SeqTracker): with resume on and a known epoch, each request
 *   carries `since` with the last seq of every tracked topic its own
 *   entries cover. A topic covered by entries of several requests is named
 *   in each (no request then sends a snapshot of it; a replay seen twice is
 *   dropped as repeats).
 * - A request has at most 256 entries and 1,024 keys, and its JSON stays
 *   under 60,000 bytes. An entry alone covering more than that is sent
 *   several times, each with a share of the keys, all but the last with
 *   snapshot:false and no rewind (the last sends the snapshots, or the
 *   rewind, of its topics not named in it).
 */
export function planResubscribe(groups, { snapshot, resume, tracker }) {
  const out = [];
  const epoch = tracker.epoch;
  const useSince = resume && typeof epoch === "string" && tracker.size > 0;
  for (const { topics: entries, maxHz, rewind } of groups) {
    const base = { op: "subscribe", topics: [], snapshot };
    if (maxHz !== undefined) base.max_hz = maxHz;
    if (rewind !== undefined && snapshot !== false) base.rewind = rewind;
    const make = (topics, keys, quiet = false) => {
      const msg = { ...base, topics };
      if (quiet) {
        msg.snapshot = false;
        delete msg.rewind;
      }
      const names = Object.keys(keys);
      if (names.length) msg.since = { epoch, seqs: keys };
      out.push({ topics, maxHz, rewind, keys: names, msg });
    };
    if (!useSince) {
      for (let i = 0; i < entries.length; i += RESUBSCRIBE_CHUNK) make(entries.slice(i, i + RESUBSCRIBE_CHUNK), Object.create(null));
      continue;
    }
    const overhead = jsonSize({ ...base, topics: ["x"], since: { epoch, seqs: { x: 0 } } }) + ID_ROOM;
    const keyCost = (t, v) => jsonSize(t) + String(v).length + 2;
    let batch = [];
    let keys = Object.create(null); // a topic may be "constructor" or "__proto__"
    let nkeys = 0;
    let size = overhead;
    const flush = () => {
      if (batch.length) make(batch, keys);
      batch = [];
      keys = Object.create(null);
      nkeys = 0;
      size = overhead;
    };
    for (const e of entries) {
      const mine = []; // [topic, seq as Number]
      for (const t of tracker.covered(e)) {
        const seq = tracker.lastSeq(t);
        if (seq <= BigInt(Number.MAX_SAFE_INTEGER)) mine.push([t, Number(seq)]);
      }
      const eCost = jsonSize(e) + 1;
      let mineCost = eCost;
      for (const [t, v] of mine) mineCost += keyCost(t, v);
      if (mine.length > MAX_SINCE_KEYS || overhead + mineCost > MAX_REQUEST_BYTES) {
        // Alone, in shares.
        flush();
        const shares = [Object.create(null)];
        let n = 0;
        let shareSize = overhead + eCost;
        for (const [t, v] of mine) {
          const c = keyCost(t, v);
          if (n > 0 && (n >= MAX_SINCE_KEYS || shareSize + c > MAX_REQUEST_BYTES)) {
            shares.push(Object.create(null));
            n = 0;
            shareSize = overhead + eCost;
          }
          shares[shares.length - 1][t] = v;
          n++;
          shareSize += c;
        }
        shares.forEach((share, i) => make([e], share, i < shares.length - 1));
        continue;
      }
      let cost = eCost;
      let added = 0;
      for (const [t, v] of mine) {
        if (!(t in keys)) {
          cost += keyCost(t, v);
          added++;
        }
      }
      if (batch.length && (batch.length >= RESUBSCRIBE_CHUNK || nkeys + added > MAX_SINCE_KEYS || size + cost > MAX_REQUEST_BYTES)) {
        flush();
        cost = mineCost;
        added = mine.length;
      }
      batch.push(e);
      for (const [t, v] of mine) keys[t] = v;
      nkeys += added;
      size += cost;
    }
    flush();
  }
  return out;
}
