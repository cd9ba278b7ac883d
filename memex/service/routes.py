"""The JSON API (/api/...), the health check and the web page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from memex.answer.pipeline import Answer
from memex.api import reads
from memex.api.worker import Job, ModelUnavailable
from memex.service.auth import Caller
from memex.service.core import AnswerStream, Service

NOT_FOUND = {"error": reads.NOT_FOUND}
CLIENT_GONE = 499  # nginx's "client closed request": nobody reads it
KEEPALIVE_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Strict(BaseModel):
    # Unknown fields are refused, not ignored: nothing in a body can name a user or widen access,
    # and a typo should not pass silently.
    model_config = ConfigDict(extra="forbid")


class SearchRequest(Strict):
    query: str
    k: int = 10
    mode: str = "hybrid"
    no_dates: bool = False  # ignore time expressions ("last week") in the query


class AskRequest(Strict):
    question: str
    k: int | None = None
    stream: bool = False
    no_dates: bool = False
    conversation: str | None = None  # one of the caller's, or "new": the answer is its next turn


class ConversationRequest(Strict):
    title: str


def service_of(request: Request) -> Service:
    return request.app.state.service


def caller(request: Request) -> Caller:
    """The caller, from the Authorization header only."""
    return service_of(request).auth.caller(request.headers.get("authorization"))


def admin(request: Request) -> Caller:
    return service_of(request).auth.admin(request.headers.get("authorization"))


router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/status")
def status(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    return service_of(request).reads.status(principal=who.principal)


@router.post("/api/search")
def search(body: SearchRequest, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    hits = service_of(request).reads.search(
        body.query, k=body.k, mode=body.mode, dates=not body.no_dates, channel="http", **who.identity
    )
    return {"hits": [hit.to_json() for hit in hits]}


@router.get("/api/sources/{source:path}")
def show(source: str, request: Request, who: Caller = Depends(caller)) -> Any:
    hits = service_of(request).reads.show(source, channel="http", **who.identity)
    if not hits:
        return JSONResponse(NOT_FOUND, status_code=404)
    return {"source": hits[0].uri, "source_id": hits[0].source_id, "chunks": [hit.to_json() for hit in hits]}


@router.get("/api/audit")
def audit(request: Request, limit: int = 100, who: Caller = Depends(caller)) -> dict[str, Any]:
    """An admin's: every entry; anyone else's: their own."""
    return {
        "entries": [
            e.to_json() for e in service_of(request).reads.audit(principal=who.principal, limit=limit)
        ]
    }


@router.post("/api/ask")
async def ask(body: AskRequest, request: Request, who: Caller = Depends(caller)) -> Any:
    service = service_of(request)
    if not body.stream:
        job = await run_in_threadpool(
            partial(
                service.reads.submit_ask,
                body.question,
                channel="http",
                k=body.k,
                dates=not body.no_dates,
                conversation=body.conversation,
                **who.identity,
            )
        )
        answer = await answer_unless_gone(job, request)
        return answer.to_json() if answer is not None else Response(status_code=CLIENT_GONE)
    stream = await service.ask_streaming(
        who, body.question, channel="http", k=body.k, dates=not body.no_dates, conversation=body.conversation
    )
    return StreamingResponse(_sse(stream), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/api/conversations")
def conversations(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"conversations": service_of(request).reads.conversations.list(principal=who.principal)}


@router.post("/api/conversations")
def start_conversation(body: ConversationRequest, request: Request, who: Caller = Depends(caller)) -> Any:
    return service_of(request).reads.conversations.start(body.title, principal=who.principal)


@router.get("/api/conversations/{conversation}")
def conversation(conversation: str, request: Request, who: Caller = Depends(caller)) -> Any:
    return service_of(request).reads.conversations.show(conversation, principal=who.principal)


@router.patch("/api/conversations/{conversation}")
def rename_conversation(
    conversation: str, body: ConversationRequest, request: Request, who: Caller = Depends(caller)
) -> Any:
    return service_of(request).reads.conversations.rename(conversation, body.title, principal=who.principal)


@router.delete("/api/conversations/{conversation}")
def delete_conversation(conversation: str, request: Request, who: Caller = Depends(caller)) -> Any:
    service_of(request).reads.conversations.delete(conversation, principal=who.principal)
    return {"deleted": conversation}


async def _sse(stream: AnswerStream) -> AsyncIterator[str]:
    """A queued event, note and token events, then one answer (citations, evidence) or error event."""
    try:
        yield _event("queued", {})
        while True:
            event = await stream.next(KEEPALIVE_SECONDS)
            if event is None:
                yield ": waiting for the model\n\n"  # keeps proxies from closing an idle stream
                continue
            kind, value = event
            if kind == "token":
                yield _event("token", {"text": value})
            elif kind == "note":  # "Searched: ...", "Dates: ...": said before the answer
                yield _event("note", {"text": value})
            elif kind == "answer":
                yield _event("answer", value.to_json())
                return
            else:
                yield _event("error", error_body(value))
                return
    finally:
        stream.cancel()  # a no-op once answered; stops the model if the client went away


async def answer_unless_gone(job: Job, request: Request, poll: float = 0.25) -> Answer | None:
    """The job's answer, or None if the client went away first (a timeout, a closed tab): the
    job is then cancelled, so that a question nobody waits for does not hold the model."""
    future = asyncio.wrap_future(job.future)
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=poll)
            if done:
                return future.result()
            if await request.is_disconnected():
                return None
    finally:
        job.cancel()  # a no-op once answered


def error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ModelUnavailable):
        return {"error": str(exc), "status": 503}
    return {"error": "the answer failed; try again", "status": 500}


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# -- the web page ---------------------------------------------------------------------------------

STATIC = resources.files("memex.service") / "static"


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), media_type="text/html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)
