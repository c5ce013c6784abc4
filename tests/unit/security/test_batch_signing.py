"""Batch signatures: every attack the per-record token refuses is refused per record, and the
honest paths (redelivery, key rotation, records signed the old way) still pass."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.records import Record
from services.common.security import batch_signing
from services.common.security.batch_signing import (
    BATCH_PROOF_HEADER,
    BATCH_TOKEN_HEADER,
    BatchEntry,
    BatchSigner,
    BatchVerifier,
)
from services.common.security.envelope_signing import (
    AUTH_HEADER,
    EnvelopeSigner,
    VerifiedClaims,
)
from services.common.security.errors import AuthenticationError
from services.common.security.keys import KeyRing, generate_key_files
from services.common.security.replay_cache import (
    BatchReplayCache,
    InMemoryReplayCache,
)
from tests.unit.security.conftest import NOW, TOPIC

OTHER_TOPIC = "revops.datasets.mirror"  # the data agent may produce here too
ALLOWED = {TOPIC: {"data_agent", "dlq_replay"}, OTHER_TOPIC: {"data_agent"}}
JSON = {"content-type": "application/json"}
PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _value(i: int) -> bytes:
    return json.dumps({"metadata": {"message_id": f"m-{i}"}, "payload": {"n": i}}).encode()


def _entries(n: int, audience: str = "decision_agent", topic: str = TOPIC) -> list[BatchEntry]:
    return [
        BatchEntry(audience, topic, i % 3, f"acc-{i}".encode(), _value(i), JSON) for i in range(n)
    ]


def _records(
    entries: Sequence[BatchEntry],
    signed: Sequence[dict[str, str]],
    *,
    offset0: int = 0,
    produced_at: float = NOW,
) -> list[Record]:
    return [
        Record(
            topic=e.topic,
            partition=e.partition,
            offset=offset0 + i,
            key=e.key,
            value=e.value,
            headers=(
                *((k, str(v).encode()) for k, v in e.headers.items()),
                *((k, v.encode()) for k, v in h.items()),
            ),
            timestamp_ms=int(produced_at * 1000),
        )
        for i, (e, h) in enumerate(zip(entries, signed, strict=True))
    ]


def _signed_batch(
    signer: BatchSigner, n: int, *, offset0: int = 0, produced_at: float = NOW
) -> list[Record]:
    entries = _entries(n)
    return _records(
        entries, signer.sign_batch(entries, now=NOW), offset0=offset0, produced_at=produced_at
    )


def _with(record: Record, **changes: Any) -> Record:
    return dataclasses.replace(record, **changes)


def _header(record: Record, name: str) -> bytes:
    value = record.header(name)
    assert value is not None
    return value


def _replace_header(record: Record, name: str, value: bytes) -> Record:
    return _with(record, headers=tuple((k, value if k == name else v) for k, v in record.headers))


def _codes(answers: Sequence[VerifiedClaims | AuthenticationError]) -> list[str]:
    return [a.code.value if isinstance(a, AuthenticationError) else "ok" for a in answers]


def _make_verifier(
    ring: KeyRing, cache: BatchReplayCache | None = None, audience: str = "decision_agent"
) -> BatchVerifier:
    return BatchVerifier(
        audience,
        ring,
        ALLOWED,
        replay_cache=cache if cache is not None else InMemoryReplayCache(),
        clock=lambda: NOW,
    )


@pytest.fixture(scope="module")
def batch_signer(keys_dir: Path) -> BatchSigner:
    return BatchSigner("data_agent", KeyRing.from_directory(keys_dir, "data_agent"))


@pytest.fixture(scope="module")
def ring(keys_dir: Path) -> KeyRing:
    return KeyRing.from_directory(keys_dir)


@pytest.fixture
def verifier(ring: KeyRing, cache: BatchReplayCache) -> BatchVerifier:
    return _make_verifier(ring, cache)


# --- honest paths --------------------------------------------------------------------------


def test_a_signed_batch_verifies_record_by_record(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 25)
    answers = verifier.verify_batch(records)
    assert _codes(answers) == ["ok"] * 25
    claims = [a for a in answers if isinstance(a, VerifiedClaims)]
    assert {(c.issuer, c.audience) for c in claims} == {("data_agent", "decision_agent")}
    assert len({c.jti for c in claims}) == 25  # every record has its own id
    assert claims[0].expires_at - claims[0].issued_at == 300


@pytest.fixture
def root_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many root tokens were decoded (signature checked): `root_checks[0]`."""
    count = [0]
    real_decode = jwt.decode_complete

    def counting(*args, **kwargs):
        count[0] += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(batch_signing.jwt, "decode_complete", counting)
    return count


