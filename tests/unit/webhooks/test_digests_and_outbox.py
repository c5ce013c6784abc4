"""Digest jobs are answered QUEUED and sent as one digest per destination on flush; the
demo outbox writes the exact request that would have been sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from contracts.actions import ActionStatus, DeliveryMode
from services.webhook_processor.config import load_config
from services.webhook_processor.delivery_log import DeliveryLog
from tests.support import HttpRecorder, SmtpRecorder
from tests.unit.webhooks.conftest import (
    CONSUMPTION_CONTEXT,
    Harness,
    build_harness,
    make_job,
)
from tests.unit.webhooks.test_config import PACKAGE


async def test_daily_digest_email_and_slack_summary(
    harness: Harness, sink: HttpRecorder, smtp: SmtpRecorder
) -> None:
    daily = DeliveryMode.DAILY_DIGEST
    jobs = [
        make_job("d-1", "email_revops", channel="email", delivery_mode=daily),
        make_job(
            "d-2",
            "email_revops",
            channel="email",
            template="consumption_alert",
            context=CONSUMPTION_CONTEXT,
            delivery_mode=daily,
        ),
        make_job(
            "d-3",
            "slack_cs_alerts",
            template="consumption_alert",
            context=CONSUMPTION_CONTEXT,
            delivery_mode=daily,
        ),
        make_job("w-1", "email_revops", channel="email", delivery_mode=DeliveryMode.WEEKLY_SUMMARY),
    ]
    for job in [*jobs, jobs[0]]:  # d-1 redelivered: queued once, its result re-announced
        await harness.engine.enqueue(job)
    queued = await harness.wait_results(5)
    assert [(r.action_id, r.status) for r in queued] == [
        (j.action_id, ActionStatus.QUEUED) for j in [*jobs, jobs[0]]
    ]
    await asyncio.sleep(0.1)
    assert sink.requests() == [] and smtp.messages == []

    statuses = await harness.engine.flush_digests("daily_digest")
    assert sorted(statuses.values()) == ["delivered", "delivered"]
    [message] = await asyncio.to_thread(smtp.wait_for, 1)
    assert message["Subject"] == "RevOps daily digest: 2 alert(s)"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "1. Acme expansion [medium] ICP misalignment" in text
    assert "2. Globex [medium] usage decline" in text
    assert message["X-Idempotency-Key"].startswith("digest:daily_digest:email_revops:")
    [slack] = sink.requests("/slack/cs")
    assert slack.json()["text"] == "Daily digest: 1 alert(s)"
    assert slack.header("Idempotency-Key").startswith("digest:daily_digest:slack_cs_alerts:")  # type: ignore[union-attr]
    finals = {r.action_id: r for r in harness.results[4:]}
    assert set(finals) == {"d-1", "d-2", "d-3"}
    assert {r.status for r in finals.values()} == {ActionStatus.SUCCESS}
    assert finals["d-1"].response["digest_id"] == message["X-Idempotency-Key"]

    assert await harness.engine.flush_digests("daily_digest") == {}  # nothing left
    assert len(await harness.engine.flush_digests("weekly_summary")) == 1
    assert len(await asyncio.to_thread(smtp.wait_for, 2)) == 2


async def test_demo_outbox_records_the_exact_request(tmp_path: Path) -> None:
    config = load_config(PACKAGE / "webhooks.demo.yaml", env={})
    h = build_harness(config, tmp_path / "d.db", tmp_path / "outbox")
    await h.engine.start()
    try:
        await h.engine.enqueue(make_job("o-1", "slack_revops_alerts"))
        await h.engine.enqueue(make_job("o-2", "email_revops", channel="email"))
        await h.engine.enqueue(
            make_job("o-3", "crm_salesforce", channel="crm", template="opportunity_update")
        )
        results = await h.wait_results(3)
    finally:
        await h.engine.stop()
        h.log.close()
    assert {r.status for r in results} == {ActionStatus.SUCCESS}
    assert {r.target for r in results} == {"slack", "email", "salesforce"}
    [slack] = [
        json.loads(x)
        for x in (tmp_path / "outbox/slack_revops_alerts.jsonl").read_text().splitlines()
    ]
    request = slack["request"]
    assert (request["method"], request["url"]) == (
        "POST",
        "https://hooks.slack.com/services/DEMO/REVOPS/ALERTS",
    )
    assert request["headers"]["Idempotency-Key"] == "o-1"
    assert request["body"]["blocks"][0]["text"]["text"] == "Deal alert: Acme expansion"
    [crm] = [
        json.loads(x) for x in (tmp_path / "outbox/crm_salesforce.jsonl").read_text().splitlines()
    ]
    assert crm["request"]["method"] == "PATCH"
    assert crm["request"]["url"] == (
        "https://demo.my.salesforce.com/services/data/v61.0/sobjects/Opportunity/006A000001"
    )
    assert crm["request"]["headers"]["Authorization"] == "Bearer demo-oauth-token"
    [mail] = [
        json.loads(x) for x in (tmp_path / "outbox/email_revops.jsonl").read_text().splitlines()
    ]
    assert mail["request"]["headers"]["Message-ID"] == "<o-2@revops-ai.local>"
    assert "Acme expansion" in mail["request"]["html"]


def outbox_lines(tmp_path: Path, destination: str) -> list[dict]:
    text = (tmp_path / "outbox" / f"{destination}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_delivery_log_file_is_wal(tmp_path: Path) -> None:
    log = DeliveryLog(tmp_path / "x.db")
    try:
        assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        log.close()
