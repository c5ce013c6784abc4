"""Bad input goes straight to the dead-letter callback with a precise code, once, with no
retry and (where it can be known before sending) no request."""

from __future__ import annotations

import asyncio

import pytest

from contracts.actions import ActionStatus
from tests.support import HttpRecorder
from tests.unit.webhooks.conftest import DEAL_CONTEXT, Harness, HarnessFactory, make_job


async def dead_letter_of(harness: Harness) -> tuple[str, str]:
    [result] = await harness.wait_results(1)
    assert result.status == ActionStatus.FAILED
    [(_job, code, message)] = harness.dead
    assert result.error == f"{code}: {message}"
    return code, message


async def test_unknown_destination(harness: Harness, sink: HttpRecorder) -> None:
    job = make_job("a-unk", "slack_nowhere")
    await harness.engine.enqueue(job)
    code, message = await dead_letter_of(harness)
    assert code == "unknown_destination"
    assert message.startswith("destination 'slack_nowhere' is not in webhooks.yaml (known: ")
    await harness.engine.enqueue(job)  # redelivered: not dead-lettered twice
    assert len(harness.dead) == 1
    assert sink.requests() == []


async def test_missing_template_field(harness: Harness, sink: HttpRecorder) -> None:
    context = {k: v for k, v in DEAL_CONTEXT.items() if k != "risk_level"}
    await harness.engine.enqueue(make_job("a-miss", "slack_revops_alerts", context=context))
    code, message = await dead_letter_of(harness)
    assert (code, message) == (
        "payload_missing_field",
        "slack/deal_alert.json.j2: 'risk_level' is undefined",
    )
    assert sink.requests() == []


async def test_unknown_template(harness: Harness) -> None:
    await harness.engine.enqueue(make_job("a-tpl", "slack_revops_alerts", template="nope"))
    assert await dead_letter_of(harness) == (
        "template_not_found",
        "template 'slack/nope.json.j2' does not exist",
    )


async def test_template_that_fails_to_render(
    harness_factory: HarnessFactory, tmp_path, sink: HttpRecorder
) -> None:
    from services.webhook_processor.rendering import TemplateRenderer

    (tmp_path / "tpl" / "slack").mkdir(parents=True)
    (tmp_path / "tpl" / "slack" / "broken.json.j2").write_text('{"text": {{ 1 / 0 }}}')
    (tmp_path / "tpl" / "slack" / "notjson.json.j2").write_text("text: {{ customer }}")
    h = await harness_factory()
    h.engine._renderer = TemplateRenderer(tmp_path / "tpl")
    await h.engine.enqueue(make_job("a-b1", "slack_revops_alerts", template="broken"))
    await h.engine.enqueue(make_job("a-b2", "slack_cs_alerts", template="notjson"))
    await h.wait_results(2)
    codes = {job.action_id: (code, message) for job, code, message in h.dead}
    assert codes["a-b1"] == (
        "template_render_failed",
        "slack/broken.json.j2: ZeroDivisionError: division by zero",
    )
    assert codes["a-b2"][0] == "template_render_failed"
    assert codes["a-b2"][1].startswith("slack/notjson.json.j2 did not render valid JSON")
    assert sink.requests() == []


async def test_crm_update_without_opportunity(harness: Harness) -> None:
    job = make_job(
        "a-noopp",
        "crm_salesforce",
        channel="crm",
        template="opportunity_update",
        opportunity_id=None,
    )
    await harness.engine.enqueue(job)
    assert await dead_letter_of(harness) == (
        "payload_missing_field",
        "a CRM update needs the job's opportunity_id",
    )


async def test_channel_mismatch(harness: Harness) -> None:
    await harness.engine.enqueue(make_job("a-mis", "email_revops", channel="slack"))
    code, message = await dead_letter_of(harness)
    assert code == "channel_mismatch"
    assert message == (
        "job channel 'slack' but destination 'email_revops' is a email destination (email_smtp)"
    )


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_4xx_is_permanent(harness: Harness, sink: HttpRecorder, status: int) -> None:
    sink.fail("/slack/cs", status=status, times=5)
    await harness.engine.enqueue(make_job(f"a-{status}", "slack_cs_alerts"))
    code, message = await dead_letter_of(harness)
    assert code == "destination_rejected"
    assert message.startswith(f"HTTP {status}: ")
    assert len(sink.requests("/slack/cs")) == 1


async def test_redirect_is_not_followed(harness: Harness, sink: HttpRecorder) -> None:
    sink.respond("/slack/cs", status=302, headers={"Location": "http://169.254.169.254/"})
    await harness.engine.enqueue(make_job("a-302", "slack_cs_alerts"))
    code, message = await dead_letter_of(harness)
    assert code == "destination_redirected"
    assert "'http://169.254.169.254/'" in message
    await asyncio.sleep(0.05)
    assert [r.path for r in sink.requests()] == ["/slack/cs"]
