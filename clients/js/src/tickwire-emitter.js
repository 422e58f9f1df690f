// tickwire-emitter.js — the event emitter the tickwire client is built on
// (exported by ./tickwire-client.js).

/**
 * Reports an exception thrown by a listener: a listener's bug must not break
 * the client's own bookkeeping, so it surfaces as an uncaught error, outside
 * the caller's stack.
 */
export function reportLater(e) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(e);
  else
    queueMicrotask(() => {
      throw e;
    });
}

/** A small event emitter: on / off / once, listeners called in order. */
export class Emitter {
  #listeners = new Map();

  /** Adds a listener; returns a function that removes it. */
  on(type, listener) {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  /** once(type, listener) → remover; once(type) → a Promise of the next event. */
  once(type, listener) {
    if (listener === undefined) return new Promise((resolve) => this.once(type, resolve));
    const off = this.on(type, (ev) => {
      off();
      listener(ev);
    });
    return off;
  }

  emit(type, ev) {
    const set = this.#listeners.get(type);
    if (!set || set.size === 0) return;
    for (const listener of set) {
      try {
        listener(ev);
      } catch (e) {
        reportLater(e);
      }
    }
  }
}
