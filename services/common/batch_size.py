"""How many records a consumer takes per poll: small while it keeps up, large when it lags.

aiokafka's `getmany` returns what the topic holds, up to the cap. A large batch is cheap per
record (one verification, one idempotency transaction, one commit) but every record of it
waits for the whole batch: its handlers share one core, so partition groups finish together
near the end. So the cap starts small (latency at light load) and doubles while polls come
back full (the consumer lags: throughput matters), and halves again once polls come back
well under it (hysteresis: a cap is not shrunk by the one poll that happened to be short).
"""

from __future__ import annotations


class AdaptiveBatchSize:
    def __init__(self, smallest: int, largest: int) -> None:
        if smallest < 1 or largest < 1:
            raise ValueError("batch sizes must be at least 1")
        self.largest = largest
        self.smallest = min(smallest, largest)
        self.current = self.smallest

    def after_poll(self, consumed: int) -> int:
        """The cap for the next poll, given how many records the last one returned."""
        if consumed >= self.current:
            self.current = min(self.current * 2, self.largest)
        elif consumed <= self.current // 4:
            self.current = max(self.current // 2, self.smallest)
        return self.current
