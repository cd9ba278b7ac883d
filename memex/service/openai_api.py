"""An OpenAI-compatible front door (/v1/chat/completions and /v1/models), so stock OpenAI
clients and chat front ends can use memex as a model.

The last user message is the question (memex answers one question at a time from the archives;
earlier turns and system messages are not instructions it follows). `model`, `user`,
`temperature` and every other field are accepted and ignored: the caller's token decides whose
profile applies, and nothing in the body can change that. The reply is the answer followed by
its numbered sources and the evidence sentences, as text; `memex` in the reply carries them as
data too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from memex.answer.followup import Exchange
from memex.answer.pipeline import Answer
from memex.errors import BadRequest
from memex.service.auth import Caller
from memex.service.core import AnswerStream
from memex.service.routes import (
    CLIENT_GONE,
    KEEPALIVE_SECONDS,
    SSE_HEADERS,
    answer_unless_gone,
    caller,
    error_body,
    service_of,
)

MODEL_ID = "memex"
router = APIRouter(prefix="/v1")


@router.get("/models")
def models(who: Caller = Depends(caller)) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "memex"}],
    }


@router.post("/chat/completions")
async def chat_completions(request: Request, who: Caller = Depends(caller)) -> Any:
    body = await _json_body(request)
    question = last_user_message(body.get("messages"))
    history = history_of(body["messages"])
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream must be true or false")
    service = service_of(request)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not stream:
        job = await run_in_threadpool(
            partial(
                service.reads.submit_ask,
                question,
                channel="openai",
                history=history,
                client_keeps_history=True,
                **who.identity,
            )
        )
        answer = await answer_unless_gone(job, request)
        if answer is None:
            return Response(status_code=CLIENT_GONE)
        content = answer_text(answer)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": _usage(question, content),
            "memex": _extras(answer),
        }
    answer_stream = await service.ask_streaming(
        who, question, channel="openai", history=history, client_keeps_history=True
    )
    return StreamingResponse(
        _chunks(answer_stream, completion_id, created), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _chunks(stream: AnswerStream, completion_id: str, created: int) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            event = await stream.next(KEEPALIVE_SECONDS)
            if event is None:
                yield ": waiting for the model\n\n"
                continue
            kind, value = event
            if kind == "note":  # the answer's `memex` extras say what was searched
                continue
            if kind == "token":
                yield chunk({"content": value})
                continue
            if kind == "answer":
                tail = sources_text(value)
                if tail:
                    yield chunk({"content": "\n\n" + tail})
                yield chunk({}, "stop", memex=_extras(value))
            else:
                yield f"data: {json.dumps({'error': {'message': error_body(value)['error'], 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"
            return
    finally:
        stream.cancel()


def last_user_message(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text_of(message.get("content"))
            if text is None:
                raise BadRequest("the last user message has no text")
            return text
    raise BadRequest("messages must contain a user message (its text is the question)")


def history_of(messages: list[Any]) -> list[Exchange]:
    """The conversation before the last user message, as the client sends it (a stock chat front
    end keeps it): each user message with the assistant's reply that follows it, the reply
    without the sources memex appended."""
    last_user = max(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1
    )
    out: list[Exchange] = []
    question: str | None = None
    for message in messages[:last_user]:
        if not isinstance(message, dict):
            continue
        text = _text_of(message.get("content"))
        if message.get("role") == "user":
            question = text
        elif message.get("role") == "assistant" and question and text:
            out.append(Exchange(question, question, text.split("\n\nSources:", 1)[0]))
            question = None
    return out


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content  # an empty question is the facade's to refuse, as at every door
    if isinstance(content, list):  # content parts: the text ones
        texts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
        if any(t.strip() for t in texts):
            return "\n".join(texts)
    return None


def sources_text(answer: Answer) -> str:
    lines = []
    if answer.citations:
        lines.append("Sources:")
        lines += [f"[{c.n}] {c.location()}" for c in answer.citations]
    if answer.evidence:
        lines.append("")
        lines.append("Evidence:")
        lines += [f"[{e.n}] {e.sentence}" for e in answer.evidence]
    return "\n".join(lines)


def answer_text(answer: Answer) -> str:
    tail = sources_text(answer)
    return answer.text + ("\n\n" + tail if tail else "")


def _extras(answer: Answer) -> dict[str, Any]:
    data = answer.to_json()
    searched = {"searched": answer.question} if answer.asked is not None else {}
    return {"citations": data["citations"], "evidence": data["evidence"], **searched}


def _usage(question: str, content: str) -> dict[str, int]:
    prompt, completion = len(question) // 4 + 1, len(content) // 4 + 1  # an estimate, as the docs say
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
