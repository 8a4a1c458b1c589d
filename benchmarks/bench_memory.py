"""Benchmark 6: memory as the probe space grows (a /16 x 100 ports and smaller).

    python benchmarks/bench_memory.py [--runs N] [--seconds S] [--sizes 24,17,16]
        [--ports P] [--pyscan-options JSON] [--json FILE]

pyscan ``syn_scan`` of 198.19.0.0/N x ports 1-P (default /17 and /16 x 100 ports: 3.3 and
6.6 million probes). 198.19.0.0/16 is inside the lab range
198.18.0.0/15 but not on the lab's /24: the script routes it, in the scanner namespace
only, through a lab host (``ip route add 198.19.0.0/16 via 198.18.0.10``) that does not
forward, so every probe reaches the lab bridge and dies there, and nothing answers (the
addresses are absent). It checks the route before scanning and refuses anything outside
198.18.0.0/15.

Each run is stopped after S seconds (default 20; SIGINT): the figure is the process's peak
RSS (``wait4``'s ``ru_maxrss``) and its RSS over time, against the probe space. Runs of
different sizes stopped at the same moment have sent about as many probes, so the
difference of their peaks divided by the difference of their probe spaces is the memory
that grows with the space (bytes per probe); the RSS growth within a run, divided by the
packets sent, is what grows with the work done (results, timers).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import statistics
import sys

from _common import TxCounter, common_args, env_ok, load_note, pyscan_argv, run_measured

from pyscan.testing.netlab import LAB_RANGE, HostConfig, Lab, LabConfig

GATEWAY = "198.18.0.10"
SPACE = ipaddress.IPv4Network("198.19.0.0/16")
DEFAULT_OPTIONS: dict[str, object] = {"timing": 5, "max_retries": 0, "min_rate": 100000}


def route_space(lab: Lab) -> str:
    """Route SPACE into the lab through GATEWAY; return the scanner's routing table."""
    assert SPACE.subnet_of(LAB_RANGE)
    forward = lab.run(["sysctl", "-n", "net.ipv4.ip_forward"], host="gw", check=True)
    if forward.stdout.strip() != "0":
        raise SystemExit(f"lab host gw forwards packets (ip_forward={forward.stdout.strip()})")
    lab.run(["ip", "route", "add", str(SPACE), "via", GATEWAY, "dev", "eth0"], check=True)
    probe = str(SPACE.network_address + 4660)
    got = lab.run(["ip", "route", "get", probe], check=True).stdout
    if f"via {GATEWAY} dev eth0" not in got:
        raise SystemExit(f"route to {probe} is not through the lab: {got!r}")
    return lab.run(["ip", "route"], check=True).stdout.strip()


def rss_at(samples: tuple[tuple[float, float], ...], t: float) -> float:
    """The last RSS sample at or before ``t`` seconds (MB); the last one if the run ended."""
    best = 0.0
    for when, mb in samples:
        if when > t:
            break
        best = mb
    return best


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="stop each run after this")
    parser.add_argument("--sizes", default="17,16", help="prefix lengths within 198.19/16")
    parser.add_argument("--ports", type=int, default=100)
    parser.add_argument("--pyscan-options", type=json.loads, default=DEFAULT_OPTIONS)
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    nets = [
        ipaddress.IPv4Network(f"{SPACE.network_address}/{int(s)}") for s in args.sizes.split(",")
    ]
    for net in nets:
        if not net.subnet_of(SPACE):
            raise SystemExit(f"{net} is outside {SPACE}")
    ports = f"1-{args.ports}"
    rows: dict[str, list[dict[str, float]]] = {}
    config = LabConfig(hosts=(HostConfig("gw", GATEWAY),))
    with Lab(config) as lab:
        counter = TxCounter(lab)
        routes = route_space(lab)
        print(
            f"# benchmark 6: memory, pyscan syn_scan {args.pyscan_options} x {ports}; "
            f"each run stopped after {args.seconds:g} s; {load_note()}"
        )
        print("# scanner routes:\n#   " + routes.replace("\n", "\n#   "))
        for run in range(args.runs):
            for net in nets:
                probes = net.num_addresses * args.ports
                res = run_measured(
                    lab, counter, pyscan_argv("syn", str(net), ports, args.pyscan_options),
                    timeout=args.seconds + 120, stop_after=args.seconds, sample_rss=True,
                )  # fmt: skip
                start_rss = rss_at(res.rss_samples, 1.0)
                row = {
                    "probes": probes,
                    "peak_mb": res.peak_rss_mb,
                    "rss_1s": start_rss,
                    "rss_5s": rss_at(res.rss_samples, 5.0),
                    "rss_10s": rss_at(res.rss_samples, 10.0),
                    "sent": res.tx_packets,
                    "wall": res.wall,
                    "cpu": res.cpu,
                    "send_pps": res.send_pps,
                    "completed": float(res.status == "ok"),
                }
                rows.setdefault(f"/{net.prefixlen} x {args.ports}", []).append(row)
                print(
                    f"  run {run + 1} /{net.prefixlen}: {res.status}, "
                    f"peak {res.peak_rss_mb:.1f} MB, "
                    f"{res.tx_packets} pkts sent in {res.wall:.1f} s",
                    flush=True,
                )
    print(f"\n## medians over {args.runs} run(s)")
    print(
        f"{'space':14} {'probes':>10} {'rss@1s':>7} {'rss@5s':>7} {'rss@10s':>7} {'peak MB':>8} "
        f"{'pkts sent':>10} {'cpu s':>6} {'B/probe sent':>12}"
    )
    med: dict[str, dict[str, float]] = {}
    for name, rs in rows.items():
        m = med[name] = {k: float(statistics.median(r[k] for r in rs)) for k in rs[0]}
        grow = (m["peak_mb"] - m["rss_1s"]) * 2**20 / m["sent"] if m["sent"] else 0.0
        print(
            f"{name:14} {m['probes']:10.0f} {m['rss_1s']:7.1f} {m['rss_5s']:7.1f} "
            f"{m['rss_10s']:7.1f} {m['peak_mb']:8.1f} {m['sent']:10.0f} {m['cpu']:6.1f} "
            f"{grow:12.1f}"
        )
    names = list(med)
    if any(m["completed"] for m in med.values()):
        print("note: a run that completed before the stop did less work: compare with care")
    for small, big in itertools.pairwise(names):
        a, b = med[small], med[big]
        dspace = b["probes"] - a["probes"]
        for key in ("rss_1s", "rss_5s", "peak_mb"):
            per = (b[key] - a[key]) * 2**20 / dspace
            print(
                f"{small} -> {big}: {key:7} grows {b[key] - a[key]:7.1f} MB for {dspace:.0f} "
                f"more probes = {per:6.2f} bytes ({per * 8:6.1f} bits) per probe of space"
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "memory",
                    "load": load_note(),
                    "options": args.pyscan_options,
                    "runs": rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
