"""Every command that needs Kafka, run while no broker answers: one line that says what to
do, exit status 1, no traceback and no "Unclosed AIOKafka..." warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kafka_broker import free_port, free_port_range
from tests.support.cli import run_revops

COMMANDS = [
    ["trigger", "consumption", "--account-id", "001000000000001"],
    ["trigger", "deal-quality", "--account-id", "001", "--opportunity-id", "006", "--wait"],
    ["trigger", "fleet-scan"],
    ["trigger", "deal-review", "--force"],
    ["dlq", "list"],
    ["dlq", "show", "revops.triggers.dlq:0:0"],
    ["dlq", "replay", "--dry-run"],
    ["run"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_says_in_one_line_that_kafka_is_down(args: list[str], tmp_path: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    env = {
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": nobody,
        "REVOPS_VAR_DIR": str(tmp_path),
        # `revops run` checks its ports first: a free range of its own
        "REVOPS_RUN_BASE_PORT": str(free_port_range(4)),
        "PYTHONWARNINGS": "default",  # ResourceWarnings (unclosed clients) would show
    }
    result = run_revops(env, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: cannot reach Kafka at {nobody}: start the local broker with `make kafka-up`, "
        "or set REVOPS_KAFKA_BOOTSTRAP_SERVERS to a running one"
    )
