"""The console in a real browser: Debian's chromium driven by Playwright, against the console
process serving the demo data that `revops demo` leaves behind.

The demo runs on the test broker under its own topic names and consumer groups (a stack of
its own even when another test stack shares the broker), with the fixed service ports taken
under the shared ports lock. Afterwards a data agent and the console run as processes on free
ports; a trigger for an unknown account gives the operations page a dead letter to replay.
In CI a missing chromium fails the tests; elsewhere they skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.cli.orchestrator import LocalStack
from services.common.settings import PROJECT_ROOT, Settings, TopicNames
from tests.kafka_broker import free_port

CHROMIUM = os.environ.get("REVOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PORTS_LOCK = "/tmp/revops-ports.lock"
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots" / "console"
USERS = {
    "alice": ("operator", "e2e-alice-token"),
    "olga": ("operator", "e2e-olga-token"),
    "victor": ("viewer", "e2e-victor-token"),
}
PREFIX = "console-e2e"
UNKNOWN_ACCOUNT = "001999999999999"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Console:
    url: str
    settings: Settings
    var_dir: Path
    env: dict[str, str]

    def token(self, user: str) -> str:
        return USERS[user][1]


# The stack's own topics ("console-e2e.triggers", ...), so no other stack on the broker
# consumes its records, nor it theirs.
TOPICS = TopicNames.model_validate(
    {
        name: f"{PREFIX}.{value.split('.', 1)[1]}"
        for name, value in TopicNames().model_dump().items()
    }
)


def _env(kafka: str, var_dir: Path) -> dict[str, str]:
    topics = {f"REVOPS_TOPIC_{name.upper()}": value for name, value in TOPICS.model_dump().items()}
    return {
        **os.environ,
        **topics,
        "REVOPS_VAR_DIR": str(var_dir),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REVOPS_CONSUMER_GROUP_PREFIX": PREFIX,
        "REVOPS_RETRY_INITIAL_DELAY_S": "0.1",
        "REVOPS_SECRET_CONSOLE_USERS": ",".join(
            f"{user}:{role}:{token}" for user, (role, token) in USERS.items()
        ),
    }


def _wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the console at {url} was not ready in {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def chromium() -> str:
    need(Path(CHROMIUM).is_file(), f"no chromium at {CHROMIUM}: apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright is not installed (make setup)")
    return CHROMIUM


# Package scope: its services stop when the last test of this package is done, not at the
# end of the session (they would otherwise stay connected to the broker through every later
# test: one such connection once shared a local port with tests/unit/common/test_ports).
@pytest.fixture(scope="package")
def console(
    kafka: str, chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    need(shutil.which("flock") is not None, "flock (util-linux) is needed to share the ports")
    var_dir = tmp_path_factory.mktemp("console-e2e-var")
    env = _env(kafka, var_dir)
    demo = subprocess.run(
        ["flock", PORTS_LOCK, sys.executable, "-m", "services.cli.main", "demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert demo.returncode == 0, f"revops demo failed:\n{demo.stdout}\n{demo.stderr}"
    assert "console: http://127.0.0.1:8090/" in demo.stdout  # `make run` prints its URL
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        var_dir=var_dir,
        topics=TOPICS,
        consumer_group_prefix=PREFIX,
    )
    stack = LocalStack(
        settings,
        ports={"data_agent": free_port(), "console": free_port()},
        env={k: v for k, v in env.items() if k.startswith("REVOPS_")},
    )
    stack.start_one("data_agent")
    url = stack.start_console().split()[1].rstrip("/")
    try:
        _wait_ready(url)
        asyncio.run(_dead_letter_a_trigger(settings))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield Console(url, settings, var_dir, env)
    finally:
        stack.stop()


async def _dead_letter_a_trigger(settings: Settings) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.triggers,
            (
                '{"trigger_type": "manual", "request_id": "e2e-unknown-account", "parameters": '
                f'{{"account_id": "{UNKNOWN_ACCOUNT}", "analysis_type": "consumption"}}}}'
            ).encode(),
            key=UNKNOWN_ACCOUNT.encode(),
        )
    finally:
        await producer.stop()
