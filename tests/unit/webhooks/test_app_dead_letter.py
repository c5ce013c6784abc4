"""A job the delivery engine gives up on is dead-lettered with the one error envelope of the
runtime (services.common.dlq.build_error_envelope), carrying the job's original envelope."""

from __future__ import annotations

from pathlib import Path

from contracts import Envelope, ErrorEnvelope
from services.common.dlq import HEADER_DLQ_CODE
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from services.webhook_processor.app import NAME, WebhookApp
from services.webhook_processor.config_file import DEMO_CONFIG, load_config

from .conftest import make_job


async def test_a_given_up_job_is_dead_lettered_with_its_envelope(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    runtime = ServiceRuntime(NAME, settings)
    app = WebhookApp(settings, runtime, load_config(DEMO_CONFIG, env={}))
    published = []

    async def publish(outgoing) -> None:
        published.extend(outgoing)

    runtime.publish = publish  # type: ignore[method-assign,assignment]
    job = make_job("act-1", "slack_revops_alerts")
    await app.dead_letter(job, "DESTINATION_REFUSED", "403 from Slack")
    [out] = published
    assert out.topic == f"{settings.topics.actions}.dlq" and out.key == "acc-1"
    assert out.headers == {HEADER_DLQ_CODE: "DESTINATION_REFUSED"}
    error = out.message
    assert isinstance(error, ErrorEnvelope)
    assert (error.error.code, error.error.message) == ("DESTINATION_REFUSED", "403 from Slack")
    assert error.error.recovery_action == "replay" and error.error.severity == "recoverable"
    assert error.error.diagnostic_info.operation == "deliver slack_revops_alerts"
    assert error.dead_letter.original_partition == -1 == error.dead_letter.original_offset
    assert error.dead_letter.consumer_group == runtime.group_id
    assert error.original.value is not None and error.metadata is not None
    original = Envelope.model_validate_json(error.original.value)
    assert original.payload["action_id"] == "act-1"
    assert original.metadata.idempotency_key == error.metadata.idempotency_key
