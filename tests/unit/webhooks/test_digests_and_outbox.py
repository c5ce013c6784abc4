"""Digest jobs are answered QUEUED and sent as one digest per destination on flush; the
demo outbox writes the exact request that would have been sent."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from contracts.actions import ActionStatus, DeliveryMode
from services.webhook_processor.config_file import load_config
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
    # The digest's final results are published by the result batcher after the flush
    # returns: wait for all three (after the 5 queued ones) instead of reading early.
    finals = {r.action_id: r for r in (await harness.wait_results(5 + 3))[5:]}
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
    log.close()
    with closing(sqlite3.connect(tmp_path / "x.db")) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_purge_drops_old_delivered_jobs_and_attempts_but_keeps_failed_and_recent(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime, timedelta

    log = DeliveryLog(tmp_path / "deliveries.db")
    for action_id in ("old-done", "old-failed", "old-unpublished", "new-done", "pending"):
        assert log.add_job(make_job(action_id, "slack_deals"))
    for action_id in ("old-done", "old-unpublished", "new-done"):
        log.finish(action_id, "delivered", [])
    log.finish("old-failed", "failed", [], error_code="HTTP_500")
    for action_id in ("old-done", "old-failed", "new-done"):
        log.mark_published(action_id)
    log._write("UPDATE outbox SET updated_at = updated_at - 1000 WHERE action_id LIKE 'old-%'")
    log.record_attempt("old-done", "slack_deals", 1, "delivered", 200)
    log._write("UPDATE delivery_log SET at = ?", ("2020-01-01T00:00:00+00:00",))
    log.record_attempt("new-done", "slack_deals", 1, "delivered", 200)

    counts = log.purge(
        delivered_before=time.time() - 500, attempts_before=datetime.now(UTC) - timedelta(days=1)
    )

    assert counts == {"jobs": 1, "digest_entries": 0, "attempts": 1, "tickets": 0}
    assert log.status("old-done") is None
    # Failed (a DLQ replay reopens it), not yet published, recent and pending rows stay.
    assert [log.status(a) for a in ("old-failed", "old-unpublished", "new-done", "pending")] == [
        "failed",
        "delivered",
        "delivered",
        "pending",
    ]
    assert [a["action_id"] for a in log.attempts()] == ["new-done"]
    # A purged job stored again is a new row (only possible once Kafka no longer holds it).
    assert log.add_job(make_job("old-done", "slack_deals"))


def test_purge_drops_the_entries_of_an_old_delivered_digest(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    log = DeliveryLog(tmp_path / "deliveries.db")
    daily = DeliveryMode.DAILY_DIGEST
    assert log.queue_digest(make_job("d-1", "email_revops", channel="email", delivery_mode=daily))
    [batch] = log.cut_digests("daily_digest")
    log.finish(batch.digest_id, "delivered", [])
    log.mark_published(batch.digest_id)
    log._write("UPDATE outbox SET updated_at = updated_at - 1000")
    counts = log.purge(delivered_before=time.time() - 500, attempts_before=datetime.now(UTC))
    assert counts["jobs"] == 1 and counts["digest_entries"] == 1
    assert not log.is_digest_queued("d-1")


async def test_the_service_purges_delivery_records_on_its_housekeeping_timer(
    tmp_path: Path,
) -> None:
    from services.common.settings import Settings
    from services.webhook_processor import app

    settings = Settings(
        state_dir=tmp_path / "state",
        outbox_dir=tmp_path / "outbox",
        webhooks_file=PACKAGE / "webhooks.demo.yaml",
        signing_enabled=False,
    )
    runtime = await app.build_runtime(settings, None)
    [purge] = [t for t in runtime.housekeeping if t.name == "purge_delivery_records"]
    log = DeliveryLog(settings.resolved_state_dir / "deliveries.db")
    assert log.add_job(make_job("ancient", "slack_deals"))
    log.finish("ancient", "delivered", [])
    log.mark_published("ancient")
    log._write("UPDATE outbox SET updated_at = 0")
    await purge.run_once()
    assert purge.runs == 1 and log.status("ancient") is None
