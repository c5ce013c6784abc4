"""Webhook processor process: action jobs in, deliveries out, results back.

The consumer only hands a batch's jobs to the delivery engine's durable outbox, in one
transaction (so the offsets are committed as soon as the jobs are safe on disk);
per-destination workers deliver them, so a destination that is down never holds up the
partition or the other destinations. Results go to `revops.action-results`, several per
publish call; jobs that cannot be delivered go to `revops.actions.dlq`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from contracts import ActionJob, ActionResult, AgentName
from services.common.dlq import HEADER_DLQ_CODE, REPLAY_HEADER, build_error_envelope
from services.common.errors import HandlerError
from services.common.ids import flow_id_for
from services.common.messages import encode, envelope_parser, make_envelope
from services.common.records import BatchOutcome, Outgoing, Parsed, Record
from services.common.runtime import ServiceRuntime
from services.common.serve import main as serve_main
from services.common.settings import Settings, dlq_topic
from services.webhook_processor.config import WebhooksConfig, WebhooksConfigError
from services.webhook_processor.config_file import load_config
from services.webhook_processor.delivery_log import DeliveryLog
from services.webhook_processor.engine import DeliveryEngine, Intake
from services.webhook_processor.rendering import TemplateRenderer

NAME = AgentName.WEBHOOK_PROCESSOR.value


def parse_job(record: Record) -> Parsed:
    parsed = _parse_envelope(record)
    parsed.log_context["action_id"] = parsed.body.action_id
    replay_of = record.header(REPLAY_HEADER)
    if replay_of:
        # A job dead-lettered *after* its record was committed (delivery failed for good)
        # has its key marked processed; a replay gets a key of its own so it reaches the
        # engine, whose outbox (keyed by action_id) still guarantees one delivery.
        parsed.idempotency_key += f"#replay:{replay_of.decode('utf-8', 'replace')}"
    return parsed


_parse_envelope = envelope_parser(ActionJob, NAME)


class WebhookApp:
    def __init__(
        self, settings: Settings, runtime: ServiceRuntime, config: WebhooksConfig | None = None
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.engine = DeliveryEngine(
            config or load_config(settings.webhooks_file),
            DeliveryLog(settings.resolved_state_dir / "deliveries.db", settings.database_url),
            self.publish_results,
            self.dead_letter,
            outbox_dir=settings.resolved_outbox_dir,
            renderer=TemplateRenderer(settings.templates_dir),
        )

    def purge_old_records(self) -> dict[str, int]:
        now = time.time()
        return self.engine.log.purge(
            delivered_before=now - self.settings.idempotency_retention_s,
            attempts_before=datetime.fromtimestamp(
                now - self.settings.delivery_audit_retention_s, UTC
            ),
        )

    async def on_job(self, item: Parsed, record: Record) -> list[Outgoing]:
        replay = record.header(REPLAY_HEADER) is not None
        await self.engine.enqueue(item.body, replay=replay)
        return []

    async def on_jobs(self, items: Sequence[tuple[Parsed, Record]]) -> list[BatchOutcome]:
        """The batch handler (services.common.records.BatchHandler): the batch's jobs enter
        the outbox in one transaction (a savepoint per job once one fails); a job that
        failed had no effect and is handled again by `on_job` (the runtime's per-record
        path)."""
        outcomes = await self.engine.enqueue_batch(
            [
                Intake(item.body, record.header(REPLAY_HEADER) is not None, record.key)
                for item, record in items
            ]
        )
        return [[] if outcome is None else outcome for outcome in outcomes]

    async def publish_results(self, results: Sequence[ActionResult]) -> None:
        """Results the engine collected, in one publish call (one wait for the acks)."""
        await self.runtime.publish([self._result_output(result) for result in results])

    def _result_output(self, result: ActionResult) -> Outgoing:
        envelope = make_envelope(
            result,
            request_id=result.request_id,
            flow_id=flow_id_for(result.request_id),
            correlation_id=result.request_id,
            source=NAME,
            target=AgentName.EXECUTION_AGENT.value,
            stage=f"result:{result.action_id}",
        )
        account = result.action_id  # results need no per-account order; spread them
        return Outgoing(
            self.settings.topics.action_results,
            account,
            envelope,
            audience=AgentName.EXECUTION_AGENT.value,
        )

    async def dead_letter(self, job: ActionJob, code: str, message: str) -> None:
        """A job the engine gave up on: the DLQ record carries the job's original envelope
        (same idempotency key), so `revops dlq replay` can never double its effect."""
        envelope = make_envelope(
            job,
            request_id=job.request_id,
            flow_id=flow_id_for(job.request_id),
            correlation_id=job.request_id,
            source=AgentName.EXECUTION_AGENT.value,
            target=NAME,
            stage=f"action:{job.action_id}",
        )
        topic = self.settings.topics.actions
        # Delivery failed after the job's record was committed: no partition or offset.
        key = job.account_id.encode() if job.account_id else None
        record = Record(topic, -1, -1, key, encode(envelope))
        error = build_error_envelope(
            record,
            HandlerError(message, code=code),
            attempts=self.settings.max_attempts,
            service=NAME,
            consumer_group=self.runtime.group_id,
            policy=self.runtime.policy,
            envelope=envelope,
            operation=f"deliver {job.destination}",
        )
        await self.runtime.publish(
            [Outgoing(dlq_topic(topic), job.account_id, error, headers={HEADER_DLQ_CODE: code})]
        )


async def build_runtime(settings: Settings, http_port: int | None) -> ServiceRuntime:
    config = load_config(settings.webhooks_file)  # before anything starts: refused = not run
    runtime = ServiceRuntime(NAME, settings, http_port=http_port)
    app = WebhookApp(settings, runtime, config)
    runtime.subscribe(settings.topics.actions, parse_job, app.on_job, handle_batch=app.on_jobs)
    runtime.on_start.append(app.engine.start)
    runtime.on_stop.append(app.engine.stop)
    runtime.every("purge_delivery_records", app.purge_old_records)
    return runtime


def main() -> None:
    """`python -m services.webhook_processor` and `revops serve webhook-processor`: a
    destinations file that cannot be used stops the service with one line saying why."""
    try:
        serve_main(NAME, build_runtime)
    except WebhooksConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


__all__ = ["NAME", "build_runtime", "main"]
