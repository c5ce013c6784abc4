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
from contracts.analysis_types import ANALYSIS_TYPES
from contracts.dataset_columns import to_columnar
from contracts.trigger import RequestContext, RequestParameters, TriggerParameters, TriggerType
from services.common import metrics
from services.common.errors import PermanentError
from services.common.ids import flow_id_for, stable_id
from services.common.messages import decode_json, describe, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.data_agent.builders import (
    DATASET_BUILDERS,
    SUBJECT_FINDERS,
    DatasetBuilder,
    SubjectFinder,
)
from services.data_agent.datasets import DatasetRepository, UnknownSubjectError
from services.data_agent.warehouse import open_warehouse

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
        finder = SUBJECT_FINDERS.get(request.analysis_type)
        if finder is not None:
            return await self._fan_out_job(request, finder)
        builder = DATASET_BUILDERS.get(request.analysis_type)
        if builder is None:
            raise PermanentError(
                f"the data agent has no dataset for analysis_type={request.analysis_type}",
                code="UNKNOWN_ANALYSIS",
            )
        return [await self._dataset(request, builder)]

    async def _dataset(self, request: EnrichedRequest, builder: DatasetBuilder) -> Outgoing:
        account_id = request.parameters.account_id or ""
        started = time.perf_counter()
        try:
            dataset, collection, findings = await asyncio.to_thread(
                builder, self.repository, request.parameters
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
            to_columnar(payload),  # the wire form, validated once here
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

    async def _fan_out_job(self, request: EnrichedRequest, finder: SubjectFinder) -> list[Outgoing]:
        """A job (fleet scan, deal review, ...): one child trigger per subject it finds."""
        child = ANALYSIS_TYPES[request.analysis_type].fans_out_to
        assert child is not None  # a type with a subject finder is a job
        started = time.perf_counter()
        subjects = await asyncio.to_thread(finder, self.repository)
        metrics.STAGE_SECONDS.labels(NAME, f"{request.analysis_type}_subjects").observe(
            time.perf_counter() - started
        )
        return [
            self._fan_out(request, child, account_id, opportunity_id)
            for account_id, opportunity_id in subjects
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
