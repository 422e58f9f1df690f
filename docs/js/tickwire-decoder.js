// tickwire-decoder.js — decode tickwire v1 server messages in a browser (or Node).
//
// The decoder lives in the JavaScript client package, as
// clients/js/src/tickwire-decoder.js: one implementation, used by the client
// (clients/js/src/tickwire-client.js), by the broker's dashboard, and served
// by the broker as GET /tickwire-decoder.js. This file re-exports it so the
// path documented before the client existed keeps working. Layout, API and
// source: docs/protocol.md, sections 3 and 4.
//
// Usage (from this repository):
//   import { decodeMessage, decodeQuote, DeltaState } from "./docs/js/tickwire-decoder.js";

export {
  decodeDelta,
  decodeMessage,
  decodeQuote,
  DeltaState,
  DELTA_HEADER_LEN,
  DELTA_TYPE,
  QUOTE_FIELDS,
  QUOTE_HEADER_LEN,
  QUOTE_TYPE,
} from "../../clients/js/src/tickwire-decoder.js";
