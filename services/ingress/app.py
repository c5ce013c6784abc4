"""Ingress process: HTTP in, `revops.triggers` out; follows `revops.flow-results` for status.

Runs on the shared `ServiceRuntime` (its producer, signing, /metrics, /healthz, /readyz), with
the API routes on the same port. It consumes nothing through a consumer group.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import AgentName
from services.common.records import Outgoing
from services.common.runtime import ServiceRuntime
from services.common.security import InMemoryReplayCache, provider_from_settings
from services.common.settings import Settings
from services.ingress.api import IngressApi
from services.ingress.auth import RequestAuthenticator
from services.ingress.config import IngressSettings
from services.ingress.follower import FlowResultsFollower
from services.ingress.index import FlowIndex
from services.ingress.openapi import build_openapi
from services.ingress.salesforce import StageRules

NAME = AgentName.INGRESS.value


def openapi_route() -> Route:
    document = orjson.dumps(build_openapi())

    async def serve_openapi(_: Request) -> Response:
        return Response(document, media_type="application/json")

    return Route("/openapi.json", serve_openapi, methods=["GET"])


async def build_runtime(
    settings: Settings, http_port: int | None, config: IngressSettings | None = None
) -> ServiceRuntime:
    config = config or IngressSettings()
    authenticator = RequestAuthenticator(
        provider_from_settings(),
        tokens_secret=config.tokens_secret,
        hmac_secret=config.hmac_secret,
        window_s=config.hmac_window_s,
        # Refuses a captured signed POST sent again to this replica inside the window.
        replay_cache=InMemoryReplayCache(),
    )
    authenticator.require_credentials()
    index = FlowIndex(settings.resolved_state_dir / "ingress.db", settings.database_url)

    async def publish(outputs: Sequence[Outgoing]) -> None:
        await runtime.publish(outputs)  # the runtime's producer: acks=all, signed envelopes

    api = IngressApi(settings, config, authenticator, index, publish, StageRules.load())
    runtime = ServiceRuntime(
        NAME, settings, http_port=http_port, extra_routes=[*api.routes(), openapi_route()]
    )
    follower = FlowResultsFollower(settings, index)
    runtime.on_start.append(follower.start)
    runtime.on_stop.append(follower.stop)

    async def close_index() -> None:
        index.close()

    runtime.on_stop.append(close_index)
    return runtime


__all__ = ["NAME", "build_runtime"]
