"""A feed publishing continuously into one broker's ingest socket, paced by
the clock: ``rate`` quotes per second in all, spread evenly over the topics.

    python feed.py HOST PORT RATE TOPIC...

Prints {"type": "started"} once connected. Commands on stdin: ``count``
prints {"type": "count", "sent": {topic: n}}; ``stop`` (or EOF) stops,
flushes and prints {"type": "stopped", "sent": {topic: n}}, then exits.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time

from tickwire import Publisher, Quote

TICK_S = 0.005


def main() -> None:
    host, port, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    topics = sys.argv[4:]
    per_topic = rate / len(topics)
    sent = {t: 0 for t in topics}
    mids = {t: 100.0 + i for i, t in enumerate(topics)}
    stop = threading.Event()
    lock = threading.Lock()

    def commands() -> None:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "stop":
                break
            if cmd == "count":
                with lock:
                    out = dict(sent)
                print(json.dumps({"type": "count", "sent": out}), flush=True)
        stop.set()

    with Publisher(host, port) as pub:
        threading.Thread(target=commands, daemon=True).start()
        print(json.dumps({"type": "started"}), flush=True)
        start = time.monotonic()
        while not stop.is_set():
            due = math.floor((time.monotonic() - start) * per_topic)
            batch = []
            # Round robin: each topic's quotes in order, the topics interleaved.
            while True:
                behind = [t for t in topics if sent[t] < due]
                if not behind:
                    break
                for t in behind:
                    mid = mids[t] = mids[t] * (1.0 + 0.0001 * math.sin(sent[t]))
                    batch.append(Quote(t, bid=round(mid - 0.01, 4), ask=round(mid + 0.01, 4), bid_size=100.0,
                                       ask_size=200.0, last=round(mid, 4), volume=float(sent[t]),
                                       ts=time.time_ns()))
                    with lock:
                        sent[t] += 1
            for q in batch:
                pub.publish(q)
            if batch:
                pub.flush()
            stop.wait(TICK_S)
        pub.flush()
    print(json.dumps({"type": "stopped", "sent": sent}), flush=True)


if __name__ == "__main__":
    main()
