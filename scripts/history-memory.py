#!/usr/bin/env python3
# Memory per topic of history (docs/performance.md, issue 21): starts a
# release broker (loopback ports 18090/17090) with [history] size = SIZE,
# publishes TOPICS x PER quotes, prints the RSS growth per topic and the
# history gauges. Usage (the Python client venv has its dependencies):
#   clients/python/.venv/bin/python scripts/history-memory.py 64 10000 64
import os, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "src"))
from tickwire.publisher import Publisher
from tickwire.protocol import Quote
size = sys.argv[1]
topics = int(sys.argv[2]); per = int(sys.argv[3])
cfg = os.path.join(tempfile.mkdtemp(), "history.toml")
open(cfg, "w").write(f"[server]\nws_addr = \"127.0.0.1:18090\"\n[ingest]\naddr = \"127.0.0.1:17090\"\nmax_topics = 200000\n[history]\nsize = {size}\n[log]\nlevel = \"warn\"\n")
p = subprocess.Popen([os.environ.get("TICKWIRE_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "tickwire")), "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.7)
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
def metric(name):
    t = urllib.request.urlopen("http://127.0.0.1:18090/metrics").read().decode()
    for l in t.splitlines():
        if l.startswith(name + " "): return float(l.split()[1])
before = rss()
pub = Publisher("127.0.0.1", 17090)
names = [f"M.{i:06d}" for i in range(topics)]
for r in range(per):
    for n in names:
        pub.publish(Quote(topic=n, bid=100.0+r, ask=100.5, bid_size=10.0, ask_size=12.0, last=100.25, volume=1000.0+r, ts=time.time_ns()))
    pub.flush()
deadline = time.time() + 120
while metric("tickwire_quotes_in_total") < topics*per and time.time() < deadline: time.sleep(0.2)
time.sleep(1.5)
after = rss()
print(f"size={size} topics={topics} quotes/topic={per}: RSS {before} kB -> {after} kB (+{(after-before)/topics*1024:.0f} B/topic); history_quotes={metric('tickwire_history_quotes')} history_bytes={metric('tickwire_history_bytes')}")
p.terminate(); p.wait()
