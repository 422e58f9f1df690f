// Shared locations for the browser tests.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The broker binary: $TICKWIRE_BIN, else target/debug/tickwire (cargo build). */
export const BROKER_BIN = process.env.TICKWIRE_BIN || path.join(REPO, "target", "debug", "tickwire");

/** Debian's chromium; $CHROMIUM overrides. */
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const ARTIFACTS = path.join(REPO, "target", "browser-artifacts");

export const DECODER = path.join(REPO, "docs", "js", "tickwire-decoder.js");

/**
 * Imports docs/js/tickwire-decoder.js, the module the page uses. docs/ has
 * no package.json, so a Node without ES-module syntax detection (< 20.19)
 * would read it as CommonJS; then the same source is imported as a data: URL,
 * which is always an ES module.
 */
export async function loadDecoder() {
  try {
    return await import(pathToFileURL(DECODER).href);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    const src = readFileSync(DECODER, "utf8");
    return import(`data:text/javascript;base64,${Buffer.from(src).toString("base64")}`);
  }
}
