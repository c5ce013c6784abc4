"""Console process: the web console on the shared `ServiceRuntime` (its /metrics, /healthz and
/readyz on the same port), reading the execution agent's store (SQLite or PostgreSQL, as the
services use it: services/console/db.py), the warehouse and the DLQ topics, writing insight
changes through the insight store and replays through the DLQ tool.

`revops serve console` or `python -m services.console`; port `REVOPS_HTTP_PORT` (8090).
"""

from __future__ import annotations

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common.periodic import PeriodicTask
from services.common.runtime import ServiceRuntime
from services.common.security import provider_from_settings
from services.common.settings import Settings
from services.console.audit import ConsoleAudit
from services.console.auth import TokenAuthenticator
from services.console.config import ConsoleSettings
from services.console.db import open_console_store
from services.console.deadletters import DeadLetterIndex, Replayer
from services.console.directory import Directory
from services.console.flows import Flows, StageClock
from services.console.inbox import Inbox
from services.console.lists import Lists
from services.console.oidc import OidcSignIn
from services.console.overview import OverviewQueries
from services.console.pages import Components, Pages
from services.console.search import SearchIndex
from services.console.sessions import SessionStore
from services.console.subjects import SubjectPages
from services.console.web import (
    Forbidden,
    NotFound,
    SecurityHeaders,
    SignInRequired,
    Web,
    sign_in_redirect,
)
from services.data_agent.datasets import DatasetRepository
from services.data_agent.warehouse import WarehouseError, open_warehouse
from services.decision_agent.consumption.analyzer import load_consumption_rules
from services.execution_agent.executions import ExecutionRepository
from services.execution_agent.health import HealthRepository
from services.execution_agent.history import AnalysisHistory
from services.execution_agent.insights import InsightRepository
from services.execution_agent.routing import RoutingRules

NAME = "console"
log = structlog.get_logger("console")


def build_components(settings: Settings, config: ConsoleSettings) -> Components:
    state = settings.resolved_state_dir
    store, agent_store = open_console_store(state, settings.database_url)
    provider = provider_from_settings()
    sessions = SessionStore(store, config.session_ttl_s)
    directory = Directory(store, RoutingRules.load(settings.routing_file))
    search = SearchIndex(store)
    inbox = Inbox(store, search, config.page_size)
    overview = OverviewQueries(store, directory.deal_team)
    try:
        warehouse = open_warehouse(settings)
    except WarehouseError as exc:  # one line for the operator, not a traceback
        raise SystemExit(f"console: cannot start: {exc}") from None
    subjects = SubjectPages(
        store,
        DatasetRepository(warehouse),
        AnalysisHistory(agent_store),
        HealthRepository(agent_store),
        load_consumption_rules(settings.rules_dir),
        inbox,
    )
    return Components(
        config=config,
        web=Web(sessions, config.cookie_secure),
        tokens=TokenAuthenticator(provider, config.users_secret),
        oidc=OidcSignIn(config, provider, store) if config.oidc_enabled else None,
        inbox=inbox,
        insights=InsightRepository(agent_store),
        overview=overview,
        subjects=subjects,
        lists=Lists(store, overview, config.page_size),
        flows=Flows(
            store,
            ExecutionRepository(agent_store),
            StageClock(
                state, settings.consumer_group_prefix, store if settings.database_url else None
            ),
        ),
        deadletters=DeadLetterIndex(settings),
        replayer=Replayer(settings),
        audit=ConsoleAudit(store),
        directory=directory,
        search=search,
    )


def build_app(components: Components) -> Starlette:
    web = components.web

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return sign_in_redirect(exc.next_path)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        return web.error_page(request, 403, "Not allowed", exc.reason)

    async def not_found(request: Request, exc: Exception) -> Response:
        what = exc.what if isinstance(exc, NotFound) else "no such page"
        return web.error_page(request, 404, "Not found", what)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return await not_found(request, exc)
        return web.error_page(request, exc.status_code, "Request refused", str(exc.detail))

    return Starlette(
        routes=Pages(components).routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            SignInRequired: sign_in,
            Forbidden: forbidden,
            NotFound: not_found,
            HTTPException: http_error,
        },
        max_body_size=components.config.max_form_bytes,
    )


def refresh_directory(settings: Settings, components: Components) -> None:
    """The directory from the warehouse, then what depends on it: the search documents of
    deals and accounts (insights re-indexed with their subjects' names) and the figures."""
    warehouse = open_warehouse(settings)
    try:
        components.directory.refresh(warehouse)
    finally:
        warehouse.close()
    components.search.rewrite_directory()
    components.search.catch_up()
    components.overview.refresh()


async def build_runtime(
    settings: Settings, http_port: int | None, config: ConsoleSettings | None = None
) -> ServiceRuntime:
    config = config or ConsoleSettings()
    components = build_components(settings, config)
    app = build_app(components)
    # The whole console is one ASGI app behind a catch-all route (a Route whose endpoint is
    # an ASGI app passes every method through), after the runtime's /metrics and probes.
    runtime = ServiceRuntime(
        NAME, settings, http_port=http_port, extra_routes=[Route("/{path:path}", app)]
    )
    runtime.every(
        "refresh_directory", lambda: refresh_directory(settings, components), in_thread=True
    )
    runtime.every("purge_sessions", components.web.sessions.purge_expired, in_thread=True)
    # Kept fresh between directory refreshes: the search index and the overview's figures.
    search, overview = components.search, components.overview
    runtime.housekeeping += [
        PeriodicTask("search_catch_up", config.search_refresh_s, search.catch_up, in_thread=True),
        PeriodicTask(
            "overview_figures", config.figures_refresh_s, overview.refresh, in_thread=True
        ),
    ]
    runtime.on_start.append(components.deadletters.start)
    runtime.on_stop.append(components.deadletters.stop)
    return runtime


__all__ = ["NAME", "build_app", "build_components", "build_runtime"]
