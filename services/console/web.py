"""The console's HTTP plumbing: security headers, who is signed in, CSRF, one-shot messages,
rendering, and the errors a person may meet (sign in, not allowed, not found).

Every response carries a CSP without inline script or style, frame-ancestors 'none' and
X-Frame-Options, nosniff, a same-origin referrer policy and no-store caching. Every POST must
carry the session's CSRF token (and, when the browser sends one, a same-origin Origin).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.evidence import describe
from services.console.sessions import COOKIE, Session, SessionStore

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every response; pages are never cached
    (they hold customer data), static files may be."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def safe_next(target: str | None, default: str = "/inbox") -> str:
    """Only a path on this site (no scheme, no host, no `//`): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.0f}"


def when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def day(value: date | datetime | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value[:10]
    return value.strftime("%Y-%m-%d")


def label(value: object) -> str:
    text = str(value or "").replace("_", " ")
    return text[:1].upper() + text[1:]


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money, when=when, day=day, label=label, number=number, evidence=describe
    )
    return env


class Web:
    """Request helpers shared by the page handlers."""

    def __init__(self, sessions: SessionStore, cookie_secure: bool) -> None:
        self.sessions = sessions
        self.cookie_secure = cookie_secure
        self.env = templates()

    # -- who --------------------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def require(self, request: Request) -> Session:
        session = self.session(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        return session

    def require_operator(self, request: Request, form: FormData) -> Session:
        """A change: signed in, CSRF token and origin right, and the operator role."""
        session = self.require(request)
        self.check_csrf(request, session, form)
        if not session.user.may_change:
            raise Forbidden(
                f"{session.user.name} is a {session.user.role.value}: only operators change "
                "insights or replay dead letters"
            )
        return session

    def check_csrf(self, request: Request, session: Session, form: FormData) -> None:
        offered = form.get("csrf")
        if not session.csrf_ok(offered if isinstance(offered, str) else None):
            raise Forbidden("the form's security token is missing or stale; reload the page")
        self.check_origin(request)

    @staticmethod
    def check_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is None:  # not every browser sends it on a same-origin POST
            return
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin != expected:
            raise Forbidden("this change was sent from another site")

    # -- responses --------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any],
        session: Session | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        flash = self.sessions.take_flash(session) if session is not None else None
        page = self.env.get_template(template).render(
            request=request,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            flash=flash,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    def redirect_back(
        self, target: str | None, session: Session, message: dict[str, Any] | None
    ) -> Response:
        if message is not None:
            self.sessions.flash(session, message)
        return RedirectResponse(safe_next(target), status_code=303)

    def sign_in_cookie(self, response: Response, session_id: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=max_age,
            httponly=True,
            secure=self.cookie_secure,
            samesite="lax",
            path="/",
        )

    def error_page(self, request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        session = self.session(request)
        page = self.env.get_template("error.html").render(
            request=request,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            flash=None,
            path=request.url.path,
            status=status,
            title=title,
            detail=detail,
        )
        return HTMLResponse(page, status_code=status)


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/signin?next={quote(next_path, safe='')}", status_code=303)
