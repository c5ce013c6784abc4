"""The ingress's HTTP routes: triggers in, Salesforce events in, flow status out.

Every refused request stops here: it is bounded (413), authenticated (401), typed (415) and
validated (422) before anything is produced, and the log line of a refusal carries the route,
status and reason, never the body, a token or a signature.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import AgentName, RawTrigger
from services.common.records import Outgoing
from services.common.security import AuthenticationError
from services.common.settings import Settings
from services.ingress import metrics
from services.ingress.auth import RequestAuthenticator
from services.ingress.config import IngressSettings
from services.ingress.index import FlowIndex
from services.ingress.salesforce import Ignored, StageRules, map_stage_change
from services.ingress.schemas import (
    EventIgnored,
    FieldProblem,
    FlowStatus,
    Problem,
    RejectionInfo,
    SalesforceOpportunityEvent,
    TriggerAccepted,
)

log = structlog.get_logger("ingress")

M = TypeVar("M", bound=BaseModel)

Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]

TRIGGERS_PATH = "/v1/triggers"
FLOW_PATH = "/v1/flows/{request_id}"
SALESFORCE_PATH = "/v1/events/salesforce/opportunity"


class Refused(Exception):
    """A request answered with a problem document (4xx/5xx) before it reached Kafka."""

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers or {}


def problem(status: int, title: str, detail: str, code: str | None = None) -> Problem:
    return Problem(title=title, status=status, detail=detail, code=code)


def status_url(request_id: str) -> str:
    return FLOW_PATH.replace("{request_id}", request_id)


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _json(model: BaseModel, status: int, headers: dict[str, str] | None = None) -> Response:
    media = "application/problem+json" if isinstance(model, Problem) else "application/json"
    return JSONResponse(
        model.model_dump(mode="json", exclude_none=isinstance(model, Problem)),
        status_code=status,
        headers=headers,
        media_type=media,
    )


def schema_problem(exc: ValidationError) -> Problem:
    errors = [
        FieldProblem(
            loc=".".join(str(part) for part in err["loc"]) or "(body)",
            msg=err["msg"],
            type=err["type"],
        )
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return Problem(
        title="Unprocessable Content",
        status=422,
        detail=f"the body does not match the schema ({len(errors)} problem(s))",
        code="schema_violation",
        errors=errors,
    )


class IngressApi:
    def __init__(
        self,
        settings: Settings,
        config: IngressSettings,
        authenticator: RequestAuthenticator,
        index: FlowIndex,
        publish: Publish,
        rules: StageRules,
    ) -> None:
        self._settings = settings
        self._config = config
        self._auth = authenticator
        self._index = index
        self._publish = publish
        self._rules = rules

    def routes(self) -> list[Route]:
        return [
            Route(
                TRIGGERS_PATH, self._observed(TRIGGERS_PATH, self.post_trigger), methods=["POST"]
            ),
            Route(FLOW_PATH, self._observed(FLOW_PATH, self.get_flow), methods=["GET"]),
            Route(
                SALESFORCE_PATH,
                self._observed(SALESFORCE_PATH, self.post_salesforce),
                methods=["POST"],
            ),
        ]

    # -- endpoints ------------------------------------------------------------------------
    async def post_trigger(self, request: Request) -> Response:
        body = await self._authenticated_body(request)
        trigger = self._validate(RawTrigger, body)
        request_id = trigger.request_id or new_request_id()
        await self._accept(trigger.model_copy(update={"request_id": request_id}))
        return _json(TriggerAccepted(request_id=request_id, status_url=status_url(request_id)), 202)

    async def post_salesforce(self, request: Request) -> Response:
        body = await self._authenticated_body(request)
        event = self._validate(SalesforceOpportunityEvent, body)
        mapped = map_stage_change(event, self._rules)
        if isinstance(mapped, Ignored):
            log.info(
                "salesforce_event_ignored",
                reason=mapped.reason,
                opportunity_id=event.payload.opportunity_id,
            )
            return _json(EventIgnored(reason=mapped.reason), 200)
        request_id = mapped.request_id or new_request_id()
        await self._accept(mapped)
        return _json(TriggerAccepted(request_id=request_id, status_url=status_url(request_id)), 202)

    async def get_flow(self, request: Request) -> Response:
        # A GET has no body: an HMAC client signs the path instead, so a captured signature
        # cannot read another request's status. Reads are safe to repeat (no replay check).
        self._auth.authenticate(request.headers, request.url.path.encode(), replayable=True)
        request_id = request.path_params["request_id"]
        flow = self._index.flow(request_id)
        if flow is not None:
            return _json(FlowStatus(request_id=request_id, status="complete", flow=flow), 200)
        rejection = self._index.rejection(request_id)
        if rejection is not None:
            status = FlowStatus(
                request_id=request_id,
                status="rejected",
                flow=None,
                rejection=RejectionInfo(
                    code=rejection.code,
                    reason=rejection.reason,
                    dead_letter=rejection.dlq_position,
                ),
            )
            return _json(status, 200)
        if self._index.is_accepted(request_id):
            return _json(FlowStatus(request_id=request_id, status="accepted", flow=None), 200)
        raise Refused(problem(404, "Not Found", "no request with this id", code="unknown_request"))

    # -- the steps every POST takes -------------------------------------------------------
    async def _authenticated_body(self, request: Request) -> bytes:
        body = await self._bounded_body(request)
        content_type = request.headers.get("content-type", "")
        self._auth.authenticate(request.headers, body)
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise Refused(
                problem(415, "Unsupported Media Type", "send application/json", "media_type")
            )
        return body

    async def _bounded_body(self, request: Request) -> bytes:
        limit = self._config.max_body_bytes
        too_large = Refused(
            problem(413, "Content Too Large", f"the body is over {limit} bytes", "body_too_large")
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)

    @staticmethod
    def _validate(model: type[M], body: bytes) -> M:
        try:
            return model.model_validate_json(body, strict=True)
        except ValidationError as exc:
            raise Refused(schema_problem(exc)) from None

    async def _accept(self, trigger: RawTrigger) -> None:
        """Produce the trigger (acknowledged by Kafka), then remember its request id."""
        assert trigger.request_id is not None
        key = trigger.parameters.account_id or "fleet"
        out = Outgoing(
            self._settings.topics.triggers, key, trigger, audience=AgentName.DATA_AGENT.value
        )
        try:
            # Bounded: while Kafka is down a produce waits for the broker; the client gets a
            # 503 it can retry (with the same request_id, the retry is the same request).
            await asyncio.wait_for(self._publish([out]), self._config.publish_timeout_s)
        except Exception as exc:
            log.error("trigger_publish_failed", error=type(exc).__name__)
            raise Refused(
                problem(503, "Service Unavailable", "the trigger could not be queued", "kafka"),
                {"Retry-After": str(self._config.retry_after_s)},
            ) from None
        self._index.accept(trigger.request_id)
        log.info(
            "trigger_accepted",
            request_id=trigger.request_id,
            analysis_type=trigger.parameters.analysis_type.value,
            account_id=trigger.parameters.account_id,
        )

    # -- wrapping: problems, metrics, logs -----------------------------------------------
    def _observed(self, route: str, endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await endpoint(request)
            except AuthenticationError as exc:
                response = _json(
                    problem(401, "Unauthorized", exc.reason, exc.code.value),
                    401,
                    {"WWW-Authenticate": 'Bearer realm="revops", HMAC-SHA256'},
                )
                self._log_refusal(request, route, 401, exc.code.value, exc.reason)
            except Refused as exc:
                response = _json(exc.problem, exc.problem.status, exc.headers)
                if exc.problem.status != 404:
                    self._log_refusal(
                        request, route, exc.problem.status, exc.problem.code, exc.problem.detail
                    )
            metrics.observe(route, request.method, response.status_code, started)
            return response

        return run

    @staticmethod
    def _log_refusal(
        request: Request, route: str, status: int, code: str | None, reason: str
    ) -> None:
        log.warning(
            "request_refused",
            route=route,
            status=status,
            code=code,
            reason=reason,
            client=request.client.host if request.client else None,
        )
