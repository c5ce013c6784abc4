"""Execution agent process: decisions in -> insights, executions and action jobs out;
delivery results in -> the flow output once every action has a result.

Kafka wiring only; the work is `services.execution_agent.service.ExecutionAgent`.
"""

from __future__ import annotations

import asyncio

from contracts import ActionJob, ActionResult, AgentName, AnalysisResults, Envelope, FlowOutput
from services.common import metrics
from services.common.messages import envelope_parser, make_envelope
from services.common.records import Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.execution_agent.routing import RoutingRules
from services.execution_agent.service import ExecutionAgent, HandlerOutput
from services.execution_agent.store import open_store
from services.execution_agent.warehouse_export.exporter import InsightExporter, sink_factory

NAME = AgentName.EXECUTION_AGENT.value


class ExecutionApp:
    def __init__(self, settings: Settings, agent: ExecutionAgent) -> None:
        self.settings = settings
        self.agent = agent

    async def on_decision(self, item: Parsed, record: Record) -> list[Outgoing]:
        analysis: AnalysisResults = item.body
        meta = item.envelope.metadata
        outcome = await asyncio.to_thread(
            self.agent.handle_decision,
            analysis,
            meta.flow_id,
            meta.correlation_id,
            analysis.requested_at or meta.timestamp,
        )
        return self._outputs(outcome, item.envelope)

    async def on_action_result(self, item: Parsed, record: Record) -> list[Outgoing]:
        outcome = await asyncio.to_thread(self.agent.handle_action_result, item.body)
        return self._outputs(outcome, item.envelope)

    def _outputs(self, outcome: HandlerOutput, source: Envelope) -> list[Outgoing]:
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

        def published() -> None:
            self.agent.flow_published(flow.request_id)
            metrics.FLOWS_COMPLETED.labels(flow.analysis_type.value, flow.status).inc()
            metrics.FLOW_DURATION.labels(flow.analysis_type.value).observe(
                flow.execution_time_ms / 1000
            )

        return Outgoing(
            self.settings.topics.flow_results,
            flow.subject.account_id,
            envelope,
            audience=AgentName.FLOW_OUTPUT.value,
            on_produced=published,
        )


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    agent = ExecutionAgent(
        open_store(settings.resolved_state_dir / "revops.db", settings.database_url),
        RoutingRules.load(settings.routing_file),
    )
    app = ExecutionApp(settings, agent)
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    # Insights past their expiry already read as expired; this records it (status + audit
    # row), as `revops insights expire` does by hand. The store's connections are per thread.
    runtime.every("expire_insights", agent.insights.expire_due, in_thread=True)
    if settings.insights_export_interval_s > 0:
        # Insight changes into the warehouse (one replica at a time holds the export lease).
        exporter = InsightExporter(agent.insights.store, sink_factory(settings))
        runtime.every(
            "export_insights",
            exporter.export_in_background,
            in_thread=True,
            interval_s=settings.insights_export_interval_s,
        )
    runtime.subscribe(
        settings.topics.decisions, envelope_parser(AnalysisResults, NAME), app.on_decision
    )
    runtime.subscribe(
        settings.topics.action_results, envelope_parser(ActionResult, NAME), app.on_action_result
    )
    return runtime
