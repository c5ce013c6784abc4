"""Errors a handler raises to tell the runtime what to do with a record."""

from __future__ import annotations


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


class RetryableError(HandlerError):
    """A transient failure (warehouse timeout, destination down): retry with backoff."""

    code = "TRANSIENT_ERROR"
