"""Data agent process: raw triggers in, analytical datasets out.

`revops.triggers` -> validate + enrich (seed stage 1) -> read the warehouse (stage 2) ->
`revops.datasets`. A fleet-scan trigger screens every account in one set-based pass and
publishes a consumption trigger only for the accounts with something to say.

A consumed batch is handled at once (`handle_batch`): the datasets of all its subjects come
from one set-based read of the warehouse (one query per table, not one per table and
subject); `handle` is the same work for one record (the runtime's per-record path).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts import (
    AgentName,
    AnalysisType,
    EnrichedRequest,
    RawTrigger,
    Subject,
)
from contracts.analysis_types import ANALYSIS_TYPES
from contracts.dataset_columns import DATASET_SCHEMA_VERSION, ColumnarAnalyticalDataset
from contracts.trigger import RequestContext, RequestParameters, TriggerParameters, TriggerType
from services.common import metrics
from services.common.errors import ConfigurationError, PermanentError
from services.common.ids import flow_id_for, stable_id
from services.common.messages import decode_json, describe, make_envelope
from services.common.records import BatchOutcome, Deferred, Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.common.worker_threads import WorkerThreads
from services.data_agent.builders import (
    DATASET_BUILDERS,
    SUBJECT_FINDERS,
    DatasetBuilder,
    SubjectFinder,
    reading_ahead,
)
from services.data_agent.datasets import DatasetRepository, DatasetResult, UnknownSubjectError
from services.data_agent.warehouse import open_service_warehouse
from services.data_agent.warehouse.base import WarehouseError
from services.data_agent.won_times import WonTimes

NAME = AgentName.DATA_AGENT.value
#: Subjects of a batch read ahead together. Their rows and dataset models are held at once
#: (~0.5 MB a subject), so a 500-record batch is read in slices; the dataset records made
#: of them (~180 KB each in memory until produced) are what the batch keeps.
READ_AHEAD_SUBJECTS = 50
#: Name (prefix) of the one thread that reads the warehouse.
READER_THREAD = "warehouse-reader"


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
        # Warehouse reads never spread over asyncio's default pool: the runtime hands a
        # batch's partition groups over concurrently, and each thread that queries DuckDB
        # keeps its own allocator caches and query state (~15 MB of peak RSS at saturation
        # with up to six pool threads; docs/batch-pipeline.md). The embedded warehouse runs
        # one query at a time anyway (REVOPS_WAREHOUSE_THREADS=1), so its dataset reads run
        # in the loop's own thread (bounded by READ_AHEAD_SUBJECTS; worker_threads.py says
        # why), Firebolt's on this one reader thread; a job's fleet-wide subject query
        # always runs on the reader thread (it may take seconds).
        self._reader = WorkerThreads(
            READER_THREAD, inline=settings.embedded_work_inline and settings.embedded_warehouse
        )

    async def handle(self, item: Parsed, record: Record) -> list[Outgoing]:
        return await self._handle_request(_request(item, record))

    async def _handle_request(self, request: EnrichedRequest) -> list[Outgoing]:
        finder = SUBJECT_FINDERS.get(request.analysis_type)
        if finder is not None:
            return await self._fan_out_job(request, finder)
        return [await self._dataset(request, _builder(request))]

    async def handle_batch(self, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        """`handle` for a consumed batch (the contract in services/common/records.py): the
        datasets of all its subjects from one set-based read of the warehouse, jobs fanned
        out as `handle` does. A record that fails gets the error `handle` raises for it,
        and the later records of its Kafka key `Deferred()` (per-account order); a
        warehouse that cannot answer the batch's read fails the whole call (the runtime
        then handles every record on its own)."""
        requests = [_request(item, record) for item, record in items]
        datasets = await self._reader.run(self._batch_datasets, requests)
        outcomes: list[BatchOutcome] = []
        failed_keys: set[bytes | None] = set()
        for index, ((_, record), request) in enumerate(zip(items, requests, strict=True)):
            if record.key in failed_keys:
                outcomes.append(Deferred())
                continue
            try:
                outcomes.append(await self._batch_outputs(request, datasets.get(index)))
            except Exception as exc:
                failed_keys.add(record.key)
                outcomes.append(exc)
        return outcomes

    async def _batch_outputs(
        self, request: EnrichedRequest, dataset: Outgoing | Exception | None
    ) -> list[Outgoing]:
        """One record's outputs in a batch: its dataset record, or (a job, a type without a
        dataset) what `handle` does."""
        if isinstance(dataset, Exception):
            raise dataset
        if dataset is None:
            return await self._handle_request(request)
        return [dataset]

    def _batch_datasets(
        self, requests: Sequence[EnrichedRequest]
    ) -> dict[int, Outgoing | Exception]:
        """The dataset record (or the error `handle` would raise) of every request of the
        batch that asks for one, by position, read set-based in slices of
        READ_AHEAD_SUBJECTS subjects (runs in a thread)."""
        wanted = [
            (i, DATASET_BUILDERS[r.analysis_type], r)
            for i, r in enumerate(requests)
            if r.analysis_type not in SUBJECT_FINDERS and r.analysis_type in DATASET_BUILDERS
        ]
        results: dict[int, Outgoing | Exception] = {}
        for start in range(0, len(wanted), READ_AHEAD_SUBJECTS):
            subjects = wanted[start : start + READ_AHEAD_SUBJECTS]
            started = time.perf_counter()
            batch = reading_ahead(self.repository, ((b, r.parameters) for _, b, r in subjects))
            for index, builder, request in subjects:
                try:
                    results[index] = self._dataset_record(
                        request, builder(batch, request.parameters)
                    )
                except UnknownSubjectError as exc:
                    results[index] = _unknown_subject(exc)
                except Exception as exc:  # this record's alone: the runtime retries it alone
                    results[index] = exc
            metrics.STAGE_SECONDS.labels(NAME, "warehouse_read_batch").observe(
                time.perf_counter() - started
            )
        return results

    async def _dataset(self, request: EnrichedRequest, builder: DatasetBuilder) -> Outgoing:
        started = time.perf_counter()
        try:
            result = await self._reader.run(builder, self.repository, request.parameters)
        except UnknownSubjectError as exc:
            raise _unknown_subject(exc) from exc
        metrics.STAGE_SECONDS.labels(NAME, "warehouse_read").observe(time.perf_counter() - started)
        return self._dataset_record(request, result)

    def _dataset_record(self, request: EnrichedRequest, result: DatasetResult) -> Outgoing:
        """The dataset record of `request` for the decision agent."""
        dataset, collection, findings = result
        account_id = request.parameters.account_id or ""
        payload = ColumnarAnalyticalDataset(
            schema_version=DATASET_SCHEMA_VERSION,
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

    async def _fan_out_job(self, request: EnrichedRequest, finder: SubjectFinder) -> list[Outgoing]:
        """A job (fleet scan, deal review, ...): one child trigger per subject it finds."""
        child = ANALYSIS_TYPES[request.analysis_type].fans_out_to
        assert child is not None  # a type with a subject finder is a job
        started = time.perf_counter()
        subjects = await self._reader.in_thread(finder, self.repository)
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


def _request(item: Parsed, record: Record) -> EnrichedRequest:
    trigger, request_id = item.body
    accepted_at = (
        datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        if record.timestamp_ms
        else datetime.now(UTC)
    )
    return enrich(trigger, request_id, accepted_at)


def _builder(request: EnrichedRequest) -> DatasetBuilder:
    builder = DATASET_BUILDERS.get(request.analysis_type)
    if builder is None:
        raise PermanentError(
            f"the data agent has no dataset for analysis_type={request.analysis_type}",
            code="UNKNOWN_ANALYSIS",
        )
    return builder


def _unknown_subject(exc: UnknownSubjectError) -> PermanentError:
    return PermanentError(str(exc), code="UNKNOWN_SUBJECT")


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    try:
        warehouse = open_service_warehouse(settings)
    except WarehouseError as exc:  # missing, empty or unreadable: nothing to serve from
        raise ConfigurationError(str(exc)) from exc
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    ttl_s = settings.warehouse_stats_ttl_s
    won_times = WonTimes(ttl_s) if ttl_s > 0 else None
    agent = DataAgent(settings, DatasetRepository(warehouse, won_times=won_times))
    runtime.subscribe(
        settings.topics.triggers,
        parse_trigger,
        agent.handle,
        handle_batch=agent.handle_batch,
        # ~180 KB per dataset record until acknowledged: 500 of them would hold ~90 MB.
        max_records=READ_AHEAD_SUBJECTS,
    )
    return runtime
