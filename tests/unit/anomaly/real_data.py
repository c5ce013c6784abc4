"""Where the real labelled data is, for the tests that need it.

In CI (`CI=true`) missing data is a failure: the checkout must have ../shared/data beside
it. Elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.anomaly_corpora import skab_dir


def require_skab() -> Path:
    path = skab_dir()
    if not (path / "valve1").is_dir():
        message = (
            f"SKAB data not found at {path} (../shared/data from the project root, or "
            "set REVOPS_SHARED_DATA)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
