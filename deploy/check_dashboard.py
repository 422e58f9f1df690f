#!/usr/bin/env python3
"""Checks deploy/grafana/tickwire.json and deploy/prometheus/alerts.yml
against a real tickwire broker (Python 3 standard library only).

It starts nats-server (JetStream) and the broker with a [cluster] section on
free loopback ports, waits until /metrics reports `tickwire_cluster_link_up 1`,
scrapes /metrics and checks that:

  * the dashboard is well formed: datasource input and variables, an
    `instance` variable, unique panel ids, every panel on `${datasource}`,
    every tickwire selector filtered by `instance=~"$instance"`;
  * every metric name in a panel expression, a template query or an alert
    rule is a family the broker serves (`_sum`/`_count`/`_bucket` resolve to
    their summary/histogram), and every label value matched literally
    (`quantile="0.99"`, `kind="subscriber"`, ...) is one the broker exposes;
  * every family the broker serves is used by at least one panel;
  * every alert has a `severity` label and `summary`/`description` annotations.

With --prometheus PATH it also runs that Prometheus against the broker with
alerts.yml loaded: waits for `up{job="tickwire"} == 1`, for every rule to
evaluate with health "ok", and runs every panel expression through the
query API (variables substituted) so PromQL errors are caught.

Every process it starts is stopped (by PID) before it exits; the whole run
is bounded by --timeout seconds.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DASHBOARD = os.path.join(HERE, "grafana", "tickwire.json")
ALERTS = os.path.join(HERE, "prometheus", "alerts.yml")

NAME_RE = re.compile(r"(?<![A-Za-z0-9_:])(tickwire_[a-z0-9_]+)(?![A-Za-z0-9_:])(\s*\{([^}]*)\})?")
MATCHER_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
TARGET_LABELS = {"instance", "job"}  # added by Prometheus, not by the broker


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def wait(self, what, probe, step=0.1, limit=None):
        """Calls probe() until it returns a true value; fails at the deadline."""
        stop = self.end if limit is None else min(self.end, time.monotonic() + limit)
        last = None
        while time.monotonic() < stop:
            try:
                got = probe()
                if got:
                    return got
            except (OSError, ValueError) as e:  # not up yet
                last = e
            time.sleep(step)
        raise CheckError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


class CheckError(Exception):
    pass


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def tcp_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


# ------------------------------------------------------------------ inputs


def load_dashboard(errors):
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append(f"dashboard: schemaVersion {dash.get('schemaVersion')!r}, want >= 36")
    inputs = [i.get("name") for i in dash.get("__inputs", [])]
    if "DS_PROMETHEUS" not in inputs:
        errors.append("dashboard: no DS_PROMETHEUS entry in __inputs")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("dashboard: no `datasource` variable of type datasource/prometheus")
    if "instance" not in variables:
        errors.append("dashboard: no `instance` template variable")

    panels, ids = [], set()

    def walk(items, in_row):
        for p in items:
            pid = p.get("id")
            if pid in ids:
                errors.append(f"dashboard: duplicate panel id {pid}")
            ids.add(pid)
            if p.get("type") == "row":
                walk(p.get("panels", []), True)
                in_row = True
                continue
            title = p.get("title", f"id {pid}")
            if not in_row:
                errors.append(f"panel {title!r}: not inside a row")
            if "gridPos" not in p:
                errors.append(f"panel {title!r}: no gridPos")
            if (p.get("datasource") or {}).get("uid") != "${datasource}":
                errors.append(f"panel {title!r}: datasource is not ${{datasource}}")
            targets = p.get("targets") or []
            if not targets:
                errors.append(f"panel {title!r}: no targets")
            for t in targets:
                if not t.get("expr"):
                    errors.append(f"panel {title!r}: target {t.get('refId')} has no expr")
                if (t.get("datasource") or {}).get("uid") != "${datasource}":
                    errors.append(f"panel {title!r}: target {t.get('refId')} datasource is not ${{datasource}}")
            panels.append((title, [t.get("expr", "") for t in targets]))

    walk(dash.get("panels", []), False)
    if not panels:
        errors.append("dashboard: no panels")
    var_queries = []
    for v in variables.values():
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if v.get("type") == "query" and q:
            var_queries.append((f"variable {v.get('name')}", q))
    return panels, var_queries


def selectors(expr):
    """(metric name, [(label, op, value)]) for every tickwire selector."""
    out = []
    for m in NAME_RE.finditer(expr):
        matchers = MATCHER_RE.findall(m.group(3) or "")
        out.append((m.group(1), matchers))
    return out


def load_alerts(errors):
    with open(ALERTS, encoding="utf-8") as f:
        lines = f.read().splitlines()
    text = "\n".join(l for l in lines if not l.lstrip().startswith("#"))
    blocks = re.split(r"^\s*- alert:\s*", text, flags=re.M)[1:]
    if not blocks:
        errors.append("alerts.yml: no alert rules")
    alerts = []
    for b in blocks:
        name = b.split("\n", 1)[0].strip()
        for key in ("severity:", "summary:", "description:"):
            if not re.search(rf"^\s+{key}", b, flags=re.M):
                errors.append(f"alert {name}: no {key[:-1]}")
        alerts.append((f"alert {name}", b))
    return alerts


# ------------------------------------------------------------------ scrape


def parse_exposition(text):
    families, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families[name] = kind.strip()
        elif line and not line.startswith("#"):
            m = SAMPLE_RE.match(line)
            if m:
                labels = dict(LABEL_RE.findall(m.group(3) or ""))
                samples.setdefault(m.group(1), []).append(labels)
    return families, samples


def resolve(name, families):
    if name in families:
        return name
    for suffix, kinds in (("_sum", ("summary", "histogram")), ("_count", ("summary", "histogram")),
                          ("_bucket", ("histogram",))):
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) in kinds:
            return name[: -len(suffix)]
    return None


def check_names(where, expr, families, samples, errors, used=None, need_instance=False):
    for name, matchers in selectors(expr):
        family = resolve(name, families)
        if family is None:
            errors.append(f"{where}: {name} is not a metric family the broker serves")
            continue
        if used is not None:
            used.setdefault(family, []).append(where)
        if need_instance and ("instance", "=~", "$instance") not in matchers:
            errors.append(f'{where}: {name} has no instance=~"$instance" matcher')
        for label, op, value in matchers:
            if label in TARGET_LABELS or "$" in value or op not in ("=", "=~"):
                continue
            seen = {s.get(label) for s in samples.get(name, [])} - {None}
            ok = value in seen if op == "=" else any(re.fullmatch(value, v) for v in seen)
            if not ok:
                errors.append(f"{where}: {name}{{{label}{op}\"{value}\"}} matches nothing the broker "
                              f"exposes ({label} values: {sorted(seen) or 'none'})")


# ------------------------------------------------------------------ processes


class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []  # (name, Popen, log path)

    def start(self, name, argv):
        log = os.path.join(self.tmp, f"{name}.log")
        with open(log, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((name, p, log))
        print(f"  started {name} (pid {p.pid})")
        return p

    def alive(self, name, p):
        if p.poll() is not None:
            raise CheckError(f"{name} exited with {p.returncode}:\n{self.tail(name)}")

    def tail(self, name, n=20):
        for pname, _, log in self.procs:
            if pname == name:
                try:
                    with open(log, encoding="utf-8", errors="replace") as f:
                        return "".join(f.readlines()[-n:])
                except OSError:
                    return ""
        return ""

    def stop_all(self):
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
            print(f"  stopped {name} (pid {p.pid}, exit {p.returncode})")


def run_broker(args, procs, deadline):
    nats_port, ws_port, ingest_port, prom_port = free_ports(4)
    store = os.path.join(procs.tmp, "nats")
    os.mkdir(store)
    nats = procs.start("nats-server", [args.nats_server, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", store])
    deadline.wait("nats-server to listen", lambda: procs.alive("nats-server", nats) or tcp_open(nats_port), limit=10)

    config = os.path.join(procs.tmp, "tickwire.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f'[server]\nws_addr = "127.0.0.1:{ws_port}"\nworkers = 2\n\n'
                f'[ingest]\naddr = "127.0.0.1:{ingest_port}"\n\n'
                f'[log]\nlevel = "warn"\n\n'
                f'[cluster]\nnats_url = "nats://127.0.0.1:{nats_port}"\n')
    broker = procs.start("tickwire", [args.bin, "--config", config, "--demo"])
    base = f"http://127.0.0.1:{ws_port}"
    link_up = re.compile(r"^tickwire_cluster_link_up(\{[^}]*\})? 1(\.0*)?$", re.M)

    def scrape():
        procs.alive("tickwire", broker)
        status, body = http_get(base + "/metrics")
        return body if status == 200 and link_up.search(body) else None

    body = deadline.wait("/metrics with tickwire_cluster_link_up 1", scrape, step=0.2, limit=30)
    status, health = http_get(base + "/healthz")
    print(f"  broker up: /healthz -> {status} {health.strip()!r}")
    return body, ws_port, prom_port


def run_prometheus(args, procs, deadline, ws_port, prom_port, panels, errors):
    config = os.path.join(procs.tmp, "prometheus.yml")
    with open(config, "w", encoding="utf-8") as f:  # JSON is YAML
        json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                   "rule_files": [ALERTS],
                   "scrape_configs": [{"job_name": "tickwire",
                                       "static_configs": [{"targets": [f"127.0.0.1:{ws_port}"]}]}]}, f)
    prom = procs.start("prometheus", [args.prometheus, f"--config.file={config}",
                                      f"--storage.tsdb.path={os.path.join(procs.tmp, 'prom')}",
                                      f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
    api = f"http://127.0.0.1:{prom_port}/api/v1"

    def query(q):
        url = api + "/query?" + urllib.parse.urlencode({"query": q})
        try:
            _, body = http_get(url, timeout=5)
        except urllib.error.HTTPError as e:  # 400/422: bad expression
            body = e.read().decode("utf-8", "replace")
        return json.loads(body)

    def up():
        procs.alive("prometheus", prom)
        r = query('up{job="tickwire"}')
        res = r.get("data", {}).get("result", [])
        return res and res[0]["value"][1] == "1"

    deadline.wait('Prometheus to scrape the broker (up{job="tickwire"} == 1)', up, step=0.25, limit=25)
    print('  prometheus: up{job="tickwire"} == 1')

    def rules():
        _, body = http_get(api + "/rules")
        rs = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        return rs if rs and all(r.get("health") != "unknown" for r in rs) else None

    evaluated = deadline.wait("every alert rule to be evaluated", rules, step=0.25, limit=15)
    for r in evaluated:
        if r.get("health") != "ok":
            errors.append(f"alert {r.get('name')}: Prometheus evaluation {r.get('health')}: {r.get('lastError')}")
    print(f"  prometheus: {len(evaluated)} alert rules evaluated, "
          f"{sum(r.get('health') == 'ok' for r in evaluated)} healthy")

    # Two scrapes at least inside the rate window, so rates have data.
    time.sleep(max(0.0, min(2.0, deadline.left() - 5)))
    nonempty = total = 0
    for title, exprs in panels:
        for expr in exprs:
            q = expr.replace("$__rate_interval", "10s").replace("$instance", ".*")
            r = query(q)
            total += 1
            if r.get("status") != "success":
                errors.append(f"panel {title!r}: Prometheus rejects {q!r}: {r.get('error')}")
            elif r["data"]["result"]:
                nonempty += 1
    print(f"  prometheus: {total} panel queries ran, {nonempty} returned data")


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("TICKWIRE_BIN", "target/debug/tickwire"),
                    help="tickwire binary (default $TICKWIRE_BIN or target/debug/tickwire, relative to the repo root)")
    ap.add_argument("--nats-server", default="nats-server")
    ap.add_argument("--prometheus", help="also run this Prometheus binary against the broker")
    ap.add_argument("--timeout", type=float, default=50.0, help="whole run, seconds")
    args = ap.parse_args()
    args.bin = os.path.join(ROOT, args.bin) if not os.path.isabs(args.bin) else args.bin
    if not os.access(args.bin, os.X_OK):
        print(f"check_dashboard: no tickwire binary at {args.bin} "
              "(cargo build -p tickwire-broker, or set TICKWIRE_BIN)", file=sys.stderr)
        return 1
    if not shutil.which(args.nats_server):
        print(f"check_dashboard: {args.nats_server} not found", file=sys.stderr)
        return 1
    deadline = Deadline(args.timeout)
    errors = []

    panels, var_queries = load_dashboard(errors)
    alerts = load_alerts(errors)
    print(f"dashboard: {len(panels)} panels; alerts.yml: {len(alerts)} rules")

    tmp = tempfile.mkdtemp(prefix="tickwire-check-")
    procs = Procs(tmp)
    # SIGTERM/SIGINT (e.g. from `timeout`) still runs the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        body, ws_port, prom_port = run_broker(args, procs, deadline)
        families, samples = parse_exposition(body)
        print(f"broker serves {len(families)} families: {' '.join(sorted(families))}")

        used = {}
        for title, exprs in panels:
            for expr in exprs:
                check_names(f"panel {title!r}", expr, families, samples, errors, used, need_instance=True)
        for where, q in var_queries:
            check_names(where, q, families, samples, errors)
        for where, block in alerts:
            check_names(where, block, families, samples, errors)
        for family in sorted(set(families) - set(used)):
            errors.append(f"family {family} ({families[family]}) has no dashboard panel")
        print(f"dashboard uses {len(used)} of {len(families)} families")

        if args.prometheus:
            run_prometheus(args, procs, deadline, ws_port, prom_port, panels, errors)
    except CheckError as e:
        errors.append(str(e))
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print("dashboard and alerts: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
