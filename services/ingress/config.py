"""Ingress settings (`REVOPS_INGRESS_*`); the HTTP port is `REVOPS_HTTP_PORT` (serve.py)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class IngressSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVOPS_INGRESS_", extra="ignore")

    max_body_bytes: int = 64 * 1024
    # How long a POST waits for Kafka to take its trigger before answering 503 + Retry-After
    # (while Kafka is down a produce would otherwise wait for the broker's metadata).
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    hmac_window_s: float = 300.0
    # Names in the secrets provider (env backend: REVOPS_SECRET_INGRESS_TOKENS, ...). Each
    # value may hold several entries separated by commas or newlines, so they rotate
    # without downtime (add the new one, move clients, remove the old one).
    tokens_secret: str = "ingress-tokens"
    hmac_secret: str = "ingress-hmac-secrets"
