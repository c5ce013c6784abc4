"""A real Prometheus server, configured with the static scrape config of the runbook
(deploy/RUNBOOK.md#scraping-without-the-operator) and the project's alert rules, scraping
the running services: the rules see what the services export, with no job names involved.

- RevopsServiceDown is pending for the one service that is not running (the ingress) and for
  no other;
- the first dead letter of a code makes RevopsDeadLetterQueueReceiving fire (its counter was
  exported at 0, so the increase is seen);
- revops_consumer_lag is there for every consumer.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.cli.orchestrator import SERVICES
from tests.kafka_broker import free_port
from tests.kafka_tools import produce
from tests.unit.deploy.tooling import DEPLOY_DIR, require_tool

pytestmark = pytest.mark.kafka

RUNBOOK = DEPLOY_DIR / "RUNBOOK.md"
ALERTS = DEPLOY_DIR / "prometheus" / "alerts.yaml"
RUNBOOK_PORTS = {name: 9101 + i for i, name in enumerate(SERVICES)} | {"ingress": 8080}


def runbook_scrape_config() -> dict[str, Any]:
    """The YAML block that follows the runbook's static-scrape-config marker."""
    text = RUNBOOK.read_text()
    block = re.search(r"<!-- static-scrape-config.*?-->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "the runbook has no static scrape config block"
    config: dict[str, Any] = yaml.safe_load(block.group(1))
    return config


def config_for(stack, ingress_port: int) -> dict[str, Any]:
    """The runbook's config as written, pointed at this stack's ports and rules, scraped
    every second so that the test does not wait minutes."""
    config = runbook_scrape_config()
    ports = {**{n: stack.local.ports[n] for n in SERVICES}, "ingress": ingress_port}
    moved = {f"127.0.0.1:{RUNBOOK_PORTS[n]}": f"127.0.0.1:{p}" for n, p in ports.items()}
    (job,) = config["scrape_configs"]
    assert job["honor_labels"] is True
    for static in job["static_configs"]:
        assert set(static["targets"]) == set(moved), "the runbook lists every service"
        static["targets"] = [moved[t] for t in static["targets"]]
    assert config["rule_files"] == ["deploy/prometheus/alerts.yaml"]
    config["rule_files"] = [str(ALERTS)]
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    return config


@pytest.fixture
def prometheus(stack, tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus")
    config_path = tmp_path / "prometheus.yml"
    # The ingress is not part of the e2e stack: nothing answers on its port.
    config_path.write_text(yaml.safe_dump(config_for(stack, free_port())))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 120)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def until(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not met in {timeout_s} s")


def alerts(url: str, name: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in found if a["labels"]["alertname"] == name]


def query(url: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_prometheus_with_the_runbook_config_and_the_rules_sees_the_services(stack, prometheus):
    url = prometheus
    until(lambda: len(query(url, "revops_service_info")) == len(SERVICES))
    # The one service not running is pending (for: 5m) and no other is.
    until(lambda: {a["labels"]["service"] for a in alerts(url, "RevopsServiceDown")} == {"ingress"})
    assert [a["state"] for a in alerts(url, "RevopsServiceDown")] == ["pending"]

    for service, topic in (
        ("data_agent", "revops.triggers"),
        ("decision_agent", "revops.datasets"),
    ):
        selector = f'revops_consumer_lag{{service="{service}",topic="{topic}"}}'
        until(lambda s=selector: bool(query(url, s)))

    # An unsigned record on revops.datasets: the decision agent's first dead letter of this
    # code. Its counter is scraped at 0 first, then the alert fires on the first one.
    code = "AUTHENTICATION_FAILED_MISSING_TOKEN"
    counter = f'revops_messages_dead_lettered_total{{service="decision_agent",code="{code}"}}'
    until(lambda: [s["value"][1] for s in query(url, counter)] == ["0"])
    assert not [
        a for a in alerts(url, "RevopsDeadLetterQueueReceiving") if a["labels"]["code"] == code
    ]
    produce_unsigned_dataset(stack)
    until(
        lambda: any(
            a["labels"]["code"] == code and a["labels"]["service"] == "decision_agent"
            and a["state"] == "firing"
            for a in alerts(url, "RevopsDeadLetterQueueReceiving")
        )
    )  # fmt: skip


def produce_unsigned_dataset(stack) -> None:
    asyncio.run(
        produce(
            stack.settings.kafka_bootstrap_servers,
            stack.settings.topics.datasets,
            [{"metadata": {"request_id": "prometheus-test"}, "payload": {}}],
        )
    )
