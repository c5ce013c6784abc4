"""The data agent memory bench reads /proc as documented: RSS split into anonymous and
file-backed pages, and the resident size per mapping, largest first."""

from __future__ import annotations

import os
import sys

import pytest

from bench.bench_data_agent_memory import largest_mappings, rollup

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc (Linux only)")


def test_rollup_splits_rss_into_anonymous_and_file_pages() -> None:
    kept = bytearray(32 * 2**20)  # 32 MB touched: anonymous memory of this process
    kept[::4096] = b"x" * len(kept[::4096])
    figures = rollup(os.getpid())
    assert figures["rss"] == figures["anonymous"] + figures["file"]
    assert figures["anonymous"] >= 32 * 1024  # kB
    assert figures["file"] > 0  # the interpreter's own code is file-backed
    del kept


def test_largest_mappings_are_sorted_and_name_the_libraries() -> None:
    mappings = largest_mappings(os.getpid(), top=50)
    sizes = [kb for _, kb in mappings]
    assert sizes == sorted(sizes, reverse=True) and all(kb >= 0 for kb in sizes)
    names = {name for name, _ in mappings}
    assert any(name.startswith(("libpython", "python")) for name in names) or "[heap]" in names
