"""Deterministic demo-warehouse generator with a ground-truth file (see `seed.py`)."""
