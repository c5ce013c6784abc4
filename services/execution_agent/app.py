"""Execution agent process: decisions in -> insights, executions and action jobs out;
delivery results in -> the flow output once every action has a result.

Kafka wiring only; the work is `services.execution_agent.service.ExecutionAgent`. Each topic
has a per-record handler and a batch handler (`on_decisions`, `on_action_results`: one
transaction per batch, the records' contract in services/common/records.py `BatchHandler`).
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import ActionJob, ActionResult, AgentName, AnalysisResults, FlowOutput
from contracts.envelope import AnyEnvelope
from services.common import metrics
from services.common.messages import envelope_parser, make_envelope
from services.common.records import BatchOutcome, Outgoing, Parsed, ProducedMark, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.common.worker_threads import WorkerThreads
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import BatchResult, Decision, ExecutionAgent, HandlerOutput
from services.execution_agent.store import open_store
from services.execution_agent.warehouse_export.child import ExportInChildProcess

NAME = AgentName.EXECUTION_AGENT.value
#: Name (prefix) of the thread(s) the store's work runs on.
STORE_THREAD = "execution-store"


def store_threads(settings: Settings) -> int | None:
    """Threads for the store's batches. SQLite: one. Its writers take the file lock one at a
    time, so more threads only wait, and each keeps a connection of its own with its caches
    (~14 MB more peak RSS at saturation with asyncio's pool: docs/batch-pipeline.md).
    PostgreSQL (`REVOPS_DATABASE_URL`): asyncio's default pool size, so that the batches of
    concurrent partitions overlap their round trips to the server."""
    return None if settings.database_url else 1


class ExecutionApp:
    def __init__(self, settings: Settings, agent: ExecutionAgent) -> None:
        self.settings = settings
        self.agent = agent
        # The embedded store's transactions run in the loop's own thread (worker_threads.py
        # says why); PostgreSQL's on worker threads, which overlap their round trips.
        self._store = WorkerThreads(
            STORE_THREAD,
            store_threads(settings),
            inline=settings.embedded_work_inline and not settings.database_url,
        )

    async def on_decision(self, item: Parsed, record: Record) -> list[Outgoing]:
        decision = decision_of(item)
        outcome = await self._store.run(
            self.agent.handle_decision,
            decision.analysis,
            decision.flow_id,
            decision.correlation_id,
            decision.received_at,
        )
        return self._outputs(outcome, item.envelope)

    async def on_decisions(self, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        batch = [(record.key, decision_of(item)) for item, record in items]
        outcomes = await self._store.run(self.agent.handle_decisions, batch)
        return self._batch_outputs(items, outcomes)

    async def on_action_result(self, item: Parsed, record: Record) -> list[Outgoing]:
        outcome = await self._store.run(self.agent.handle_action_result, item.body)
        return self._outputs(outcome, item.envelope)

    async def on_action_results(self, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        batch = [(record.key, item.body) for item, record in items]
        outcomes = await self._store.run(self.agent.handle_action_results, batch)
        return self._batch_outputs(items, outcomes)

    def _batch_outputs(
        self, items: Sequence[tuple[Parsed, Record]], outcomes: Sequence[BatchResult]
    ) -> list[BatchOutcome]:
        """Built once the batch committed: a failed (or deferred) record keeps its exception."""
        return [
            outcome if isinstance(outcome, BaseException) else self._outputs(outcome, item.envelope)
            for (item, _), outcome in zip(items, outcomes, strict=True)
        ]

    def _outputs(self, outcome: HandlerOutput, source: AnyEnvelope) -> list[Outgoing]:
        meta = source.metadata
        outs = [self._job(job, meta.flow_id, meta.correlation_id) for job in outcome.jobs]
        if outcome.flow_output is not None:
            outs.append(self._flow(outcome.flow_output, meta.flow_id, meta.correlation_id))
        return outs

    def _job(self, job: ActionJob, flow_id: str, correlation_id: str) -> Outgoing:
        envelope = make_envelope(
            job,
            request_id=job.request_id,
            flow_id=flow_id,
            correlation_id=correlation_id,
            source=NAME,
            target=AgentName.WEBHOOK_PROCESSOR.value,
            stage=f"action:{job.action_id}",
        )
        return Outgoing(
            self.settings.topics.actions,
            job.account_id,
            envelope,
            audience=AgentName.WEBHOOK_PROCESSOR.value,
        )

    def _flow(self, flow: FlowOutput, flow_id: str, correlation_id: str) -> Outgoing:
        envelope = make_envelope(
            flow,
            request_id=flow.request_id,
            flow_id=flow_id,
            correlation_id=correlation_id,
            source=NAME,
            target=AgentName.FLOW_OUTPUT.value,
            stage="flow",
        )

        return Outgoing(
            self.settings.topics.flow_results,
            flow.subject.account_id,
            envelope,
            audience=AgentName.FLOW_OUTPUT.value,
            on_produced=ProducedMark(self._published, flow),
        )

    def _published(self, flows: list[FlowOutput]) -> None:
        """A flush's acknowledged flow outputs: their executions marked in one statement."""
        self.agent.flows_published([flow.request_id for flow in flows])
        for flow in flows:
            metrics.FLOWS_COMPLETED.labels(flow.analysis_type.value, flow.status).inc()
            metrics.FLOW_DURATION.labels(flow.analysis_type.value).observe(
                flow.execution_time_ms / 1000
            )


def decision_of(item: Parsed) -> Decision:
    """The decision a parsed record carries, with what its envelope says about it."""
    analysis: AnalysisResults = item.body
    envelope = item.envelope
    meta = envelope.metadata
    return Decision(
        analysis,
        meta.flow_id,
        meta.correlation_id,
        analysis.requested_at or meta.timestamp,
        envelope.payload,
    )


# Decisions carry whole analyses (evidence, series excerpts): hold at most this many at once.
DECISIONS_PER_BATCH = 100


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    db_path = settings.resolved_state_dir / "revops.db"
    agent = ExecutionAgent(
        open_store(db_path, settings.database_url),
        RoutingRules.load(settings.routing_file),
    )
    app = ExecutionApp(settings, agent)
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    # Insights past their expiry already read as expired; this records it (status + audit
    # row), as `revops insights expire` does by hand. The store's connections are per thread.
    runtime.every("expire_insights", agent.insights.expire_due, in_thread=True)
    if settings.insights_export_interval_s > 0:
        # Insight changes into the warehouse (one replica at a time holds the export lease),
        # in a child process: DuckDB never loads into the agent (warehouse_export/child.py).
        runtime.every(
            "export_insights",
            ExportInChildProcess(agent.insights.store, settings, db_path),
            in_thread=True,
            interval_s=settings.insights_export_interval_s,
        )
    runtime.subscribe(
        settings.topics.decisions,
        envelope_parser(AnalysisResults, NAME),
        app.on_decision,
        handle_batch=app.on_decisions,
        # A batch's decisions and their outputs are held until acknowledged (RSS).
        max_records=DECISIONS_PER_BATCH,
    )
    runtime.subscribe(
        settings.topics.action_results,
        envelope_parser(ActionResult, NAME),
        app.on_action_result,
        handle_batch=app.on_action_results,
    )
    return runtime
