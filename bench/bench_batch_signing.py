"""Cost per record of batch signatures (`services.common.security.batch_signing`) for batches
of 1, 10, 100 and 500 records, next to today's per-record Ed25519 token and next to the
alternative issue 15 names: an HMAC-SHA256 per record under a key shared by producer and
consumer (modelled here with the same leaf bytes and the same batched replay check, so the
two differ only in how a record is authenticated).

Run: `.venv/bin/python bench/bench_batch_signing.py [--records N] [--payload-bytes B]`.
Verification is measured with the in-memory and the SQLite (WAL) replay cache; a verifier
sees every batch's root for the first time (one signature check per batch), as in a service.
The machine is shared: each figure is the best of three rounds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from services.common.records import Record
from services.common.security.batch_signing import (
    BATCH_PROOF_HEADER,
    BATCH_TOKEN_HEADER,
    BatchEntry,
    BatchSigner,
    BatchVerifier,
    leaf_data,
)
from services.common.security.envelope_signing import (
    EnvelopeSigner,
    EnvelopeVerifier,
    VerifiedClaims,
    record_position,
)
from services.common.security.keys import KeyRing, ensure_dev_keys
from services.common.security.replay_cache import (
    BatchReplayCache,
    InMemoryReplayCache,
    SharedReplayCache,
    Sighting,
)

TOPIC = "revops.datasets"
PRODUCER, CONSUMER = "data_agent", "decision_agent"
BATCH_SIZES = (1, 10, 100, 500)
MAC_HEADER = "revops-mac"
JSON = {"content-type": "application/json"}


def best_us_per_record(run: Callable[[int], int], rounds: int = 3) -> float:
    """`run(round)` processes some records and returns how many; best of `rounds`."""
    results = []
    for r in range(rounds):
        started = time.perf_counter()
        count = run(r)
        results.append((time.perf_counter() - started) / count * 1e6)
    return round(min(results), 1)


def entries(count: int, value: bytes) -> list[BatchEntry]:
    return [
        BatchEntry(CONSUMER, TOPIC, i % 6, f"acc-{i}".encode(), value, JSON) for i in range(count)
    ]


def as_records(
    batch: Sequence[BatchEntry], headers: Sequence[dict[str, str]], offset0: int, now: float
) -> list[Record]:
    return [
        Record(
            e.topic,
            e.partition,
            offset0 + i,
            e.key,
            e.value,
            (("content-type", b"application/json"), *((k, v.encode()) for k, v in h.items())),
            int(now * 1000),
        )
        for i, (e, h) in enumerate(zip(batch, headers, strict=True))
    ]


class PerRecordMac:
    """The alternative: HMAC-SHA256 of each record's leaf bytes and id under a secret that
    producer and consumer share (one per pair, distributed like the signing keys)."""

    def __init__(self, secret: bytes, cache: BatchReplayCache) -> None:
        self._secret = secret
        self._cache = cache

    def _mac(self, topic: str, partition: int, key: bytes | None, value: bytes, rid: str) -> bytes:
        digest = hashlib.sha256(value).digest()
        data = leaf_data(CONSUMER, topic, partition, 0, key, digest, [b"application/json"])
        return hmac.new(self._secret, data + rid.encode(), hashlib.sha256).digest()

    def sign_batch(self, batch: Sequence[BatchEntry]) -> list[dict[str, str]]:
        out = []
        for e in batch:
            rid = uuid.uuid4().hex
            mac = self._mac(e.topic, e.partition, e.key, e.value or b"", rid)
            out.append({MAC_HEADER: f"{rid}.{base64.urlsafe_b64encode(mac).decode()}"})
        return out

    def verify_batch(self, records: Sequence[Record], now: float) -> list[bool]:
        sightings, ok = [], []
        for r in records:
            rid, _, mac = (r.header(MAC_HEADER) or b"").decode().partition(".")
            expected = self._mac(r.topic, r.partition, r.key, r.value or b"", rid)
            ok.append(hmac.compare_digest(base64.urlsafe_b64decode(mac), expected))
            position = record_position(r.topic, r.partition, r.offset)
            sightings.append(Sighting(PRODUCER, rid, "", position))
        fresh = self._cache.check_and_record_many(sightings, now + 7 * 86400, now)
        return [a and b for a, b in zip(ok, fresh, strict=True)]


class Bench:
    """Keys, replay caches and the record count shared by every measurement."""

    def __init__(self, work: Path, records: int, value: bytes) -> None:
        self.work, self.n, self.value, self.now = work, records, value, time.time()
        ensure_dev_keys(work / "keys", [PRODUCER])
        self.signing_ring = KeyRing.from_directory(work / "keys", PRODUCER)
        self.verify_ring = KeyRing.from_directory(work / "keys")
        self.allowed = {TOPIC: {PRODUCER}}
        self.figures: dict[str, float] = {}
        self.header_bytes: dict[str, int] = {}

    def caches(self, name: str) -> dict[str, BatchReplayCache]:
        return {
            "in-memory": InMemoryReplayCache(max_entries=1_000_000),
            "SQLite": SharedReplayCache(self.work / f"{name}.sqlite"),
        }

    def per_record_token(self) -> None:
        """Today: one Ed25519 token per record, one replay-cache transaction per record."""
        n, value, now = self.n, self.value, self.now
        signer = EnvelopeSigner(PRODUCER, self.signing_ring)

        def sign(r: int) -> int:
            for i in range(n):
                signer.sign(value, CONSUMER, f"s-{r}-{i}", now=now)
            return n

        self.figures["per-record token sign"] = best_us_per_record(sign)
        tokens = [signer.sign(value, CONSUMER, f"m-{i}", now=now) for i in range(3 * n)]
        self.header_bytes["per-record token"] = len(tokens[0])
        for cache_name, cache in self.caches("token").items():
            verifier = EnvelopeVerifier(
                CONSUMER, self.verify_ring, self.allowed, replay_cache=cache
            )

            def verify(r: int, v: EnvelopeVerifier = verifier) -> int:
                for i in range(r * n, (r + 1) * n):
                    v.verify(tokens[i], value, TOPIC, now, record_position(TOPIC, 0, i))
                return n

            self.figures[f"per-record token verify ({cache_name})"] = best_us_per_record(verify)

    def merkle(self, size: int) -> None:
        batches = max(1, self.n // size)
        plain = entries(size, self.value)
        signer = BatchSigner(PRODUCER, self.signing_ring)

        def sign(r: int) -> int:
            for _ in range(batches):
                signer.sign_batch(plain, now=self.now)
            return batches * size

        self.figures[f"merkle batch {size} sign"] = best_us_per_record(sign)
        signed = [
            as_records(plain, signer.sign_batch(plain, now=self.now), k * size, self.now)
            for k in range(3 * batches)
        ]
        last = signed[0][-1]
        self.header_bytes[f"merkle batch {size}"] = len(
            last.header(BATCH_TOKEN_HEADER) or b""
        ) + len(last.header(BATCH_PROOF_HEADER) or b"")
        for cache_name, cache in self.caches(f"merkle-{size}").items():
            verifier = BatchVerifier(CONSUMER, self.verify_ring, self.allowed, replay_cache=cache)

            def verify(r: int, v: BatchVerifier = verifier) -> int:
                for batch in signed[r * batches : (r + 1) * batches]:
                    answers = v.verify_batch(batch, now=self.now)
                    if not all(isinstance(a, VerifiedClaims) for a in answers):
                        raise SystemExit(f"bench: a genuine batch failed to verify: {answers}")
                return batches * size

            self.figures[f"merkle batch {size} verify ({cache_name})"] = best_us_per_record(verify)

    def mac(self, size: int) -> None:
        batches = max(1, self.n // size)
        plain = entries(size, self.value)
        secret = hashlib.sha256(b"bench pair secret").digest()
        signer = PerRecordMac(secret, InMemoryReplayCache())

        def sign(r: int) -> int:
            for _ in range(batches):
                signer.sign_batch(plain)
            return batches * size

        self.figures[f"mac batch {size} sign"] = best_us_per_record(sign)
        signed = [
            as_records(plain, signer.sign_batch(plain), k * size, self.now)
            for k in range(3 * batches)
        ]
        self.header_bytes[f"mac batch {size}"] = len(signed[0][0].header(MAC_HEADER) or b"")
        for cache_name, cache in self.caches(f"mac-{size}").items():
            verifier = PerRecordMac(secret, cache)

            def verify(r: int, v: PerRecordMac = verifier) -> int:
                for batch in signed[r * batches : (r + 1) * batches]:
                    if not all(v.verify_batch(batch, self.now)):
                        raise SystemExit("bench: a genuine MAC batch failed to verify")
                return batches * size

            self.figures[f"mac batch {size} verify ({cache_name})"] = best_us_per_record(verify)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000, help="records per round")
    parser.add_argument("--payload-bytes", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.records, b"x" * args.payload_bytes)
        bench.per_record_token()
        for size in BATCH_SIZES:
            bench.merkle(size)
            bench.mac(size)
    print(f"records per round: {args.records}, payload: {args.payload_bytes} B (best of 3 rounds)")
    for label, us in bench.figures.items():
        print(f"{label:<44}: {us:8.1f} us/record")
    for label, size in bench.header_bytes.items():
        print(f"{label + ' header bytes':<44}: {size:8d} B/record")


if __name__ == "__main__":
    main()
