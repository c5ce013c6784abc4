"""Key files, key ids, rotation with overlap, loading from the secrets provider, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.common.security.cli import keys_app
from services.common.security.envelope_signing import EnvelopeSigner, EnvelopeVerifier
from services.common.security.errors import AuthenticationError, AuthErrorCode
from services.common.security.keys import (
    SERVICES,
    KeyMaterialError,
    KeyRing,
    ensure_dev_keys,
    generate_key_files,
    material_from_directory,
    private_pem,
    public_pem,
    signing_secret_name,
)
from services.common.security.redaction import redact_text
from services.common.security.replay_cache import InMemoryReplayCache
from services.common.security.secrets import EnvSecretsProvider
from tests.unit.security.conftest import NOW, TOPIC

VALUE = b"payload"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _verifier(ring: KeyRing) -> EnvelopeVerifier:
    return EnvelopeVerifier(
        "decision_agent",
        ring,
        {TOPIC: {"data_agent"}},
        replay_cache=InMemoryReplayCache(),
        clock=lambda: NOW,
    )


def test_ensure_dev_keys_creates_missing_keys_only(tmp_path: Path) -> None:
    created = ensure_dev_keys(tmp_path)
    assert len(created) == 2 * len(SERVICES)
    assert ensure_dev_keys(tmp_path) == []
    for path in tmp_path.glob("*.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = KeyRing.from_directory(tmp_path)
    assert all(len(ring.kids(service)) == 1 for service in SERVICES)


def test_generate_never_overwrites_and_validates_names(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    with pytest.raises(FileExistsError):
        generate_key_files(tmp_path, "data_agent", "k1")
    with pytest.raises(ValueError):
        generate_key_files(tmp_path, "../evil", "k1")
    with pytest.raises(ValueError):
        generate_key_files(tmp_path, "data_agent", "a/b")


def test_rotation_with_overlapping_kids(tmp_path: Path) -> None:
    """Old kid keeps verifying during the overlap; the producer signs with the new kid."""
    generate_key_files(tmp_path, "data_agent", "2024-01")
    consumer_clock = FakeClock()
    consumer_ring = KeyRing.from_directory(tmp_path, min_reload_interval_s=10, clock=consumer_clock)
    verifier = _verifier(consumer_ring)
    old_signer = EnvelopeSigner("data_agent", KeyRing.from_directory(tmp_path, "data_agent"))
    in_flight = old_signer.sign(VALUE, "decision_agent", "m-old", now=NOW)

    generate_key_files(tmp_path, "data_agent", "2024-02")  # rotation: new kid published
    new_signer = EnvelopeSigner("data_agent", KeyRing.from_directory(tmp_path, "data_agent"))
    fresh = new_signer.sign(VALUE, "decision_agent", "m-new", now=NOW)

    consumer_clock.t = 11  # past the reload interval: the unknown kid triggers one reload
    assert verifier.verify(fresh, VALUE, TOPIC, NOW, "p/0/2").kid == "2024-02"
    assert verifier.verify(in_flight, VALUE, TOPIC, NOW, "p/0/1").kid == "2024-01"

    (tmp_path / "data_agent.2024-01.pub").unlink()  # overlap over: old kid retired
    (tmp_path / "data_agent.2024-01.key").unlink()
    consumer_ring.reload()
    with pytest.raises(AuthenticationError) as exc:
        verifier.verify(
            old_signer.sign(VALUE, "decision_agent", "m-late", now=NOW), VALUE, TOPIC, NOW
        )
    assert exc.value.code is AuthErrorCode.UNKNOWN_KID


def test_unknown_kid_reloads_are_rate_limited(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    calls = []

    def loader():
        calls.append(1)
        return material_from_directory(tmp_path)

    clock = FakeClock()
    ring = KeyRing(loader(), loader=loader, min_reload_interval_s=10, clock=clock)
    calls.clear()
    clock.t = 20
    for _ in range(50):
        assert ring.public_key("data_agent", "random-kid") is None
    assert len(calls) == 1


def test_failing_key_source_keeps_current_keys(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    good = material_from_directory(tmp_path, "data_agent")

    def broken():
        raise OSError("key volume unavailable")

    clock = FakeClock()
    ring = KeyRing(good, loader=broken, refresh_s=5, clock=clock)
    clock.t = 100
    assert ring.signing_key()[0] == "k1"


def test_signer_refuses_foreign_keyring(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    with pytest.raises(ValueError):
        EnvelopeSigner("decision_agent", KeyRing.from_directory(tmp_path, "data_agent"))


def test_verify_only_keyring_has_no_signing_key(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    with pytest.raises(KeyMaterialError):
        KeyRing.from_directory(tmp_path).signing_key()


def test_keyring_from_secrets_provider(tmp_path: Path) -> None:
    generate_key_files(tmp_path, "data_agent", "k1")
    files = material_from_directory(tmp_path, "data_agent")
    private = private_pem(files.private_keys["k1"]).decode()
    env = {
        EnvSecretsProvider.variable("jwt-public-keys"): json.dumps(
            {"data_agent": {"k1": public_pem(files.public_keys[("data_agent", "k1")]).decode()}}
        ),
        EnvSecretsProvider.variable(signing_secret_name("data_agent")): json.dumps({"k1": private}),
    }
    provider = EnvSecretsProvider(env)
    signer = EnvelopeSigner("data_agent", KeyRing.from_secrets(provider, "data_agent"))
    token = signer.sign(VALUE, "decision_agent", "m-1", now=NOW)
    assert _verifier(KeyRing.from_secrets(provider)).verify(token, VALUE, TOPIC, NOW).kid == "k1"
    # The private key's base64 body alone is now a registered secret.
    body = private.splitlines()[1]
    assert redact_text(f"oops {body}") == "oops [REDACTED]"


def test_cli_generate_and_list(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        keys_app, ["generate", "--service", "data_agent", "--dir", str(tmp_path), "--kid", "k9"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data_agent.k9.key").exists()
    again = runner.invoke(
        keys_app, ["generate", "--service", "data_agent", "--dir", str(tmp_path), "--kid", "k9"]
    )
    assert again.exit_code == 2
    listed = runner.invoke(keys_app, ["list", "--dir", str(tmp_path)])
    assert listed.output.strip() == "data_agent\tk9"
    ensured = runner.invoke(keys_app, ["ensure-dev", "--dir", str(tmp_path)])
    assert ensured.exit_code == 0
    assert len(list(tmp_path.glob("*.pub"))) == len(SERVICES)


def _ensure_after(barrier: Any, directory: str) -> int:
    barrier.wait()
    return len(ensure_dev_keys(Path(directory)))


def test_processes_starting_together_create_one_key_per_service(tmp_path: Path) -> None:
    """The services of `revops run` start at once on a fresh key directory."""

    context = multiprocessing.get_context("spawn")
    workers = 6
    with context.Manager() as manager:
        barrier = manager.Barrier(workers)
        with context.Pool(workers) as pool:
            created = pool.starmap(_ensure_after, [(barrier, str(tmp_path))] * workers)
    assert sum(created) == 2 * len(SERVICES)  # each pair created once, by one process
    for service in SERVICES:
        assert len(list(tmp_path.glob(f"{service}.*.key"))) == 1, service
        assert len(list(tmp_path.glob(f"{service}.*.pub"))) == 1, service
