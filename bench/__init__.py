"""End-to-end benchmark, fault injection and the per-area benchmarks."""
