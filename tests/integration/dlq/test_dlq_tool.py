"""`revops dlq list / show / replay` against real dead letters on the real broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest

from contracts import AgentName, ErrorEnvelope, Subject
from contracts.envelope import (
    DeadLetterInfo,
    DiagnosticInfo,
    ErrorInfo,
    OriginalMessage,
    RetryStrategy,
)
from services.common.envelope_security import EnvelopeSecurity
from services.common.messages import encode, make_envelope
from services.common.records import Record
from services.common.settings import Settings, TopicNames
from services.dlq.headers import REPLAY_HEADER
from services.dlq.replay import Action, ReplayOptions, replay
from services.dlq.replay_log import ReplayLog
from services.dlq.selection import Selection
from tests.integration.dlq.conftest import Cli, dead_letter, produce_error
from tests.kafka_tools import collect, create_topics, unique

pytestmark = pytest.mark.kafka

OLD_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


async def three_dead_letters(kafka: str) -> str:
    src = unique("t.src")
    await create_topics(kafka, [src, f"{src}.dlq"], partitions=1)
    await dead_letter(kafka, src, {"id": "old"}, code="BAD_A", offset=0, timestamp_ms=OLD_MS)
    await dead_letter(kafka, src, {"id": "new-a"}, code="BAD_A", offset=1)
    await dead_letter(kafka, src, {"id": "new-b"}, code="BAD_B", offset=2, key=b"acct-2")
    return src


def message_lines(output: str, dlq: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{dlq}:")]


async def test_list_counts_per_topic_and_code_and_filters(kafka, cli: Cli):
    src = await three_dead_letters(kafka)
    dlq = f"{src}.dlq"
    result = await cli("list", "--topic", src)
    assert result.exit_code == 0, result.output
    assert f"     2  {dlq:<40}  BAD_A" in result.output
    assert f"     1  {dlq:<40}  BAD_B" in result.output
    lines = message_lines(result.output, dlq)
    assert [line.split("  ")[0] for line in lines] == [f"{dlq}:0:0", f"{dlq}:0:1", f"{dlq}:0:2"]
    assert lines[0].split("  ")[1] == "2024-01-01T00:00:00Z"
    assert f"{src}/0/0" in lines[0]  # the original position

    by_code = await cli("list", "--topic", dlq, "--code", "bad_b")
    assert [line.split("  ")[0] for line in message_lines(by_code.output, dlq)] == [f"{dlq}:0:2"]
    recent = await cli("list", "--topic", src, "--since", "2025-01-01")
    assert len(message_lines(recent.output, dlq)) == 2
    everywhere = await cli("list")
    assert len(message_lines(everywhere.output, dlq)) == 3  # every *.dlq topic is read
    bad = await cli("list", "--since", "yesterday")
    assert bad.exit_code != 0


async def test_show_prints_the_error_envelope_and_the_payload(kafka, cli: Cli):
    src = await three_dead_letters(kafka)
    result = await cli("show", f"{src}.dlq:0:2")
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["error"]["code"] == "BAD_B"
    assert shown["attempts"] == 1
    assert shown["original_position"] == f"{src}/0/2"
    assert shown["payload"] == {"id": "new-b"}
    assert shown["replays"] == []
    missing = await cli("show", f"{src}.dlq:0:99")
    assert missing.exit_code == 1


async def test_dry_run_replay_replay_again_and_force(kafka, cli: Cli):
    src = await three_dead_letters(kafka)
    dry = await cli("replay", "--topic", src, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("would replay") == 3 + 1  # three lines and the summary
    assert await collect(kafka, src, 1, timeout_s=2) == []  # nothing produced

    first = await cli("replay", "--topic", src)
    assert "3 replayed" in first.stdout
    # Progress (not a terminal here: a plain closing line) goes to stderr, never to stdout.
    assert "dlq replay: 3 records in " in first.stderr and "dlq replay:" not in first.stdout
    records = await collect(kafka, src, 3, settle_s=0.5)
    assert [(r.key, orjson.loads(r.value)) for r in records] == [
        (b"acct-1", {"id": "old"}),  # oldest first
        (b"acct-1", {"id": "new-a"}),
        (b"acct-2", {"id": "new-b"}),
    ]
    assert dict(records[0].headers)[REPLAY_HEADER] == f"{src}.dlq:0:0".encode()

    again = await cli("replay", "--topic", src)
    assert "0 replayed" in again.output and "3 already replayed" in again.output
    assert len(await collect(kafka, src, 4, timeout_s=2)) == 3

    forced = await cli("replay", "--topic", src, "--code", "BAD_B", "--force")
    assert "1 replayed" in forced.output
    records = await collect(kafka, src, 4, settle_s=0.5)
    assert len(records) == 4 and orjson.loads(records[3].value) == {"id": "new-b"}
    shown = orjson.loads((await cli("show", f"{src}.dlq:0:2")).output)
    assert [r["forced"] for r in shown["replays"]] == [False, True]


async def test_limit_and_rate_are_honoured(kafka, cli: Cli):
    src = unique("t.src")
    await create_topics(kafka, [src, f"{src}.dlq"], partitions=1)
    for n in range(5):
        await dead_letter(kafka, src, {"id": f"m{n}"}, code="BAD", offset=n)
    limited = await cli("replay", "--topic", src, "--limit", "2")
    assert "2 replayed" in limited.output
    started = time.monotonic()
    paced = await cli("replay", "--topic", src, "--rate", "4/s")
    elapsed = time.monotonic() - started
    assert "3 replayed" in paced.output
    assert elapsed >= 0.5  # three records at 4/s: at 0, 0.25 and 0.5 s
    records = await collect(kafka, src, 5, settle_s=0.5)
    assert [orjson.loads(r.value)["id"] for r in records] == [f"m{n}" for n in range(5)]
    assert (await cli("replay", "--rate", "fast")).exit_code != 0


async def test_after_commit_dead_letter_replays_the_job_envelope(kafka, tmp_path):
    """The webhook processor dead-letters jobs after commit (partition -1): the original
    value is the job's envelope, replayed to the original topic with the original key."""
    actions = unique("t.actions")
    await create_topics(kafka, [actions, f"{actions}.dlq"], partitions=1)
    job = make_envelope(
        Subject(account_id="acct-7"),  # any payload: only the bytes matter here
        request_id="req-1",
        flow_id="flow-1",
        correlation_id="req-1",
        source=AgentName.EXECUTION_AGENT.value,
        target=AgentName.WEBHOOK_PROCESSOR.value,
        stage="action:a1",
    )
    error = ErrorEnvelope(
        metadata=job.metadata,
        error=ErrorInfo(
            code="DELIVERY_FAILED",
            message="destination kept failing",
            retry_strategy=RetryStrategy(max_attempts=3, backoff_rate=2, initial_delay_seconds=1),
            diagnostic_info=DiagnosticInfo(
                trace_id="req-1", service="webhook_processor", operation="deliver"
            ),
        ),
        dead_letter=DeadLetterInfo(
            attempts=3,
            original_topic=actions,
            original_partition=-1,
            original_offset=-1,
            original_key="acct-7",
            consumer_group="revops.webhook_processor",
        ),
        original=OriginalMessage(value=encode(job).decode()),
    )
    await produce_error(kafka, f"{actions}.dlq", b"acct-7", encode(error), "DELIVERY_FAILED", None)
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=tmp_path / "var")
    log = ReplayLog(tmp_path / "replays.db")
    report = await replay(settings, Selection(topic=actions), ReplayOptions(), log)
    assert report.count(Action.REPLAYED) == 1
    assert report.outcomes[0].message.original_position == f"{actions} (after commit)"
    assert report.outcomes[0].message.request_id == "req-1"
    records = await collect(kafka, actions, 1)
    assert records[0].key == b"acct-7"
    assert records[0].value == encode(job)


