"""How a long-running service process sets up CPython's cyclic garbage collector once it is
built (`serve` calls `freeze_start_up`; the in-process benchmarks do the same, so their
figures are a service's)."""

from __future__ import annotations

import gc

# The first generation's threshold (CPython's default: 700 net allocations). A batch
# allocates tens of thousands of short-lived objects (models, rows, JSON trees), so at 700
# the collector ran hundreds of times a second under load, and each full collection walked
# every live cache entry again. In process (`python -m bench.bench_flow_cpu`), CPU per flow
# at 700 against 50,000: the execution agent in groups of 83 3.00-3.48 ms against 2.61-2.83,
# the decision agent 1.17-1.31 against 0.97-1.04 (docs/batch-pipeline.md, "Fourteenth
# round"). Reference counting still frees acyclic garbage at once; only reference cycles
# wait longer (the webhook processor's peak RSS at saturation rose from 96-100 to 101-108 MB).
SERVING_THRESHOLDS = (50_000, 10, 10)


def freeze_start_up() -> None:
    """What start-up built (modules, rules, compiled lexicons, clients: ~100,000 objects that
    live as long as the process) leaves the collector's sight, so no full collection walks
    it again (in the decision agent that was about a quarter of its CPU per flow), and the
    collector runs at `SERVING_THRESHOLDS`."""
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)


def thaw() -> None:
    """Frozen objects are never collected, not even at interpreter exit: DuckDB's bindings
    (nanobind) then report every type object still alive as a leak on stderr, dozens of
    lines at each stop. Hand them back to the collector."""
    gc.unfreeze()
