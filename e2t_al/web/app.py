"""The lab web app: pages for people, a JSON API for instruments, both over the store's service layer.

``create_app(url)`` builds it for one store; ``e2t-al web`` serves it with uvicorn on 127.0.0.1 by default.
Refusals from the store become clear errors: 404 (not found), 409 (probably entered twice), 422 (invalid input),
400 (any other refusal); pages show them as a page, the API as ``{"detail": ...}``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from db.engine import NotFoundError, StoreError, store_engine
from db.schemas import validation_reason
from db.service import DuplicateMeasurementError, IllegalTransition, ImportRefused, NotAllowed
from e2t_al.web import api, pages
from e2t_al.web.security import LoginRequired
from e2t_al.web.throttle import LoginThrottle

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


JSON_LIMIT_BYTES = 1_000_000
FORM_OVERHEAD_BYTES = 64_000  # multipart boundaries and the other form fields around an upload


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body above its route's limit (JSON and forms 1 MB; a multipart upload the upload
    limit plus form overhead) is refused with 413 before anything parses it or checks who sent it, whether it
    declares its length or streams it."""

    def __init__(self, app, upload_limit: int):
        self.app, self.upload_limit = app, upload_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.upload_limit + FORM_OVERHEAD_BYTES if multipart else JSON_LIMIT_BYTES
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await self.refuse(send, limit)
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await self.refuse(send, limit)

    @staticmethod
    async def refuse(send, limit: int) -> None:
        body = f'{{"detail": "request body larger than {limit} bytes"}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")] + [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _status_of(exc: Exception) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (DuplicateMeasurementError, IllegalTransition)):
        return 409
    if isinstance(exc, NotAllowed):
        return 403
    if isinstance(exc, (ImportRefused, ValidationError, RequestValidationError)):
        return 422
    return 400


def _message_of(exc: Exception) -> str:
    if isinstance(exc, (ValidationError, RequestValidationError)):
        return validation_reason(exc)
    return str(exc)


def plotly_js() -> FileResponse:
    """plotly.js as the plotly package ships it: the dashboard's interactive plots load it from this site only (the
    CSP allows no other), never from a CDN."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise HTTPException(404, "plotly is not installed: the dashboard shows its PNG plots")
    return FileResponse(Path(spec.origin).parent / "package_data" / "plotly.min.js", media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def create_app(database_url: str | None = None, secure_cookies: bool = False) -> FastAPI:
    """The app for the store at ``database_url`` (default ``$E2T_AL_DATABASE_URL``); it must be migrated.
    ``secure_cookies``: send cookies over HTTPS only (set it behind a TLS proxy)."""
    app = FastAPI(title="E2T-AL lab assistant", version="1", openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None)  # the docs pages would load scripts from the internet
    app.state.engine = store_engine(database_url)
    app.state.secure_cookies = secure_cookies
    app.state.login_throttle = LoginThrottle()
    app.add_api_route("/static/vendor/plotly.min.js", plotly_js, include_in_schema=False)  # before the mount: it wins
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    def refused(request: Request, exc: Exception):
        status, message = _status_of(exc), _message_of(exc)
        if request.url.path.startswith("/api/"):
            body = {"detail": message}
            if isinstance(exc, ImportRefused):
                body["problems"] = [str(p) for p in exc.problems]
            if isinstance(exc, IllegalTransition):
                body["current_state"] = exc.current
            return JSONResponse(body, status_code=status)
        return pages.render(request, "error.html", None, status, message=message)

    for error in (StoreError, ValidationError, RequestValidationError):
        app.add_exception_handler(error, refused)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return pages.render(request, "error.html", None, exc.status_code, message=str(exc.detail))

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired):
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return pages.render(request, "error.html", None, 401, message="you are signed out: sign in again")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        """Every response carries the security headers, an unexpected error's 500 included; nothing but the
        static files may be cached (pages and API answers can carry tokens and lab data)."""
        try:
            response = await call_next(request)
        except Exception:
            logging.getLogger("e2t_al.web").exception("unexpected error on %s %s", request.method, request.url.path)
            response = PlainTextResponse("internal error: the request was not completed", status_code=500)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(BodyLimit, upload_limit=pages.MAX_UPLOAD_BYTES)
    return app
