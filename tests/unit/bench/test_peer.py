"""The bare-pipeline peer's arithmetic, and that it shares nothing with the product."""

from __future__ import annotations

import math
import subprocess
import sys

import orjson
import pytest

from bench.peer import format_ratios, ratios
from bench.peer.measure import document, percentiles, steady_throughput
from bench.peer.pipeline import BENCH_ROOT


def test_ratios_are_project_over_peer_for_shared_figures() -> None:
    project = {"sustained_flows_per_s": 20.5, "p50_ms_at_50_flows_per_s": 180.0, "only_mine": 1}
    peer = {"sustained_flows_per_s": 1025.0, "p50_ms_at_50_flows_per_s": 18.0, "cpu": 4.0}
    assert ratios(project, peer) == {
        "sustained_flows_per_s": pytest.approx(0.02),
        "p50_ms_at_50_flows_per_s": pytest.approx(10.0),
    }
    assert format_ratios(project, peer) == {
        "sustained_flows_per_s": "20.5 / 1,025.0 = 0.02x",
        "p50_ms_at_50_flows_per_s": "180.0 / 18.0 = 10.00x",
    }


@pytest.mark.parametrize("bad", [0, 0.0, math.nan, None, "12", True])
def test_no_ratio_without_a_usable_peer_figure(bad: object) -> None:
    assert ratios({"x": 5.0}, {"x": bad}) == {}


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, "12", True])
def test_no_ratio_without_a_usable_project_figure(bad: object) -> None:
    assert ratios({"x": bad}, {"x": 5.0}) == {}
    assert ratios({"x": 0}, {"x": 5.0}) == {"x": 0.0}  # nothing done is a figure too


def test_steady_throughput_ignores_start_up_and_tail() -> None:
    # 100 completions, one per 10 ms, behind a 5 s start-up and before a 5 s straggler.
    done = [0.0] + [5.0 + i * 0.01 for i in range(98)] + [20.0]
    assert steady_throughput(done) == pytest.approx(100.0, rel=0.02)
    assert steady_throughput(done[:10]) == 0.0  # too few to tell


def test_percentiles() -> None:
    figures = percentiles([float(i) for i in range(1, 101)])
    assert (figures["p50"], figures["p99"], figures["max"]) == (50.5, 99.0, 100.0)
    assert percentiles([]) == {}


@pytest.mark.parametrize("size", [2048, 20 * 1024])
def test_documents_have_the_asked_size_and_carry_their_flow(size: int) -> None:
    raw = document("flow-7", size)
    assert size <= len(raw) < size * 1.2
    doc = orjson.loads(raw)
    assert doc["flow_id"] == "flow-7"
    assert len(doc["series"]) > 8


def test_the_peer_imports_nothing_from_the_product() -> None:
    """A change to the runtime must not be able to change the yardstick."""
    probe = (
        "import sys, bench.peer, bench.peer.stage, bench.peer.__main__;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'contracts')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=BENCH_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_peer_batches_and_lingers_as_the_product_does() -> None:
    # Like for like: the peer copies these values (it may not import them).
    from bench.peer.client_settings import LINGER_MS, MAX_RECORDS
    from services.common.settings import Settings

    defaults = Settings()
    assert defaults.kafka_linger_ms == LINGER_MS
    assert defaults.batch_max_records == MAX_RECORDS
