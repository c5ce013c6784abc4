"""Kafka client security for production clusters (Strimzi, MSK, Confluent): SASL/SCRAM or
mutual TLS, from `REVOPS_KAFKA_*` settings. The local broker speaks PLAINTEXT.

Two shapes of the same settings: a FastStream `security` object for the services, and
aiokafka keyword arguments for the plain clients (flow watcher, topic admin, DLQ tool).
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from services.common.settings import Settings


class KafkaSecurityError(ValueError):
    pass


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:  # mTLS: the KafkaUser's client certificate
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


def faststream_security(settings: Settings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if protocol not in ("SASL_SSL", "SASL_PLAINTEXT"):
        raise KafkaSecurityError(f"unsupported REVOPS_KAFKA_SECURITY_PROTOCOL {protocol!r}")
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if not user or not password:
        raise KafkaSecurityError("SASL needs REVOPS_KAFKA_SASL_USERNAME and _PASSWORD")
    mechanism = settings.kafka_sasl_mechanism.upper()
    kinds: dict[str, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    if mechanism not in kinds:
        raise KafkaSecurityError(f"unsupported REVOPS_KAFKA_SASL_MECHANISM {mechanism!r}")
    return kinds[mechanism](user, password, ssl_context=context, use_ssl=protocol == "SASL_SSL")


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol, "ssl_context": ssl_context(settings)}
    if protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism.upper(),
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return options
