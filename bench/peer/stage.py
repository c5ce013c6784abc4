"""One stage of the bare pipeline, run as its own process:

    consume a batch -> parse each record's JSON -> produce it to the next topic (acks=all)
    -> wait for the acknowledgements -> commit the batch's offsets

The same contract as the project's runtime (commit only after the outputs are acknowledged,
at-least-once), the same producer settings (acks=all, idempotent, `client_settings.py`) and
the same send at the end of a batch (what the linger holds back leaves once the stage waits
for its acks), with nothing else: no envelope validation, idempotency store, signatures or
analysis. Each record gets one field added (`hops`), so the JSON is really parsed and
written again. orjson, the project's JSON library, does the parsing.

    python -m bench.peer.stage --bootstrap HOST:PORT --group G --source T1 --sink T2

Prints `ready` once its consumer owns partitions; stops on SIGTERM/SIGINT, and by itself
when the process that started it is gone (so a killed bench never leaves stages behind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.peer.client_settings import LINGER_MS, MAX_RECORDS

PARENT_CHECK_S = 1.0


async def forward_batches(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, sink: str
) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
        acks = []
        for records in batches.values():
            for record in records:
                doc = orjson.loads(record.value)
                doc["hops"] = doc.get("hops", 0) + 1
                acks.append(
                    await producer.send(
                        sink, orjson.dumps(doc), key=record.key, headers=list(record.headers)
                    )
                )
        if acks:
            # As the project's runtime does once it waits for acks: what the producer holds
            # back for its linger leaves now (aiokafka's own step before a transaction
            # commits; it has no public call for it).
            await producer._message_accumulator.flush_for_commit()
            await asyncio.gather(*acks)
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


async def run(bootstrap: str, group: str, source: str, sink: str) -> None:
    parent = os.getppid()
    consumer = AIOKafkaConsumer(
        source,
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
            asyncio.create_task(forward_batches(consumer, producer, sink)),
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
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.group, args.source, args.sink))


if __name__ == "__main__":
    main()
