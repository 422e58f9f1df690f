// tickwire-errors.js — the error type of the tickwire JavaScript client
// (exported by ./tickwire-client.js).

/**
 * An error reply from the broker (`code` is the broker's: bad_request,
 * bad_topic, too_many_subscriptions, not_authorized, rate_limited, or a newer
 * one), or a client-side failure with one of the codes `closed`,
 * `disconnected`, `not_connected`, `timeout`, `no_token`, `token_error`,
 * `bad_message`, `connect_failed`.
 */
export class TickwireError extends Error {
  constructor(code, message, { id, reply, op, topics } = {}) {
    super(message);
    this.name = "TickwireError";
    /** The broker's error code, or a client-side code. */
    this.code = code;
    /** The request id, when the error answers a request. */
    this.id = id;
    /** The broker's `error` message as received; undefined for client-side errors. */
    this.reply = reply;
    /** The op of the request that failed ("subscribe", "unsubscribe", "auth"...). */
    this.op = op;
    /** The topics of the request that failed, if it had any. */
    this.topics = topics;
  }
}
