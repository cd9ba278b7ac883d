"""What the doors of `memex serve` share: who is calling (the Authenticator: a token resolves to
a Caller) and the read facade (memex.api.reads), which every door calls for everything it
reads. This module adds only what is the service's own: answers streamed to an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from memex.answer.followup import Exchange
from memex.api.reads import Reads
from memex.api.wiring import Memex
from memex.api.worker import Cancelled, GenerationWorker, Job
from memex.errors import BadRequest
from memex.models.llm import LanguageModel
from memex.service.auth import Authenticator, Caller


class Service:
    def __init__(
        self,
        memex: Memex,
        authenticator: Authenticator,
        *,
        model_factory: Callable[[], LanguageModel] | None = None,
        queue_size: int = 8,
        per_user: int = 2,
    ) -> None:
        self.memex = memex
        self.auth = authenticator
        self.reads = Reads(memex, model_factory=model_factory, queue_size=queue_size, per_user=per_user)

    @property
    def worker(self) -> GenerationWorker:
        return self.reads.worker

    def warm_up(self) -> None:
        self.reads.warm_up()

    def close(self) -> None:
        self.reads.close()

    async def ask_streaming(
        self,
        who: Caller,
        question: str,
        *,
        channel: str,
        k: int | None = None,
        dates: bool = True,
        conversation: str | None = None,
        history: Sequence[Exchange] = (),
        client_keeps_history: bool = False,
    ) -> AnswerStream:
        """Queue a question (raising Busy at once if there is no room) and return its events:
        ("token", text)... then ("answer", Answer) or ("error", exception). The reader cancels
        the stream when it stops reading early (the client went away)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(event: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                pass

        job = self.reads.submit_ask(
            question,
            principal=who.principal,
            actor=who.actor,
            channel=channel,
            k=k,
            dates=dates,
            on_token=lambda piece: put(("token", piece)),
            on_note=lambda line: put(("note", line)),
            conversation=conversation,
            history=history,
            client_keeps_history=client_keeps_history,
        )

        def finished(future: Any) -> None:
            exc = future.exception()
            put(("error", exc) if exc is not None else ("answer", future.result()))

        job.future.add_done_callback(finished)
        return AnswerStream(job, events)


class AnswerStream:
    def __init__(self, job: Job, events: asyncio.Queue[tuple[str, Any]]) -> None:
        self.job = job
        self._events = events

    async def next(self, timeout: float | None = None) -> tuple[str, Any] | None:
        """The next event, or None if none came within `timeout` seconds."""
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None

    def cancel(self) -> None:
        self.job.cancel()


__all__ = ["AnswerStream", "BadRequest", "Cancelled", "Service"]
