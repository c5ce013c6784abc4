"""`python -m bench.peer`: measure the bare pipeline alone and print its figures.

Uses the broker at --bootstrap (default: REVOPS_KAFKA_BOOTSTRAP_SERVERS, else the local
broker of `make kafka-up` on 127.0.0.1:19092). Ctrl-C or SIGTERM stops the stages and
deletes the run's topics.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from bench.peer.measure import PeerSizes, run_peer
from bench.procstats import machine_info


def _interrupt(*_: object) -> NoReturn:
    raise KeyboardInterrupt


def print_figures(results: dict[str, Any]) -> None:
    print_phases(results["phases"])
    for name, usage in results["resources"].items():
        per_flow = results["cpu_ms_per_flow"].get(name)
        cpu, rss = usage["cpu_s"], usage["peak_rss_mb"]
        print(f"{name:<28} CPU {cpu} s ({per_flow} ms/flow), peak RSS {rss} MB")
    shaped = results.get("product_shape")
    if shaped:
        print("\nthe bare pipeline of the product's flow (bench/peer/shape.py):")
        print_phases(shaped["phases"])
        for name, usage in shaped["resources"].items():
            print(f"{name:<28} CPU {usage['cpu_s']} s, peak RSS {usage['peak_rss_mb']} MB")
    print()
    for name, value in results["headline"].items():
        print(f"peer {name}: {value}")


def print_phases(phases: dict[str, Any]) -> None:
    for name, phase in phases.items():
        lat = phase["latency_ms"]
        rate = "burst" if phase["offered_rate"] is None else f"{phase['offered_rate']:.1f}/s"
        print(
            f"{name:<28} {rate:>9}  {phase['completed']}/{phase['flows']} flows"
            f"  steady {phase['steady_flows_per_s']} flows/s"
            f"  p50/p99 {lat.get('p50')}/{lat.get('p99')} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("REVOPS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
    )
    parser.add_argument("--full", action="store_true", help="longer phases, more flows")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    # SIGINT too: asyncio.run's own SIGINT handling only cancels the running task, and a
    # phase that swallows the cancellation would let the run go on to its end (exit 0).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    print(f"bare pipeline on {args.bootstrap} ...", flush=True)
    try:
        results = run_peer(args.bootstrap, PeerSizes.full() if args.full else PeerSizes())
    except KeyboardInterrupt:
        print("interrupted: stages stopped, topics deleted", file=sys.stderr)
        raise SystemExit(130) from None
    results["machine"] = machine_info()
    print_figures(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
