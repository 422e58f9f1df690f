// A real nginx (Debian's package) in front of the broker, for the proxy
// test: started on loopback with its own temporary prefix and config
// (`-p`, `-c`, `-e`), `daemon off;` so this process is its master, with the
// error log, access log, pid file and temp paths in that folder, and killed
// by its PID at the end. The master runs unprivileged: as this user, or,
// when the tests run as root, as `nobody` (the folder is handed to it).
//
// The config is nginx's plainest reverse proxy: `proxy_pass` and nothing
// else. No `proxy_http_version 1.1`, no Upgrade/Connection headers (so a
// WebSocket upgrade does not get through: `Upgrade` and `Connection` are
// hop-by-hop, and nginx speaks HTTP/1.0 to the upstream by default), no
// `proxy_buffering off` (the broker's `X-Accel-Buffering: no` turns
// buffering off for /sse).

import { execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Debian's nginx; $NGINX overrides. */
export const NGINX = process.env.NGINX || "/usr/sbin/nginx";

/** A free loopback port (the kernel's pick; closed again before nginx binds it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Whose uid/gid the master takes when this process is root: nobody's. */
function unprivileged() {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const id = (flag) => Number(execFileSync("id", [flag, "nobody"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

export function nginxConfig({ dir, port, upstream }) {
  return `# tickwire browser test: a plain reverse proxy (no WebSocket upgrade configured)
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 512; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${upstream};
    }
  }
}
`;
}

/**
 * Starts nginx in front of `upstream` ("host:port"). Resolves {addr, child,
 * dir, log(), accessLog(), stop()} once it accepts connections; rejects if it
 * exits first or is not listening within `timeoutMs`.
 */
export async function startNginx(upstream, { timeoutMs = 20_000 } = {}) {
  if (!existsSync(NGINX)) {
    throw new Error(`nginx not found at ${NGINX}: apt-get install -y nginx (or set NGINX)`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "tickwire-nginx-"));
  const port = await freePort();
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(conf, nginxConfig({ dir, port, upstream }));
  const user = unprivileged();
  if (user) chownSync(dir, user.uid, user.gid);
  const child = spawn(NGINX, ["-p", `${dir}/`, "-c", conf, "-e", `${dir}/error.log`], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(user ?? {}),
  });
  const output = [];
  child.stdout.on("data", (b) => output.push(b.toString()));
  child.stderr.on("data", (b) => output.push(b.toString()));
  const read = (name) => {
    try {
      return readFileSync(path.join(dir, name), "utf8");
    } catch {
      return "";
    }
  };
  const handle = {
    addr: `127.0.0.1:${port}`,
    child,
    dir,
    log: () => `${output.join("")}${read("error.log")}`,
    accessLog: () => read("access.log"),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        process.kill(child.pid, "SIGTERM"); // fast shutdown: the master stops its worker, then exits
        const late = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid, "SIGKILL"), 10_000);
        await exited;
        clearTimeout(late);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = handle.log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx exited (code ${child.exitCode}, signal ${child.signalCode}) before listening:\n${log}`);
    }
    if (await canConnect(port)) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`nginx not listening on ${handle.addr} within ${timeoutMs} ms:\n${handle.log()}`);
    }
    // The interval of a readiness poll, not synchronisation.
    await new Promise((r) => setTimeout(r, 50));
  }
}
