#!/usr/bin/env python3
"""Helpers for bench/lib.sh.

  report.py record  WRK_OUT WORKLOAD SYSTEM CPU_TICKS CLK_TCK PSS_KIB JSONL [OTHER_CPU_PCT]
      Parse one `wrk --latency` output, append one JSON line to JSONL, print the row.
      OTHER_CPU_PCT: share of the machine used by neither the server nor wrk (noise).
  report.py table   JSONL
      Print the human table, basalt/nginx and basalt/parse ratios for every workload in JSONL,
      the foundation issue's /healthz targets and the data-API issue's targets (TARGETS below)
      as PASS / FAIL / not measured.
  report.py other-cpus CPUS
      Print (taskset -c syntax) the CPUs this process may use that are not in CPUS.
"""
import os
import json
import re
import sys

# The data-API issue's targets: (description, kind, workload, system, reference system, bound).
#   ratio: rps(system) / rps(reference) >= bound;  rps: rps(system) >= bound.
TARGETS = [
    ("basalt-sqlite get_by_id vs nginx", "ratio", "get_by_id", "basalt-sqlite", "nginx", 0.40),
    ("basalt-sqlite list_filtered vs nginx", "ratio", "list_filtered", "basalt-sqlite", "nginx", 0.12),
    ("basalt-sqlite create req/s", "rps", "create", "basalt-sqlite", None, 10000.0),
    ("basalt-postgres get_by_id vs parse", "ratio", "get_by_id", "basalt-postgres", "parse", 10.0),
]
P99_TARGET_MS = 10.0
# The foundation issue's /healthz targets: Basalt >= 75% of nginx's req/s, p99 < 5 ms, for the
# unpinned run and for the one with servers pinned away from wrk's CPU.
HEALTHZ_WORKLOADS = ("healthz", "healthz_pinned")
HEALTHZ_RATIO = 0.75
HEALTHZ_P99_MS = 5.0
# The queue issue's targets (messages/s produce + consume with batches) per Basalt system, and
# "at least BullMQ's rate". Produce + consume = N / (produce time + claim/ack time).
QUEUE_TARGETS = {"basalt-sqlite": 20000.0, "basalt-postgres": 10000.0}
QUEUE_PEER = "bullmq"
DATA_WORKLOADS = ("get_by_id", "list_filtered", "create")

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"unparseable latency {text!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(out):
    res = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", out, re.M)
    if not m:
        raise ValueError("no 'N requests in T' line in wrk output")
    res["requests"] = int(m.group(1))
    res["duration_s"] = to_ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    res["rps"] = float(m.group(1)) if m else res["requests"] / res["duration_s"]
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        res[key] = to_ms(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = errors
    return res


def mem_mib(row):
    """The row's memory: PSS ("pss_mib"), or VmRSS in results written before ("rss_mib")."""
    return row.get("pss_mib", row.get("rss_mib"))


def record(wrk_out, workload, system, cpu_ticks, clk_tck, pss_kib, jsonl, other_pct=None):
    with open(wrk_out) as f:
        out = f.read()
    w = parse_wrk(out)
    cpu_s = int(cpu_ticks) / int(clk_tck)
    row = {
        "workload": workload,
        "system": system,
        "rps": round(w["rps"], 1),
        "p50_ms": round(w["p50_ms"], 3) if w["p50_ms"] is not None else None,
        "p99_ms": round(w["p99_ms"], 3) if w["p99_ms"] is not None else None,
        "cpu_us_per_req": round(cpu_s * 1e6 / w["requests"], 2) if w["requests"] else None,
        "pss_mib": round(int(pss_kib) / 1024.0, 1),
        "requests": w["requests"],
        "errors": w["errors"],
    }
    if other_pct is not None:
        row["other_cpu_pct"] = float(other_pct)
    with open(jsonl, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"  {system}: {row['rps']:.0f} req/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
          f"{row['cpu_us_per_req']} us CPU/req, {row['pss_mib']} MiB PSS, {row['errors']} errors, "
          f"{row.get('other_cpu_pct', '-')}% other CPU")
    if w["errors"]:
        print(f"  WARNING: {system} had {w['errors']} errors (non-2xx or socket errors)", file=sys.stderr)
    if row.get("other_cpu_pct", 0) > 10:
        print(f"  WARNING: other processes used {row['other_cpu_pct']}% of the machine during {system}'s run; "
              "its figures are not comparable", file=sys.stderr)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(jsonl):
    rows = []
    with open(jsonl) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    if not rows:
        print("no results")
        return
    hdr = f"{'workload':<14} {'system':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'PSS MiB':>8} {'errors':>7} {'other CPU':>9}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['workload']:<14} {r['system']:<22} {fmt(r['rps'], '10.0f')} {fmt(r['p50_ms'], '8.3f')} "
              f"{fmt(r['p99_ms'], '8.3f')} {fmt(r['cpu_us_per_req'], '11.2f')} {fmt(mem_mib(r), '8.1f')} "
              f"{r.get('errors', 0):>7} {fmt(r.get('other_cpu_pct'), '8.1f')}%")
    # Ratios against the nginx ceiling, per workload.
    by_wl = {}
    for r in rows:
        by_wl.setdefault(r["workload"], {})[r["system"]] = r
    print_ratios(by_wl, "nginx", "Ratios against nginx (req/s: higher is better; CPU/req and p99: lower is better):")
    noisy = [r["system"] for r in rows if (r.get("other_cpu_pct") or 0) > 10]
    if noisy:
        print(f"\nNOTE: other processes used >10% of the machine during: {', '.join(noisy)}; re-run on a quiet machine.")
    print_ratios(by_wl, "parse", "Ratios against Parse Server (req/s: higher is better; CPU/req and p99: lower is better):",
                 only=("basalt-sqlite", "basalt-postgres"))
    print_ratios(by_wl, QUEUE_PEER, "Ratios against BullMQ (msg/s: higher is better; CPU/msg and p99: lower is better):",
                 only=("basalt-sqlite", "basalt-postgres"))
    print_healthz_targets(by_wl)
    print_targets(by_wl)
    print_queue_targets(by_wl)


