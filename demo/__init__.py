"""The demo data generator: a deterministic warehouse (CRM, calls, usage, tickets,
agreements) with a ground-truth file of what it planted (see `seed.py`). Its own package:
not part of any service; `revops warehouse seed`, `revops run`, the tests and the benchmarks
use it."""
