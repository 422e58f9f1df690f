"""Fixtures: a real tickwire broker process, helpers to wait for conditions."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent  # clients/python/tests -> repo root

# websockets >= 15 and urllib honour *_proxy variables; every test talks to
# 127.0.0.1, so make sure no proxy is in the way.
for _var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_var, None)

START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0


def broker_binary() -> Path:
    env = os.environ.get("TICKWIRE_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "tickwire"


def ready_line(line: bytes) -> dict[str, Any] | None:
    """The broker's ``--print-ready`` line, parsed; None for any other (log) line."""
    if not line.startswith(b"{"):
        return None
    try:
        v = json.loads(line)
    except ValueError:
        return None
    return v if isinstance(v, dict) and v.get("ready") is True else None


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Polls ``pred`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
                           what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    """Runs a test coroutine with an overall (generous) deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Broker:
    """A tickwire broker process on loopback ports chosen at start.

    The first start asks for port 0 and reads the ports the kernel gave from
    the JSON line ``--print-ready`` prints once every listener is bound
    (docs/operations.md): no race for a free port. A restart asks for the
    same ports again.
    """

    def __init__(self, binary: Path, workdir: Path, config: str | None = None,
                 extra_args: list[str] | None = None, tls: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.config = config
        self.extra_args = list(extra_args or [])
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self.ws_port = 0
        self.ingest_port = 0
        self.tls_port = 0
        self.starts = 0
        self.log_path = workdir / "broker.log"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}/ws"

    def start(self, same_ports: bool = False) -> None:
        assert self.proc is None, "already running"
        if not same_ports:
            self.ws_port = self.ingest_port = self.tls_port = 0
        ok, last = self._try_start()
        if not ok:
            raise RuntimeError(f"broker did not start: {last}")
        self.starts += 1

    def _try_start(self) -> tuple[bool, str]:
        args = [str(self.binary), "--workers", "2", "--print-ready",
                "--ws-addr", f"127.0.0.1:{self.ws_port}",
                "--ingest-addr", f"127.0.0.1:{self.ingest_port}"]
        if self.tls:
            args += ["--tls-addr", f"127.0.0.1:{self.tls_port}"]
        if self.config is not None:
            cfg = self.workdir / "tickwire.toml"
            cfg.write_text(self.config)
            args += ["--config", str(cfg)]
        args += self.extra_args
        env = dict(os.environ, NO_COLOR="1", RUST_LOG="warn")
        log = open(self.log_path, "ab")
        offset = log.tell()  # this start's output: the log file is appended to
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.workdir)
        finally:
            log.close()
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            # A broker that has exited did not start, ready line or not.
            exited = self.proc.poll() is not None
            ready = self._ready_line(offset)
            if exited:
                rc = self.proc.returncode
                self.proc = None
                return False, f"exited with {rc}: {self.log_tail()}"
            if ready is not None:
                self.ws_port = port_of(ready["ws"])
                self.ingest_port = port_of(ready["ingest"])
                self.tls_port = port_of(ready["wss"]) if ready["wss"] else 0
                return True, ""
            time.sleep(0.02)
        self.stop()
        return False, f"no ready line within {START_DEADLINE_S} s: {self.log_tail()}"

    def _ready_line(self, offset: int) -> dict[str, Any] | None:
        """The ready line among the whole lines written since ``offset``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read()
        except OSError:
            return None
        for line in text.split(b"\n")[:-1]:  # the last piece may be unfinished
            ready = ready_line(line)
            if ready is not None:
                return ready
        return None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_DEADLINE_S)

    def restart(self) -> None:
        """Stops the broker and starts a new one on the same ports (new epoch)."""
        self.stop()
        self.start(same_ports=True)

    def metric(self, name_with_labels: str) -> float:
        status, body = http_get(self.ws_port, "/metrics")
        assert status == 200
        for line in body.splitlines():
            if line.startswith(name_with_labels + " "):
                return float(line.split()[-1])
        return 0.0

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def tickwire_bin() -> Path:
    path = broker_binary()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"broker binary not found at {path}: build it with `cargo build -p tickwire-broker` "
                    "or set TICKWIRE_BIN")
    return path


@pytest.fixture(scope="session")
def broker(tickwire_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """One broker shared by tests that do not restart or reconfigure it."""
    b = Broker(tickwire_bin, tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def make_broker(tickwire_bin: Path, tmp_path: Path):
    """Factory for a private broker (config, TLS, restarts); all stopped at teardown."""
    made: list[Broker] = []
    counter = itertools.count()

    def make(config: str | None = None, tls: bool = False, extra_args: list[str] | None = None) -> Broker:
        d = tmp_path / f"broker{next(counter)}"
        d.mkdir()
        b = Broker(tickwire_bin, d, config=config, extra_args=extra_args, tls=tls)
        made.append(b)
        b.start()
        return b

    yield make
    for b in made:
        b.stop()


_topic_counter = itertools.count()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique topic names per test (the session broker keeps last values)."""
    base = re.sub(r"[^A-Za-z0-9]", "", request.node.name)[:40]

    def make(suffix: str = "T") -> str:
        return f"{base}.{suffix}{next(_topic_counter)}"

    return make