def test_each_distinct_root_is_checked_once(batch_signer, ring, root_checks) -> None:
    verifier = _make_verifier(ring)
    first, second = _signed_batch(batch_signer, 40), _signed_batch(batch_signer, 40, offset0=40)
    assert _codes(verifier.verify_batch(first)) == ["ok"] * 40
    assert root_checks == [1]
    assert _codes(verifier.verify_batch(first + second)) == ["ok"] * 80  # first: redelivered
    assert root_checks == [2]  # the first root came from the cache


def test_the_root_cache_keeps_the_most_recently_used(batch_signer, ring, root_checks) -> None:
    verifier = BatchVerifier(
        "decision_agent",
        ring,
        ALLOWED,
        replay_cache=InMemoryReplayCache(),
        clock=lambda: NOW,
        root_cache_size=2,
    )
    a, b, c = (_signed_batch(batch_signer, 3, offset0=3 * i) for i in range(3))
    for batch in (a, b, a, c):  # a was used after b, so c's root evicts b's
        assert _codes(verifier.verify_batch(batch)) == ["ok"] * 3
    assert root_checks == [3]
    verifier.verify_batch(a)
    assert root_checks == [3]  # still cached
    verifier.verify_batch(b)
    assert root_checks == [4]  # evicted: its signature is checked again


def test_one_root_per_audience(batch_signer, ring) -> None:
    entries = _entries(4) + _entries(3, audience="execution_agent")
    records = _records(entries, batch_signer.sign_batch(entries, now=NOW))
    assert len({_header(r, BATCH_TOKEN_HEADER) for r in records}) == 2
    decision = _make_verifier(ring, audience="decision_agent").verify_batch(records)
    execution = _make_verifier(ring, audience="execution_agent").verify_batch(records)
    assert _codes(decision) == ["ok"] * 4 + ["wrong_audience"] * 3
    assert _codes(execution) == ["wrong_audience"] * 4 + ["ok"] * 3


def test_a_redelivered_batch_is_benign(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 10)
    assert _codes(verifier.verify_batch(records)) == ["ok"] * 10
    assert _codes(verifier.verify_batch(records)) == ["ok"] * 10


def test_records_with_the_per_record_token_still_verify(batch_signer, keys_dir, verifier) -> None:
    """A rolling upgrade: records produced before it carry only `revops-auth`."""
    old = EnvelopeSigner("data_agent", KeyRing.from_directory(keys_dir, "data_agent"))
    tokens = [old.sign(_value(i), "decision_agent", f"m-{i}", now=NOW) for i in range(3)]
    legacy = [
        Record(TOPIC, 1, 100 + i, None, _value(i), ((AUTH_HEADER, t.encode()),), int(NOW * 1000))
        for i, t in enumerate(tokens)
    ]
    tampered = _with(legacy[1], value=_value(99))
    records = [legacy[0], tampered, *_signed_batch(batch_signer, 3), legacy[2]]
    assert _codes(verifier.verify_batch(records)) == [
        "ok",
        "payload_mismatch",
        "ok",
        "ok",
        "ok",
        "ok",
    ]


