"""Errors a handler raises to tell the runtime what to do with a record, and every code a
record can be dead-lettered with."""

from __future__ import annotations

from services.common.security.errors import AuthErrorCode


class HandlerError(Exception):
    """Base: `code` names the error in the DLQ envelope and in metrics."""

    code = "HANDLER_ERROR"
    retryable = True

    def __init__(self, message: str, *, code: str | None = None, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class PermanentError(HandlerError):
    """Retrying cannot help (bad input, unknown subject): straight to the DLQ."""

    code = "INVALID_MESSAGE"
    retryable = False


class ConfigurationError(Exception):
    """A service cannot start with the configuration it was given; the message says what
    to set. `revops serve` prints it as one line and exits non-zero."""


# The code of an exception that is not a HandlerError once it has used up its retries.
UNEXPECTED_FAILURE_CODE = "PROCESSING_FAILED"


def authentication_failed_code(code: AuthErrorCode) -> str:
    return f"AUTHENTICATION_FAILED_{code.value.upper()}"


# Every code a consumed record can be dead-lettered with. The runtime exports its counters
# at 0 for each of them from the start, so that `increase()` sees the first dead letter of a
# code (a series born at 1 has no increase); a test keeps this list complete.
DEAD_LETTER_CODES: frozenset[str] = frozenset(
    {
        HandlerError.code,
        PermanentError.code,
        UNEXPECTED_FAILURE_CODE,
        # parsing (services.common.messages, services.data_agent)
        "INVALID_JSON",
        "INVALID_ENVELOPE",
        "UNSUPPORTED_VERSION",
        "WRONG_TARGET",
        "INVALID_PAYLOAD",
        "INVALID_TRIGGER",
        # handlers
        "UNKNOWN_SUBJECT",
        "UNKNOWN_ANALYSIS",
        "UNKNOWN_ACTION",
        # signed envelopes (services.common.envelope_security)
        *(authentication_failed_code(code) for code in AuthErrorCode),
    }
)
