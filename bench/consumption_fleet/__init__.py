"""The vectorised fleet path of the consumption analysis, measured by `bench_consumption`.

It reads the data agent's warehouse and runs the decision agent's analysis on every account
at once, so it combines two services and lives here, not in either of them. Production's
daily fleet scan is the data agent's SQL screen (`services/data_agent/fleet.py`) fanning out
to per-account analyses; this path is the benchmark's yardstick and the ground-truth test's
cross-check (same results as `ConsumptionAnalyzer` on each account).
"""
