"""Batch signatures: one Ed25519 signature per produced batch, a Merkle path per record.

The per-record token (`envelope_signing`) costs one signature per produced record and one
signature check per consumed record. Here a producer builds a Merkle tree (RFC 9162, see
`merkle`) over the records it produces for one audience in one go, signs the root once, and
gives every record two headers:

  revops-batch-auth   the root token: an EdDSA JWT (typ `revops-batch+jwt`) with the same
                      iss, aud, iat, exp, jti and kid rules as the per-record token, plus
                      `mr` (the root, base64url) and `n` (the number of leaves)
  revops-batch-proof  `<leaf index>.<inclusion path, base64url of the sibling hashes>`

A leaf commits to everything a record is judged by: the audience, topic, partition, the leaf
index, the key, the SHA-256 of the value and the bound headers (`content-type` by default),
each length-prefixed so no two records share an encoding. A consumer checks each distinct
root signature once (verified roots are cached by their token; a cached root is used only
while its key is still trusted) and then, per record, the issuer/topic and time rules and the
path (a few hashes); the record id `<batch jti>/<leaf index>` of every record of the batch is
checked against the replay cache in one query.

So a record changed, moved to another topic, partition or audience fails alone (its leaf no
longer leads to the signed root) while the rest of its batch verifies; a re-published batch
repeats record ids at new positions and is refused as replayed; a forged or altered root
fails its signature. Records that carry only the per-record `revops-auth` token (produced
before the upgrade) are verified as before, in the same call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cachetools import LRUCache
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.types import Options

from services.common.security import merkle
from services.common.security.envelope_signing import (
    _DECODE_OPTIONS,
    ALGORITHM,
    AUTH_HEADER,
    EnvelopeSigner,
    EnvelopeVerifier,
    VerifiedClaims,
    _is_number,
    _token_text,
    _unverified_kid_and_issuer,
    decode_complete,
    record_position,
)
from services.common.security.errors import AuthenticationError
from services.common.security.errors import AuthErrorCode as Code
from services.common.security.keys import KeyRing
from services.common.security.replay_cache import BatchReplayCache, Sighting

BATCH_TOKEN_HEADER = "revops-batch-auth"
BATCH_PROOF_HEADER = "revops-batch-proof"
ROOT_TOKEN_TYPE = "revops-batch+jwt"
# Headers a leaf commits to besides key and value. Not every header: a client library may
# add its own after signing (FastStream adds correlation_id), which would fail every record.
BOUND_HEADERS: tuple[str, ...] = ("content-type",)
# Far above a Kafka batch (max_records 500); keeps paths at most 20 hashes long.
MAX_BATCH_RECORDS = 1 << 20
_MAX_PROOF_LENGTH = 8 + 20 * 44
_INDEX = re.compile(rb"0|[1-9][0-9]{0,6}")
_LEAF_VERSION = b"revops-batch-leaf-v1"
_REQUIRED_ROOT_CLAIMS = ["iss", "aud", "iat", "exp", "jti", "mr", "n"]
# The per-record token's options (times, audience, issuer are checked per record) with the
# root's claims required instead of `ph`.
_ROOT_DECODE_OPTIONS: Options = {**_DECODE_OPTIONS, "require": _REQUIRED_ROOT_CLAIMS}
_AUTH_HEADERS = (BATCH_TOKEN_HEADER, BATCH_PROOF_HEADER, AUTH_HEADER)


@dataclass(frozen=True)
class BatchEntry:
    """One record a producer is about to send: where to, and the bytes it will carry.

    The partition must be the one the record is produced to (pick it before producing, e.g.
    with the client's partitioner): the leaf commits to it.
    """

    audience: str
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, str | bytes] = field(default_factory=dict)


class ConsumedRecord(Protocol):
    """What the verifier reads of a consumed record (`services.common.records.Record`)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def timestamp_ms(self) -> int | None: ...


def leaf_data(
    audience: str,
    topic: str,
    partition: int,
    index: int,
    key: bytes | None,
    value_digest: bytes,
    bound_headers: Sequence[bytes | None],
) -> bytes:
    """The bytes a leaf hashes: every field length-prefixed, absent distinct from empty."""
    fields = [
        _LEAF_VERSION,
        audience.encode(),
        topic.encode(),
        partition.to_bytes(4, "big"),
        index.to_bytes(4, "big"),
        _optional(key),
        value_digest,
        *(_optional(h) for h in bound_headers),
    ]
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def _optional(data: bytes | None) -> bytes:
    return b"\x00" if data is None else b"\x01" + data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64_canonical(text: bytes) -> bytes | None:
    """Decode base64url without padding; None unless `text` is the one encoding of its bytes
    (the unused low bits of the last character must be zero), so no edit goes unnoticed."""
    try:
        data = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=") == text else None


class BatchSigner(EnvelopeSigner):
    """Signs the records a service produces in one go: one root signature per audience.

    `sign` (inherited) still makes a per-record token, for a producer that has one record.
    """

    def __init__(
        self,
        issuer: str,
        keyring: KeyRing,
        *,
        bound_headers: Sequence[str] = BOUND_HEADERS,
        **options: Any,
    ) -> None:
        """`options`: `EnvelopeSigner`'s (token lifetime, clock)."""
        super().__init__(issuer, keyring, **options)
        self._bound_headers = tuple(bound_headers)

    def sign_batch(
        self, entries: Sequence[BatchEntry], now: float | None = None
    ) -> list[dict[str, str]]:
        """The two headers to add to each entry, in the order of `entries`."""
        issued_at = self._clock() if now is None else now
        by_audience: dict[str, list[int]] = {}
        for i, entry in enumerate(entries):
            by_audience.setdefault(entry.audience, []).append(i)
        out: list[dict[str, str]] = [{} for _ in entries]
        for audience, positions in by_audience.items():
            group = [entries[i] for i in positions]
            for i, headers in zip(
                positions, self._sign_group(audience, group, issued_at), strict=True
            ):
                out[i] = headers
        return out

    def _sign_group(
        self, audience: str, entries: Sequence[BatchEntry], issued_at: float
    ) -> list[dict[str, str]]:
        if len(entries) > MAX_BATCH_RECORDS:
            raise ValueError(f"a signed batch holds at most {MAX_BATCH_RECORDS} records")
        leaves = [self._leaf(audience, index, entry) for index, entry in enumerate(entries)]
        root, paths = merkle.root_and_paths(leaves)
        kid, key = self._keyring.signing_key()
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(issued_at),
            "exp": int(issued_at + self._ttl_s),
            "jti": uuid.uuid4().hex,
            "mr": _b64(root),
            "n": len(entries),
        }
        token = jwt.encode(
            claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": ROOT_TOKEN_TYPE}
        )
        return [
            {BATCH_TOKEN_HEADER: token, BATCH_PROOF_HEADER: f"{index}.{_b64(b''.join(path))}"}
            for index, path in enumerate(paths)
        ]

    def _leaf(self, audience: str, index: int, entry: BatchEntry) -> bytes:
        if not 0 <= entry.partition < 2**31:
            raise ValueError(f"record for {entry.topic} has no partition ({entry.partition})")
        bound = []
        for name in self._bound_headers:
            value = entry.headers.get(name)
            bound.append(value.encode() if isinstance(value, str) else value)
        digest = hashlib.sha256(entry.value or b"").digest()
        data = leaf_data(audience, entry.topic, entry.partition, index, entry.key, digest, bound)
        return merkle.leaf_hash(data)


