"""Field-by-field comparison of two JSON-like trees: every key, every string and integer
equal, floats equal to 1e-9 (the bar for "the analysis did not move")."""

from __future__ import annotations

import math
from typing import Any

FLOAT_TOLERANCE = 1e-9


def assert_same_fields(expected: Any, actual: Any, path: str = "$") -> None:
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, float) and isinstance(expected, float), f"{path}: type"
        same = math.isclose(expected, actual, rel_tol=0, abs_tol=FLOAT_TOLERANCE)
        assert same or (math.isnan(expected) and math.isnan(actual)), (
            f"{path}: {expected!r} != {actual!r}"
        )
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: not an object"
        assert list(expected) == list(actual), f"{path}: keys {list(expected)} != {list(actual)}"
        for key, value in expected.items():
            assert_same_fields(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: not a list"
        assert len(expected) == len(actual), f"{path}: {len(expected)} != {len(actual)} items"
        for k, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same_fields(e, a, f"{path}[{k}]")
    else:
        assert type(expected) is type(actual) and expected == actual, (
            f"{path}: {expected!r} != {actual!r}"
        )
