"""The model port and gateway the settings ask for (`REVOPS_MODEL_*`)."""

from __future__ import annotations

from services.common.breaker import AsyncCircuitBreaker
from services.common.retry import RetryPolicy
from services.common.security.secrets import SecretsProvider, provider_from_settings
from services.common.settings import Settings
from services.decision_agent.model.errors import NOT_ENDPOINT_FAILURES
from services.decision_agent.model.gateway import GatewayConfig, ModelGateway, Prices
from services.decision_agent.model.port import ModelPort
from services.decision_agent.model.store import DailyTokenBudget, PromptCache, open_store

BACKENDS = ("none", "bedrock", "openai", "recorded")


class ModelConfigError(ValueError):
    """The model settings are incomplete or contradict each other (one line, names the
    variable)."""


def backend_of(settings: Settings) -> str:
    backend = settings.model_backend.strip().lower()
    if backend not in BACKENDS:
        raise ModelConfigError(
            f"REVOPS_MODEL_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}"
        )
    return backend


def build_port(settings: Settings, secrets: SecretsProvider | None = None) -> ModelPort | None:
    """None when no model is configured (the deterministic path only)."""
    backend = backend_of(settings)
    port: ModelPort
    if backend == "none":
        return None
    if backend == "recorded":
        from services.decision_agent.model.recorded import RecordedModel, RecordingsFileError

        if settings.model_recordings is None:
            raise ModelConfigError("REVOPS_MODEL_BACKEND=recorded needs REVOPS_MODEL_RECORDINGS")
        try:
            return RecordedModel(settings.model_recordings)
        except RecordingsFileError as exc:
            raise ModelConfigError(str(exc)) from None
    try:
        if backend == "bedrock":
            from services.decision_agent.model.bedrock import BedrockConverse

            port = BedrockConverse(
                settings.model_id,
                inference_profile=settings.model_inference_profile,
                region=settings.model_region,
                endpoint_url=settings.model_endpoint_url,
                timeout_s=settings.model_timeout_s,
                secrets=secrets or provider_from_settings(),
                credentials_secret=settings.model_aws_credentials_secret,
            )
        else:
            from services.decision_agent.model.openai_compat import OpenAICompatibleChat

            port = OpenAICompatibleChat(
                settings.model_endpoint_url or "",
                settings.model_id,
                timeout_s=settings.model_timeout_s,
                secrets=secrets or provider_from_settings(),
                api_key_secret=settings.model_api_key_secret,
            )
    except ValueError as exc:
        raise ModelConfigError(str(exc)) from None
    if settings.model_record_to is not None:
        from services.decision_agent.model.recorded import RecordingModel

        port = RecordingModel(port, settings.model_record_to)
    return port


def build_gateway(
    settings: Settings, secrets: SecretsProvider | None = None, port: ModelPort | None = None
) -> ModelGateway | None:
    port = port or build_port(settings, secrets)
    if port is None:
        return None
    conn = open_store(settings.resolved_state_dir / "model.db")
    return ModelGateway(
        port,
        breaker=AsyncCircuitBreaker(
            f"model:{port.backend}",
            failure_threshold=settings.breaker_failure_threshold,
            success_threshold=settings.breaker_success_threshold,
            timeout_s=settings.breaker_timeout_s,
            exclude=NOT_ENDPOINT_FAILURES,
        ),
        cache=PromptCache(conn, settings.model_cache_ttl_s),
        day_budget=DailyTokenBudget(conn, settings.model_tokens_per_day),
        config=GatewayConfig(
            timeout_s=settings.model_timeout_s,
            policy=RetryPolicy(
                max_attempts=settings.model_max_attempts,
                initial_delay_s=settings.model_retry_initial_delay_s,
                max_delay_s=settings.model_retry_max_delay_s,
                jitter=settings.retry_jitter,
            ),
            prices=Prices(
                settings.model_price_input_per_mtok, settings.model_price_output_per_mtok
            ),
        ),
    )