@dataclass(frozen=True)
class _Root:
    """A root token whose signature was checked."""

    issuer: str
    kid: str
    key: Ed25519PublicKey
    audience: str
    jti: str
    issued_at: float
    expires_at: float
    root: bytes
    size: int


@dataclass(frozen=True)
class _Checked:
    """A batch record that passed every check but the replay check."""

    claims: VerifiedClaims
    sighting: Sighting


class BatchVerifier(EnvelopeVerifier):
    """Verifies a consumed batch: batch-signed records and per-record tokens alike.

    `verify` (inherited) still checks one record with a per-record token; `verify_batch`
    checks a whole batch and answers per record, so one bad record is refused alone.
    """

    def __init__(
        self,
        audience: str,
        keyring: KeyRing,
        allowed_issuers: Mapping[str, Set[str]],
        *,
        replay_cache: BatchReplayCache,
        bound_headers: Sequence[str] = BOUND_HEADERS,
        root_cache_size: int = 4096,
        **options: Any,
    ) -> None:
        """`options`: `EnvelopeVerifier`'s (clock skew, mint age, lifetime, replay retention,
        clock); the same rules apply to both kinds of token."""
        super().__init__(audience, keyring, allowed_issuers, replay_cache=replay_cache, **options)
        self._batch_replay_cache = replay_cache
        self._bound_headers = tuple(bound_headers)
        self._roots: LRUCache[bytes, _Root] = LRUCache(maxsize=root_cache_size)

    def verify_batch(
        self, records: Sequence[ConsumedRecord], now: float | None = None
    ) -> list[VerifiedClaims | AuthenticationError]:
        """One answer per record, in order: its claims, or why it is not authentic."""
        now = self._clock() if now is None else now
        # Each record's answer, or its checks so far while its replay check is pending.
        answers: list[VerifiedClaims | AuthenticationError | _Checked] = []
        roots: dict[bytes, _Root | AuthenticationError] = {}  # this call's root outcomes
        for record in records:
            try:
                headers = _auth_headers(record)
                token = headers.get(BATCH_TOKEN_HEADER)
                if token is None:
                    answers.append(self._verify_per_record(record, headers.get(AUTH_HEADER), now))
                else:
                    proof = headers.get(BATCH_PROOF_HEADER)
                    answers.append(self._check(record, token, proof, roots, now))
            except AuthenticationError as exc:
                answers.append(exc)
        pending = [a for a in answers if isinstance(a, _Checked)]
        fresh = self._batch_replay_cache.check_and_record_many(
            [c.sighting for c in pending], keep_until=now + self._replay_retention_s, now=now
        )
        verdicts = iter(fresh)  # in the order of `pending`, which is that of `answers`
        results: list[VerifiedClaims | AuthenticationError] = []
        for answer in answers:
            if isinstance(answer, _Checked):
                answer = answer.claims if next(verdicts) else _replayed(answer)
            results.append(answer)
        return results

    def _verify_per_record(
        self, record: ConsumedRecord, token: bytes | None, now: float
    ) -> VerifiedClaims:
        if token is None:
            raise AuthenticationError(
                Code.MISSING_TOKEN, f"no {BATCH_TOKEN_HEADER} or {AUTH_HEADER} header on the record"
            )
        return self.verify(
            token,
            record.value or b"",
            record.topic,
            produced_at=(record.timestamp_ms or 0) / 1000,
            position=record_position(record.topic, record.partition, record.offset),
            now=now,
        )

    def _check(
        self,
        record: ConsumedRecord,
        token: bytes,
        proof: bytes | None,
        roots: dict[bytes, _Root | AuthenticationError],
        now: float,
    ) -> _Checked:
        produced_at = (record.timestamp_ms or 0) / 1000
        self._check_produce_time(produced_at, now)
        root = roots.get(token)
        if root is None:
            try:
                root = self._root(token)
            except AuthenticationError as exc:
                root = exc
            roots[token] = root
        if isinstance(root, AuthenticationError):
            raise AuthenticationError(root.code, root.reason)  # a fresh error per record
        if root.issuer not in self._allowed_issuers.get(record.topic, ()):
            raise AuthenticationError(
                Code.ISSUER_NOT_ALLOWED,
                f"issuer {root.issuer!r} may not produce to topic {record.topic!r}",
            )
        if root.audience != self.audience:
            raise AuthenticationError(
                Code.WRONG_AUDIENCE,
                f"batch addressed to {root.audience!r}, this consumer is {self.audience!r}",
            )
        issued_at, expires_at = self._check_times(
            {"iat": root.issued_at, "exp": root.expires_at}, produced_at
        )
        index, path = _parse_proof(proof, root.size)
        digest = hashlib.sha256(record.value or b"").digest()
        leaf = merkle.leaf_hash(
            leaf_data(
                self.audience,
                record.topic,
                record.partition,
                index,
                record.key,
                digest,
                [_header(record, name) for name in self._bound_headers],
            )
        )
        if not merkle.verify_inclusion(leaf, index, root.size, path, root.root):
            raise AuthenticationError(
                Code.PAYLOAD_MISMATCH,
                "record (value, key, headers, topic or partition) differs from what was signed",
            )
        jti = f"{root.jti}/{index}"
        value_hash = digest.hex()
        claims = VerifiedClaims(
            issuer=root.issuer,
            audience=self.audience,
            kid=root.kid,
            jti=jti,
            issued_at=issued_at,
            expires_at=expires_at,
            payload_hash=value_hash,
        )
        sighting = Sighting(
            issuer=root.issuer,
            jti=jti,
            payload_hash=value_hash,
            position=record_position(record.topic, record.partition, record.offset),
        )
        return _Checked(claims, sighting)

    def _root(self, token: bytes) -> _Root:
        """The root token's verified claims: from the cache while its key is still trusted,
        else checked now (one signature verification) and cached."""
        cached = self._roots.get(token)
        if cached is not None:
            if self._keyring.public_key(cached.issuer, cached.kid) is cached.key:
                return cached  # `get` made it the most recently used
            del self._roots[token]  # key rotated out or reloaded: check the signature again
        root = self._verify_root(token)
        self._roots[token] = root  # evicts the least recently used beyond `root_cache_size`
        return root

    def _verify_root(self, token: bytes) -> _Root:
        text = _token_text(token)
        kid, unverified_issuer = _unverified_kid_and_issuer(text)
        key = self._keyring.public_key(unverified_issuer, kid)
        if key is None:
            raise AuthenticationError(
                Code.UNKNOWN_KID, f"no trusted key {kid!r} for issuer {unverified_issuer!r}"
            )
        decoded = decode_complete(text, key, _ROOT_DECODE_OPTIONS)
        if decoded["header"].get("typ") != ROOT_TOKEN_TYPE:
            raise AuthenticationError(Code.MALFORMED_TOKEN, f"token type is not {ROOT_TOKEN_TYPE}")
        claims: dict[str, Any] = decoded["payload"]
        if claims["iss"] != unverified_issuer:  # cannot happen for one token; a tripwire
            raise AuthenticationError(Code.MALFORMED_TOKEN, "issuer changed while decoding")
        size = claims["n"]
        if not (isinstance(size, int) and not isinstance(size, bool)):
            raise AuthenticationError(Code.MALFORMED_TOKEN, "claim n must be an integer")
        if not 1 <= size <= MAX_BATCH_RECORDS:
            raise AuthenticationError(Code.MALFORMED_TOKEN, f"batch of {size} records")
        root = _unb64_canonical(claims["mr"].encode()) if isinstance(claims["mr"], str) else None
        if root is None or len(root) != merkle.HASH_SIZE:
            raise AuthenticationError(Code.MALFORMED_TOKEN, "claim mr is not a SHA-256 root")
        if not (_is_number(claims["iat"]) and _is_number(claims["exp"])):
            raise AuthenticationError(Code.MALFORMED_TOKEN, "iat and exp must be numbers")
        return _Root(
            issuer=claims["iss"],
            kid=kid,
            key=key,
            audience=claims["aud"],
            jti=claims["jti"],
            issued_at=claims["iat"],
            expires_at=claims["exp"],
            root=root,
            size=size,
        )


