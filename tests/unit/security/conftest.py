from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.security.envelope_signing import EnvelopeSigner, EnvelopeVerifier
from services.common.security.keys import SERVICES, KeyRing, ensure_dev_keys
from services.common.security.redaction import clear_registered_secrets
from services.common.security.replay_cache import (
    BatchReplayCache,
    InMemoryReplayCache,
    SharedReplayCache,
)

TOPIC = "revops.datasets"
NOW = 1_750_000_000.0


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    ensure_dev_keys(directory, SERVICES)
    return directory


@pytest.fixture(scope="session")
def signer(keys_dir: Path) -> EnvelopeSigner:
    return EnvelopeSigner("data_agent", KeyRing.from_directory(keys_dir, "data_agent"))


@pytest.fixture
def verifier(keys_dir: Path) -> EnvelopeVerifier:
    return EnvelopeVerifier(
        "decision_agent",
        KeyRing.from_directory(keys_dir),
        {TOPIC: {"data_agent", "dlq_replay"}},
        replay_cache=InMemoryReplayCache(),
        clock=lambda: NOW,
    )


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> BatchReplayCache:
    """Each replay cache, fresh."""
    if request.param == "memory":
        return InMemoryReplayCache()
    return SharedReplayCache(tmp_path / "replay.sqlite")


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    clear_registered_secrets()
    yield
    clear_registered_secrets()
