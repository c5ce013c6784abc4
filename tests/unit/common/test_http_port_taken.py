"""The HTTP server of a service names who holds its port (the service then exits 2 with
that line: tests/unit/ingress/test_ingress_startup.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

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
