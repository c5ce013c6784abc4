"""Creates every topic and its `.dlq` twin (idempotent): `python -m services.common.topics`.
`delete_topics` removes them again (a benchmark run's own topics, when it ends)."""

from __future__ import annotations

import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.kafka_clients import start_or_close
from services.common.kafka_security import aiokafka_options
from services.common.settings import Settings, get_settings


async def _started_admin(settings: Settings, bootstrap: str | None) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap or settings.kafka_bootstrap_servers,
        **aiokafka_options(settings),
    )
    await start_or_close(admin, settings)
    return admin


async def ensure_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    admin = await _started_admin(settings, bootstrap)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in settings.topics.all_topics() if t not in existing]
        if wanted:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=1)
                    for t in wanted
                ]
            )
        return wanted
    finally:
        await admin.close()


async def delete_topics(settings: Settings) -> list[str]:
    """Delete those of the topics (and `.dlq` twins) of `settings` that exist; returns them."""
    admin = await _started_admin(settings, None)
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in settings.topics.all_topics() if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


def main() -> None:
    settings = get_settings()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or settings.kafka_bootstrap_servers
    created = asyncio.run(ensure_topics(settings, bootstrap))
    print(f"topics ready on {bootstrap} ({len(created)} created)")


if __name__ == "__main__":
    main()
