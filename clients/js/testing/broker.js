// Starts and stops the real `tickwire` binary for the client's tests:
// loopback, port 0 (the kernel picks free ports) unless given, addresses read
// from the JSON line `--print-ready` prints once every listener is bound
// ({"ready":true,"ws":…,"wss":…,"ingest":…,"pid":…}; docs/operations.md), as
// browser-tests/lib/broker.js does. No demo feed unless asked: the tests
// publish their own quotes.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The broker binary: $TICKWIRE_BIN, else target/debug/tickwire (cargo build -p tickwire-broker). */
export const BROKER_BIN = process.env.TICKWIRE_BIN || path.join(REPO, "target", "debug", "tickwire");

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The `--print-ready` line's object, or null for any other (log) line. */
function readyLine(line) {
  if (!line.startsWith("{")) return null;
  try {
    const v = JSON.parse(line);
    return v && v.ready === true ? v : null;
  } catch {
    return null;
  }
}

export function portOf(addr) {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

/** A private TOML config file; returns {file, remove()}. */
export function configFile(text) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickwire-js-"));
  const file = path.join(dir, "tickwire.toml");
  writeFileSync(file, text);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Spawns the broker once. Resolves {child, wsAddr, ingestAddr, url, log}
 * once it has printed its ready line; rejects if it exits first (e.g. a port
 * still in use) or does not print it within `timeoutMs`.
 */
export function startBroker({ wsPort = 0, ingestPort = 0, config = null, demo = false, timeoutMs = 30_000 } = {}) {
  if (!existsSync(BROKER_BIN)) {
    return Promise.reject(
      new Error(`broker binary not found at ${BROKER_BIN}: run \`cargo build -p tickwire-broker\` (or set TICKWIRE_BIN)`),
    );
  }
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.RUST_LOG;
  const args = [
    "--ws-addr", `127.0.0.1:${wsPort}`,
    "--ingest-addr", `127.0.0.1:${ingestPort}`,
    "--log-level", "info",
    "--print-ready",
    ...(demo ? ["--demo", "--demo-rate", "200"] : []),
    ...(config ? ["--config", config] : []),
  ];
  const child = spawn(BROKER_BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const log = [];
  const keep = (line) => {
    log.push(line.replace(ANSI, ""));
    if (log.length > 200) log.shift();
  };
  // Keep draining both pipes for the life of the process so it never blocks.
  createInterface({ input: child.stderr }).on("line", keep);
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        reject(err);
      } else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`broker did not print its ready line within ${timeoutMs} ms:\n${log.join("\n")}`)),
      timeoutMs,
    );
    lines.on("line", (raw) => {
      keep(raw);
      const ready = done ? null : readyLine(raw);
      if (!ready) return;
      const { ws: wsAddr, ingest: ingestAddr } = ready;
      finish(null, { child, wsAddr, ingestAddr, url: `ws://${wsAddr}/ws`, log });
    });
    child.once("error", (e) => finish(e));
    child.once("exit", (code, signal) =>
      finish(new Error(`broker exited (code ${code}, signal ${signal}) before it was ready:\n${log.join("\n")}`)),
    );
  });
}

/**
 * Starts the broker on fixed ports, retrying while a port is still held by
 * the previous process, until `deadlineMs`.
 */
export async function startBrokerOnPorts(wsPort, ingestPort, { deadlineMs = 20_000, retryMs = 100, ...opts } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (let tries = 1; ; tries++) {
    try {
      return await startBroker({ ...opts, wsPort, ingestPort });
    } catch (e) {
      if (Date.now() + retryMs > deadline) {
        throw new Error(`could not restart the broker on ports ${wsPort}/${ingestPort} after ${tries} tries: ${e.message}`);
      }
      // The retry interval for a busy port, not synchronisation.
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

/** Stops a broker this test started (by its PID) and waits for it to exit. */
export async function stopBroker(broker, signal = "SIGKILL") {
  if (!broker) return;
  const { child } = broker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(child.pid, signal);
  } catch (e) {
    if (e.code !== "ESRCH") throw e;
  }
  await exited;
}
