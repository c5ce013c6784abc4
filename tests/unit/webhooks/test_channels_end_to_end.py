"""A set of jobs produces exactly the expected Slack, e-mail, CRM, ticket and webhook
requests (bodies and headers), received by real loopback servers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from email.message import EmailMessage

from contracts.actions import ActionStatus
from tests.support import HttpRecorder, SmtpRecorder
from tests.unit.webhooks.conftest import CONSUMPTION_CONTEXT, DEAL_CONTEXT, Harness, make_job


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no {subtype} part"
    return str(body.get_content())


async def test_slack_incoming_webhook_deal_alert(harness: Harness, sink: HttpRecorder) -> None:
    await harness.engine.enqueue(make_job("a-slack-1", "slack_revops_alerts"))
    [request] = await sink.wait_for_async(1, "/slack/revops")
    assert request.method == "POST"
    assert request.header("Idempotency-Key") == "a-slack-1"
    assert str(request.header("Content-Type")).startswith("application/json")
    body = request.json()
    assert body["text"] == "Deal alert (high): ICP misalignment on Acme expansion / Acme Corp"
    header, fields, details, actions, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Deal alert: Acme expansion"},
    }
    assert [f["text"] for f in fields["fields"]] == [
        "*Deal:*\nAcme expansion",
        "*Customer:*\nAcme Corp",
        "*Alert type:*\nICP misalignment",
        "*Risk level:*\nhigh",
    ]
    assert details["text"]["text"].startswith("*Details:*\nCompany size 40")
    assert actions["text"]["text"] == (
        "*Recommended actions:*\n• Re-qualify the opportunity\n• Loop in the SE lead"
    )
    assert "2025-06-10T10:35:27Z" in context["elements"][0]["text"]
    [result] = await harness.wait_results(1)
    assert (result.status, result.target, result.response_code, result.attempts) == (
        ActionStatus.SUCCESS,
        "slack",
        200,
        1,
    )


async def test_slack_api_consumption_alert_uses_bearer_and_channel(
    harness: Harness, sink: HttpRecorder
) -> None:
    sink.respond("/api/chat.postMessage", json={"ok": True, "channel": "C1", "ts": "1623.0015"})
    job = make_job(
        "a-bot-1", "slack_bot", template="consumption_alert", context=CONSUMPTION_CONTEXT
    )
    await harness.engine.enqueue(job)
    [request] = await sink.wait_for_async(1, "/api/chat.postMessage")
    assert request.header("Authorization") == "Bearer xoxb-test"
    body = request.json()
    assert body["channel"] == "#revops-alerts"
    assert [f["text"] for f in body["blocks"][1]["fields"]] == [
        "*Customer:*\nGlobex",
        "*Pattern:*\nusage decline",
        "*Urgency:*\ncritical",
    ]
    [result] = await harness.wait_results(1)
    assert result.response == {"ok": True, "channel": "C1", "ts": "1623.0015"}


async def test_slack_api_ok_false_is_a_permanent_failure(
    harness: Harness, sink: HttpRecorder
) -> None:
    sink.respond("/api/chat.postMessage", json={"ok": False, "error": "channel_not_found"})
    await harness.engine.enqueue(make_job("a-bot-2", "slack_bot"))
    [result] = await harness.wait_results(1)
    assert result.status == ActionStatus.FAILED
    [(_job, code, message)] = harness.dead
    assert (code, message) == ("slack_api_error", "Slack API answered ok=false: channel_not_found")
    assert len(sink.requests("/api/chat.postMessage")) == 1  # not retried


async def test_email_is_multipart_with_message_id_from_action_id(
    harness: Harness, smtp: SmtpRecorder
) -> None:
    await harness.engine.enqueue(make_job("a-mail-1", "email_revops", channel="email"))
    [message] = await asyncio.to_thread(smtp.wait_for, 1)
    assert message["Subject"] == "[HIGH] Deal alert: Acme expansion (Acme Corp) - ICP misalignment"
    assert message["Message-ID"] == "<a-mail-1@revops-ai.local>"
    assert message["X-Idempotency-Key"] == "a-mail-1"
    assert message["To"] == "revops@example.com"
    assert message.get_content_type() == "multipart/alternative"
    text = part(message, "plain")
    html = part(message, "html")
    assert "Risk level:  high" in text and "  - Loop in the SE lead" in text
    assert "<li>Loop in the SE lead</li>" in html
    assert smtp.envelopes == [("revops-ai@example.com", ["revops@example.com"])]
    [result] = await harness.wait_results(1)
    assert (result.status, result.target, result.response_code) == (
        ActionStatus.SUCCESS,
        "email",
        250,
    )


async def test_email_html_escapes_context(harness: Harness, smtp: SmtpRecorder) -> None:
    context = {**CONSUMPTION_CONTEXT, "customer": "<script>x</script>"}
    job = make_job(
        "a-mail-2", "email_revops", channel="email", template="consumption_alert", context=context
    )
    await harness.engine.enqueue(job)
    [message] = await asyncio.to_thread(smtp.wait_for, 1)
    html = part(message, "html")
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html


async def test_salesforce_patch_writes_score_risk_and_next_step(
    harness: Harness, sink: HttpRecorder
) -> None:
    path = "/services/data/v61.0/sobjects/Opportunity/006A000001"
    sink.respond(path, status=204)
    job = make_job("a-crm-1", "crm_salesforce", channel="crm", template="opportunity_update")
    await harness.engine.enqueue(job)
    [request] = await sink.wait_for_async(1, path)
    assert request.method == "PATCH"
    assert request.header("Authorization") == "Bearer sf-token"
    assert request.header("Idempotency-Key") == "a-crm-1"
    assert request.json() == {
        "RevOps_Deal_Score__c": 42,
        "RevOps_Risk_Level__c": "high",
        "NextStep": "Re-qualify with champion",
    }
    [result] = await harness.wait_results(1)
    assert (result.status, result.target, result.response_code) == (
        ActionStatus.SUCCESS,
        "salesforce",
        204,
    )


async def test_jira_and_zendesk_presets(harness: Harness, sink: HttpRecorder) -> None:
    sink.respond("/rest/api/2/issue", status=201, json={"id": "10001", "key": "REV-7"})
    await harness.engine.enqueue(
        make_job("a-jira-1", "ticket_jira", channel="ticket", priority="critical")
    )
    await harness.engine.enqueue(
        make_job(
            "a-zd-1",
            "ticket_zendesk",
            channel="ticket",
            template="consumption_alert",
            context=CONSUMPTION_CONTEXT,
        )
    )
    [jira] = await sink.wait_for_async(1, "/rest/api/2/issue")
    [zendesk] = await sink.wait_for_async(1, "/api/v2/tickets.json")
    assert jira.header("Authorization") == "Basic Ym90QGV4YW1wbGUuY29tOmppcmEtdG9rZW4="
    fields = jira.json()["fields"]
    assert fields["project"] == {"key": "REV"}
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["priority"] == {"name": "Highest"}
    assert fields["summary"] == "[high] ICP misalignment: Acme expansion (Acme Corp)"
    assert fields["labels"] == ["revops-ai", "deal-quality", "icp-misalignment"]
    ticket = zendesk.json()["ticket"]
    assert ticket["subject"] == "[critical] usage decline: Globex"
    assert ticket["priority"] == "normal"
    assert ticket["external_id"] == "a-zd-1"
    assert ticket["comment"]["body"].startswith("Daily compute down 45%")
    assert zendesk.header("Authorization") == "Bearer zd-token"
    await harness.wait_results(2)
    # The result names the opened ticket for the execution agent (ticket updates use it).
    assert harness.result("a-jira-1").response == {
        "id": "10001",
        "key": "REV-7",
        "ticket_id": "REV-7",
    }
    assert harness.result("a-zd-1").target == "zendesk"


async def test_ticket_updates_address_the_ticket_a_job_opened(
    harness: Harness, sink: HttpRecorder
) -> None:
    """An update job names the job that opened the ticket; the ticket's id comes from that
    delivery (Jira) or from the job (Zendesk), and the update is a PUT on the ticket."""
    sink.respond("/rest/api/2/issue", status=201, json={"id": "10001", "key": "REV-7"})
    sink.respond("/rest/api/2/issue/REV-7", status=204)
    sink.respond("/api/v2/tickets/35436.json", json={"ticket": {"id": 35436}})
    await harness.engine.enqueue(make_job("a-open", "ticket_jira", channel="ticket"))
    await harness.wait_results(1)
    update = make_job(
        "a-update",
        "ticket_jira",
        channel="ticket",
        template="deal_alert_update",
        priority="critical",
        updates_ticket="a-open",
        context={**DEAL_CONTEXT, "event_note": "escalated from high"},
    )
    await harness.engine.enqueue(update)
    [put] = await sink.wait_for_async(1, "/rest/api/2/issue/REV-7")
    assert put.method == "PUT" and put.header("Idempotency-Key") == "a-update"
    body = put.json()
    assert body["fields"] == {"priority": {"name": "Highest"}}
    [comment] = body["update"]["comment"]
    assert comment["add"]["body"].startswith(
        "RevOps AI update (escalated from high): [high] ICP misalignment on Acme expansion"
    )
    zendesk = make_job(
        "a-zd-update",
        "ticket_zendesk",
        channel="ticket",
        template="consumption_alert_update",
        context=CONSUMPTION_CONTEXT,
        updates_ticket="opened-elsewhere",
        ticket_id="35436",
    )
    await harness.engine.enqueue(zendesk)
    [zput] = await sink.wait_for_async(1, "/api/v2/tickets/35436.json")
    assert zput.method == "PUT"
    assert zput.json()["ticket"]["comment"]["public"] is False
    assert zput.json()["ticket"]["comment"]["body"].startswith("RevOps AI update (update)")
    await harness.wait_results(3)
    assert harness.result("a-update").status == ActionStatus.SUCCESS
    assert harness.result("a-zd-update").status == ActionStatus.SUCCESS


async def test_update_of_a_ticket_never_opened_fails_saying_so(harness: Harness) -> None:
    orphan = make_job(
        "a-orphan",
        "ticket_jira",
        channel="ticket",
        template="deal_alert_update",
        updates_ticket="never-delivered",
    )
    await harness.engine.enqueue(orphan)
    [result] = await harness.wait_results(1)
    assert result.status == ActionStatus.FAILED
    assert result.error is not None and result.error.startswith("ticket_not_opened:")
    assert "never-delivered" in result.error


async def test_generic_webhook_is_signed(harness: Harness, sink: HttpRecorder) -> None:
    await harness.engine.enqueue(
        make_job("a-hook-1", "webhook_generic", channel="webhook", template="deal_alert")
    )
    [request] = await sink.wait_for_async(1, "/hook")
    timestamp = str(request.header("X-Timestamp"))
    expected = hmac.new(
        b"s3cret", timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.header("X-Signature") == f"sha256={expected}"
    body = request.json()
    assert (body["action_id"], body["account_id"], body["context"]["deal_name"]) == (
        "a-hook-1",
        "acc-1",
        "Acme expansion",
    )
