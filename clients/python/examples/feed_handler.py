#!/usr/bin/env python3
"""Feed handler: publishes a random-walk quote for a few tickers every 100 ms.

    python examples/feed_handler.py [--host 127.0.0.1] [--port 7001] [--token T] [--count N]
"""
import argparse
import random
import time

from tickwire import Publisher, Quote

MIDS = {"AAPL": 189.13, "MSFT": 415.51, "BTC-USD": 67071.24}


def run(host: str, port: int, token: str | None, count: int | None) -> None:
    with Publisher(host, port, token=token) as pub:  # token: only if [ingest] tokens is set
        n = 0
        while count is None or n < count:
            batch = []
            for topic, mid in MIDS.items():
                mid = MIDS[topic] = mid * (1 + random.gauss(0, 0.0005))
                half = mid * 0.0001
                batch.append(Quote(topic, bid=round(mid - half, 2), ask=round(mid + half, 2),
                                   bid_size=100.0, ask_size=200.0, last=round(mid, 2),
                                   volume=float(random.randint(1_000, 100_000)), ts=time.time_ns()))
            pub.publish_batch(batch)  # one Batch frame: the broker takes all of it or none
            pub.flush()               # frames are buffered until flush() or 64 KiB
            n += 1
            time.sleep(0.1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7001)
    ap.add_argument("--token")
    ap.add_argument("--count", type=int, help="batches to send (default: forever)")
    a = ap.parse_args()
    run(a.host, a.port, a.token, a.count)
