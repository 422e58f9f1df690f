"""Several tickwire Python clients (``tickwire.Subscriber``) in one process,
each recording what its application receives.

    python py_subscribers.py CONFIG_JSON

CONFIG_JSON: {"clients": [{"name", "urls": [...], "format", "entries": [...]}],
and optionally "backoff_initial", "backoff_max" (s; else the client's
defaults)}. Each client connects to its first URL
(the next ones are its failover list), subscribes its entries and records,
per topic, every quote seq passed to the application (as runs of
consecutive seqs, in arrival order), the gaps, resumes and connections the
client reports.

Commands on stdin, one per line: ``status`` prints one JSON line
{"type": "status", "clients": [record, ...]}; EOF (or ``exit``) closes the
clients and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

from tickwire import State, Subscriber


class Record:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name = spec["name"]
        self.spec = spec
        self.topics: dict[str, list[list[int]]] = {}  # topic -> runs [first, last]
        self.quotes = 0
        self.connections: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.gaps: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.subscribed = False
        self.sub: Subscriber | None = None

    def quote(self, topic: str, seq: int) -> None:
        self.quotes += 1
        runs = self.topics.setdefault(topic, [])
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])

    def to_json(self) -> dict[str, Any]:
        sub = self.sub
        return {
            "name": self.name,
            "lang": "python",
            "format": self.spec["format"],
            "entries": self.spec["entries"],
            "subscribed": self.subscribed,
            "state": sub.state.value if sub is not None else "idle",
            "url": sub.url if sub is not None else None,
            "quotes": self.quotes,
            "topics": self.topics,
            "connections": self.connections,
            "resumes": self.resumes,
            "gaps": self.gaps,
            "client_dropped_repeats": sub.dropped_stale if sub is not None else 0,
            "errors": self.errors,
        }


async def run_client(rec: Record, backoff: dict[str, float]) -> None:
    spec = rec.spec

    def on_state(state: State) -> None:
        if state == State.OPEN and rec.sub is not None:
            rec.connections.append({"t": time.time(), "url": rec.sub.url})

    def on_gap(g: Any) -> None:
        rec.gaps.append({"t": time.time(), "topic": g.topic, "expected": g.expected, "received": g.received,
                         "reason": None})

    def on_resume(r: Any) -> None:
        rec.resumes.append({"t": time.time(), "url": rec.sub.url if rec.sub else None, "id": r.id,
                            "recovered": r.recovered_topics, "unrecovered": list(r.unrecovered)})

    def on_error(e: Exception) -> None:
        rec.errors.append(f"{time.time():.3f} {e!r}")

    sub = Subscriber(spec["urls"], format=spec["format"], on_state_change=on_state, on_gap=on_gap,
                     on_resume=on_resume, on_error=on_error, **backoff)
    rec.sub = sub
    try:
        await sub.connect()
        # connect() returns open: the first connection is recorded here.
        if not rec.connections:
            rec.connections.append({"t": time.time(), "url": sub.url})
        await sub.subscribe(spec["entries"])
        rec.subscribed = True
        async for q in sub:
            rec.quote(q.topic, q.seq)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - reported in the record
        rec.errors.append(f"{time.time():.3f} client ended: {e!r}")


async def main() -> None:
    config = json.loads(sys.argv[1])
    backoff = {k: float(config[k]) for k in ("backoff_initial", "backoff_max") if k in config}
    records = [Record(spec) for spec in config["clients"]]
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str | None] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    tasks = [asyncio.create_task(run_client(r, backoff)) for r in records]
    print(json.dumps({"type": "started", "clients": len(records)}), flush=True)
    while True:
        cmd = await commands.get()
        if cmd is None or cmd == "exit":
            break
        if cmd == "status":
            out = {"type": "status", "t": time.time(), "clients": [r.to_json() for r in records]}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
    async def close(sub: Subscriber) -> None:
        try:
            await asyncio.wait_for(sub.close(), 5)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass

    await asyncio.gather(*(close(r.sub) for r in records if r.sub is not None))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
