"""An ingress with no client credential configured refuses to start (it would report ready
and answer 401 to everyone), in one line that names what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.errors import ConfigurationError
from services.common.settings import Settings
from services.ingress.app import build_runtime
from tests.unit.common.test_http_port_taken import held_port  # noqa: F401 (fixture)

CREDENTIALS = ("REVOPS_SECRET_INGRESS_TOKENS", "REVOPS_SECRET_INGRESS_HMAC_SECRETS")


def without_credentials() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    env["REVOPS_SECRETS_BACKEND"] = "env"
    return env


async def test_building_the_ingress_without_credentials_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "env")
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as refused:
        await build_runtime(Settings(var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"), 0)
    assert all(name in str(refused.value) for name in CREDENTIALS)


async def test_one_credential_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "env")
    monkeypatch.delenv("REVOPS_SECRET_INGRESS_TOKENS", raising=False)
    monkeypatch.setenv("REVOPS_SECRET_INGRESS_HMAC_SECRETS", "hmac-secret-0123456789")
    runtime = await build_runtime(
        Settings(var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"), 0
    )
    runtime.idempotency.close()


def serve_ingress(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.ingress` without credentials (unless given) nor Kafka, to its end."""
    env = {
        **without_credentials(),
        "REVOPS_VAR_DIR": str(tmp_path),
        "REVOPS_HTTP_PORT": "0",
        "REVOPS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.ingress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_ingress_without_credentials_exits_with_one_line(tmp_path: Path) -> None:
    result = serve_ingress(tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ingress: no client credentials configured: set ")
    assert "REVOPS_SECRET_INGRESS_TOKENS" in line


def test_a_service_on_a_taken_http_port_exits_with_one_line(
    tmp_path: Path,
    held_port: int,  # noqa: F811 (the fixture)
) -> None:
    """It ended in an OSError traceback, followed by DuckDB's leak report."""
    result = serve_ingress(
        tmp_path,
        REVOPS_HTTP_PORT=str(held_port),
        REVOPS_SECRET_INGRESS_TOKENS="a-long-enough-token-for-the-ingress-0123",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "leaked" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"ingress: HTTP port {held_port} on 127.0.0.1 is taken by pid {os.getpid()} ("
    )
    assert line.endswith("stop it, or give this service another port with REVOPS_HTTP_PORT")