def test_a_rotated_key_verifies_during_its_overlap_and_not_after(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate_key_files(keys, "data_agent", kid="20250101T000000Z")
    signer_ring = KeyRing.from_directory(keys, "data_agent", min_reload_interval_s=0)
    verifier_ring = KeyRing.from_directory(keys, min_reload_interval_s=0)
    signer = BatchSigner("data_agent", signer_ring)
    verifier = _make_verifier(verifier_ring)
    before = _signed_batch(signer, 5)
    generate_key_files(keys, "data_agent", kid="20250201T000000Z")
    signer_ring.reload()
    after = _signed_batch(signer, 5, offset0=5)
    kids = [
        jwt.get_unverified_header(_header(r[0], BATCH_TOKEN_HEADER))["kid"] for r in (before, after)
    ]
    assert kids == ["20250101T000000Z", "20250201T000000Z"]
    assert _codes(verifier.verify_batch(before + after)) == ["ok"] * 10
    for old in keys.glob("data_agent.20250101T000000Z.*"):
        old.unlink()
    verifier_ring.reload()
    # The old root was verified and cached, but its key is retired: it no longer counts.
    assert _codes(verifier.verify_batch(before + after)) == ["unknown_kid"] * 5 + ["ok"] * 5


# --- attacks -------------------------------------------------------------------------------


def test_a_tampered_record_is_refused_alone(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 10)
    records[4] = _with(records[4], value=_value(5))
    assert _codes(verifier.verify_batch(records)) == ["ok"] * 4 + ["payload_mismatch"] + ["ok"] * 5


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"topic": OTHER_TOPIC}, "payload_mismatch"),
        ({"topic": "revops.decisions"}, "issuer_not_allowed"),
        ({"partition": 2}, "payload_mismatch"),  # records 0..5 sit on partitions 0, 1, 2
        ({"key": b"acc-999"}, "payload_mismatch"),
        ({"key": None}, "payload_mismatch"),
        ({"headers": "no-content-type"}, "payload_mismatch"),
    ],
)
def test_a_moved_or_rekeyed_record_is_refused(batch_signer, verifier, change, code) -> None:
    records = _signed_batch(batch_signer, 6)
    if change.get("headers") == "no-content-type":
        change = {"headers": tuple(h for h in records[0].headers if h[0] != "content-type")}
    records[0] = _with(records[0], **change)
    assert _codes(verifier.verify_batch(records)) == [code] + ["ok"] * 5


def test_a_record_for_another_audience_is_refused(batch_signer, ring) -> None:
    records = _signed_batch(batch_signer, 3)
    other = BatchVerifier(
        "execution_agent", ring, ALLOWED, replay_cache=InMemoryReplayCache(), clock=lambda: NOW
    )
    assert _codes(other.verify_batch(records)) == ["wrong_audience"] * 3


def test_a_replayed_batch_is_refused(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 8)
    assert _codes(verifier.verify_batch(records)) == ["ok"] * 8
    republished = [_with(r, offset=r.offset + 1000) for r in records]
    assert _codes(verifier.verify_batch(republished)) == ["replayed"] * 8


def test_a_record_repeated_inside_one_batch_is_a_replay(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 3)
    copy = _with(records[1], offset=99)
    assert _codes(verifier.verify_batch([*records, copy])) == ["ok", "ok", "ok", "replayed"]


def test_a_root_signed_with_another_services_key_is_refused(
    batch_signer, keys_dir, verifier
) -> None:
    records = _signed_batch(batch_signer, 3)
    token = _header(records[0], BATCH_TOKEN_HEADER).decode()
    header, claims = (
        jwt.get_unverified_header(token),
        jwt.decode(token, options={"verify_signature": False}),
    )
    _, decision_key = KeyRing.from_directory(keys_dir, "decision_agent").signing_key()
    forged = jwt.encode(claims, decision_key, algorithm="EdDSA", headers=header)
    records = [_replace_header(r, BATCH_TOKEN_HEADER, forged.encode()) for r in records]
    assert _codes(verifier.verify_batch(records)) == ["bad_signature"] * 3


