"""Secrets providers; the AWS one at the botocore layer (Stubber), plus one moto round trip."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from services.common.security.redaction import redact_text
from services.common.security.secrets import (
    AwsSecretsManagerProvider,
    ChainProvider,
    EnvSecretsProvider,
    FileSecretsProvider,
    SecretBackendError,
    SecretNotFoundError,
    SecretsSettings,
    provider_from_settings,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def client():
    return boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _value(stubber: Stubber, name: str, value: str) -> None:
    stubber.add_response(
        "get_secret_value",
        {"Name": name, "SecretString": value, "VersionId": "v" * 32},
        {"SecretId": name},
    )


def test_aws_caches_within_ttl_and_refetches_after(client) -> None:
    clock = Clock()
    provider = AwsSecretsManagerProvider(client, ttl_s=60, prefix="revops/", clock=clock)
    with Stubber(client) as stubber:
        _value(stubber, "revops/slack-token", "xoxb-first-value")
        _value(stubber, "revops/slack-token", "xoxb-rotated-value")
        assert provider.get("slack-token") == "xoxb-first-value"
        clock.t += 59
        assert provider.get("slack-token") == "xoxb-first-value"  # cached: one call so far
        assert len(stubber._queue) == 1
        clock.t += 2
        assert provider.get("slack-token") == "xoxb-rotated-value"  # TTL over: rotation seen
        stubber.assert_no_pending_responses()


def test_aws_invalidate_picks_up_rotation_at_once(client) -> None:
    provider = AwsSecretsManagerProvider(client, ttl_s=3600, clock=Clock())
    with Stubber(client) as stubber:
        _value(stubber, "crm-key", "old-crm-key-value")
        _value(stubber, "crm-key", "new-crm-key-value")
        assert provider.get("crm-key") == "old-crm-key-value"
        provider.invalidate("crm-key")  # the CRM answered 401: maybe rotated
        assert provider.get("crm-key") == "new-crm-key-value"
        stubber.assert_no_pending_responses()


def test_aws_missing_secret_names_it(client) -> None:
    provider = AwsSecretsManagerProvider(client)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_secret_value",
            service_error_code="ResourceNotFoundException",
            service_message="Secrets Manager can't find the specified secret.",
            expected_params={"SecretId": "nope"},
        )
        with pytest.raises(SecretNotFoundError, match="'nope'") as exc:
            provider.get("nope")
    assert exc.value.secret_name == "nope"


def test_aws_access_denied_is_a_backend_error_without_value(client) -> None:
    provider = AwsSecretsManagerProvider(client)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_secret_value", service_error_code="AccessDeniedException", http_status_code=403
        )
        with pytest.raises(SecretBackendError, match="AccessDeniedException"):
            provider.get("db-password")


def test_aws_binary_secret(client) -> None:
    provider = AwsSecretsManagerProvider(client)
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_secret_value", {"Name": "b", "SecretBinary": b"binary-secret-value"}
        )
        assert provider.get("b") == "binary-secret-value"


def test_aws_with_moto_round_trip_and_redaction() -> None:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="revops/warehouse-password", SecretString="s3cr3t-Warehouse!")
        provider = AwsSecretsManagerProvider(client, prefix="revops/", ttl_s=0)
        assert provider.get("warehouse-password") == "s3cr3t-Warehouse!"
        client.put_secret_value(SecretId="revops/warehouse-password", SecretString="n3w-Value!!")
        assert provider.get("warehouse-password") == "n3w-Value!!"
        with pytest.raises(SecretNotFoundError):
            provider.get("missing")
    # Every value returned was registered with the redactor.
    assert redact_text("dsn=x:s3cr3t-Warehouse!@h and n3w-Value!!") == (
        "dsn=x:[REDACTED]@h and [REDACTED]"
    )


def test_env_provider(monkeypatch) -> None:
    monkeypatch.setenv("REVOPS_SECRET_SLACK_WEBHOOK_OPS", "https://hooks.example/T0/B0/xyz")
    provider = EnvSecretsProvider()
    assert provider.get("slack-webhook.ops") == "https://hooks.example/T0/B0/xyz"
    with pytest.raises(SecretNotFoundError, match="REVOPS_SECRET_NOT_THERE"):
        provider.get("not-there")


def test_file_provider(tmp_path: Path) -> None:
    (tmp_path / "crm-token").write_text("crm-token-value\n")
    provider = FileSecretsProvider(tmp_path)
    assert provider.get("crm-token") == "crm-token-value"
    (tmp_path / "crm-token").write_text("crm-token-rotated")  # kubelet swapped the file
    assert provider.get("crm-token") == "crm-token-rotated"
    with pytest.raises(SecretNotFoundError, match="'absent'"):
        provider.get("absent")
    for evil in ("../etc/passwd", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            provider.get(evil)


def test_chain_provider(tmp_path: Path) -> None:
    (tmp_path / "a-secret").write_text("from-file-value")
    chain = ChainProvider(
        [FileSecretsProvider(tmp_path), EnvSecretsProvider({"REVOPS_SECRET_B_SECRET": "env-v"})]
    )
    assert chain.get("a-secret") == "from-file-value"
    assert chain.get("b-secret") == "env-v"
    with pytest.raises(SecretNotFoundError, match="'c-secret'"):
        chain.get("c-secret")


def test_provider_from_settings(monkeypatch, tmp_path: Path) -> None:
    assert isinstance(provider_from_settings(SecretsSettings(backend="env")), EnvSecretsProvider)
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "file")
    monkeypatch.setenv("REVOPS_SECRETS_DIR", str(tmp_path))
    (tmp_path / "x-secret").write_text("file-backend-value")
    assert provider_from_settings().get("x-secret") == "file-backend-value"
    monkeypatch.setenv("REVOPS_SECRETS_BACKEND", "aws")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert isinstance(provider_from_settings(), AwsSecretsManagerProvider)
    with pytest.raises(ValueError, match="env, file or aws"):
        provider_from_settings(SecretsSettings(backend="vault"))
