"""The console's pages and the changes made from them.

Reads run in the thread pool (plain functions: SQLite and the warehouse block); the sign-in
round trips and dead-letter replays are async (Kafka). A change is refused unless the user is
an operator and the CSRF token matches; insight changes carry the version the user saw, so a
change made by someone else in between is reported, never overwritten.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contracts.analysis import InsightCategory
from services.console.audit import ConsoleAudit
from services.console.auth import SignInError, TokenAuthenticator
from services.console.config import ConsoleSettings
from services.console.deadletters import DeadLetterIndex, Replayer, SelectionChangedError
from services.console.directory import Directory
from services.console.flows import FLOW_STATUSES, Flows
from services.console.inbox import (
    ACTION_LABELS,
    DONE_LABELS,
    SEVERITIES,
    STATUS_CHOICES,
    USER_ACTIONS,
    Inbox,
    InboxFilter,
)
from services.console.lists import ListFilter, Lists
from services.console.oidc import STATE_COOKIE, OidcSignIn
from services.console.overview import DEAL_BANDS, NOT_ANALYSED, OverviewFilter, OverviewQueries
from services.console.search import SearchIndex
from services.console.sessions import COOKIE
from services.console.subjects import SubjectPages
from services.console.web import STATIC, Forbidden, NotFound, Web, label, safe_next
from services.data_agent.datasets import UnknownSubjectError
from services.dlq.replay import Action
from services.execution_agent.insights import (
    TRANSITIONS,
    IllegalTransitionError,
    InsightNotFoundError,
    InsightRepository,
    StaleVersionError,
)

SIGNIN_CSRF_COOKIE = "revops_console_signin"
MAX_NOTE = 500


@dataclass
class Components:
    config: ConsoleSettings
    web: Web
    tokens: TokenAuthenticator
    oidc: OidcSignIn | None
    inbox: Inbox
    insights: InsightRepository
    overview: OverviewQueries
    subjects: SubjectPages
    lists: Lists
    flows: Flows
    deadletters: DeadLetterIndex
    replayer: Replayer
    audit: ConsoleAudit
    directory: Directory
    search: SearchIndex


def options(values: Iterable[str], shown: Callable[[str], str] = label) -> list[tuple[str, str]]:
    """(value, text) pairs for a select list."""
    return [(v, shown(v)) for v in values]


class Pages:
    def __init__(self, c: Components) -> None:
        self.c = c
        self.web = c.web

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.home),
            Route("/signin", self.signin_form, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/auth/oidc/start", self.oidc_start),
            Route("/auth/oidc/callback", self.oidc_callback),
            Route("/inbox", self.inbox),
            Route("/insights/{insight_id}", self.insight),
            Route("/insights/{insight_id}/transition", self.transition, methods=["POST"]),
            Route("/overview", self.overview),
            Route("/deals", self.deals),
            Route("/deals/{opportunity_id}", self.deal),
            Route("/accounts", self.accounts),
            Route("/accounts/{account_id}", self.account),
            Route("/operations", self.operations),
            Route("/operations/flows/{request_id}", self.flow),
            Route("/operations/dlq/dry-run", self.dlq_dry_run, methods=["POST"]),
            Route("/operations/dlq/replay", self.dlq_replay, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    # -- sign-in ----------------------------------------------------------------------------
    def home(self, request: Request) -> Response:
        return RedirectResponse("/inbox", status_code=303)

    def signin_form(self, request: Request, error: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.web.render(
            request,
            "signin.html",
            {
                "signin_csrf": token,
                "next": safe_next(request.query_params.get("next")),
                "error": error,
                "tokens_configured": self.c.tokens.configured(),
                "oidc": self.c.oidc is not None,
                "oidc_name": self.c.config.oidc_provider_name,
            },
            status_code=401 if error else 200,
        )
        response.set_cookie(
            SIGNIN_CSRF_COOKIE,
            token,
            max_age=1800,
            httponly=True,
            secure=self.web.cookie_secure,
            samesite="strict",
            path="/signin",
        )
        return response

    async def signin(self, request: Request) -> Response:
        form = await request.form()
        offered, cookie = form.get("csrf"), request.cookies.get(SIGNIN_CSRF_COOKIE)
        if not (isinstance(offered, str) and cookie and secrets.compare_digest(offered, cookie)):
            return await run_in_threadpool(
                self.signin_form, request, "The sign-in form expired; please try again."
            )
        try:
            Web.check_origin(request)
            token = form.get("token")
            user = await run_in_threadpool(
                self.c.tokens.authenticate, token if isinstance(token, str) else ""
            )
        except (SignInError, Forbidden) as exc:
            return await run_in_threadpool(self.signin_form, request, str(exc))
        next_path = form.get("next")
        return await run_in_threadpool(
            self._signed_in, user, next_path if isinstance(next_path, str) else None
        )

    def _signed_in(self, user: Any, next_path: str | None) -> Response:
        session_id = self.web.sessions.create(user)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        self.web.sign_in_cookie(response, session_id, int(self.web.sessions.ttl_s))
        response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
        return response

    async def signout(self, request: Request) -> Response:
        form = await request.form()
        session = self.web.session(request)
        if session is not None:
            self.web.check_csrf(request, session, form)
            self.web.sessions.delete(session)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def oidc_start(self, request: Request) -> Response:
        if self.c.oidc is None:
            raise NotFound("single sign-on is not configured")
        try:
            url, state = self.c.oidc.start(self._redirect_uri(request))
        except SignInError as exc:
            return self.signin_form(request, str(exc))
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=600,
            httponly=True,
            secure=self.web.cookie_secure,
            samesite="lax",  # sent on the provider's redirect back (a top-level GET)
            path="/auth/oidc",
        )
        return response

    def oidc_callback(self, request: Request) -> Response:
        if self.c.oidc is None:
            raise NotFound("single sign-on is not configured")
        params = request.query_params
        if params.get("error"):
            return self.signin_form(request, f"The provider refused: {params.get('error')}")
        try:
            user = self.c.oidc.finish(
                params.get("code") or "",
                params.get("state") or "",
                request.cookies.get(STATE_COOKIE),
                self._redirect_uri(request),
            )
        except SignInError as exc:
            return self.signin_form(request, str(exc))
        response = self._signed_in(user, "/inbox")
        response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
        return response

    def _redirect_uri(self, request: Request) -> str:
        base = self.c.config.public_url or f"{request.url.scheme}://{request.url.netloc}"
        return base.rstrip("/") + "/auth/oidc/callback"

    # -- insights ---------------------------------------------------------------------------
    def inbox(self, request: Request) -> Response:
        session = self.web.require(request)
        f = InboxFilter.from_query(request.query_params)
        page = self.c.inbox.page(f)
        return self.web.render(
            request,
            "inbox.html",
            {
                "f": f,
                "page": page,
                "statuses": options(STATUS_CHOICES),
                "severities": options(SEVERITIES),
                "categories": options(c.value for c in InsightCategory),
                "owners": self.c.directory.owners(),
                "teams": options(self.c.directory.teams()),
                "action_labels": ACTION_LABELS,
                "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            },
            session,
        )

    def insight(self, request: Request) -> Response:
        session = self.web.require(request)
        insight_id = request.path_params["insight_id"]
        try:
            insight = self.c.insights.get(insight_id)
        except InsightNotFoundError:
            raise NotFound(f"no insight {insight_id}") from None
        status = insight.effective_status().value
        return self.web.render(
            request,
            "insight.html",
            {
                "insight": insight,
                "status": status,
                "audit": self.c.insights.audit(insight_id),
                "actions": [a for a in USER_ACTIONS if status in TRANSITIONS[a].sources],
                "action_labels": ACTION_LABELS,
                "back": request.url.path,
            },
            session,
        )

    async def transition(self, request: Request) -> Response:
        form = await request.form()
        session = self.web.require_operator(request, form)
        insight_id = request.path_params["insight_id"]
        action = str(form.get("action") or "")
        note = str(form.get("note") or "").strip()[:MAX_NOTE] or None
        version_text = str(form.get("version") or "")
        back = str(form.get("back") or f"/insights/{insight_id}")
        if action not in ACTION_LABELS or not version_text.isdigit():
            return self.web.redirect_back(
                back, session, {"kind": "error", "text": "That change is not one the form offers."}
            )
        message = await run_in_threadpool(
            self._apply, insight_id, action, session.user.name, note, int(version_text)
        )
        return self.web.redirect_back(back, session, message)

    def _apply(
        self, insight_id: str, action: str, actor: str, note: str | None, version: int
    ) -> dict[str, Any]:
        try:
            done = self.c.insights.transition(insight_id, action, actor, note, version)
        except StaleVersionError:
            return self._conflict(insight_id, version)
        except IllegalTransitionError as exc:
            return {"kind": "error", "text": str(exc), "insight_id": insight_id}
        except InsightNotFoundError:
            return {"kind": "error", "text": f"Insight {insight_id} no longer exists."}
        return {
            "kind": "ok",
            "text": f"{DONE_LABELS[action]}: {done.title} is now {done.status.value} "
            f"(version {done.version}).",
            "insight_id": insight_id,
        }

    def _conflict(self, insight_id: str, seen_version: int) -> dict[str, Any]:
        current = self.c.insights.get(insight_id)
        last = self.c.insights.audit(insight_id)[-1]
        return {
            "kind": "conflict",
            "text": (
                f"Changed by someone else: {current.title} is now "
                f"{current.effective_status().value} (version {current.version}; you saw "
                f"version {seen_version}). Last change: {last.action} by {last.actor} at "
                f"{last.at:%Y-%m-%d %H:%M} UTC. Nothing was overwritten; review and try again."
            ),
            "insight_id": insight_id,
            "status": current.effective_status().value,
            "version": current.version,
            "actor": last.actor,
        }

    # -- overview, lists, subjects ------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        session = self.web.require(request)
        params = request.query_params
        f = OverviewFilter(owner=params.get("owner") or None, team=params.get("team") or None)
        return self.web.render(
            request,
            "overview.html",
            {
                "o": self.c.overview.build(f),
                "f": f,
                "owners": self.c.directory.owners(),
                "teams": options(self.c.directory.teams()),
            },
            session,
        )

    def deals(self, request: Request) -> Response:
        session = self.web.require(request)
        f = ListFilter.from_query(request.query_params)
        return self.web.render(
            request,
            "deals.html",
            {
                "f": f,
                "page": self.c.lists.deals(f),
                "stages": options(self.c.lists.stages(), str),
                "bands": options([*DEAL_BANDS, NOT_ANALYSED]),
                "owners": self.c.directory.owners(),
            },
            session,
        )

    def accounts(self, request: Request) -> Response:
        session = self.web.require(request)
        f = ListFilter.from_query(request.query_params)
        return self.web.render(
            request,
            "accounts.html",
            {"f": f, "page": self.c.lists.accounts(f), "owners": self.c.directory.owners()},
            session,
        )

    def deal(self, request: Request) -> Response:
        session = self.web.require(request)
        opportunity_id = request.path_params["opportunity_id"]
        try:
            view = self.c.subjects.deal(opportunity_id)
        except UnknownSubjectError as exc:
            raise NotFound(str(exc)) from None
        return self.web.render(request, "deal.html", {"v": view}, session)

    def account(self, request: Request) -> Response:
        session = self.web.require(request)
        account_id = request.path_params["account_id"]
        try:
            view = self.c.subjects.account(account_id)
        except UnknownSubjectError as exc:
            raise NotFound(str(exc)) from None
        return self.web.render(request, "account.html", {"v": view}, session)

    # -- operations ---------------------------------------------------------------------------
    def operations(self, request: Request) -> Response:
        session = self.web.require(request)
        status = request.query_params.get("status") or None
        page_text = request.query_params.get("page") or "1"
        page = max(1, int(page_text)) if page_text.isdigit() else 1
        size = self.c.config.page_size
        flows, total = self.c.flows.recent(status, page, size)
        index = self.c.deadletters
        return self.web.render(
            request,
            "operations.html",
            {
                "flows": flows,
                "flows_total": total,
                "flow_status": status,
                "flow_statuses": FLOW_STATUSES,
                "page": page,
                "pages": max(1, -(-total // size)),
                "groups": index.groups(),
                "dlq_updated_at": index.updated_at,
                "dlq_error": index.error,
                "replays": self.c.audit.recent(),
            },
            session,
        )

    def flow(self, request: Request) -> Response:
        session = self.web.require(request)
        request_id = request.path_params["request_id"]
        timeline = self.c.flows.timeline(request_id)
        if timeline is None:
            raise NotFound(f"no flow for request {request_id}")
        return self.web.render(request, "flow.html", {"t": timeline}, session)

    def _dlq_group(self, form: Any) -> tuple[str, str]:
        topic, code = str(form.get("topic") or ""), str(form.get("code") or "")
        if topic not in self.c.deadletters.topics or not code:
            raise NotFound(f"{topic!r} is not one of this stack's dead-letter topics")
        return topic, code

    async def dlq_dry_run(self, request: Request) -> Response:
        form = await request.form()
        session = self.web.require_operator(request, form)
        topic, code = self._dlq_group(form)
        plan = await self.c.replayer.dry_run(topic, code)
        return self.web.render(
            request,
            "dlq_dry_run.html",
            {"topic": topic, "code": code, "plan": plan, "Action": Action},
            session,
        )

    async def dlq_replay(self, request: Request) -> Response:
        form = await request.form()
        session = self.web.require_operator(request, form)
        topic, code = self._dlq_group(form)
        if form.get("confirm") != "yes":
            return self.web.redirect_back(
                "/operations", session, {"kind": "error", "text": "Tick the confirmation box."}
            )
        try:
            report = await self.c.replayer.confirm(topic, code, str(form.get("digest") or ""))
        except SelectionChangedError as exc:
            return self.web.redirect_back(
                "/operations", session, {"kind": "conflict", "text": str(exc)}
            )
        summary = ", ".join(f"{report.count(a)} {a.value}" for a in Action if report.count(a))
        await run_in_threadpool(
            self.c.audit.record, session.user, "dlq_replay", f"{topic} / {code}", summary
        )
        return self.web.redirect_back(
            "/operations",
            session,
            {"kind": "ok", "text": f"Replay of {topic} / {code}: {summary or 'nothing to do'}."},
        )