def test_an_altered_root_is_refused(batch_signer, verifier) -> None:
    genuine = _signed_batch(batch_signer, 4)
    evil = _signed_batch(batch_signer, 4, offset0=10)
    head, _, signature = _header(genuine[0], BATCH_TOKEN_HEADER).decode().split(".")
    # The evil batch's claims (its root) under the genuine batch's signature.
    evil_claims = _header(evil[0], BATCH_TOKEN_HEADER).decode().split(".")[1]
    spliced = f"{head}.{evil_claims}.{signature}".encode()
    records = [_replace_header(r, BATCH_TOKEN_HEADER, spliced) for r in evil]
    assert _codes(verifier.verify_batch(records)) == ["bad_signature"] * 4


def test_a_root_from_an_issuer_not_allowed_on_the_topic_is_refused(keys_dir, verifier) -> None:
    """The execution agent's key is trusted, but it does not produce datasets."""
    intruder = BatchSigner("execution_agent", KeyRing.from_directory(keys_dir, "execution_agent"))
    records = _signed_batch(intruder, 3)
    assert _codes(verifier.verify_batch(records)) == ["issuer_not_allowed"] * 3


def test_an_unknown_kid_is_refused(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 2)
    token = _header(records[0], BATCH_TOKEN_HEADER).decode()
    claims = jwt.decode(token, options={"verify_signature": False})
    _, key = batch_signer._keyring.signing_key()
    unknown = jwt.encode(
        claims, key, algorithm="EdDSA", headers={"kid": "nope", "typ": "revops-batch+jwt"}
    )
    records = [_replace_header(r, BATCH_TOKEN_HEADER, unknown.encode()) for r in records]
    assert _codes(verifier.verify_batch(records)) == ["unknown_kid"] * 2


def test_tokens_of_one_kind_are_refused_as_the_other(batch_signer, keys_dir, verifier) -> None:
    records = _signed_batch(batch_signer, 2)
    per_record = EnvelopeSigner("data_agent", KeyRing.from_directory(keys_dir, "data_agent"))
    token = per_record.sign(_value(0), "decision_agent", "m-0", now=NOW).encode()
    as_root = _replace_header(records[0], BATCH_TOKEN_HEADER, token)
    root = _header(records[1], BATCH_TOKEN_HEADER)
    as_per_record = Record(
        TOPIC, 0, 50, None, records[1].value, ((AUTH_HEADER, root),), int(NOW * 1000)
    )
    assert _codes(verifier.verify_batch([as_root, as_per_record])) == ["malformed_token"] * 2


def test_an_expired_or_stale_root_is_refused(batch_signer, verifier) -> None:
    expired = _signed_batch(batch_signer, 2, produced_at=NOW + 340)  # exp + more than the skew
    stale = _signed_batch(batch_signer, 2, offset0=2, produced_at=NOW + 100)  # minted long before
    answers = verifier.verify_batch(expired + stale, now=NOW + 400)
    assert _codes(answers) == ["expired"] * 2 + ["stale_token"] * 2


def test_missing_and_repeated_headers_are_refused(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 4)
    no_auth = _with(records[0], headers=(("content-type", b"application/json"),))
    no_proof = _with(
        records[1], headers=tuple(h for h in records[1].headers if h[0] != BATCH_PROOF_HEADER)
    )
    twice = _with(records[2], headers=(*records[2].headers, (BATCH_PROOF_HEADER, b"0.")))
    two_types = _with(records[3], headers=(*records[3].headers, ("content-type", b"text/plain")))
    assert _codes(verifier.verify_batch([no_auth, no_proof, twice, two_types])) == [
        "missing_token",
        "malformed_token",
        "malformed_token",
        "payload_mismatch",
    ]


