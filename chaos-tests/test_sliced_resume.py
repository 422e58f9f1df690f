"""A resume on broker B with a replay longer than one slice, of topics B
gets from the cluster (the feed is on broker C), while the feed goes on:
every quote arrives once, in seq order. The chaos test found that a quote
from the cluster overtook the rest of such a replay (``accept_remote`` in
crates/broker/src/router/cluster.rs did not send a job's owed replay
first, as ``accept`` does for the broker's own ingest): the client saw a
jump, then the replayed quotes with lower seqs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness import Broker, Nats, broker_binary, wait_until

TOPICS = [f"SLICED.T{i}" for i in range(10)]
AWAY = 300  # quotes per topic published while the client is away: 3,000 > 1,024

CONFIG = """\
[cluster]
nats_url = "{nats}"
[history]
size = 1024
"""


def publish(pub, n: int) -> None:
    from tickwire import Quote

    for _ in range(n):
        for t in TOPICS:
            pub.publish(Quote(t, bid=1.0, ask=2.0, bid_size=1.0, ask_size=1.0, last=1.5, volume=1.0,
                              ts=time.time_ns()))
    pub.flush()


async def resume_on_b(b: Broker, c: Broker) -> dict[str, object]:
    import websockets
    from tickwire import Publisher

    url = b.ws_url + "?format=json"
    pub = Publisher("127.0.0.1", c.ingest_port)

    async def quotes_until(ws, want: dict[str, int], into: dict[str, int]) -> None:
        while any(into.get(t, 0) < s for t, s in want.items()):
            m = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if m.get("type") == "quote":
                into[m["topic"]] = m["seq"]

    async with websockets.connect(url, proxy=None, max_size=None, close_timeout=1) as witness:
        # The witness keeps B following the topics: its ring holds the history.
        await witness.send(json.dumps({"op": "subscribe", "topics": ["SLICED.*"], "snapshot": False, "id": 1}))
        seen: dict[str, int] = {}
        async with websockets.connect(url, proxy=None, close_timeout=1) as ws:
            await ws.send(json.dumps({"op": "subscribe", "topics": ["SLICED.*"], "snapshot": False, "id": 1}))
            epoch = None
            while epoch is None:
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if m.get("type") == "subscribed":
                    epoch = m["epoch"]
            publish(pub, 5)
            last: dict[str, int] = {}
            await quotes_until(ws, {t: 5 for t in TOPICS}, last)
        # Away: AWAY quotes per topic, through C, reach B (the witness has them).
        publish(pub, AWAY)
        await quotes_until(witness, {t: 5 + AWAY for t in TOPICS}, seen)
        async with websockets.connect(url, proxy=None, close_timeout=1) as ws:
            await ws.send(json.dumps({"op": "subscribe", "topics": ["SLICED.*"], "id": 2,
                                      "since": {"epoch": epoch, "seqs": last}}))
            current, back, jumps, n, first = dict(last), 0, 0, 0, None
            end = {t: 5 + AWAY + 20 for t in TOPICS}
            for _ in range(20):  # the feed goes on during the resume
                publish(pub, 1)
                await asyncio.sleep(0.01)
            deadline = time.monotonic() + 20
            while any(current[t] < end[t] for t in TOPICS) and time.monotonic() < deadline:
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if m.get("type") != "quote":
                    continue
                n += 1
                t, s = m["topic"], m["seq"]
                if s <= current[t]:
                    back += 1
                    first = first or f"{t}: {s} after {current[t]}"
                elif s > current[t] + 1:
                    jumps += 1
                current[t] = max(current[t], s)
    pub.close()
    return {"quotes": n, "not_above_previous": back, "jumps": jumps, "first": first}


def test_a_sliced_resume_of_cluster_topics_keeps_seq_order() -> None:
    assert broker_binary().is_file(), f"broker binary missing at {broker_binary()}"
    workdir = Path(tempfile.mkdtemp(prefix="tickwire-sliced-"))
    nats = Nats(workdir)
    brokers: list[Broker] = []
    try:
        nats.start()
        for name in ("B", "C"):
            brokers.append(Broker(name, workdir, CONFIG.format(nats=nats.url)))
            brokers[-1].start()
        b, c = brokers
        wait_until(lambda: b.healthz() == 200 and c.healthz() == 200, 30, "B and C linked")
        got = asyncio.run(resume_on_b(b, c))
        print(f"sliced resume on B of cluster topics: {got}")
        assert got["not_above_previous"] == 0, f"seq went back on the wire: {got}"
    finally:
        for x in brokers:
            x.stop()
        nats.stop()
        shutil.rmtree(workdir, ignore_errors=True)
