"""Cost of the signed envelope per message: sign, verify, and both, in microseconds.

Run: `.venv/bin/python bench/bench_signing.py [--messages N] [--payload-bytes B]`.
Verification is measured with the in-memory and the SQLite (WAL) replay cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from services.common.security.envelope_signing import (
    EnvelopeSigner,
    EnvelopeVerifier,
    record_position,
)
from services.common.security.keys import KeyRing, ensure_dev_keys
from services.common.security.replay_cache import (
    InMemoryReplayCache,
    ReplayCache,
    SharedReplayCache,
)

TOPIC = "revops.datasets"


def _per_message_us(run: Callable[[int], object], n: int, rounds: int = 3) -> float:
    """Best-of-rounds mean (the machine is shared; the minimum is the least disturbed)."""
    results = []
    for r in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            run(r * n + i)
        results.append((time.perf_counter() - start) / n * 1e6)
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--payload-bytes", type=int, default=2048)
    args = parser.parse_args()
    n, value = args.messages, b"x" * args.payload_bytes
    now = time.time()

    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        ensure_dev_keys(keys, ["data_agent"])
        signer = EnvelopeSigner("data_agent", KeyRing.from_directory(keys, "data_agent"))
        verify_ring = KeyRing.from_directory(keys)
        tokens = [signer.sign(value, "decision_agent", f"m-{i}", now=now) for i in range(3 * n)]

        def verifier(cache: ReplayCache) -> EnvelopeVerifier:
            return EnvelopeVerifier(
                "decision_agent", verify_ring, {TOPIC: {"data_agent"}}, replay_cache=cache
            )

        memory = verifier(InMemoryReplayCache())
        sqlite = verifier(SharedReplayCache(Path(tmp) / "replay.sqlite"))

        sign_us = _per_message_us(
            lambda i: signer.sign(value, "decision_agent", f"s-{i}", now=now), n
        )
        verify_mem_us = _per_message_us(
            lambda i: memory.verify(tokens[i], value, TOPIC, now, record_position(TOPIC, 0, i)), n
        )
        sqlite_tokens = [
            signer.sign(value, "decision_agent", f"q-{i}", now=now) for i in range(3 * n)
        ]
        verify_sql_us = _per_message_us(
            lambda i: sqlite.verify(
                sqlite_tokens[i], value, TOPIC, now, record_position(TOPIC, 0, i)
            ),
            n,
        )

    print(
        f"messages per round: {n}, payload: {args.payload_bytes} B, token: {len(tokens[0])} chars"
    )
    print(f"sign                         : {sign_us:8.1f} us/message")
    print(f"verify (in-memory replay)    : {verify_mem_us:8.1f} us/message")
    print(f"verify (SQLite replay cache) : {verify_sql_us:8.1f} us/message")
    print(f"sign + verify (in-memory)    : {sign_us + verify_mem_us:8.1f} us/message")
    print(f"sign + verify (SQLite)       : {sign_us + verify_sql_us:8.1f} us/message")


if __name__ == "__main__":
    main()
