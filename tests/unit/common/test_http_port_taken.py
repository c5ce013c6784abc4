"""A service whose HTTP port is taken says so in one line, naming the holder, and exits 2
(it ended in an OSError traceback, followed by DuckDB's leak report)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from services.common.errors import ConfigurationError
from services.common.health import HttpServer


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_the_http_server_names_who_holds_its_port(held_port: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        HttpServer(Starlette(), "127.0.0.1", held_port)
    message = str(refused.value)
    assert f"HTTP port {held_port} on 127.0.0.1 is taken by pid {os.getpid()}" in message
    assert "REVOPS_HTTP_PORT" in message


def test_a_service_on_a_taken_port_exits_with_one_line(tmp_path: Path, held_port: int) -> None:
    env = {
        **os.environ,
        "REVOPS_VAR_DIR": str(tmp_path),
        "REVOPS_HTTP_PORT": str(held_port),
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "REVOPS_SECRETS_BACKEND": "env",
        "REVOPS_SECRET_INGRESS_TOKENS": "a-long-enough-token-for-the-ingress-0123",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.ingress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"ingress: HTTP port {held_port} on 127.0.0.1 is taken by pid {os.getpid()} ("
    )
    assert lines[0].endswith("stop it, or give this service another port with REVOPS_HTTP_PORT")
    assert "Traceback" not in result.stderr and "leaked" not in result.stderr
