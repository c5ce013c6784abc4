"""Dockerfile, its ignore file and the compose stack, checked statically.

No Docker engine runs here or in CI, so the image is not built: these tests pin the
properties that matter (pinned base, multi-stage, constrained install, non-root user) and
the wiring of the laptop stack.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
import yaml

from services.common.settings import TopicNames
from tests.unit.deploy.tooling import DEPLOY_DIR, REPO_ROOT

DOCKER_DIR = DEPLOY_DIR / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
SERVICE_PORTS = {
    "data-agent": 9101,
    "decision-agent": 9102,
    "execution-agent": 9103,
    "webhook-processor": 9104,
    "ingress": 8080,
}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def build_args() -> dict[str, str]:
    return dict(
        arg.split("=", 1) for keyword, arg in instructions() if keyword == "ARG" and "=" in arg
    )


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER_DIR / "docker-compose.yml").read_text())
    return document


def test_the_base_image_is_python_311_slim_bookworm_pinned_exactly() -> None:
    froms = [arg for keyword, arg in instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    base = build_args()["PYTHON_IMAGE"]
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base


def test_dependencies_are_installed_with_the_constraints_file() -> None:
    runs = [arg for keyword, arg in instructions() if keyword == "RUN"]
    assert any(re.search(r"pip install -c constraints\.txt \.", run) for run in runs)
    copies = " ".join(arg for keyword, arg in instructions() if keyword == "COPY")
    for needed in ("pyproject.toml", "constraints.txt", "contracts", "services"):
        assert needed in copies


def test_the_image_runs_as_a_non_root_user_with_the_revops_entrypoint() -> None:
    steps = instructions()
    users = [arg for keyword, arg in steps if keyword == "USER"]
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid not in {"0", "root"}
    assert uid == "10001", "must match runAsUser in deploy/k8s/base/hardening.yaml"
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    assert any(keyword == "USER" for keyword, _ in steps[last_from:])
    assert [json.loads(arg) for keyword, arg in steps if keyword == "ENTRYPOINT"] == [["revops"]]
    exposed = {int(p) for keyword, arg in steps if keyword == "EXPOSE" for p in arg.split()}
    assert set(SERVICE_PORTS.values()) <= exposed


def test_the_build_context_sends_only_what_the_image_installs() -> None:
    lines = (DOCKER_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "ignore everything, then allow-list"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "contracts",
        "services",
        "knowledge",
    }
    for source in ("pyproject.toml", "constraints.txt", "contracts", "services", "knowledge"):
        assert (REPO_ROOT / source).exists()


def test_compose_runs_kraft_kafka_topic_init_every_service_and_a_sink() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    init_script = " ".join(services["kafka-init"]["command"])
    for topic in TopicNames().all_topics():
        assert re.search(rf"(^|\s){re.escape(topic)}(\s|;)", init_script), topic
    assert "http-sink" in services
    for name, port in SERVICE_PORTS.items():
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (DOCKER_DIR / service["build"]["context"] / "pyproject.toml").is_file()
        assert service["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        assert service["environment"]["REVOPS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["user"] == "10001:10001" and service["read_only"] is True
        assert any(p.endswith(f":{port}") for p in service["ports"]), name
    for name in ("execution-agent", "webhook-processor"):
        state_dir = services[name]["environment"]["REVOPS_STATE_DIR"]
        mounts = [v.split(":")[1] for v in services[name]["volumes"]]
        assert any(state_dir.startswith(m) for m in mounts), name


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER_DIR / source).is_file(), f"{name}: {source}"


@pytest.fixture()
def http_sink() -> Any:
    process = subprocess.Popen(
        [sys.executable, str(DOCKER_DIR / "http_sink.py")],
        env={"SINK_HOST": "127.0.0.1", "SINK_PORT": "18579", "PATH": ""},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=5)


def test_the_http_sink_answers_and_logs_each_request(http_sink: subprocess.Popen[str]) -> None:
    request = urllib.request.Request(
        "http://127.0.0.1:18579/slack/alerts",
        data=b'{"text": "hi"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    for _ in range(50):
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                assert response.status == 200
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("http sink did not answer")
    assert http_sink.stdout is not None
    logged = json.loads(http_sink.stdout.readline())
    assert (logged["method"], logged["path"], logged["body"]) == (
        "POST",
        "/slack/alerts",
        '{"text": "hi"}',
    )
