// Shared locations for the browser tests.

import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The broker binary: $TICKWIRE_BIN, else target/debug/tickwire (cargo build). */
export const BROKER_BIN = process.env.TICKWIRE_BIN || path.join(REPO, "target", "debug", "tickwire");

/** Debian's chromium; $CHROMIUM overrides. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const ARTIFACTS = path.join(REPO, "target", "browser-artifacts");

/**
 * The decoder the page uses: the JavaScript client's (clients/js, served as
 * /tickwire-decoder.js; docs/js/tickwire-decoder.js re-exports it).
 */
export const DECODER = path.join(REPO, "clients", "js", "src", "tickwire-decoder.js");

/**
 * Imports the decoder. clients/js/package.json says "type": "module", so it
 * is an ES module on every Node this suite supports.
 */
export async function loadDecoder() {
  return import(pathToFileURL(DECODER).href);
}
