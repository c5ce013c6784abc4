"""Which topics each stage of a bare pipeline reads and writes, and what it writes.

Two shapes:

- `FOUR_STAGES`, the yardstick issue 15 names: four stages in a row, each forwarding every
  record it reads, one hop further, at the size it came in.
- `PRODUCT_SHAPE`: the project's flow with nothing but the transport. Four processes, as the
  project has services, reading and writing the records the project's flow puts on the wire,
  at their sizes and counts: a trigger (~0.2 KiB) becomes a dataset (31.7 KiB), a dataset a
  decision (14.6 KiB), a decision 2.25 actions on average (4.0 KiB each), each action a
  result (0.7 KiB), and once all of a flow's results are in, one flow result (1.9 KiB).
  Measured on `make bench`'s pipeline (400 flows of the demo mix, each topic read back,
  2026-12-06; the envelopes' ~0.7 KiB of signature and trace headers are not copied: the
  peer carries no signatures). Like the project's execution agent, one process reads both
  the decisions and the results. What this pipeline carries is what any implementation of
  the project's flow can carry on this machine and this broker before it does any work of
  its own; the project's figures against it say how much its own work costs. Its stages
  commit their offsets at most every 500 ms, as the project's services do (a commit per
  batch costs the broker ~0.5-1 ms of CPU per flow at light load).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.peer.client_settings import COMMIT_INTERVAL_MS

KIB = 1024
FAN_IN = "in"


@dataclass(frozen=True)
class Route:
    """Records read from topic `source` become records on topic `sink` (indexes into the
    pipeline's topics)."""

    source: int
    sink: int
    size: int = 0  # bytes of each document written; 0 forwards the document read, one hop on
    fan: str = "1"  # records written per record read, on average ("2.25"); or FAN_IN: one
    # record once all of a flow's parts (its PARTS_HEADER) were read

    def as_args(self, topics: list[str]) -> list[str]:
        return ["--route", topics[self.source], topics[self.sink], str(self.size), self.fan]


@dataclass(frozen=True)
class Shape:
    name: str
    topics: int  # topics[0] is where flows enter, topics[-1] where they leave
    stages: dict[str, tuple[Route, ...]]  # process name -> what it reads and writes
    input_size: int = 2 * KIB  # bytes of the document a flow enters with
    commit_interval_ms: int = 0  # 0: the stages commit after every batch


FOUR_STAGES = Shape("four_stages", 5, {f"peer_stage_{i + 1}": (Route(i, i + 1),) for i in range(4)})

PRODUCT_SHAPE = Shape(
    "product_shape",
    6,
    {
        "shape_data": (Route(0, 1, round(31.7 * KIB)),),
        "shape_decision": (Route(1, 2, round(14.6 * KIB)),),
        "shape_execution": (
            Route(2, 3, round(4.0 * KIB), "2.25"),
            Route(4, 5, round(1.9 * KIB), FAN_IN),
        ),
        "shape_webhook": (Route(3, 4, round(0.7 * KIB)),),
    },
    input_size=200,
    commit_interval_ms=COMMIT_INTERVAL_MS,
)
