"""Kafka clients outside the runtime's FastStream broker, and Kafka being unreachable said
once and plainly to whoever runs a command.

aiokafka raises KafkaConnectionError from `start()` when no bootstrap server answers, and a
client whose start failed still holds sockets (Python later warns "Unclosed
AIOKafkaConsumer"): `start_or_close` closes it and raises one `KafkaUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError

from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings

# What Kafka being down or unreachable looks like from a client.
UNREACHABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, OSError)


class KafkaUnavailableError(Exception):
    """No broker answered; the message says where it looked and what to do."""


def unavailable_message(settings: Settings) -> str:
    return (
        f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: start the local broker "
        "with `make kafka-up`, or set REVOPS_KAFKA_BOOTSTRAP_SERVERS to a running one"
    )


class _Startable(Protocol):
    async def start(self) -> None: ...


async def _close(client: object) -> None:
    stop = getattr(client, "stop", None) or getattr(client, "close", None)
    if stop is not None:
        # Closing what never started: an error here says nothing new.
        with contextlib.suppress(Exception):
            await stop()


async def start_or_close(client: _Startable, settings: Settings) -> None:
    """Start an aiokafka consumer, producer or admin client; if no broker answers, close it
    and raise KafkaUnavailableError."""
    try:
        await client.start()
    except UNREACHABLE as exc:
        await _close(client)
        raise KafkaUnavailableError(unavailable_message(settings)) from exc


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop an aiokafka consumer, also while Kafka is away. Its fetcher cancels the fetch
    requests still waiting to be retried and then awaits them, so `stop()` raises the
    CancelledError of its own cancelled request (a service stopped with Ctrl-C after the
    broker went away ended with a traceback). That one is absorbed; a cancellation of the
    caller itself still propagates."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def group_less_consumer(
    settings: Settings, client_id: str | None = None, **options: Any
) -> AIOKafkaConsumer:
    """A consumer that joins no group and commits nothing (readers that assign partitions
    themselves: watchers, the DLQ tool, the lag monitor). Not started."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id or "revops",
        group_id=None,
        enable_auto_commit=False,
        **aiokafka_options(settings),
        **options,
    )
