"""The full payload of generated deals is pinned: speed work must not change any result.

Deals come from the demo warehouse generator (fixed seed and day); each deal's payload (JSON
and repr, so a float that became an int shows) is hashed and compared with
``payload_pin.json``, written by the code before the fast paths. First scoring and re-scoring
(where cached call mentions and shared evidence are reused) must both match.

If the generator itself changes (its inputs digest differs), the pin is stale rather than the
scoring wrong: regenerate it with the code of a commit whose results are trusted,

    .venv/bin/python -m tests.unit.deal_quality.test_payload_pin --write
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from contracts.analysis import AnalysisResults
from contracts.dataset import DatasetBase, PreliminaryFinding
from contracts.dataset_columns import as_rows
from demo.seed import seed_warehouse
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_OPPORTUNITIES
from services.decision_agent.deal_quality.analyzer import DealQualityAnalyzer, load_deal_rules

PIN_PATH = Path(__file__).with_name("payload_pin.json")
ACCOUNTS, DAYS, SEED, AS_OF = 12, 120, 11, date(2026, 11, 1)

Deal = tuple[DatasetBase, list[PreliminaryFinding]]


def generated_deals() -> list[Deal]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pin.duckdb"
        seed_warehouse(path, accounts=ACCOUNTS, days=DAYS, seed=SEED, as_of=AS_OF)
        with DuckDBWarehouse(path) as warehouse:
            repository = DatasetRepository(warehouse)
            rows = warehouse.fetch_all(LIST_OPPORTUNITIES, {"limit": 1_000_000})
            deals: list[Deal] = []
            for row in rows:
                dataset, _, findings = repository.deal_dataset(
                    str(row["sf_account_id"]), str(row["opportunity_id"])
                )
                deals.append((dataset, findings))
    return deals


def _digest(*texts: str) -> str:
    hasher = hashlib.sha256()
    for text in texts:
        hasher.update(text.encode())
        hasher.update(b"\x00")
    return hasher.hexdigest()


def inputs_digest(deals: list[Deal]) -> str:
    # Digested in the row form the pin was written with (the datasets are built as columns).
    return _digest(
        *(
            as_rows(d).model_dump_json() + "".join(f.model_dump_json() for f in fs)
            for d, fs in deals
        )
    )


def payload_digest(result: AnalysisResults) -> str:
    return _digest(result.model_dump_json(), repr(result))


def payload_digests(analyzer: DealQualityAnalyzer, deals: list[Deal]) -> Iterator[str]:
    for index, (dataset, findings) in enumerate(deals):
        yield payload_digest(analyzer.analyze(f"pin-{index}", dataset, findings))


@pytest.fixture(scope="module")
def deals() -> list[Deal]:
    return generated_deals()


def test_generated_payloads_match_the_pin(deals: list[Deal]) -> None:
    pinned = json.loads(PIN_PATH.read_text())
    assert inputs_digest(deals) == pinned["inputs"], "generator changed: regenerate the pin"
    assert len(deals) == len(pinned["payloads"]) >= 20
    analyzer = DealQualityAnalyzer(load_deal_rules())
    first = list(payload_digests(analyzer, deals))
    again = list(payload_digests(analyzer, deals))
    changed = [
        i
        for i, (got, want) in enumerate(zip(first, pinned["payloads"], strict=True))
        if got != want
    ]
    assert changed == [], f"deals whose payload changed: {changed}"
    assert again == first


def write_pin() -> None:
    deals = generated_deals()
    analyzer = DealQualityAnalyzer(load_deal_rules())
    pin = {"inputs": inputs_digest(deals), "payloads": list(payload_digests(analyzer, deals))}
    PIN_PATH.write_text(json.dumps(pin, indent=1) + "\n")
    print(f"wrote {PIN_PATH} ({len(deals)} deals)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write_pin()