async def test_replay_is_signed_as_dlq_replay_and_auth_failures_are_never_replayed(kafka, tmp_path):
    topics = TopicNames(datasets=unique("t.datasets"))
    await create_topics(kafka, [topics.datasets, f"{topics.datasets}.dlq"], partitions=1)
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=tmp_path / "var", topics=topics)
    await dead_letter(kafka, topics.datasets, {"id": "d1"}, code="TRANSIENT_ERROR", offset=0)
    await dead_letter(
        kafka,
        topics.datasets,
        {"id": "forged"},
        code="AUTHENTICATION_FAILED_BAD_SIGNATURE",
        offset=1,
    )
    log = ReplayLog(tmp_path / "replays.db")
    report = await replay(
        settings, Selection(topic=topics.datasets), ReplayOptions(force=True), log
    )
    # Checked first, so noted first; the replay itself follows.
    assert [o.action for o in report.outcomes] == [Action.NOT_REPLAYABLE, Action.REPLAYED]
    records = await collect(kafka, topics.datasets, 1, settle_s=0.5)
    assert len(records) == 1
    rec = records[0]
    # The decision agent (the datasets consumer) accepts the replay's dlq_replay signature.
    EnvelopeSecurity(AgentName.DECISION_AGENT.value, settings).verify(
        Record(
            rec.topic,
            rec.partition,
            rec.offset,
            rec.key,
            rec.value,
            tuple(rec.headers),
            rec.timestamp,
        )
    )