def test_a_proof_for_another_leaf_is_refused(batch_signer, verifier) -> None:
    records = _signed_batch(batch_signer, 5)
    swapped = _replace_header(
        records[0], BATCH_PROOF_HEADER, _header(records[3], BATCH_PROOF_HEADER)
    )
    assert _codes(verifier.verify_batch([swapped])) == ["payload_mismatch"]


# --- properties ----------------------------------------------------------------------------

FIELDS = ("value", "key", "content-type", BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@PROPERTY
@given(data=st.data())
def test_any_single_bit_flip_is_refused_and_only_there(batch_signer, ring, data) -> None:
    n = data.draw(st.integers(1, 12), label="records")
    records = _signed_batch(batch_signer, n)
    target = data.draw(st.integers(0, n - 1), label="target")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    original = records[target]
    if field in ("value", "key"):
        raw = getattr(original, field)
        bit = data.draw(st.integers(0, 8 * len(raw) - 1), label="bit")
        records[target] = _with(original, **{field: _flip(raw, bit)})
    else:
        raw = _header(original, field)
        bit = data.draw(st.integers(0, 8 * len(raw) - 1), label="bit")
        records[target] = _replace_header(original, field, _flip(raw, bit))
    answers = _make_verifier(ring).verify_batch(records)
    assert isinstance(answers[target], AuthenticationError)
    assert all(isinstance(a, VerifiedClaims) for i, a in enumerate(answers) if i != target)


@PROPERTY
@given(
    proof=st.binary(max_size=120) | st.text(alphabet="0123456789.-_aA", max_size=60).map(str.encode)
)
def test_arbitrary_proof_headers_are_refused_without_crashing(batch_signer, ring, proof) -> None:
    record = _signed_batch(batch_signer, 3)[1]
    genuine = _header(record, BATCH_PROOF_HEADER)
    answer = _make_verifier(ring).verify_batch(
        [_replace_header(record, BATCH_PROOF_HEADER, proof)]
    )[0]
    assert isinstance(answer, VerifiedClaims) == (proof == genuine)


@PROPERTY
@given(sizes=st.lists(st.integers(1, 70), min_size=1, max_size=3))
def test_batches_of_any_size_verify(batch_signer, ring, sizes) -> None:
    verifier = _make_verifier(ring)
    offset = 0
    for n in sizes:
        records = _signed_batch(batch_signer, n, offset0=offset)
        offset += n
        assert _codes(verifier.verify_batch(records)) == ["ok"] * n


def test_the_proof_header_is_canonical(batch_signer) -> None:
    """The base64 of the path has no unused bits set, so a text edit cannot keep its bytes."""
    for record in _signed_batch(batch_signer, 7):
        index, _, path = _header(record, BATCH_PROOF_HEADER).partition(b".")
        decoded = base64.urlsafe_b64decode(path + b"=" * (-len(path) % 4))
        assert base64.urlsafe_b64encode(decoded).rstrip(b"=") == path
        assert int(index) < 7


def test_a_path_edited_only_in_its_unused_bits_is_refused(batch_signer, verifier) -> None:
    """43 base64 characters carry a 32-byte hash: the last one has 2 unused bits. Setting
    them keeps the decoded bytes, but the header is not what was signed, so it is refused."""
    records = _signed_batch(batch_signer, 2)
    proof = _header(records[0], BATCH_PROOF_HEADER)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    edited = proof[:-1] + bytes([alphabet[alphabet.index(proof[-1]) | 1]])
    assert edited != proof
    same = base64.urlsafe_b64decode(edited.partition(b".")[2] + b"=")
    assert same == base64.urlsafe_b64decode(proof.partition(b".")[2] + b"=")
    records[0] = _replace_header(records[0], BATCH_PROOF_HEADER, edited)
    assert _codes(verifier.verify_batch(records)) == ["malformed_token", "ok"]
