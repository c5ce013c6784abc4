"""A dead letter read back as the rejection its sender is shown, and its request id found
also for a record that had no envelope (a raw trigger)."""

from __future__ import annotations

import orjson

from services.common.dlq import (
    HEADER_REQUEST_ID,
    build_error_envelope,
    rejection_of,
    request_id_in_value,
)
from services.common.errors import PermanentError
from services.common.records import Record
from services.common.retry import RetryPolicy
from services.dlq.messages import DeadLetter

TRIGGER = {
    "trigger_type": "manual",
    "request_id": "my-1",
    "parameters": {"account_id": "001", "opportunity_id": "006", "analysis_type": "deal_quality"},
}


def dead_letter_value(value: bytes, error: PermanentError) -> bytes:
    record = Record("revops.triggers", 2, 41, b"001", value, (), 1_700_000_000_000)
    envelope = build_error_envelope(
        record,
        error,
        attempts=1,
        service="data_agent",
        consumer_group="revops.data_agent",
        policy=RetryPolicy(3, 0.5, 30.0, 0.1),
        envelope=None,
    )
    return envelope.model_dump_json().encode()


def test_a_rejected_raw_trigger_names_its_request_code_and_reason() -> None:
    value = dead_letter_value(
        orjson.dumps(TRIGGER),
        PermanentError("opportunity 006 does not belong to account 001", code="UNKNOWN_SUBJECT"),
    )
    rejection = rejection_of("revops.triggers.dlq", 0, 7, value, ())
    assert rejection is not None
    assert rejection.request_id == "my-1"
    assert rejection.code == "UNKNOWN_SUBJECT"
    assert rejection.reason == "opportunity 006 does not belong to account 001"
    assert rejection.dlq_position == "revops.triggers.dlq:0:7"
    assert "UNKNOWN_SUBJECT" in rejection.line and "revops dlq show" in rejection.line


def test_the_header_names_the_request_of_a_record_whose_value_does_not() -> None:
    value = dead_letter_value(b"\xff not json", PermanentError("not JSON", code="INVALID_JSON"))
    assert rejection_of("revops.triggers.dlq", 0, 1, value, ()) is None
    rejection = rejection_of("revops.triggers.dlq", 0, 1, value, [(HEADER_REQUEST_ID, b"req-9")])
    assert rejection is not None and rejection.request_id == "req-9"


def test_the_dlq_tool_shows_the_request_id_of_a_dead_lettered_trigger() -> None:
    value = dead_letter_value(
        orjson.dumps(TRIGGER), PermanentError("not a valid trigger", code="INVALID_TRIGGER")
    )
    message = DeadLetter.from_record("revops.triggers.dlq", 0, 3, 1, b"001", value)
    assert message.request_id == "my-1"


def test_request_ids_in_values() -> None:
    assert request_id_in_value(orjson.dumps(TRIGGER)) == "my-1"
    assert request_id_in_value(orjson.dumps({"metadata": {"request_id": "r-2"}})) == "r-2"
    for value in (None, b"", b"[1]", b"{", orjson.dumps({"request_id": 5})):
        assert request_id_in_value(value) is None


def test_an_unreadable_dead_letter_is_no_rejection() -> None:
    assert rejection_of("x.dlq", 0, 0, b"{}", ()) is None
    assert rejection_of("x.dlq", 0, 0, None, ()) is None
