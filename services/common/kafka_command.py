"""Running the async part of a command that needs Kafka: when the broker is down the user
gets one line that says what to do (exit status 1), never a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from aiokafka.errors import KafkaError

from services.common.kafka_clients import UNREACHABLE, KafkaUnavailableError, unavailable_message
from services.common.logging import configure_cli
from services.common.settings import Settings

T = TypeVar("T")


def run_with_kafka(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    configure_cli()
    try:
        return asyncio.run(main)
    except KafkaUnavailableError as exc:
        message = str(exc)
    except UNREACHABLE:
        message = unavailable_message(settings)
    except KafkaError as exc:
        message = f"Kafka at {settings.kafka_bootstrap_servers} refused: {exc}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
