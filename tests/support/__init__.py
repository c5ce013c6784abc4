"""Helpers shared by tests: real loopback servers (HTTP recorder, SMTP recorder)."""

from tests.support.http_recorder import HttpRecorder, RecordedRequest
from tests.support.smtp_recorder import SmtpRecorder

__all__ = ["HttpRecorder", "RecordedRequest", "SmtpRecorder"]
