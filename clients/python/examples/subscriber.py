#!/usr/bin/env python3
"""Prints quotes from a tickwire broker; reconnects, resubscribes and resumes by itself.

    python examples/subscriber.py [--url ws://127.0.0.1:8080/ws [--url ws://other:8080/ws]]
        [--format binary] [--no-resume] [--no-delta] [--rewind N] [--count N] TOPIC...
"""
import argparse
import asyncio

from tickwire import Subscriber


async def run(urls: list[str], fmt: str, topics: list[str], count: int | None, resume: bool,
              rewind: int | None, delta: bool) -> None:
    async with Subscriber(
        urls,                   # several brokers of a cluster: tried in turn
        format=fmt,
        resume=resume,
        delta=delta,            # field deltas on the wire; full quotes here either way
        on_state_change=lambda state: print("state:", state.value),
        on_gap=lambda gap: print(f"gap on {gap.topic}: {gap.missed} quote(s) missed"),
        on_resume=lambda r: print("resumed without loss" if r.recovered else f"not recovered: {r.unrecovered}"),
    ) as sub:
        # snapshot=True: last value of each topic first (or its last `rewind` quotes)
        ack = await sub.subscribe(topics, rewind=rewind)
        print(f"subscribed to {ack.topics}, epoch {ack.epoch}")
        n = 0
        async for q in sub:
            print(f"{q.topic:10} seq {q.seq:<7} bid {q.bid:<10} ask {q.ask:<10} last {q.last} ts {q.ts}")
            n += 1
            if count is not None and n >= count:
                break


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", action="append", help="broker URL (repeat for a cluster); "
                    "default ws://127.0.0.1:8080/ws")
    ap.add_argument("--format", choices=["json", "binary"], default="json")
    ap.add_argument("--no-resume", dest="resume", action="store_false",
                    help="resubscribe without since (v1: snapshot after a reconnect)")
    ap.add_argument("--no-delta", dest="delta", action="store_false",
                    help="full quotes on the wire (v1.2 field deltas off)")
    ap.add_argument("--rewind", type=int, help="start with up to N recent quotes per topic")
    ap.add_argument("--count", type=int, help="stop after this many quotes")
    ap.add_argument("topics", nargs="+", help='topics or PREFIX* patterns, e.g. AAPL "BTC-*"')
    a = ap.parse_args()
    asyncio.run(run(a.url or ["ws://127.0.0.1:8080/ws"], a.format, a.topics, a.count, a.resume, a.rewind,
                        a.delta))
