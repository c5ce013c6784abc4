"""`make kafka-up` (deploy/kafka/kafka.sh up) reports "kafka up" only for the broker it
started, and the test fixtures show why a broker did not start."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_broker import ROOT, BrokerStartError, JarBroker, free_port

JARS = ROOT / ".cache" / "kafka-jars" / ".complete"


@pytest.fixture(autouse=True)
def broker_jars() -> None:
    missing = [tool for tool in ("java",) if shutil.which(tool) is None]
    if JARS.exists() and not missing:
        return
    reason = "the jar broker needs `make setup` (jars in .cache/kafka-jars) and java"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port another process (this test) listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_broker_port_taken_by_another_process_fails_naming_it(
    squatter: int, tmp_path: Path
) -> None:
    broker = JarBroker(squatter, tmp_path / "kafka", start_timeout_s=60)
    with pytest.raises(BrokerStartError) as failure:
        broker.up()
    report = str(failure.value)
    assert f"port {squatter} (broker) is taken by pid {os.getpid()}" in report
    assert "kafka up" not in report
    assert not (tmp_path / "kafka" / "broker.pid").exists(), "no broker was started"


def test_a_controller_port_taken_fails_before_the_broker_starts(
    squatter: int, tmp_path: Path
) -> None:
    broker = JarBroker(free_port(), tmp_path / "kafka", controller_port=squatter)
    with pytest.raises(BrokerStartError) as failure:
        broker.up()
    assert f"port {squatter} (controller) is taken by pid {os.getpid()}" in str(failure.value)


def test_a_broker_that_dies_at_start_up_shows_its_own_log(tmp_path: Path) -> None:
    broker = JarBroker(free_port(), tmp_path / "kafka", start_timeout_s=120)
    broker.env["KAFKA_HEAP"] = "1k"  # the JVM refuses to start with this heap
    try:
        with pytest.raises(BrokerStartError) as failure:
            broker.up()
    finally:
        broker.down()
    report = str(failure.value)
    assert "the broker exited during start-up" in report
    assert "--- broker.log" in report
    assert "heap" in report.lower(), report  # the JVM's own words, from broker.log
