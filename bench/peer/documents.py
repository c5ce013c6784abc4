"""The documents the bare pipeline carries: JSON shaped like a dataset (daily metric rows),
of about a given size, each naming its flow in a Kafka header the stages forward."""

from __future__ import annotations

import functools
from typing import Any

import orjson

FLOW_HEADER = "flow"
PARTS_HEADER = "parts"  # how many records a fanned-out flow has on its topic


@functools.cache
def template(size: int, rows_per_step: int = 8) -> dict[str, Any]:
    """A JSON document of about `size` bytes shaped like a dataset: daily metric rows, added
    `rows_per_step` at a time (~95 bytes each) until the document reaches `size`."""
    rows: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"flow_id": "", "account_id": "001000000000001", "series": rows}
    day = 0
    while len(orjson.dumps(doc)) < size:
        for _ in range(rows_per_step):
            rows.append(
                {
                    "day": f"2025-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}",
                    "active_users": 100 + day % 37,
                    "api_calls": 12_000 + 17 * day,
                    "storage_gb": round(3.5 + day / 10, 2),
                    "spend_usd": round(420.25 + 1.5 * day, 2),
                }
            )
            day += 1
    return doc


def document(flow: str, size: int, rows_per_step: int = 8) -> bytes:
    return orjson.dumps({**template(size, rows_per_step), "flow_id": flow})
