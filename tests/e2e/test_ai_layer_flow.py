"""The AI layer end to end: every service its own process on a real broker, the decision
agent on the recorded-model backend. Answers were recorded in-process (the layer talking to
a loopback model server, fabrications planted), then replayed by the service: the flow's
decision carries the model's narrative and grounded call insights, the CRM update carries
the model's wording, a re-run is answered by the cache, and a deal nobody recorded falls
back to the deterministic analysis while its flow still completes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import AnalysisResults, AnalysisType, read_dataset
from contracts.common import Subject
from contracts.dataset import DatasetBase
from contracts.dataset_columns import DATASET_SCHEMA_VERSION, ColumnarAnalyticalDataset
from demo.seed import seed_warehouse
from services.cli.orchestrator import SERVICES, LocalStack
from services.common.settings import Settings
from services.common.topics import ensure_topics
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import DuckDBWarehouse
from services.data_agent.warehouse.queries import LIST_OPEN_OPPORTUNITIES
from services.decision_agent.ai.setup import build_ai_layer
from services.decision_agent.app import build_agent
from tests.e2e.test_pipeline import (
    deal_trigger,
    idempotency_key,
    outbox_requests,
    run_and_collect,
)
from tests.kafka_broker import free_port
from tests.kafka_tools import collect
from tests.support import model_answers
from tests.support.isolation import isolated_names
from tests.support.model_answers import PLANTED_PER_CALL, PLANTED_PER_NARRATIVE
from tests.support.model_server import ModelServer

pytestmark = pytest.mark.kafka


@dataclass
class Deal:
    row: dict
    deterministic: AnalysisResults
    expected: AnalysisResults  # as the layer enriched it in-process (recorded)


@dataclass
class AiStack:
    settings: Settings
    local: LocalStack
    recorded: Deal
    unrecorded: Deal

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.local.ports['decision_agent']}/metrics"


def analyse(
    settings: Settings, repository: DatasetRepository, row: dict
) -> tuple[AnalysisResults, DatasetBase]:
    """The decision agent's deterministic analysis, from the dataset as it travels."""
    dataset, collection, findings = repository.deal_dataset(
        str(row["sf_account_id"]), str(row["opportunity_id"])
    )
    payload = ColumnarAnalyticalDataset(
        schema_version=DATASET_SCHEMA_VERSION,
        request_id="author",
        analysis_type=AnalysisType.DEAL_QUALITY,
        # As the data agent names it: the subject's names are part of the model's prompt.
        subject=Subject(
            account_id=row["sf_account_id"],
            opportunity_id=row["opportunity_id"],
            account_name=dataset.account.sf_account_name,
            opportunity_name=dataset.opportunity.name if dataset.opportunity else None,
        ),
        data_collection=collection,
        preliminary_findings=findings,
        dataset=dataset,
    )
    wire = read_dataset(orjson.loads(payload.model_dump_json()))
    return build_agent(settings).decide(wire), wire.dataset


