"""Finds a Kafka broker for the tests, in the order docs/architecture.md gives:
KAFKA_BOOTSTRAP_SERVERS if set; testcontainers when a Docker engine answers; otherwise the
project's local jar broker (deploy/kafka/kafka.sh) on a free port with its own data folder.

A jar broker that fails to start raises `BrokerStartError` with kafka.sh's own output and the
tail of the broker's log, so a failure on a busy machine says why (port, JVM, timeout). Its
start-up gets a bounded but generous wait (`BROKER_START_TIMEOUT_S`): on a loaded 2-core box
the JVM can take well over a minute.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
BROKER_START_TIMEOUT_S = 240
_LOG_TAIL_LINES = 40


# Ports handed to servers that bind them later come from below the kernel's ephemeral range.
# A port from bind(0) is one the kernel also gives to outgoing connections, and a server
# binds seconds after its port was chosen, once other processes have opened many (Kafka
# clients, readiness checks): one such connection on the chosen port made the server's bind
# fail (CI: `revops run`'s console, started last, exited and its test saw four services).
FIRST_TEST_PORT = 20000


def ephemeral_port_start() -> int:
    """The first port the kernel gives to outgoing connections (Linux; 32768 elsewhere)."""
    with suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port() -> int:
    return free_port_range(1)


def free_port_range(size: int) -> int:
    """A base port with `size` free ports from it (a stack binds base..base+size-1), all
    below the ephemeral range, so no outgoing connection takes one before it is bound."""
    from services.common.ports import port_is_free

    top = ephemeral_port_start() - size
    for _ in range(500):
        base = random.randrange(FIRST_TEST_PORT, top)
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no {size} free ports in a row in {FIRST_TEST_PORT}..{top + size}")


class BrokerStartError(RuntimeError):
    """kafka.sh could not start the broker; the message holds its output and the log tail."""


class JarBroker:
    """The project's jar broker on a given port and data folder, as a test controls it."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        controller_port: int | None = None,
        start_timeout_s: int = BROKER_START_TIMEOUT_S,
    ) -> None:
        self.port = port
        self.data_dir = data_dir
        self.start_timeout_s = start_timeout_s
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(controller_port or free_port()),
            "KAFKA_DATA_DIR": str(data_dir),
            "KAFKA_START_TIMEOUT": str(start_timeout_s),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        try:
            result = subprocess.run(
                [str(KAFKA_SH), "up"],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                # kafka.sh bounds its own wait; this only guards against a hung script.
                timeout=self.start_timeout_s + 120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerStartError(
                self._report("kafka.sh up hung", exc.stdout, exc.stderr)
            ) from None
        if result.returncode != 0:
            raise BrokerStartError(
                self._report(
                    f"kafka.sh up exited {result.returncode}", result.stdout, result.stderr
                )
            )

    def down(self) -> None:
        subprocess.run(
            [str(KAFKA_SH), "down"], env=self.env, cwd=ROOT, capture_output=True, check=False
        )

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        with suppress(OSError):
            return "\n".join((self.data_dir / "broker.log").read_text().splitlines()[-lines:])
        return "(no broker.log)"

    def _report(self, what: str, stdout: object, stderr: object) -> str:
        return (
            f"{what} (port {self.port}, data {self.data_dir}):\n"
            f"--- kafka.sh stdout ---\n{_text(stdout)}\n"
            f"--- kafka.sh stderr ---\n{_text(stderr)}\n"
            f"--- broker.log (last {_LOG_TAIL_LINES} lines) ---\n{self.log_tail()}"
        )


def _text(output: object) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace").strip()
    return str(output or "").strip()


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        # No engine to ask: docker-py would open a socket, fail to connect and leave it open.
        return False
    try:
        import docker

        with closing(docker.from_env(timeout=2)) as client:
            client.ping()
        return True
    except Exception:
        return False


@contextmanager
def _local_jar_broker() -> Iterator[str]:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"the local Kafka broker needs {', '.join(missing)} on PATH")
    data = Path(tempfile.mkdtemp(prefix="revops-kafka-"))
    broker = JarBroker(free_port(), data)
    try:
        broker.up()
        yield broker.bootstrap
    finally:
        broker.down()
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
