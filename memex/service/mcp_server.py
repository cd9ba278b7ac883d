"""An MCP server (the official Python SDK, streamable HTTP at /mcp) with two tools, `search` and
`ask`, answering as the caller: the same bearer token as the rest of the API is checked before
any MCP message is read, and the tools take the caller from that request, never from their
arguments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from memex.api.worker import Busy
from memex.errors import BadRequest, MemexError
from memex.service.auth import Caller, Forbidden, Unauthenticated
from memex.service.core import Service

CALLER = "memex.caller"


def build(service: Service, *, hosts: Iterable[str]) -> tuple[StreamableHTTPSessionManager, MCPAuth]:
    """The session manager (to run in the app's lifespan) and the ASGI endpoint for /mcp."""
    server = MCPServer(
        "memex",
        instructions=(
            "memex answers from a company's archives, as the signed-in user: `search` returns "
            "ranked passages with their sources, `ask` a short answer with numbered sources."
        ),
        log_level="WARNING",
    )

    @server.tool()
    async def search(query: str, ctx: Context, k: int = 10) -> dict[str, Any]:
        """Passages from the archives you may read that best match QUERY, best first."""
        who = _caller(ctx)
        hits = await _call(service.reads.search, query, k=k, channel="mcp", **who.identity)
        return {"hits": [hit.to_json() for hit in hits]}

    @server.tool()
    async def ask(question: str, ctx: Context, conversation: str | None = None) -> dict[str, Any]:
        """A short answer to QUESTION from the archives you may read, with numbered sources and
        the sentences that support it. CONVERSATION: "new" to start a conversation, or the id an
        earlier answer returned, so that a follow-up ("who was on call?") leans on it."""
        who = _caller(ctx)
        job = await _call(
            service.reads.submit_ask, question, channel="mcp", conversation=conversation, **who.identity
        )
        try:
            answer = await anyio.to_thread.run_sync(job.future.result, abandon_on_cancel=True)
        except MemexError as exc:
            raise ToolError(str(exc)) from None
        finally:
            job.cancel()
        return answer.to_json()

    # DNS rebinding: the SDK's guard with the service's own host list (the app checks it too).
    names = [n for host in hosts for n in (host, f"{host}:*")]
    origins = [f"{scheme}://{n}" for scheme in ("http", "https") for n in names]
    manager = StreamableHTTPSessionManager(
        app=server._lowlevel_server,
        stateless=True,
        json_response=True,
        security_settings=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=names, allowed_origins=origins
        ),
    )
    return manager, MCPAuth(service, manager)


class MCPAuth:
    """The ASGI endpoint for /mcp: authenticate, then hand over to the MCP transport."""

    def __init__(self, service: Service, manager: StreamableHTTPSessionManager) -> None:
        self.service = service
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1") or None
        try:
            scope[CALLER] = await run_in_threadpool(self.service.auth.caller, header)
        except Unauthenticated as exc:
            response = JSONResponse(
                {"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        except Forbidden as exc:
            await JSONResponse({"error": str(exc)}, status_code=403)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def _caller(ctx: Context) -> Caller:
    request = ctx.request_context.request
    who = getattr(request, "scope", {}).get(CALLER)
    if not isinstance(who, Caller):  # cannot happen behind MCPAuth; refuse rather than guess
        raise ToolError("not signed in")
    return who


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except Busy as exc:
        raise ToolError(f"{exc} (retry in {exc.retry_after} s)") from None
    except (BadRequest, MemexError) as exc:
        raise ToolError(str(exc)) from None
