"""The service's outer edge, before anything reads a body or checks a token: the Host header must
be one the service answers to (DNS rebinding), a path with a NUL byte is not found, and a request
body is refused with 413 beyond a size limit, whether it declares its length or streams."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024  # a question, a chat history, an MCP call: far less than this
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def host_name(value: str) -> str:
    """A Host header (or an --allowed-host) without its port, lowercased; IPv6 in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    if value.count(":") > 1:  # a bare IPv6 address
        return f"[{value}]"
    return value.split(":", 1)[0]


def allowed_hosts(listening: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The loopback names, the address the service listens on (unless it is a wildcard) and
    the names given with --allowed-host."""
    names = [*LOCAL_HOSTS]
    if listening not in ("0.0.0.0", "::", ""):
        names.append(host_name(listening))
    names += [host_name(h) for h in extra]
    return tuple(dict.fromkeys(names))


class BodyTooLarge(Exception):
    pass


class EdgeGuard:
    def __init__(self, app: ASGIApp, *, hosts: Iterable[str], max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.hosts = frozenset(host_name(h) for h in hosts)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if host_name(host) not in self.hosts:
            await _refuse(scope, send, 400, f"this service does not answer to the host {host[:100]!r}")
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("raw_path", b"").lower():
            await _refuse(scope, send, 404, "not found")
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _refuse(scope, send, 400, "invalid Content-Length")
                return
            if length > self.max_body_bytes:
                await _refuse(scope, send, 413, self._too_large())
                return
        received = 0
        too_large = replaced = False

        async def counted() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            # Frameworks turn an error while reading the body into their own response (FastAPI: 400):
            # once the limit was passed, whatever the app answers becomes the 413.
            nonlocal replaced
            if too_large:
                if not replaced:
                    replaced = True
                    await _refuse(scope, send, 413, self._too_large())
                return
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not replaced:
                replaced = True
                await _refuse(scope, send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes:,} bytes"


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope.get("path", "").startswith("/v1/"):
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    else:
        body = {"error": message}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
