// Starts and stops the real `tickwire` binary for the browser tests, the way
// crates/broker/tests/process.rs does: port 0 (the kernel picks free ports)
// or a given ws port, addresses read from the JSON line `--print-ready`
// prints once every listener is bound:
// {"ready":true,"ws":…,"wss":…|null,"ingest":…,"pid":…} (docs/operations.md).

import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";

import { BROKER_BIN } from "./paths.js";

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

/**
 * A self-signed certificate for localhost/127.0.0.1 (openssl), for the
 * https test: {cert, key} paths in `dir`.
 */
export function selfSignedCert(dir) {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"],
    { stdio: "ignore" },
  );
  return { cert, key };
}

/**
 * Spawns the broker once. Resolves {child, wsAddr, ingestAddr, tlsAddr, log}
 * (tlsAddr null without `tls`) when it has printed its ready line; rejects if
 * it exits first (e.g. port in use) or does not print it within `timeoutMs`.
 */
export function startBroker({ wsPort = 0, demoRate = 1000, timeoutMs = 30_000, tls = null, config = null } = {}) {
  if (!existsSync(BROKER_BIN)) {
    return Promise.reject(
      new Error(`broker binary not found at ${BROKER_BIN}: run \`cargo build -p tickwire-broker\` (or set TICKWIRE_BIN)`),
    );
  }
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.RUST_LOG;
  const child = spawn(
    BROKER_BIN,
    [
      // The demo feed (demoRate 0: none; the test publishes its own quotes).
      ...(demoRate > 0 ? ["--demo", "--demo-rate", String(demoRate)] : []),
      "--ws-addr",
      `127.0.0.1:${wsPort}`,
      "--ingest-addr",
      "127.0.0.1:0",
      "--log-level",
      "info",
      "--print-ready",
      // wss/https on an ephemeral port with the given PEM files.
      ...(tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-addr", "127.0.0.1:0"] : []),
      // A TOML config file (flags above still override its addresses).
      ...(config ? ["--config", config] : []),
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const log = [];
  const keep = (line) => {
    log.push(line);
    if (log.length > 200) log.shift();
  };
  // Keep draining both pipes for the life of the process so it never blocks.
  createInterface({ input: child.stderr }).on("line", (l) => keep(l.replace(ANSI, "")));
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
      keep(raw.replace(ANSI, ""));
      const ready = done ? null : readyLine(raw);
      if (!ready) return;
      const { ws: wsAddr, ingest: ingestAddr, wss: tlsAddr } = ready;
      finish(null, { child, wsAddr, ingestAddr, tlsAddr, log });
    });
    child.once("error", (e) => finish(e));
    child.once("exit", (code, signal) =>
      finish(new Error(`broker exited (code ${code}, signal ${signal}) before it was ready:\n${log.join("\n")}`)),
    );
  });
}

/**
 * Starts the broker on a fixed ws port, retrying while the port is briefly
 * busy (the previous process still releasing it) until `deadlineMs`.
 */
export async function startBrokerOnPort(wsPort, { deadlineMs = 20_000, retryMs = 250, ...opts } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (let tries = 1; ; tries++) {
    try {
      return await startBroker({ ...opts, wsPort });
    } catch (e) {
      if (Date.now() + retryMs > deadline) {
        throw new Error(`could not restart the broker on port ${wsPort} after ${tries} tries: ${e.message}`);
      }
      // A retry interval for a busy port, not synchronisation.
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

/** Kills a broker this test started (by its PID) and waits for it to exit. */
export async function stopBroker(broker, signal = "SIGKILL") {
  const { child } = broker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(child.pid, signal);
  } catch (e) {
    if (e.code !== "ESRCH") throw e; // already gone
  }
  await exited;
}

export function portOf(addr) {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}
