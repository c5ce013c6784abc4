"""The data agent builds and writes series without numpy (~15 MB of resident memory it
would otherwise load: the service's RSS target at saturation is 150 MB). Its whole path runs
in a fresh interpreter, as `python -m services.data_agent` does: triggers read ahead as a
batch and one at a time, every dataset encoded as the runtime publishes it."""

from __future__ import annotations

import json

from tests.python_probe import run_python

from .conftest import AS_OF, Demo

SCRIPT = """
import asyncio, json, sys
from datetime import date
from contracts import AnalysisType, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.messages import encode
from services.common.records import Parsed, Record
from services.common.settings import Settings
from services.data_agent.app import DataAgent
from services.data_agent.builders import open_opportunities
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse

def item(i, parameters):
    request_id = f"req-{i}"
    trigger = RawTrigger(
        trigger_type=TriggerType.SCHEDULED, parameters=parameters, request_id=request_id
    )
    record = Record("revops.triggers", 0, i, parameters.account_id.encode(), None, (), 0)
    return Parsed(f"trigger:{request_id}", (trigger, request_id)), record

with DuckDBWarehouse(PATH) as warehouse:
    repository = DatasetRepository(warehouse)
    agent = DataAgent(Settings(), repository)
    deals = open_opportunities(warehouse, repository.stages)[:4]
    items = [
        item(i, TriggerParameters(account_id=a, opportunity_id=o,
                                  analysis_type=AnalysisType.DEAL_QUALITY))
        for i, (a, o) in enumerate(deals)
    ] + [
        item(10 + i, TriggerParameters(account_id=a, analysis_type=AnalysisType.CONSUMPTION))
        for i, (a, _) in enumerate(deals)
    ]
    records = []
    for batch in (items, items[:1], items[-1:]):
        for outcome in asyncio.run(agent.handle_batch(batch)):
            assert isinstance(outcome, list), outcome
            records.extend(encode(out.message) for out in outcome)
    point = repository.account_dataset(deals[0][0], AS_OF)[0]
    usage_days = point.usage.days
print(json.dumps({"records": len(records), "usage_days": usage_days,
                  "numpy": "numpy" in sys.modules}))
"""


def test_the_data_agent_never_loads_numpy(demo: Demo) -> None:
    script = SCRIPT.replace("PATH", repr(str(demo.path))).replace(
        "AS_OF)", f"date.fromisoformat({AS_OF.isoformat()!r}))"
    )
    done = run_python(script, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["records"] == 10  # a dataset per trigger: 8 read ahead, then 1 and 1
    assert result["usage_days"] > 300  # a year of usage went through the series
    assert result["numpy"] is False
