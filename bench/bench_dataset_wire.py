"""Datasets on the wire, rows against columns: bytes per dataset and CPU per hop.

Run: `.venv/bin/python bench/bench_dataset_wire.py [--accounts N] [--deals N] [--repeats R]`.

The datasets are the data agent's own, built from a generated demo warehouse with a year of
usage (a consumption dataset per account, a deal-quality dataset per open deal). Per dataset:

* bytes: the envelope as the data agent produces it, row form (schema_version 1) and columnar
  form (schema_version 2);
* produce: the columnar form only, `to_columnar` + encoding (the one validation);
* parse + read, per hop: what a consumer does with the record, `parse_dataset` (JSON, envelope,
  payload) and then reading every usage metric as a numpy array.

Each figure is the best of `--repeats` runs for one dataset (the machine is shared; the minimum
is the least disturbed); the lines print the median over the datasets and their range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from contracts import AgentName, AnalysisType, AnalyticalDataset
from contracts.dataset_columns import ColumnarAnalyticalDataset, to_columnar
from contracts.series import USAGE_METRICS
from demo.datasets import demo_messages
from services.common.messages import encode, make_envelope
from services.common.records import Record
from services.decision_agent.app import parse_dataset


def envelope_bytes(payload: AnalyticalDataset | ColumnarAnalyticalDataset) -> bytes:
    return encode(
        make_envelope(
            payload,
            request_id=payload.request_id,
            flow_id="flow-bench",
            correlation_id=payload.request_id,
            source=AgentName.DATA_AGENT.value,
            target=AgentName.DECISION_AGENT.value,
            stage="dataset",
        )
    )


def produce_columns(message: AnalyticalDataset) -> bytes:
    return envelope_bytes(to_columnar(message))


def best_us(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def parse_and_read(value: bytes) -> None:
    record = Record("revops.datasets", 0, 0, b"k", value)
    usage = parse_dataset(record).body.dataset.usage_series()
    for metric in USAGE_METRICS:
        usage.metric(metric)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} (range {min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--deals", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    repeats = args.repeats
    with tempfile.TemporaryDirectory() as folder:
        messages = demo_messages(Path(folder), accounts=args.accounts, deals=args.deals)
    summary: dict[str, dict[str, float]] = {}
    for kind in (AnalysisType.CONSUMPTION, AnalysisType.DEAL_QUALITY):
        chosen = [m for m in messages if m.analysis_type is kind]
        figures: dict[str, list[float]] = {}
        for message in chosen:
            wire = to_columnar(message)
            rows, columns = envelope_bytes(message), envelope_bytes(wire)
            measured = {
                "bytes, rows": float(len(rows)),
                "bytes, columns": float(len(columns)),
                "produce rows (encode), us": best_us(partial(envelope_bytes, message), repeats),
                "produce columns (convert + encode), us": best_us(
                    partial(produce_columns, message), repeats
                ),
                "parse + read per hop, rows, us": best_us(partial(parse_and_read, rows), repeats),
                "parse + read per hop, columns, us": best_us(
                    partial(parse_and_read, columns), repeats
                ),
            }
            for name, value in measured.items():
                figures.setdefault(name, []).append(value)
        usage_days = statistics.median(len(m.dataset.usage) for m in chosen)
        print(f"{kind.value}: {len(chosen)} datasets, median {usage_days:.0f} usage days")
        for name, values in figures.items():
            print(f"  {f'{kind.value} {name}':52s}: {spread(values)}")
        for what in ("bytes", "parse + read per hop"):
            unit = "" if what == "bytes" else ", us"
            columns_, rows_ = figures[f"{what}, columns{unit}"], figures[f"{what}, rows{unit}"]
            ratio = [c / r for c, r in zip(columns_, rows_, strict=True)]
            label = f"{kind.value} columns / rows, {what}"
            print(f"  {label:52s}: {min(ratio):.2f} to {max(ratio):.2f}")
        summary[kind.value] = {name: statistics.median(v) for name, v in figures.items()}
    print(json.dumps({"dataset_wire": summary}))


if __name__ == "__main__":
    main()
