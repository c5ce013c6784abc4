"""The README's "Using it" section runs as written: every `revops` command of its shell block,
parsed from README.md (so the two cannot drift), on the demo warehouse `make run` seeds,
with the four services running on a real broker; and its raw JSON trigger, published with a
plain Kafka client, yields a flow output read back with a plain Kafka client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.cli.orchestrator import SERVICES, LocalStack
from services.common.security.keys import ensure_dev_keys
from services.common.settings import PROJECT_ROOT, Settings
from services.common.topics import ensure_topics
from services.data_agent.warehouse import open_warehouse
from services.data_agent.warehouse.queries import OPPORTUNITY_BY_ID
from tests.kafka_broker import free_port
from tests.kafka_tools import produce
from tests.support.isolation import isolated_names

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

README = PROJECT_ROOT / "README.md"
INSIGHT_PLACEHOLDER = "INSIGHT_ID"


def using_it() -> str:
    text = README.read_text()
    start = text.index("## Using it")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def readme_commands() -> list[list[str]]:
    """Each command line of the section's shell block, split as a shell would (comments
    dropped)."""
    [block] = re.findall(r"```sh\n(.*?)```", using_it(), re.S)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def readme_trigger_json() -> dict:
    [block] = re.findall(r"```json\n(.*?)```", using_it(), re.S)
    return json.loads(block)


@dataclass
class Demo:
    settings: Settings
    env: dict[str, str]

    def run(self, argv: list[str], timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )


def executable(argv: list[str]) -> list[str]:
    """The command as written; `.venv/bin/revops` is this interpreter's `revops` when the
    tests run from another environment than the project's own .venv."""
    program = argv[0]
    if program == ".venv/bin/revops" and not (PROJECT_ROOT / program).exists():
        program = str(Path(sys.executable).with_name("revops"))
    return [program, *argv[1:]]


@pytest.fixture(scope="module")
def demo(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """What `make run` sets up: the demo warehouse (same seed, size and day) and the four
    services with the demo destinations, here on free ports, a fresh var dir, and topics
    and consumer groups of its own (other stacks of the test session share the broker)."""
    var_dir = tmp_path_factory.mktemp("readme-var")
    topics, isolation = isolated_names("readme")
    env = {
        **os.environ,
        "REVOPS_VAR_DIR": str(var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        **isolation,
        "COLUMNS": "200",
    }
    for name in ("REVOPS_WAREHOUSE_PATH", "REVOPS_STATE_DIR", "REVOPS_INSIGHTS_DB"):
        env.pop(name, None)
    settings = Settings(kafka_bootstrap_servers=kafka, var_dir=var_dir, topics=topics)
    local = LocalStack(settings, ports={name: free_port() for name in SERVICES}, env=env)
    local.ensure_warehouse()
    asyncio.run(ensure_topics(settings))
    # Four services starting at once on an empty keys dir race to create the dev keys (one
    # can die on FileExistsError); made here first, as a second `make run` finds them.
    ensure_dev_keys(settings.resolved_keys_dir)
    local.start()
    try:
        asyncio.run(local.wait_ready(120))
        yield Demo(settings, env)
    finally:
        local.stop()


def test_the_readme_deal_example_names_a_deal_of_its_account(demo: Demo) -> None:
    """The example trigger once named a deal of another account, and was rejected."""
    [deal_trigger] = [c for c in readme_commands() if c[1:3] == ["trigger", "deal-quality"]]
    account = deal_trigger[deal_trigger.index("--account-id") + 1]
    deal = deal_trigger[deal_trigger.index("--opportunity-id") + 1]
    raw = readme_trigger_json()["parameters"]
    warehouse = open_warehouse(demo.settings)
    try:
        for account_id, opportunity_id in (
            (account, deal),
            (raw["account_id"], raw["opportunity_id"]),
        ):
            [row] = warehouse.fetch_all(OPPORTUNITY_BY_ID, {"opportunity_id": opportunity_id})
            assert row["sf_account_id"] == account_id, (opportunity_id, row["sf_account_id"])
    finally:
        warehouse.close()


def test_every_command_runs_as_written(demo: Demo) -> None:
    commands = readme_commands()
    assert len(commands) >= 10 and all(c[0] == ".venv/bin/revops" for c in commands)
    for argv in commands:
        if INSIGHT_PLACEHOLDER in argv:
            argv = [open_insight_prefix(demo) if a == INSIGHT_PLACEHOLDER else a for a in argv]
        done = demo.run(executable(argv))
        shown = shlex.join(argv)
        assert done.returncode == 0, f"{shown}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{shown}\n{done.stderr}"
        assert done.stdout.strip(), f"{shown} printed nothing"
        check_output(argv, done.stdout)


def check_output(argv: list[str], out: str) -> None:
    """What each command is there to show."""
    words = argv[1:3]
    if "--wait" in argv:
        assert re.search(r"\b(success|partial)\b", out), out
    if words == ["warehouse", "opportunities"]:
        assert "006000000000005" in out
    if words == ["explain", "deal"]:
        assert "deal quality" in out.lower()
    if words == ["trigger", "renewal-risk"]:
        # The example account must have an agreement to renew; a PLG account succeeds
        # without a renewal score, which shows the reader nothing.
        assert "renewal_risk=" in out, out
    if words == ["explain", "account"]:
        assert "churn risk" in out.lower()
    if words == ["insights", "ack"]:
        assert ": acknowledged (version" in out


def open_insight_prefix(demo: Demo) -> str:
    """What a person types for INSIGHT_ID: the first characters of an open insight's id."""
    listed = demo.run(
        executable([".venv/bin/revops", "insights", "list", "--status", "open", "--json"])
    )
    assert listed.returncode == 0, listed.stderr
    ids = [row["insight_id"] for row in json.loads(listed.stdout)]
    assert ids, "the README's triggers left no open insight to acknowledge"
    return ids[0][:8]


async def flow_output_for(bootstrap: str, topic: str, request_id: str, timeout_s: float) -> dict:
    """Read the flow-results topic with a plain consumer until `request_id`'s output."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    payload = orjson.loads(record.value).get("payload", {})
                    if payload.get("request_id") == request_id:
                        return dict(payload)
    finally:
        await consumer.stop()
    raise AssertionError(f"no flow output for {request_id} within {timeout_s:.0f} s")


def test_the_raw_json_trigger_works_from_a_plain_kafka_client(demo: Demo) -> None:
    trigger = readme_trigger_json()
    bootstrap = demo.settings.kafka_bootstrap_servers
    asyncio.run(produce(bootstrap, demo.settings.topics.triggers, [trigger], key=b"readme-example"))
    flow = asyncio.run(
        flow_output_for(bootstrap, demo.settings.topics.flow_results, trigger["request_id"], 120)
    )
    assert flow["status"] in {"success", "partial"}
    assert flow["subject"]["opportunity_id"] == trigger["parameters"]["opportunity_id"]
    # Names travel with the ids all the way to the flow output.
    assert flow["subject"]["account_name"] and flow["subject"]["opportunity_name"]
