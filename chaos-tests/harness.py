"""Processes of the chaos test: a real nats-server, tickwire brokers, the
subscriber processes (JavaScript under node, Python) and the feed.

Every process is started here and stopped here by its own PID (never by a
name). Every wait is for a condition with a deadline; nothing sleeps to
synchronise. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def broker_binary() -> Path:
    env = os.environ.get("TICKWIRE_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "tickwire"


def nats_binary() -> str:
    return os.environ.get("NATS_SERVER") or shutil.which("nats-server") or "nats-server"


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls ``pred`` until it returns something truthy (returned); fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A loopback port nothing listens on now (for nats-server, which must
    come back on the same port after a restart)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signals one process we started (by its PID) and reaps it; SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


class Nats:
    """``nats-server -js`` on a fixed loopback port with its store in ``store``;
    restartable on the same port and store."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.store = workdir / "nats-store"
        self.log_path = workdir / "nats.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        assert self.proc is None
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [nats_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        self.starts += 1

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"nats-server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(listening, timeout, f"nats-server listening on {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc, sig)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Broker:
    """A tickwire broker process in the cluster, on ports chosen by the kernel
    (read from its ``--print-ready`` line)."""

    def __init__(self, name: str, workdir: Path, config: str) -> None:
        self.name = name
        self.dir = workdir / f"broker-{name}"
        self.dir.mkdir()
        (self.dir / "tickwire.toml").write_text(config)
        self.log_path = self.dir / "broker.log"
        self.proc: subprocess.Popen | None = None
        self.ws_port = 0
        self.ingest_port = 0
        self.epoch: str | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def start(self, timeout: float = 30.0) -> None:
        args = [str(broker_binary()), "--config", str(self.dir / "tickwire.toml"), "--print-ready",
                "--workers", "2", "--ws-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0"]
        env = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("CHAOS_RUST_LOG", "info"))
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.dir)
        finally:
            log.close()
        lines: queue.Queue[bytes] = queue.Queue()
        out = self.proc.stdout
        assert out is not None

        def read() -> None:
            # The broker logs to stdout too: everything goes on to the log file.
            with open(self.log_path, "ab") as f:
                for line in out:
                    f.write(line)
                    f.flush()
                    lines.put(line)
            lines.put(b"")

        threading.Thread(target=read, daemon=True, name=f"broker-{self.name}-stdout").start()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"broker {self.name}: no ready line within {timeout:.0f} s: {self.log_tail()}")
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line == b"":
                raise AssertionError(f"broker {self.name} exited with {self.proc.wait()}: {self.log_tail()}")
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("ready") is True:
                self.ws_port = int(ready["ws"].rsplit(":", 1)[1])
                self.ingest_port = int(ready["ingest"].rsplit(":", 1)[1])
                return

    def kill(self) -> None:
        """SIGKILL: a crash; no close frame reaches the clients."""
        proc, self.proc = self.proc, None
        stop_process(proc, signal.SIGKILL)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc, signal.SIGTERM)

    def healthz(self) -> int:
        try:
            return http_get(self.ws_port, "/healthz")[0]
        except OSError:
            return 0

    def metrics(self, prefix: str = "tickwire_") -> dict[str, float]:
        """The /metrics samples whose name starts with ``prefix``: {"name{labels}": value}."""
        _, body = http_get(self.ws_port, "/metrics")
        out: dict[str, float] = {}
        for line in body.splitlines():
            if line.startswith(prefix):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    pass
        return out

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def log_events(self, needles: tuple[str, ...], since: float = 0.0) -> list[tuple[float, str]]:
        """(time, message) of the log lines containing one of ``needles``, from ``since`` on."""
        out = []
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            stamp, _, rest = line.partition(" ")
            if not any(n in rest for n in needles):
                continue
            try:
                t = rfc3339(stamp)
            except ValueError:
                continue
            if t >= since:
                out.append((t, " ".join(rest.split())))
        return out


class LineProcess:
    """A child that takes one-line commands on stdin and answers JSON lines on
    stdout (the subscriber processes, the feed). Its stderr goes to a file."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         env=env, cwd=HERE, text=True, bufsize=1)
        finally:
            err.close()
        self._lines: queue.Queue[str | None] = queue.Queue()
        out = self.proc.stdout
        assert out is not None

        def read() -> None:
            for line in out:
                self._lines.put(line)
            self._lines.put(None)

        threading.Thread(target=read, daemon=True, name=f"{name}-stdout").start()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def reply(self, type_: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next JSON line of type ``type_`` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {type_!r} reply within {timeout:.0f} s: {self.stderr_tail()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"{self.name} exited with {self.proc.wait()}: {self.stderr_tail()}")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("type") == type_:
                return msg

    def ask(self, command: str, type_: str, timeout: float = 30.0) -> dict[str, Any]:
        self.send(command)
        return self.reply(type_, timeout)

    def close(self, timeout: float = 15.0) -> None:
        """Closes stdin (the child exits on EOF); then SIGTERM, SIGKILL."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, signal.SIGTERM, timeout)

    def stderr_tail(self, n: int = 3000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def python_for_clients() -> str:
    """The interpreter with the tickwire package: $CHAOS_PYTHON, else the one running the test."""
    return os.environ.get("CHAOS_PYTHON") or sys.executable


class JetStreamReader:
    """A minimal NATS client (the text protocol over one socket) that reads a
    JetStream stream message by message with ``$JS.API.STREAM.MSG.GET``:
    evidence of what reached NATS, independent of any broker."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'
                          b"SUB _CHAOS_INBOX.* 1\r\nPING\r\n")
        while self._line() != b"PONG":
            pass
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("nats closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("nats closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def request(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        inbox = f"_CHAOS_INBOX.{self.n}"
        payload = json.dumps(body).encode()
        self.sock.sendall(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n")
        while True:
            line = self._line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            parts = line.split()
            if not parts or parts[0] not in (b"MSG", b"HMSG"):
                if parts and parts[0] == b"-ERR":
                    raise ConnectionError(line.decode())
                continue
            total = int(parts[-1])
            data = self._exactly(total)
            if parts[1].decode() != inbox:
                continue
            if parts[0] == b"HMSG":  # no responders: 503 in the headers
                header_len = int(parts[-2])
                if not data[header_len:]:
                    raise ConnectionError(f"no answer to {subject}: {data[:header_len]!r}")
                data = data[header_len:]
            return json.loads(data)

    def quotes(self, stream: str, subject: str) -> list[dict[str, Any]]:
        """Every stored message of ``subject``, in stream order: {stream_seq,
        seq (the quote's), sent_ns (the publishing broker's clock), origin,
        stored (JetStream's time)}."""
        import base64
        import struct

        out: list[dict[str, Any]] = []
        seq = 1
        while True:
            r = self.request(f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq, "next_by_subj": subject})
            if "error" in r:
                if r["error"].get("code") == 404:
                    return out
                raise AssertionError(f"MSG.GET {subject} from {seq}: {r['error']}")
            m = r["message"]
            data = base64.b64decode(m["data"])
            origin, qseq, sent_ns = struct.unpack_from("<QQQ", data, 1)
            out.append({"stream_seq": m["seq"], "seq": qseq, "sent_ns": sent_ns, "origin": origin,
                        "stored": rfc3339(m["time"])})
            seq = m["seq"] + 1


def rfc3339(text: str) -> float:
    """Seconds since the Unix epoch of a UTC RFC 3339 time with up to nanoseconds."""
    import datetime

    text = text.rstrip("Z")
    whole, _, frac = text.partition(".")
    t = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return t + (float("0." + frac) if frac else 0.0)