@pytest.fixture(scope="module")
def ai_stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AiStack]:
    var_dir = tmp_path_factory.mktemp("e2e-ai-var")
    recordings = var_dir / "recordings.jsonl"
    # Its own topics and groups: the session's pipeline stack may still run on the broker.
    topics, isolation = isolated_names("e2eai")
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=var_dir, topics=topics)
    seed_warehouse(settings.resolved_warehouse_path, accounts=12, days=150, seed=11)
    chosen: list[tuple[dict, AnalysisResults, DatasetBase]] = []
    with DuckDBWarehouse(settings.resolved_warehouse_path) as warehouse:
        repository = DatasetRepository(warehouse)
        for row in warehouse.fetch_all(LIST_OPEN_OPPORTUNITIES, {"limit": 100}):
            result, dataset = analyse(settings, repository, row)
            if len(dataset.calls) >= 2 and result.recommendations:
                chosen.append((row, result, dataset))
            if len(chosen) == 2:
                break
    assert len(chosen) == 2, "the generated warehouse needs two open deals with calls"
    author = settings.model_copy(
        update={
            "var_dir": var_dir / "author",
            "model_backend": "openai",
            "model_id": "claude-e2e",
            "model_api_key_secret": "",
            "model_record_to": recordings,
        }
    )
    with ModelServer(model_answers.answer) as server:
        author = author.model_copy(update={"model_endpoint_url": server.url("/v1")})
        layer = build_ai_layer(author)
        assert layer is not None

        async def record() -> AnalysisResults:
            try:
                _, result, dataset = chosen[0]
                return await layer.enrich(result, dataset)
            finally:
                await layer.close()

        expected = asyncio.run(record())
    env = {
        "REVOPS_VAR_DIR": str(var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        **isolation,
        "REVOPS_RETRY_INITIAL_DELAY_S": "0.1",
        "REVOPS_MODEL_BACKEND": "recorded",
        "REVOPS_MODEL_RECORDINGS": str(recordings),
        "REVOPS_MODEL_PRICE_INPUT_PER_MTOK": "3",
        "REVOPS_MODEL_PRICE_OUTPUT_PER_MTOK": "15",
    }
    asyncio.run(ensure_topics(settings))
    local = LocalStack(settings, ports={name: free_port() for name in SERVICES}, env=env)
    local.start()
    try:
        asyncio.run(local.wait_ready(90))
        yield AiStack(
            settings,
            local,
            Deal(chosen[0][0], chosen[0][1], expected),
            Deal(chosen[1][0], chosen[1][1], chosen[1][1]),
        )
    finally:
        local.stop()


async def decisions_for(stack: AiStack, request_ids: set[str]) -> dict[str, AnalysisResults]:
    found: dict[str, AnalysisResults] = {}
    for record in await collect(
        stack.settings.kafka_bootstrap_servers, stack.settings.topics.decisions, 1, 20, 2
    ):
        envelope = orjson.loads(record.value)
        if envelope["metadata"]["request_id"] in request_ids:
            found[envelope["metadata"]["request_id"]] = AnalysisResults.model_validate(
                envelope["payload"]
            )
    return found


async def decision_metrics(stack: AiStack) -> dict[tuple[str, tuple], float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(stack.metrics_url())).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_recorded_model_writes_the_narrative_of_a_real_flow(ai_stack: AiStack) -> None:
    deal = ai_stack.recorded
    first = f"e2e-ai-{uuid.uuid4()}"
    flows = await run_and_collect(ai_stack, [deal_trigger(deal.row, first)], timeout_s=90)
    assert [f.status for f in flows] == ["success"]
    decision = (await decisions_for(ai_stack, {first}))[first]
    ai = decision.ai
    assert ai is not None and ai.backend == "recorded" and ai.model_id == "recorded:claude-e2e"
    # The narrative replayed through Kafka is the one recorded, fabrications dropped.
    assert decision.summary == deal.expected.summary != deal.deterministic.summary
    assert model_answers.PLANTED_SENTENCE not in decision.summary
    assert ai.replaced["summary"] == deal.deterministic.summary
    assert decision.call_insights == deal.expected.call_insights != []
    assert decision.analysis_results.scores == deal.deterministic.analysis_results.scores
    assert flows[0].scores == deal.deterministic.analysis_results.scores
    calls = [u for u in ai.uses if u.prompt == "call_understanding"]
    assert calls and all(u.grounding_rejections == PLANTED_PER_CALL for u in calls)
    (narrative,) = [u for u in ai.uses if u.prompt == "deal_narrative"]
    assert (narrative.outcome, narrative.grounding_rejections) == ("model", PLANTED_PER_NARRATIVE)
    assert ai.estimated_cost_usd > 0
    # The CRM update the webhook processor wrote carries the model's wording of the top
    # recommendation.
    action_ids = {a.id for a in flows[0].execution.execution_results.actions_executed}
    crm = [
        row
        for row in outbox_requests(ai_stack)
        if idempotency_key(row) in action_ids and "NextStep" in str(row)
    ]
    assert crm and all("Next, " in str(row) for row in crm)

    # The same deal again: every prompt is answered by the cache, for nothing.
    again = f"e2e-ai-{uuid.uuid4()}"
    flows = await run_and_collect(ai_stack, [deal_trigger(deal.row, again)], timeout_s=90)
    assert [f.status for f in flows] == ["success"]
    second = (await decisions_for(ai_stack, {again}))[again]
    assert second.ai is not None and {u.outcome for u in second.ai.uses} == {"cache"}
    assert second.ai.estimated_cost_usd == 0.0 and second.summary == decision.summary

    metrics = await decision_metrics(ai_stack)
    ok = metrics[
        (
            "revops_model_calls_total",
            (("backend", "recorded"), ("outcome", "ok"), ("prompt", "deal_narrative")),
        )
    ]
    assert ok == 1.0
    hits = metrics[("revops_model_cache_hits_total", (("prompt", "deal_narrative"),))]
    assert hits == 1.0
    rejected = [
        value
        for (name, _), value in metrics.items()
        if name == "revops_model_grounding_rejections_total"
    ]
    # A cached answer is grounded again in its new analysis: both runs dropped the claims.
    assert sum(rejected) == 2 * (PLANTED_PER_NARRATIVE + PLANTED_PER_CALL * len(calls))


async def test_a_deal_nobody_recorded_falls_back_and_its_flow_completes(ai_stack: AiStack) -> None:
    deal = ai_stack.unrecorded
    request_id = f"e2e-ai-{uuid.uuid4()}"
    flows = await run_and_collect(ai_stack, [deal_trigger(deal.row, request_id)], timeout_s=90)
    assert [f.status for f in flows] == ["success"]
    decision = (await decisions_for(ai_stack, {request_id}))[request_id]
    assert decision.summary == deal.deterministic.summary
    assert decision.call_insights == []
    assert decision.ai is not None and decision.ai.parts == []
    assert {u.reason for u in decision.ai.uses} == {"no_recording"}
