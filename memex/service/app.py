"""The ASGI app: the JSON API, the OpenAI-compatible API, MCP and the web page over one Service.

    service = Service(memex, Authenticator(tokens, PolicySource(policy, path)))
    app = create_app(service)      # run it with uvicorn; tests use it with fakes

Errors are JSON everywhere ({"error": "..."}; OpenAI's shape under /v1), with the status codes
the README lists. Every response carries a strict Content-Security-Policy: the page loads only
its own script and style, and answers are only ever inserted as text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memex.api.worker import Busy, ModelUnavailable
from memex.errors import BadRequest, EmptyIndex, MemexError
from memex.service import mcp_server, openai_api, routes
from memex.service.auth import Forbidden, Unauthenticated
from memex.service.core import Service
from memex.service.guard import LOCAL_HOSTS, MAX_BODY_BYTES, EdgeGuard
from memex.store.conversations import NoSuchConversation

log = logging.getLogger(__name__)

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def create_app(
    service: Service, *, hosts: Iterable[str] = LOCAL_HOSTS, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI:
    """`hosts`: the Host header values the service answers to (see guard.allowed_hosts)."""
    hosts = tuple(hosts)
    manager, mcp_endpoint = mcp_server.build(service, hosts=hosts)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(service.warm_up)
        async with manager.run():
            yield

    app = FastAPI(title="memex", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.include_router(routes.router)
    app.include_router(openai_api.router)
    app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint, methods=["GET", "POST", "DELETE"]))
    app.mount("/static", StaticFiles(directory=Path(str(routes.STATIC))), name="static")
    _handlers(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(EdgeGuard, hosts=hosts, max_body_bytes=max_body_bytes)  # outermost
    return app


def _handlers(app: FastAPI) -> None:
    def error(request: Request, status: int, message: str, kind: str, headers: dict[str, str] | None = None):
        if request.url.path.startswith("/v1/"):
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        else:
            body = {"error": message}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Unauthenticated):
        return error(request, 401, str(exc), "invalid_request_error", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return error(request, 403, str(exc), "permission_error")

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return error(request, 400, str(exc), "invalid_request_error")

    @app.exception_handler(NoSuchConversation)
    async def no_conversation(request: Request, exc: NoSuchConversation):
        return error(request, 404, str(exc), "not_found_error")

    @app.exception_handler(EmptyIndex)
    async def empty(request: Request, exc: EmptyIndex):
        return error(request, 404, str(exc), "not_found_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return error(request, 400, problems or "invalid request", "invalid_request_error")

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return error(request, 429, str(exc), "rate_limit_error", {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ModelUnavailable)
    async def unavailable(request: Request, exc: ModelUnavailable):
        return error(request, 503, str(exc), "server_error", {"Retry-After": "5"})

    @app.exception_handler(MemexError)
    async def memex_error(request: Request, exc: MemexError):
        return error(request, 500, str(exc), "server_error")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(request, exc.status_code, str(exc.detail), "invalid_request_error", exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(request, 500, "internal error (see the service log)", "server_error")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