def produce_consume_rate(by_wl, name):
    """Messages/s over producing N then draining them: N / (N/produce + N/consume)."""
    p = by_wl.get("queue_produce_batch", {}).get(name)
    c = by_wl.get("queue_claim_ack_batch", {}).get(name)
    if not p or not c or not p["rps"] or not c["rps"]:
        return None
    return 1.0 / (1.0 / p["rps"] + 1.0 / c["rps"])


def print_queue_targets(by_wl):
    if "queue_produce_batch" not in by_wl:
        return
    print()
    print("Queue targets (produce + consume = N / (produce time + claim/ack time)):")
    peer = produce_consume_rate(by_wl, QUEUE_PEER)
    for name, bound in QUEUE_TARGETS.items():
        rate = produce_consume_rate(by_wl, name)
        if rate is None:
            print(f"  {name + ' produce+consume':<40} not measured")
            continue
        verdict = "PASS" if rate >= bound else "FAIL"
        print(f"  {name + ' produce+consume':<40} {rate:<10.0f} msg/s{'':<21} target >= {bound:.0f} msg/s  {verdict}")
        if peer:
            verdict = "PASS" if rate >= peer else "FAIL"
            print(f"  {name + ' vs ' + QUEUE_PEER:<40} x{rate / peer:<9.2f} ({rate:.0f} / {peer:.0f} msg/s){'':<6} target >= x1     {verdict}")
    # The end-to-end phase (producers and consumers at once) against the same bounds, for
    # information: the verdicts above are the issue's definition.
    e2e = by_wl.get("queue_end_to_end", {})
    peer_e2e = (e2e.get(QUEUE_PEER) or {}).get("rps")
    for name, bound in QUEUE_TARGETS.items():
        row = e2e.get(name)
        if not row or not row["rps"]:
            continue
        rate = row["rps"]
        verdict = "PASS" if rate >= bound else "FAIL"
        print(f"  {name + ' end-to-end phase':<40} {rate:<10.0f} msg/s{'':<21} target >= {bound:.0f} msg/s  {verdict}")
        if peer_e2e:
            verdict = "PASS" if rate >= peer_e2e else "FAIL"
            print(f"  {name + ' end-to-end vs ' + QUEUE_PEER:<40} x{rate / peer_e2e:<9.2f} ({rate:.0f} / {peer_e2e:.0f} msg/s){'':<6} target >= x1     {verdict}")


