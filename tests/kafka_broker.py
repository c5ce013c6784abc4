"""Finds a Kafka broker for the tests, in the order ARCHITECTURE.md gives:
KAFKA_BOOTSTRAP_SERVERS if set; testcontainers when a Docker engine answers; otherwise the
project's local jar broker (deploy/kafka/kafka.sh) on a free port with its own data folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def _local_jar_broker() -> Iterator[str]:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"the local Kafka broker needs {', '.join(missing)} on PATH")
    port = free_port()
    cport = free_port()
    data = Path(tempfile.mkdtemp(prefix="revops-kafka-"))
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(cport),
        "KAFKA_DATA_DIR": str(data),
    }
    subprocess.run([str(KAFKA_SH), "up"], check=True, env=env, cwd=ROOT)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_SH), "down"], check=False, env=env, cwd=ROOT)
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def kafka_bootstrap() -> Iterator[tuple[str, str]]:
    """Yields (bootstrap servers, how it was found)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], "KAFKA_BOOTSTRAP_SERVERS"
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
            yield container.get_bootstrap_server(), "testcontainers"
        return
    with _local_jar_broker() as bootstrap:
        yield bootstrap, "local jar broker"
