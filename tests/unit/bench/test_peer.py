"""The bare-pipeline peer's arithmetic, and that it shares nothing with the product."""

from __future__ import annotations

import math
import subprocess
import sys

import orjson
import pytest

from bench.peer import cpu_over, format_ratios, ratios
from bench.peer.documents import FLOW_HEADER, PARTS_HEADER
from bench.peer.measure import document, percentiles, steady_throughput
from bench.peer.pipeline import BENCH_ROOT
from bench.peer.shape import FAN_IN, FOUR_STAGES, PRODUCT_SHAPE
from bench.peer.stage import CommitPacing, Forwarder, TopicRoute


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
    from bench.peer.client_settings import COMMIT_INTERVAL_MS, LINGER_MS, MAX_RECORDS
    from services.common.settings import Settings

    defaults = Settings()
    assert defaults.kafka_linger_ms == LINGER_MS
    assert defaults.batch_max_records == MAX_RECORDS
    assert (
        defaults.kafka_commit_interval_ms
        == COMMIT_INTERVAL_MS
        == (PRODUCT_SHAPE.commit_interval_ms)
    )
    assert FOUR_STAGES.commit_interval_ms == 0  # the yardstick as issue 15 describes it


def test_a_forwarding_route_writes_the_document_read_one_hop_further() -> None:
    forwarder = Forwarder({"s0": TopicRoute("s1", 0, "1")})
    headers = [(FLOW_HEADER, b"f-1")]
    [(sink, value, written)] = forwarder.outputs("s0", document("f-1", 2048), headers)
    assert (sink, written) == ("s1", headers)
    assert orjson.loads(value) == orjson.loads(document("f-1", 2048)) | {"hops": 1}


def test_a_fan_out_writes_its_average_with_the_count_in_a_header() -> None:
    forwarder = Forwarder({"s2": TopicRoute("s3", 4096, "2.25")})
    counts = []
    for i in range(400):
        outputs = forwarder.outputs("s2", orjson.dumps({"flow_id": f"f-{i}", "hops": 2}), [])
        counts.append(len(outputs))
        for sink, value, headers in outputs:
            doc = orjson.loads(value)
            assert (sink, doc["flow_id"], doc["hops"]) == ("s3", f"f-{i}", 3)
            assert 4096 <= len(value) < 4096 + 150  # the route's size, not the input's
            assert dict(headers)[PARTS_HEADER] == str(len(outputs)).encode()
    assert sum(counts) == 900 and set(counts) == {2, 3}


def test_a_fan_in_writes_once_per_flow_when_all_its_parts_arrived() -> None:
    forwarder = Forwarder({"s4": TopicRoute("s5", 1946, FAN_IN)})

    def part(flow: str, parts: int) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
        headers = [(FLOW_HEADER, flow.encode()), (PARTS_HEADER, str(parts).encode())]
        return forwarder.outputs("s4", orjson.dumps({"flow_id": flow, "hops": 4}), headers)

    assert part("a", 3) == [] and part("b", 2) == [] and part("a", 3) == []
    [(sink, value, headers)] = part("b", 2)
    assert (sink, orjson.loads(value)["flow_id"], headers) == ("s5", "b", [(FLOW_HEADER, b"b")])
    assert len(part("a", 3)) == 1
    assert len(part("c", 1)) == 1  # a flow of one part is written at once
    assert part("a", 3) == []  # a new round for a flow seen before starts again


def test_cpu_over_phases_weighs_each_phase_by_its_flows() -> None:
    burst = ({"stage": 2.0, "kafka_broker": 1.0}, 600)  # 3 ms per flow
    light = ({"stage": 8.0, "kafka_broker": 4.0}, 200)  # 12 ms per flow
    assert cpu_over([burst, light]) == pytest.approx((600 * 3 + 200 * 12) / 800)
    assert math.isnan(cpu_over([]))


def test_commits_are_paced_by_their_interval() -> None:
    every_batch, paced = CommitPacing(0.0), CommitPacing(0.5)
    assert all(every_batch.due(t) for t in (0.0, 0.0, 0.1))
    assert [paced.due(t) for t in (10.0, 10.2, 10.49, 10.5, 10.6, 11.2)] == [
        True,
        False,
        False,
        True,
        False,
        True,
    ]
