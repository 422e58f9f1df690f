#!/usr/bin/env python3
"""Prints quotes from a tickwire broker; reconnects and resubscribes by itself.

    python examples/subscriber.py [--url ws://127.0.0.1:8080/ws] [--format binary] [--count N] TOPIC...
"""
import argparse
import asyncio

from tickwire import Subscriber


async def run(url: str, fmt: str, topics: list[str], count: int | None) -> None:
    async with Subscriber(
        url,
        format=fmt,
        on_state_change=lambda state: print("state:", state.value),
        on_gap=lambda gap: print(f"gap on {gap.topic}: {gap.missed} quote(s) missed"),
    ) as sub:
        ack = await sub.subscribe(topics)  # snapshot=True: last value of each topic first
        print(f"subscribed to {ack.topics}, epoch {ack.epoch}")
        n = 0
        async for q in sub:
            print(f"{q.topic:10} seq {q.seq:<7} bid {q.bid:<10} ask {q.ask:<10} last {q.last} ts {q.ts}")
            n += 1
            if count is not None and n >= count:
                break


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    ap.add_argument("--format", choices=["json", "binary"], default="json")
    ap.add_argument("--count", type=int, help="stop after this many quotes")
    ap.add_argument("topics", nargs="+", help='topics or PREFIX* patterns, e.g. AAPL "BTC-*"')
    a = ap.parse_args()
    asyncio.run(run(a.url, a.format, a.topics, a.count))