def print_ratios(by_wl, ref_name, title, only=None):
    lines = []
    for wl, systems in by_wl.items():
        ref = systems.get(ref_name)
        if not ref:
            continue
        for name, r in systems.items():
            if name == ref_name or (only and name not in only):
                continue
            parts = []
            if ref["rps"] and r["rps"] is not None:
                parts.append(f"req/s x{r['rps'] / ref['rps']:.2f}")
            if ref["cpu_us_per_req"] and r["cpu_us_per_req"] is not None:
                parts.append(f"CPU/req x{r['cpu_us_per_req'] / ref['cpu_us_per_req']:.2f}")
            if ref["p99_ms"] and r["p99_ms"] is not None:
                parts.append(f"p99 x{r['p99_ms'] / ref['p99_ms']:.2f}")
            lines.append(f"  {wl:<14} {name + '/' + ref_name:<28} " + ", ".join(parts))
    if lines:
        print()
        print(title)
        print("\n".join(lines))


def print_healthz_targets(by_wl):
    if not any(wl in by_wl for wl in HEALTHZ_WORKLOADS):
        return
    print()
    print("Foundation targets (/healthz):")
    for wl in HEALTHZ_WORKLOADS:
        r = by_wl.get(wl, {}).get("basalt")
        ref = by_wl.get(wl, {}).get("nginx")
        if not r or not ref:
            if wl in by_wl:
                print(f"  {wl + ' basalt vs nginx':<40} not measured ({'basalt' if not r else 'nginx'} missing)")
            continue
        value = r["rps"] / ref["rps"] if ref["rps"] else 0.0
        shown = f"{value * 100:.1f}% ({r['rps']:.0f} / {ref['rps']:.0f} req/s)"
        verdict = "PASS" if value >= HEALTHZ_RATIO else "FAIL"
        print(f"  {wl + ' basalt vs nginx':<40} {shown:<36} target {'>= ' + format(HEALTHZ_RATIO * 100, '.0f') + '%':<16} {verdict}")
        if r.get("p99_ms") is not None:
            verdict = "PASS" if r["p99_ms"] < HEALTHZ_P99_MS else "FAIL"
            shown = f"{r['p99_ms']:.2f} ms (nginx {ref['p99_ms']} ms)"
            print(f"  {wl + ' basalt p99':<40} {shown:<36} target {'< ' + format(HEALTHZ_P99_MS, '.0f') + ' ms':<16} {verdict}")


def parse_cpus(text):
    cpus = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def other_cpus(text):
    rest = sorted(os.sched_getaffinity(0) - parse_cpus(text))
    print(",".join(str(c) for c in rest))


def print_targets(by_wl):
    if not any(wl in by_wl for wl in DATA_WORKLOADS):
        return
    print()
    print("Data-API targets:")
    for desc, kind, wl, name, ref_name, bound in TARGETS:
        r = by_wl.get(wl, {}).get(name)
        ref = by_wl.get(wl, {}).get(ref_name) if ref_name else None
        if not r or (ref_name and not ref):
            missing = name if not r else ref_name
            print(f"  {desc:<40} not measured ({wl} / {missing} missing)")
            continue
        if kind == "ratio":
            value = r["rps"] / ref["rps"] if ref["rps"] else 0.0
            shown = f"{value * 100:.1f}% ({r['rps']:.0f} / {ref['rps']:.0f} req/s)" if bound < 1 else \
                f"x{value:.2f} ({r['rps']:.0f} / {ref['rps']:.0f} req/s)"
            goal = f">= {bound * 100:.0f}%" if bound < 1 else f">= x{bound:.0f}"
        else:
            value = r["rps"]
            shown = f"{value:.0f} req/s"
            goal = f">= {bound:.0f} req/s"
        verdict = "PASS" if value >= bound else "FAIL"
        if r.get("errors"):
            verdict += f" (but {r['errors']} errors)"
        print(f"  {desc:<40} {shown:<36} target {goal:<16} {verdict}")
    for wl in DATA_WORKLOADS:
        for name in ("basalt-sqlite", "basalt-postgres"):
            r = by_wl.get(wl, {}).get(name)
            if not r or r.get("p99_ms") is None:
                continue
            verdict = "PASS" if r["p99_ms"] < P99_TARGET_MS else "FAIL"
            desc = f"{name} {wl} p99"
            shown = f"{r['p99_ms']:.2f} ms"
            goal = f"< {P99_TARGET_MS:.0f} ms"
            print(f"  {desc:<40} {shown:<36} target {goal:<16} {verdict}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "record" and len(argv) in (9, 10):
        record(*argv[2:])
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    elif len(argv) == 3 and argv[1] == "other-cpus":
        other_cpus(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
