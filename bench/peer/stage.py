"""One stage of the bare pipeline, run as its own process:

    consume a batch -> parse each record's JSON -> produce the records it becomes to the next
    topic (acks=all) -> wait for the acknowledgements -> commit the batch's offsets

The same contract as the project's runtime (commit only after the outputs are acknowledged,
at-least-once), the same producer settings (acks=all, idempotent, `client_settings.py`) and
the same send at the end of a batch (what the linger holds back leaves once the stage waits
for its acks), with nothing else: no envelope validation, idempotency store, signatures or
analysis. orjson, the project's JSON library, does the parsing and writing.

What a record becomes is its topic's route (`shape.Route`): the same document with one field
added (`hops`), so the JSON is really parsed and written again; or a new document of the
route's size (carrying the flow and the hop count), once, several times (a fan-out), or once
per flow after all of the flow's parts arrived (a fan-in).

    python -m bench.peer.stage --bootstrap HOST:PORT --group G [--commit-interval-ms MS] \
        --route SOURCE SINK SIZE FAN [--route ...]

Prints `ready` once its consumer owns partitions; stops on SIGTERM/SIGINT, and by itself
when the process that started it is gone (so a killed bench never leaves stages behind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.peer.client_settings import LINGER_MS, MAX_RECORDS
from bench.peer.documents import FLOW_HEADER, PARTS_HEADER, template
from bench.peer.shape import FAN_IN

Headers = list[tuple[str, bytes]]

PARENT_CHECK_S = 1.0


@dataclass(frozen=True)
class TopicRoute:
    sink: str
    size: int
    fan: str  # as `shape.Route.fan`: records per record on average, or FAN_IN

    @property
    def fan_out(self) -> float | None:
        """Records written per record read on average; None for a fan-in."""
        return None if self.fan == FAN_IN else float(self.fan)


@dataclass
class Forwarder:
    """What each record read becomes: (sink topic, value, headers) per record to write."""

    routes: dict[str, TopicRoute]  # by source topic
    _carry: float = 0.0  # the fan-out's fraction of a record owed so far
    _arrived: dict[bytes, int] = field(default_factory=dict)  # a fan-in's parts per flow

    def outputs(
        self, topic: str, value: bytes, headers: Headers
    ) -> list[tuple[str, bytes, Headers]]:
        route = self.routes[topic]
        doc = orjson.loads(value)
        fan_out = route.fan_out
        if fan_out is None:  # fan-in: one record once the flow's last part arrived
            if not self._all_parts_arrived(headers):
                return []
            count, headers = 1, [(k, v) for k, v in headers if k != PARTS_HEADER]
        else:
            self._carry += fan_out
            count = int(self._carry)
            self._carry -= count
            if fan_out != 1:
                headers = [*headers, (PARTS_HEADER, str(count).encode())]
        hops = doc.get("hops", 0) + 1
        if route.size:
            doc = {**template(route.size, 1), "flow_id": doc.get("flow_id"), "hops": hops}
        else:
            doc["hops"] = hops
        # Each written on its own, as a service encodes each of its outputs.
        return [(route.sink, orjson.dumps(doc), headers) for _ in range(count)]

    def _all_parts_arrived(self, headers: Headers) -> bool:
        named = dict(headers)
        flow, parts = named.get(FLOW_HEADER, b""), int(named.get(PARTS_HEADER, b"1"))
        arrived = self._arrived.get(flow, 0) + 1
        if arrived < parts:
            self._arrived[flow] = arrived
            return False
        self._arrived.pop(flow, None)
        return True


@dataclass
class CommitPacing:
    """Whether the offsets handled so far are to be committed now: after every batch, or at
    most every `interval_s`."""

    interval_s: float
    _last: float = float("-inf")

    def due(self, now: float) -> bool:
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True


async def forward_batches(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    forwarder: Forwarder,
    pacing: CommitPacing,
) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
        acks = []
        for records in batches.values():
            for record in records:
                outputs = forwarder.outputs(record.topic, record.value, list(record.headers))
                for sink, value, headers in outputs:
                    acks.append(await producer.send(sink, value, key=record.key, headers=headers))
        if acks:
            # As the project's runtime does once it waits for acks: what the producer holds
            # back for its linger leaves now (aiokafka's own step before a transaction
            # commits; it has no public call for it).
            await producer._message_accumulator.flush_for_commit()
            await asyncio.gather(*acks)
        if batches and pacing.due(time.monotonic()):
            await consumer.commit()


async def wait_for_assignment(consumer: AIOKafkaConsumer) -> None:
    """Join the group (an empty poll) until partitions are assigned; records published
    meanwhile wait in the topic (the group starts from the earliest offset)."""
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100, max_records=1)
        if consumer.assignment():
            # The poll may have fetched a record: rewind, so forward_batches sees it.
            for tp in consumer.assignment():
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)


async def watch_parent(parent: int) -> None:
    # Polling: nothing signals a parent's death portably (prctl(PDEATHSIG) is Linux only).
    while os.getppid() == parent:  # noqa: ASYNC110
        await asyncio.sleep(PARENT_CHECK_S)


async def run(bootstrap: str, group: str, forwarder: Forwarder, pacing: CommitPacing) -> None:
    parent = os.getppid()
    consumer = AIOKafkaConsumer(
        *forwarder.routes,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=10 * 60 * 1000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=LINGER_MS
    )
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_for_assignment(consumer)
        print("ready", flush=True)
        tasks = [
            asyncio.create_task(forward_batches(consumer, producer, forwarder, pacing)),
            asyncio.create_task(watch_parent(parent)),
            asyncio.create_task(stop.wait()),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a failed forwarding loop exits non-zero with its error
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument(
        "--route",
        nargs=4,
        action="append",
        required=True,
        metavar=("SOURCE", "SINK", "SIZE", "FAN"),
        help="read SOURCE, write to SINK: documents of SIZE bytes (0: the one read), FAN per "
        f"record on average, or '{FAN_IN}' (one per flow once all its parts arrived)",
    )
    parser.add_argument(
        "--commit-interval-ms",
        type=int,
        default=0,
        help="commit offsets at most this often (0: after every batch)",
    )
    args = parser.parse_args()
    forwarder = Forwarder(
        {source: TopicRoute(sink, int(size), fan) for source, sink, size, fan in args.route}
    )
    pacing = CommitPacing(args.commit_interval_ms / 1000)
    asyncio.run(run(args.bootstrap, args.group, forwarder, pacing))


if __name__ == "__main__":
    main()
