"""The data agent's dataset names its subject: the account's and the deal's names travel with
the ids, through the decision, into alerts, tickets and flow outputs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from contracts import AnalysisType, Envelope, RawTrigger
from contracts.trigger import TriggerParameters, TriggerType
from services.common.messages import encode
from services.common.settings import Settings
from services.data_agent.app import DataAgent, enrich
from services.data_agent.builders import DATASET_BUILDERS
from services.data_agent.datasets import DatasetRepository

from .conftest import Demo


def dataset_subject(demo: Demo, analysis: AnalysisType, account: str, deal: str | None) -> dict:
    agent = DataAgent(Settings(), DatasetRepository(demo.warehouse))
    trigger = RawTrigger(
        trigger_type=TriggerType.MANUAL,
        parameters=TriggerParameters(
            account_id=account, opportunity_id=deal, analysis_type=analysis
        ),
        request_id="names-1",
    )
    request = enrich(trigger, "names-1", datetime.now(UTC))
    outgoing = asyncio.run(agent._dataset(request, DATASET_BUILDERS[analysis]))
    # The dataset's subject as the decision agent reads it (from the record's bytes).
    return Envelope.model_validate_json(encode(outgoing.message)).payload["subject"]


def test_deal_dataset_carries_account_and_deal_names(demo: Demo) -> None:
    [(deal, account, deal_name, account_name)] = demo.sql(
        "SELECT o.opportunity_id, o.sf_account_id, o.name, a.sf_account_name "
        "FROM opportunity_d o JOIN salesforce_account_d a USING (sf_account_id) "
        "ORDER BY o.opportunity_id LIMIT 1"
    )
    subject = dataset_subject(demo, AnalysisType.DEAL_QUALITY, account, deal)
    assert subject == {
        "account_id": account,
        "opportunity_id": deal,
        "account_name": account_name,
        "opportunity_name": deal_name,
    }


def test_account_dataset_carries_the_account_name(demo: Demo) -> None:
    [(account, account_name)] = demo.sql(
        "SELECT sf_account_id, sf_account_name FROM salesforce_account_d "
        "ORDER BY sf_account_id LIMIT 1"
    )
    subject = dataset_subject(demo, AnalysisType.CONSUMPTION, account, None)
    assert subject["account_name"] == account_name and subject["opportunity_name"] is None
