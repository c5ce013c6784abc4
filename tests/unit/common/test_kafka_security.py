from __future__ import annotations

import pytest
from faststream.security import SASLScram512

from services.common.kafka_security import (
    KafkaSecurityError,
    aiokafka_options,
    faststream_security,
)
from services.common.settings import Settings


def test_plaintext_by_default():
    settings = Settings()
    assert faststream_security(settings) is None
    assert aiokafka_options(settings) == {}


def test_scram_over_tls_for_strimzi():
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="revops-data-agent",
        kafka_sasl_password="s3cret",
    )
    security = faststream_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl and security.ssl_context is not None
    options = aiokafka_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_username"] == "revops-data-agent"


def test_sasl_without_credentials_is_refused():
    with pytest.raises(KafkaSecurityError, match="USERNAME"):
        faststream_security(Settings(kafka_security_protocol="SASL_SSL"))


def test_password_is_not_in_settings_repr():
    settings = Settings(kafka_sasl_password="hunter2-kafka")
    assert "hunter2-kafka" not in repr(settings)
