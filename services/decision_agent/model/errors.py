"""What can go wrong with a model call, as the gateway needs to know it.

``retryable``: worth another attempt after a backoff (throttling, timeouts, 5xx).
``endpoint_failure``: counts against the endpoint's circuit breaker. A refusal or a
malformed answer is the model's answer, not a sick endpoint: it opens no breaker.
``reason`` is the label of the fallback metric and of `ModelUse.reason`.
"""

from __future__ import annotations


class ModelError(Exception):
    reason = "error"
    retryable = False
    endpoint_failure = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelThrottled(ModelError):
    reason = "throttled"
    retryable = True


class ModelUnavailable(ModelError):
    """5xx, connection refused or reset, model not ready."""

    reason = "unavailable"
    retryable = True


class ModelTimeout(ModelError):
    reason = "timeout"
    retryable = True


class ModelAuthError(ModelError):
    """Credentials refused (maybe rotated: the secret is re-read before the next call)."""

    reason = "auth"


class ModelRefused(ModelError):
    """The model or a guardrail declined, or content was filtered."""

    reason = "refused"
    endpoint_failure = False


class ModelOutputInvalid(ModelError):
    """No tool call, truncated output, or arguments that fail the output schema."""

    reason = "invalid_output"
    endpoint_failure = False


class ModelRequestRejected(ModelError):
    """The endpoint refused the request itself (400: too long, bad parameter)."""

    reason = "rejected"
    endpoint_failure = False


class NoRecording(ModelError):
    """The recorded backend has no answer for these prompt inputs."""

    reason = "no_recording"
    endpoint_failure = False


#: Errors that say nothing about the endpoint's health (excluded from the breaker).
NOT_ENDPOINT_FAILURES: tuple[type[ModelError], ...] = (
    ModelRefused,
    ModelOutputInvalid,
    ModelRequestRejected,
    NoRecording,
)
