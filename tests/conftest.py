from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.kafka_broker import kafka_bootstrap

# Property tests are derandomized by default (`make test`, CI): the same examples on every run,
# so a red run is always reproducible. `make fuzz` explores with fresh random examples; what
# it finds becomes an @example in the test.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("fuzz", max_examples=2_000, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """A real Kafka broker's bootstrap address (see tests/kafka_broker.py for the order)."""
    try:
        ctx = kafka_bootstrap()
        bootstrap, how = ctx.__enter__()
    except Exception as exc:
        if os.environ.get("CI"):
            raise  # in CI a missing broker (or java) must fail loudly, never skip
        pytest.skip(f"no Kafka broker available: {exc}")
    print(f"\nKafka for tests: {bootstrap} ({how})")
    try:
        yield bootstrap
    finally:
        ctx.__exit__(None, None, None)
