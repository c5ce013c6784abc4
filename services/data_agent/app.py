"""Data agent process: raw triggers in, analytical datasets out.

`revops.triggers` -> validate + enrich (seed stage 1) -> read the warehouse (stage 2) ->
`revops.datasets`. A fleet-scan trigger screens every account in one set-based pass and
publishes a consumption trigger only for the accounts with something to say.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts import (
    AgentName,
    AnalysisType,
    AnalyticalDataset,
    EnrichedRequest,
    RawTrigger,
    Subject,
)
from contracts.trigger import RequestContext, RequestParameters, TriggerParameters, TriggerType
from services.common import metrics
from services.common.errors import PermanentError
from services.common.messages import decode_json, describe, flow_id_for, make_envelope, stable_id
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.fleet import fleet_screen
from services.data_agent.warehouse import Warehouse, open_warehouse
from services.data_agent.warehouse.queries import list_open_opportunities
from services.decision_agent.rules.rule_models import StageRules

NAME = AgentName.DATA_AGENT.value


def parse_trigger(record: Record) -> Parsed:
    raw = decode_json(record.value)
    try:
        trigger = RawTrigger.model_validate(raw)
    except ValidationError as exc:
        raise PermanentError(
            "not a valid trigger", code="INVALID_TRIGGER", details=describe(exc)
        ) from exc
    # No client request_id: the record's position names the request, so a redelivery of
    # the same record is the same request (and not a second flow).
    request_id = trigger.request_id or stable_id("req", record.position)
    return Parsed(
        idempotency_key=f"trigger:{request_id}",
        body=(trigger, request_id),
        log_context={"request_id": request_id, "correlation_id": request_id},
    )


def enrich(trigger: RawTrigger, request_id: str, accepted_at: datetime) -> EnrichedRequest:
    return EnrichedRequest(
        request_id=request_id,
        timestamp=accepted_at,
        analysis_type=trigger.parameters.analysis_type,
        parameters=RequestParameters(
            account_id=trigger.parameters.account_id,
            opportunity_id=trigger.parameters.opportunity_id,
        ),
        context=RequestContext(
            requester=trigger.requester or f"{trigger.trigger_type.value}_trigger",
            priority="high" if trigger.priority.value in ("critical", "high") else "normal",
        ),
    )


def open_opportunities(warehouse: Warehouse, stages: StageRules) -> list[tuple[str, str]]:
    """(account id, opportunity id) of every open opportunity that has an account, read in
    chunks. A deal-quality trigger names an account, so deals without one are not reviewed
    here: `revops warehouse check` lists them and `revops explain deal` analyses them."""
    params = {"limit": 100_000_000}
    return [
        (str(row["sf_account_id"]), str(row["opportunity_id"]))
        for chunk in warehouse.fetch_chunks(list_open_opportunities(stages), params)
        for row in chunk
        if row["sf_account_id"]
    ]


class DataAgent:
    def __init__(self, settings: Settings, repository: DatasetRepository) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.repository = repository

    async def handle(self, item: Parsed, record: Record) -> list[Outgoing]:
        trigger, request_id = item.body
        accepted_at = (
            datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
            if record.timestamp_ms
            else datetime.now(UTC)
        )
        request = enrich(trigger, request_id, accepted_at)
        if request.analysis_type is AnalysisType.FLEET_SCAN:
            return await self._fleet_scan(request)
        if request.analysis_type is AnalysisType.DEAL_REVIEW:
            return await self._deal_review(request)
        return [await self._dataset(request)]

    async def _dataset(self, request: EnrichedRequest) -> Outgoing:
        account_id = request.parameters.account_id or ""
        started = time.perf_counter()
        try:
            if request.analysis_type is AnalysisType.DEAL_QUALITY:
                dataset, collection, findings = await asyncio.to_thread(
                    self.repository.deal_dataset,
                    account_id,
                    request.parameters.opportunity_id or "",
                )
            else:
                dataset, collection, findings = await asyncio.to_thread(
                    self.repository.account_dataset, account_id
                )
        except UnknownSubjectError as exc:
            raise PermanentError(str(exc), code="UNKNOWN_SUBJECT") from exc
        metrics.STAGE_SECONDS.labels(NAME, "warehouse_read").observe(time.perf_counter() - started)
        payload = AnalyticalDataset(
            request_id=request.request_id,
            analysis_type=request.analysis_type,
            # Names travel with the ids, so alerts, tickets and flow outputs can say who.
            subject=Subject(
                account_id=account_id,
                opportunity_id=request.parameters.opportunity_id,
                account_name=dataset.account.sf_account_name,
                opportunity_name=dataset.opportunity.name if dataset.opportunity else None,
            ),
            requested_at=request.timestamp,
            data_collection=collection,
            preliminary_findings=findings,
            dataset=dataset,
        )
        envelope = make_envelope(
            payload,
            request_id=request.request_id,
            flow_id=flow_id_for(request.request_id),
            correlation_id=request.request_id,
            source=NAME,
            target=AgentName.DECISION_AGENT.value,
            stage="dataset",
        )
        return Outgoing(
            self.topics.datasets, account_id, envelope, audience=AgentName.DECISION_AGENT.value
        )

    async def _fleet_scan(self, request: EnrichedRequest) -> list[Outgoing]:
        started = time.perf_counter()
        candidates = await asyncio.to_thread(fleet_screen, self.repository.warehouse)
        metrics.STAGE_SECONDS.labels(NAME, "fleet_screen").observe(time.perf_counter() - started)
        return [
            self._fan_out(request, AnalysisType.CONSUMPTION, c.account_id, None) for c in candidates
        ]

    async def _deal_review(self, request: EnrichedRequest) -> list[Outgoing]:
        rows = await asyncio.to_thread(
            open_opportunities, self.repository.warehouse, self.repository.stages
        )
        return [
            self._fan_out(request, AnalysisType.DEAL_QUALITY, account_id, opportunity_id)
            for account_id, opportunity_id in rows
        ]

    def _fan_out(
        self,
        parent: EnrichedRequest,
        analysis: AnalysisType,
        account_id: str,
        opportunity_id: str | None,
    ) -> Outgoing:
        """A child trigger per subject; its request id derives from the parent's, so a
        re-run of the same scheduled job starts no second flow."""
        return Outgoing(
            self.topics.triggers,
            account_id,
            RawTrigger(
                trigger_type=TriggerType.SCHEDULED,
                parameters=TriggerParameters(
                    account_id=account_id, opportunity_id=opportunity_id, analysis_type=analysis
                ),
                request_id=f"{parent.request_id}:{opportunity_id or account_id}",
                requester=parent.analysis_type.value,
            ),
        )


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    warehouse = open_warehouse(settings)
    agent = DataAgent(settings, DatasetRepository(warehouse))
    runtime.subscribe(settings.topics.triggers, parse_trigger, agent.handle)
    return runtime