def _auth_headers(record: ConsumedRecord) -> dict[str, bytes]:
    """The authentication headers of a record; each may appear at most once (a second copy
    could make two readers disagree about which one counts)."""
    found: dict[str, bytes] = {}
    for name, value in record.headers or ():
        if name in _AUTH_HEADERS:
            if name in found:
                raise AuthenticationError(Code.MALFORMED_TOKEN, f"header {name} appears twice")
            found[name] = value
    return found


def _header(record: ConsumedRecord, name: str) -> bytes | None:
    values = [value for key, value in record.headers or () if key == name]
    if len(values) > 1:
        raise AuthenticationError(Code.PAYLOAD_MISMATCH, f"signed header {name} appears twice")
    return values[0] if values else None


def _parse_proof(proof: bytes | None, size: int) -> tuple[int, list[bytes]]:
    if proof is None:
        raise AuthenticationError(Code.MALFORMED_TOKEN, f"no {BATCH_PROOF_HEADER} header")
    index_text, dot, path_text = proof.partition(b".")
    # The canonical-base64 check of the path also refuses any character outside base64url.
    path = _unb64_canonical(path_text) if len(proof) <= _MAX_PROOF_LENGTH else None
    if not dot or path is None or not _INDEX.fullmatch(index_text):
        raise AuthenticationError(Code.MALFORMED_TOKEN, f"{BATCH_PROOF_HEADER} is malformed")
    index = int(index_text)
    if index >= size:
        raise AuthenticationError(Code.PAYLOAD_MISMATCH, f"leaf {index} of a batch of {size}")
    if len(path) != merkle.HASH_SIZE * merkle.path_length(index, size):
        raise AuthenticationError(Code.PAYLOAD_MISMATCH, "inclusion path has the wrong shape")
    return index, [path[i : i + merkle.HASH_SIZE] for i in range(0, len(path), merkle.HASH_SIZE)]


def _replayed(checked: _Checked) -> AuthenticationError:
    claims = checked.claims
    return AuthenticationError(
        Code.REPLAYED, f"record {claims.jti!r} from {claims.issuer!r} was already accepted"
    )
