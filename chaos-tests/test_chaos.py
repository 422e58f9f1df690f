"""The chaos test of issue 21: three brokers and a real nats-server; 50
subscribers (the JavaScript client under node and the Python client) on
broker A with [A, B] as their broker list; a feed on broker C publishing
continuously; broker A killed with SIGKILL, the clients reconnect to B by
themselves and resume: zero lost, zero duplicated quotes, counted per
topic. Then NATS is restarted while the feed goes on: no duplicate, no
seq going back, and every quote missing is one the client reported as a
gap; where the loss happens is printed (and written to $CHAOS_REPORT).

Phases (each ends on a condition with a deadline, never on a sleep):

0. nats-server -js, brokers A, B, C ([cluster], [history] size 1024);
   witnesses on C (the feed's broker: the reference) and on B; the feed on
   C; the subscribers on A, until every one has quotes of every topic.
1. SIGKILL A; every subscriber reconnects to B, resumes (``recovered``)
   and catches up with the feed.
2. nats-server stopped (SIGTERM) until B and C report the link down and the
   feed has gone on for a while; started again on the same port and store;
   B and C re-link; every subscriber catches up again.
3. The feed stops; every subscriber ends with the last seq of every topic.

Knobs (environment): CHAOS_RATE (quotes/s in all, default 500),
CHAOS_JS_CLIENTS / CHAOS_PY_CLIENTS (default 25 each), CHAOS_REPORT (a
path: the JSON report), CHAOS_NATS_SIGNAL (TERM, the default, or KILL),
CHAOS_KEEP=1 (keep the temp dir: logs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from harness import (HERE, Broker, JetStreamReader, LineProcess, Nats, broker_binary, python_for_clients,
                     wait_until)

TOPICS = [f"CHAOS.T{i}" for i in range(10)]
RATE = float(os.environ.get("CHAOS_RATE", "500"))
PER_TOPIC_RATE = RATE / len(TOPICS)
JS_CLIENTS = int(os.environ.get("CHAOS_JS_CLIENTS", "25"))
PY_CLIENTS = int(os.environ.get("CHAOS_PY_CLIENTS", "25"))
HISTORY = 1024
# How NATS is stopped for its restart: SIGTERM (an operator's restart) or KILL (a crash).
NATS_SIGNAL = signal.Signals["SIG" + os.environ.get("CHAOS_NATS_SIGNAL", "TERM").upper().removeprefix("SIG")]
# Generous: a loaded 2-core CI machine with debug brokers.
DEADLINE_S = 45.0

# The outbound budget is far above what a subscriber is sent in the whole
# test (~1 MB): a client starved of CPU falls behind but is never conflated,
# so a hole is a loss, not the slow-consumer policy at work.
BROKER_CONFIG = """\
[cluster]
nats_url = "{nats}"
reconnect_max_ms = 1000
[history]
size = {history}
[subscriber]
outbound_budget_bytes = 16777216
"""
# A resume replays at most this many quotes in the activation; a longer
# replay goes in later slices, and on a broker that gets the topics from
# the cluster a live quote can overtake those (the report says so).
SLICE_QUOTES = 1024

METRIC_PREFIXES = ("tickwire_cluster_", "tickwire_quotes_in_total", "tickwire_resume_topics_total",
                   "tickwire_conflated_total", "tickwire_history_quotes")


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Chaos:
    """Everything the test started, stopped (by PID) at the end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tickwire-chaos-"))
        self.nats = Nats(self.dir)
        self.brokers: dict[str, Broker] = {}
        self.subscribers: list[LineProcess] = []
        self.witnesses: LineProcess | None = None
        self.feed: LineProcess | None = None
        self.t0 = time.time()
        self.phases: dict[str, float] = {}
        self.metrics: dict[str, dict[str, dict[str, float]]] = {}

    # ------------------------------------------------------------ processes

    def broker(self, name: str) -> Broker:
        b = Broker(name, self.dir, BROKER_CONFIG.format(nats=self.nats.url, history=HISTORY))
        self.brokers[name] = b
        b.start()
        return b

    def subscriber_process(self, name: str, lang: str, clients: list[dict[str, Any]]) -> LineProcess:
        # The clients' own reconnect backoff (Python 0.1 s, JavaScript 0.5 s at first).
        config = json.dumps({"clients": clients})
        if lang == "js":
            args = ["node", str(HERE / "js_subscribers.mjs"), config]
        else:
            args = [python_for_clients(), str(HERE / "py_subscribers.py"), config]
        p = LineProcess(name, args, self.dir)
        p.reply("started")
        return p

    def close(self) -> None:
        for p in [self.feed, self.witnesses, *self.subscribers]:
            if p is not None:
                p.close()
        for b in self.brokers.values():
            b.stop()
        self.nats.stop()

    def print_logs(self) -> None:
        """The ends of every log (a failed test: the temp dir goes away)."""
        for b in self.brokers.values():
            log(f"--- broker {b.name} ({b.log_path.name}) ---\n{b.log_tail()}")
        log(f"--- nats-server ---\n{self.nats.log_tail()}")
        for p in [self.feed, self.witnesses, *self.subscribers]:
            if p is not None:
                log(f"--- {p.name} stderr ---\n{p.stderr_tail()}")

    # --------------------------------------------------------------- status

    def mark(self, phase: str) -> float:
        t = time.time()
        self.phases[phase] = t
        log(f"{phase} (t+{t - self.t0:.1f} s)")
        return t

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The records of every subscriber (not the witnesses), by name."""
        for p in self.subscribers:
            p.send("status")
        out: dict[str, dict[str, Any]] = {}
        for p in self.subscribers:
            for rec in p.reply("status")["clients"]:
                out[rec["name"]] = rec
        return out

    def witness(self) -> dict[str, dict[str, Any]]:
        assert self.witnesses is not None
        return {r["name"]: r for r in self.witnesses.ask("status", "status")["clients"]}

    def snapshot_metrics(self, label: str, names: tuple[str, ...] = ("B", "C")) -> None:
        self.metrics[label] = {}
        for n in names:
            m = self.brokers[n].metrics()
            self.metrics[label][n] = {k: v for k, v in m.items() if k.startswith(METRIC_PREFIXES)}


def last_seqs(rec: dict[str, Any]) -> dict[str, int]:
    return {t: runs[-1][1] for t, runs in rec["topics"].items() if runs}


def reached(rec: dict[str, Any], target: dict[str, int]) -> bool:
    last = last_seqs(rec)
    return all(last.get(t, 0) >= s for t, s in target.items())


def holes(runs: list[list[int]]) -> tuple[list[tuple[int, int]], int]:
    """The seq ranges missing between the runs, and how many times a run did
    not start above the previous one (a duplicate or a seq going back)."""
    missing, back = [], 0
    for prev, run in zip(runs, runs[1:]):
        if run[0] <= prev[1]:
            back += 1
        elif run[0] > prev[1] + 1:
            missing.append((prev[1] + 1, run[0] - 1))
    return missing, back


def metric_delta(chaos: Chaos, before: str, after: str, broker: str) -> dict[str, float]:
    a, b = chaos.metrics[before][broker], chaos.metrics[after][broker]
    return {k: b[k] - a.get(k, 0.0) for k in sorted(b) if not k.startswith("tickwire_cluster_lag")
            and "_link_up" not in k and b[k] != a.get(k, 0.0)}


@pytest.fixture
def chaos(request: pytest.FixtureRequest):
    c = Chaos()
    try:
        yield c
    finally:
        c.close()
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            c.print_logs()
        if os.environ.get("CHAOS_KEEP") == "1":
            log(f"kept {c.dir}")
        else:
            shutil.rmtree(c.dir, ignore_errors=True)


def test_sigkill_a_broker_and_restart_nats(chaos: Chaos) -> None:
    assert broker_binary().is_file(), f"broker binary missing at {broker_binary()} (cargo build -p tickwire-broker)"
    assert shutil.which("node"), "node is needed (the JavaScript client)"

    def witness_c() -> dict[str, int]:
        return last_seqs(chaos.witness()["witness-C"])

    def feed_goes_on(seconds: float, what: str) -> None:
        """Waits until the feed has published about ``seconds`` more of
        quotes (seen by the witness on C): progress, not a sleep."""
        target = {t: s + max(5, int(seconds * PER_TOPIC_RATE)) for t, s in witness_c().items()}
        wait_until(lambda: reached(chaos.witness()["witness-C"], target), DEADLINE_S, what)

    def everyone_reaches(target: dict[str, int], what: str) -> None:
        wait_until(lambda: all(reached(r, target) for r in chaos.statuses().values()), DEADLINE_S, what)

    # ------------------------------------------------------------ phase 0
    chaos.nats.start()
    a, b, c = chaos.broker("A"), chaos.broker("B"), chaos.broker("C")
    wait_until(lambda: all(x.healthz() == 200 for x in (a, b, c)), DEADLINE_S, "A, B and C linked to NATS")
    chaos.witnesses = chaos.subscriber_process("witnesses", "py", [
        {"name": "witness-C", "urls": [c.ws_url], "format": "json", "entries": ["CHAOS.*"]},
        {"name": "witness-B", "urls": [b.ws_url], "format": "json", "entries": ["CHAOS.*"]},
    ])
    wait_until(lambda: all(r["subscribed"] for r in chaos.witness().values()), DEADLINE_S, "the witnesses subscribed")
    chaos.feed = LineProcess("feed", [python_for_clients(), str(HERE / "feed.py"), "127.0.0.1", str(c.ingest_port),
                                      str(RATE), *TOPICS], chaos.dir)
    chaos.feed.reply("started")
    chaos.mark("feed started on C")

    def specs(lang: str, n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            fmt = ("binary", "json")[i % 2] if lang == "js" else ("json", "binary")[i % 2]
            # Half by pattern, half by the list of topics.
            entries = ["CHAOS.*"] if i % 4 < 2 else list(TOPICS)
            out.append({"name": f"{lang}-{i:02d}", "urls": [a.ws_url, b.ws_url], "format": fmt, "entries": entries})
        return out

    js, py = specs("js", JS_CLIENTS), specs("py", PY_CLIENTS)
    half_js, half_py = (len(js) + 1) // 2, (len(py) + 1) // 2
    for name, lang, group in [("js-0", "js", js[:half_js]), ("js-1", "js", js[half_js:]),
                              ("py-0", "py", py[:half_py]), ("py-1", "py", py[half_py:])]:
        if group:
            chaos.subscribers.append(chaos.subscriber_process(name, lang, group))
    n_clients = len(js) + len(py)

    def all_quoted() -> bool:
        s = chaos.statuses()
        return len(s) == n_clients and all(
            r["subscribed"] and r["url"].startswith(a.ws_url) and len(last_seqs(r)) == len(TOPICS)
            for r in s.values())

    wait_until(all_quoted, DEADLINE_S, f"all {n_clients} subscribers on A with quotes of every topic")
    chaos.mark(f"{n_clients} subscribers on A have quotes")
    feed_goes_on(2.0, "the feed going on with everyone on A")
    everyone_reaches(witness_c(), "every subscriber live on A")
    chaos.snapshot_metrics("before kill")

    # ------------------------------------------------------------ phase 1
    before_kill = chaos.statuses()
    at_kill = witness_c()
    t_kill = chaos.mark("SIGKILL A")
    a.kill()

    def resumed_on_b() -> bool:
        s = chaos.statuses()
        return all(r["state"] == "open" and r["url"].startswith(b.ws_url)
                   and any(e["t"] >= t_kill for e in r["resumes"]) and reached(r, at_kill)
                   for r in s.values())

    wait_until(resumed_on_b, DEADLINE_S, "every subscriber resumed on B past the kill")
    chaos.mark("all resumed on B")
    feed_goes_on(3.0, "the feed going on with everyone on B")
    everyone_reaches(witness_c(), "every subscriber live on B")
    chaos.mark("all live on B")

    # ------------------------------------------------------------ phase 2
    chaos.snapshot_metrics("before NATS stop")
    before_nats = chaos.statuses()  # up to these seqs: the SIGKILL phase, zero loss
    witness_before_nats = chaos.witness()
    t_nats_stop = chaos.mark(f"NATS stop ({NATS_SIGNAL.name})")
    chaos.nats.stop(NATS_SIGNAL)
    wait_until(lambda: b.healthz() == 503 and c.healthz() == 503, DEADLINE_S, "B and C report the link down")
    chaos.mark("B and C report the link down")
    feed_goes_on(1.5, "the feed going on while NATS is down")
    chaos.snapshot_metrics("NATS down")
    t_nats_start = chaos.mark("NATS start again (same port, same store)")
    chaos.nats.start()
    chaos.mark("NATS listening")
    wait_until(lambda: b.healthz() == 200 and c.healthz() == 200, DEADLINE_S, "B and C re-linked")
    chaos.mark("B and C re-linked")
    feed_goes_on(2.0, "the feed going on after the NATS restart")
    everyone_reaches(witness_c(), "every subscriber live again after the NATS restart")
    chaos.snapshot_metrics("after re-link")

    # ------------------------------------------------------------ phase 3
    chaos.mark("feed stop")
    sent = chaos.feed.ask("stop", "stopped")["sent"]
    chaos.feed.close()
    chaos.feed = None
    # A fresh cluster numbers each topic 1, 2, ...: the last seq is the count sent.
    final = {t: int(n) for t, n in sent.items()}
    wait_until(lambda: witness_c() == final, DEADLINE_S, f"the witness on C has every quote sent ({final})")
    wait_until(lambda: all(last_seqs(r) == final for r in chaos.statuses().values()), DEADLINE_S,
               "every subscriber has the last seq of every topic")
    chaos.mark("all have the last quotes")
    chaos.snapshot_metrics("end")
    records = chaos.statuses()
    witnesses = chaos.witness()

    # Evidence of what reached NATS: the stream's messages, read directly.
    reader = JetStreamReader(chaos.nats.port)
    try:
        stream = {t: reader.quotes("tickwire_last", f"tickwire.q.{t}") for t in TOPICS}
    finally:
        reader.close()
    links = {n: chaos.brokers[n].log_events(("cluster link", "event:"), since=t_nats_stop - 1) for n in ("B", "C")}
    chaos.mark("JetStream read")

    # ------------------------------------------------------------ verdict
    report = verdict(chaos, records, witnesses, before_kill, at_kill, before_nats, witness_before_nats, final,
                     sent, t_kill, t_nats_stop, t_nats_start, stream, links, n_clients)
    if os.environ.get("CHAOS_REPORT"):
        Path(os.environ["CHAOS_REPORT"]).write_text(json.dumps(report, indent=1, default=str))
    assert not report["failures"], "\n".join(report["failures"][:40])


def verdict(chaos: Chaos, records: dict[str, dict[str, Any]], witnesses: dict[str, dict[str, Any]],
            before_kill: dict[str, dict[str, Any]], at_kill: dict[str, int], before_nats: dict[str, dict[str, Any]], witness_before_nats: dict[str, dict[str, Any]],
            final: dict[str, int], sent: dict[str, int], t_kill: float, t_nats_stop: float,
            t_nats_start: float, stream: dict[str, list[dict[str, Any]]],
            links: dict[str, list[tuple[float, str]]], n_clients: int) -> dict[str, Any]:
    failures: list[str] = []
    nats_loss: dict[str, dict[str, list[tuple[int, int]]]] = {}  # client -> topic -> holes
    per_client: dict[str, Any] = {}
    everyone = {**records, "witness-B": witnesses["witness-B"], "witness-C": witnesses["witness-C"]}
    boundary_src = {**before_nats, **witness_before_nats}
    for name, rec in sorted(everyone.items()):
        boundary = last_seqs(boundary_src[name])
        gaps_by_topic: dict[str, set[tuple[int, int]]] = {}
        for g in rec["gaps"]:
            gaps_by_topic.setdefault(g["topic"], set()).add((g["expected"], g["received"] - 1))
            if g["t"] < t_nats_stop:
                failures.append(f"{name}: a gap before the NATS restart: {g}")
        lost_sigkill = 0
        lost_nats = 0
        for t in TOPICS:
            runs = rec["topics"].get(t, [])
            if not runs:
                failures.append(f"{name} {t}: no quote")
                continue
            missing, back = holes(runs)
            if back:
                failures.append(f"{name} {t}: {back} duplicate(s) or seq going back: runs {runs}")
            if runs[-1][1] != final[t]:
                failures.append(f"{name} {t}: last seq {runs[-1][1]}, the feed's last is {final[t]}")
            early = [h for h in missing if h[0] <= boundary[t]]
            late = [h for h in missing if h[0] > boundary[t]]
            if early:
                lost_sigkill += sum(h1 - h0 + 1 for h0, h1 in early)
                failures.append(f"{name} {t}: quotes lost before the NATS restart (SIGKILL phase): {early}")
            if late:
                lost_nats += sum(h1 - h0 + 1 for h0, h1 in late)
                nats_loss.setdefault(name, {})[t] = late
                unreported = [h for h in late if h not in gaps_by_topic.get(t, set())]
                if unreported:
                    failures.append(f"{name} {t}: quotes missing without a gap event: {unreported} "
                                    f"(gaps reported: {sorted(gaps_by_topic.get(t, set()))})")
            phantom = gaps_by_topic.get(t, set()) - set(missing)
            if phantom:
                failures.append(f"{name} {t}: gap events for quotes that were received: {sorted(phantom)}")
        resumes_after_kill = [e for e in rec["resumes"] if e["t"] >= t_kill]
        recovered = sorted({x for e in resumes_after_kill for x in e["recovered"]})
        unrecovered = sorted({x for e in resumes_after_kill for x in e["unrecovered"]})
        if name.startswith(("js-", "py-")):
            if recovered != TOPICS or unrecovered:
                failures.append(f"{name}: after the SIGKILL recovered {recovered}, unrecovered {unrecovered}")
            base = {n: chaos.brokers[n].ws_url for n in ("A", "B")}
            hosts = [c["url"].split("?")[0] for c in rec["connections"]]
            if hosts[:2] != [base["A"], base["B"]] or not rec["url"].startswith(base["B"]):
                failures.append(f"{name}: connections {rec['connections']}, now {rec['url']} (expected A, then B)")
        if rec["client_dropped_repeats"]:
            failures.append(f"{name}: the broker sent {rec['client_dropped_repeats']} quote(s) twice "
                            "(the client dropped the repeats)")
        if rec["errors"]:
            failures.append(f"{name}: client errors {rec['errors'][:5]}")
        # How long the client was away, and about how many quotes its resume
        # replayed: those it lacked at the kill, and the feed's meanwhile.
        away_s, replay = None, None
        if resumes_after_kill and name in before_kill:
            away_s = resumes_after_kill[0]["t"] - t_kill
            lacked = sum(max(0, at_kill[t] - last_seqs(before_kill[name]).get(t, 0)) for t in TOPICS)
            replay = int(lacked + away_s * RATE)
        per_client[name] = {
            "away_s": None if away_s is None else round(away_s, 3), "replay_estimate": replay,
            "lang": rec["lang"], "format": rec["format"], "entries": "pattern" if rec["entries"] == ["CHAOS.*"]
            else "topics", "quotes": rec["quotes"], "lost_sigkill": lost_sigkill, "lost_nats": lost_nats,
            "gaps": len(rec["gaps"]), "gap_reasons": sorted({str(g["reason"]) for g in rec["gaps"]}),
            "client_dropped_repeats": rec["client_dropped_repeats"],
            "recovered_after_kill": len(recovered), "connections": len(rec["connections"]),
        }
    b_conflated = metric_delta(chaos, "before kill", "end", "B").get("tickwire_conflated_total", 0.0)
    if b_conflated:
        failures.append(f"B conflated {b_conflated:.0f} quotes (slow consumers): the test's premise is that "
                        "no subscriber is ever conflated ([subscriber] outbound_budget_bytes)")
    w = witnesses["witness-C"]
    if any(len(holes(w["topics"][t])[0]) for t in TOPICS):
        failures.append("the witness on the feed's broker C has holes: " +
                        str({t: holes(w["topics"][t])[0] for t in TOPICS}))
    if set(records) != {f"js-{i:02d}" for i in range(JS_CLIENTS)} | {f"py-{i:02d}" for i in range(PY_CLIENTS)}:
        failures.append(f"expected {n_clients} subscribers, got {sorted(records)}")

    # Where the NATS-phase loss is: the same holes for every client on B
    # (upstream of B's fan-out), and the brokers' counters.
    subs_loss = {n: l for n, l in nats_loss.items() if n.startswith(("js-", "py-"))}
    distinct = {json.dumps(l, sort_keys=True) for l in subs_loss.values()}
    deltas = {
        "C (feed broker): NATS stop -> relink": metric_delta(chaos, "before NATS stop", "after re-link", "C"),
        "B (subscribers' broker): NATS stop -> relink": metric_delta(chaos, "before NATS stop", "after re-link", "B"),
        "C: NATS stop -> NATS down (link down seen, feed went on)": metric_delta(chaos, "before NATS stop", "NATS down", "C"),
        "B: SIGKILL A -> before NATS stop": metric_delta(chaos, "before kill", "before NATS stop", "B"),
    }
    example = next(iter(subs_loss.values()), {})
    evidence = nats_loss_evidence(subs_loss, stream, t_nats_start)
    c_delta = deltas["C (feed broker): NATS stop -> relink"]
    evidence["C_publish_dropped"] = c_delta.get("tickwire_cluster_publish_dropped_total", 0.0)
    # Counted as published by C, yet neither stored nor delivered: lost on the
    # way (in the socket, or in the nats-server that went away).
    evidence["not_in_stream_beyond_C_drops"] = evidence["not_in_stream"] - evidence["C_publish_dropped"]
    b_connected = [t for t, m in links.get("B", []) if t >= t_nats_start and "event: connected" in m]
    c_up = [t for t, m in links.get("C", []) if t >= t_nats_start and "cluster link up" in m]
    evidence["B_nats_connected_s"] = round(b_connected[0] - t_nats_start, 3) if b_connected else None
    evidence["C_link_up_s"] = round(c_up[0] - t_nats_start, 3) if c_up else None
    report = {
        "failures": failures,
        "rate_quotes_per_s": RATE,
        "clients": n_clients,
        "sent": sent,
        "phases_s": {k: round(v - chaos.t0, 2) for k, v in chaos.phases.items()},
        "nats_phase": {
            "clients_with_loss": len(subs_loss),
            "identical_holes_across_clients": len(distinct) <= 1,
            "holes_example": example,
            "quotes_missing_per_client": sorted({sum(h1 - h0 + 1 for hs in l.values() for h0, h1 in hs)
                                                 for l in subs_loss.values()}),
            "witness_B_holes": nats_loss.get("witness-B", {}),
            "metric_deltas": deltas,
            "jetstream": evidence,
            "link_events": {n: [(round(t - t_nats_start, 3), m) for t, m in ev] for n, ev in links.items()},
            "nats_stop_s_before_start": round(t_nats_start - t_nats_stop, 3),
        },
        "per_client": per_client,
        "metrics": chaos.metrics,
        "t0": chaos.t0,
        "records": everyone,
    }
    print_report(report)
    return report


def nats_loss_evidence(subs_loss: dict[str, dict[str, list[tuple[int, int]]]],
                       stream: dict[str, list[dict[str, Any]]], t_nats_start: float) -> dict[str, Any]:
    """The quotes missing on B after the NATS restart (any subscriber), split
    into those the cluster's stream never got and those it holds (C
    published them, B did not receive them)."""
    per_topic: dict[str, Any] = {}
    not_in, in_, sent_s = 0, 0, []
    for t in TOPICS:
        missing = sorted({s for loss in subs_loss.values() for h0, h1 in loss.get(t, []) for s in range(h0, h1 + 1)})
        stored = {m["seq"]: m for m in stream.get(t, [])}
        absent = [s for s in missing if s not in stored]
        present = [s for s in missing if s in stored]
        not_in += len(absent)
        in_ += len(present)
        sent_s += [stored[s]["sent_ns"] / 1e9 - t_nats_start for s in present]
        per_topic[t] = {"missing": ranges(missing), "not_in_stream": ranges(absent), "in_stream": ranges(present),
                        "stream_holds": ranges(sorted(stored))}
    span = [round(min(sent_s), 3), round(max(sent_s), 3)] if sent_s else []
    return {"not_in_stream": not_in, "in_stream": in_, "in_stream_sent_s": span, "per_topic": per_topic}


def ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [(a, b) for a, b in out]


def print_report(r: dict[str, Any]) -> None:
    log(f"{r['clients']} subscribers, {r['rate_quotes_per_s']:.0f} quotes/s over {len(TOPICS)} topics; "
        f"sent {sum(r['sent'].values())} quotes; phases (s from start): {r['phases_s']}")
    pc = r["per_client"]
    subs = [v for k, v in pc.items() if k.startswith(("js-", "py-"))]
    away = [v["away_s"] for v in subs if v["away_s"] is not None]
    replays = [v["replay_estimate"] for v in subs if v["replay_estimate"] is not None]
    if away:
        log(f"SIGKILL: clients away {min(away):.2f}..{max(away):.2f} s, replays of ~{min(replays)}..{max(replays)} "
            f"quotes" + (f" (over {SLICE_QUOTES}: sliced replays, which a live quote from the cluster can overtake "
                         "- see chaos-tests/README.md)" if max(replays) > SLICE_QUOTES else ""))
    log(f"SIGKILL phase: lost {sum(v['lost_sigkill'] for v in subs)} quotes over all subscribers; "
        f"recovered all topics: {sum(v['recovered_after_kill'] == len(TOPICS) for v in subs)}/{len(subs)}; "
        f"repeats the clients dropped (broker sent twice): {sum(v['client_dropped_repeats'] for v in subs)}")
    n = r["nats_phase"]
    log(f"NATS phase: {n['clients_with_loss']} subscribers missing quotes, per client {n['quotes_missing_per_client']}, "
        f"identical holes across clients: {n['identical_holes_across_clients']}; gap reasons "
        f"{sorted({x for v in subs for x in v['gap_reasons']})}")
    log(f"NATS phase holes (one client): {n['holes_example']}")
    log(f"NATS phase holes (witness on B): {n['witness_B_holes']}")
    for k, v in n["metric_deltas"].items():
        log(f"  {k}: {v}")
    j = n["jetstream"]
    log(f"JetStream (read directly after the test): of the quotes missing on B, {j['not_in_stream']} never "
        f"reached the stream ({j['C_publish_dropped']:.0f} dropped by C's link, counted in "
        f"tickwire_cluster_publish_dropped_total; {j['not_in_stream_beyond_C_drops']:.0f} counted as published "
        f"by C but never stored), {j['in_stream']} are in it (published by C at {j['in_stream_sent_s']} s "
        f"after the NATS start; C's link up at {j['C_link_up_s']} s, B's NATS connection back at "
        f"{j['B_nats_connected_s']} s)")
    log(f"  per topic: {j['per_topic']}")
    log(f"  link events, s relative to the NATS start (NATS stopped {n['nats_stop_s_before_start']} s before it):")
    for broker, events in n["link_events"].items():
        for t, m in events:
            log(f"    {broker} {t:+.3f} {m}")
    for f in r["failures"][:40]:
        log(f"FAIL {f}")
    sys.stdout.flush()
