"""A second `revops trigger fleet-scan` the same day says it was already triggered and how
to force it, instead of "published" for a request the pipeline will skip."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.kafka_tools import collect, create_topics, unique
from tests.support.cli import run_revops

pytestmark = pytest.mark.kafka


def revops(kafka: str, topic: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REVOPS_TOPIC_TRIGGERS": topic,
        "REVOPS_VAR_DIR": str(tmp_path),
    }
    return run_revops(env, *args)


@pytest.mark.parametrize("kind", ["fleet-scan", "deal-review"])
async def test_a_second_scheduled_trigger_the_same_day_says_so_and_force_runs_it(
    kafka: str, tmp_path: Path, kind: str
) -> None:
    topic = unique("t.triggers")
    await create_topics(kafka, [topic], partitions=6)
    day = datetime.now(UTC).strftime("%Y-%m-%d")

    first = revops(kafka, topic, tmp_path, "trigger", kind)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"published request_id={kind}-")
    request_id = first.stdout.split("request_id=")[1].split()[0]
    assert request_id in {f"{kind}-{day}", f"{kind}-{next_day(day)}"}  # named by its UTC day

    again = revops(kafka, topic, tmp_path, "trigger", kind, "--request-id", request_id)
    assert again.returncode == 0, again.stderr
    message = again.stdout.strip()
    assert message.startswith(f"{request_id} was already triggered at ")
    assert f"To run it again: revops trigger {kind} --force" in message
    assert "published" not in message

    forced = revops(kafka, topic, tmp_path, "trigger", kind, "--request-id", request_id, "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"published request_id={request_id}-")

    records = await collect(kafka, topic, 2, timeout_s=30, settle_s=1.0)
    request_ids = [orjson.loads(r.value)["request_id"] for r in records]
    assert len(request_ids) == 2 and request_ids[0] == request_id
    assert request_ids[1].startswith(f"{request_id}-")


def next_day(day: str) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=1)).strftime("%Y-%m-%d")
