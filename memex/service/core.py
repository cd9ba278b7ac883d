"""What every front door of the service (the JSON API, the OpenAI-compatible API, MCP, the web
page) calls: search, ask, show, status and the audit log, always for a `Caller` resolved from a
token, always audited with the door's channel.

Concurrency: the index, the embedder and the SQLite connections of one Memex are not made for
concurrent use, so reads hold one lock (a search is a few milliseconds). Generation does not:
answers go through the GenerationWorker, whose thread takes the lock only while it retrieves
and picks evidence, never while the model writes, so searches keep being answered while the
model is busy.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from memex.access import Principal
from memex.answer.pipeline import Answer, answer_question, retrieve
from memex.api.wiring import Memex
from memex.api.worker import Cancelled, GenerationWorker, Job
from memex.documents import Hit
from memex.errors import MemexError
from memex.index import NO_NARROWING, Narrowing
from memex.models.llm import LanguageModel, Message
from memex.service.auth import Authenticator, Caller, Forbidden
from memex.store.audit import AuditEntry

log = logging.getLogger(__name__)

MAX_K = 50
MAX_QUESTION = 4000
SEARCH_MODES = ("hybrid", "dense", "lexical")


class BadRequest(ValueError):
    """The request itself is wrong (HTTP 400)."""


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
        self.reads = threading.RLock()
        self.worker = GenerationWorker(
            model_factory or (lambda: memex.model), queue_size=queue_size, per_user=per_user
        )

    def warm_up(self) -> None:
        """Open the index and load the embedder and the model now, not at the first request."""
        with self.reads:
            self.memex.index.embedder.embed_query("warm up")
        self.worker.warm_up()

    def close(self) -> None:
        self.worker.close()

    # -- reading --
    def search(
        self,
        caller: Caller,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        dates: bool = True,
        channel: str,
    ) -> list[Hit]:
        """With `dates`, a time expression in the query ("last week") keeps only passages of
        those dates, as on the command line."""
        query = _text(query, "query")
        if mode not in SEARCH_MODES:
            raise BadRequest(f"mode must be one of {', '.join(SEARCH_MODES)}")
        date_range = Memex.find_dates(query) if dates else None
        self._keep_labels_current()
        with self.reads:
            hits, _ = retrieve(
                query,
                principal=caller.principal,
                index=self.memex.index,
                k=_k(k),
                mode=mode,
                dates=date_range,
            )
            self._audit(caller, "search", query, hits, channel)
        return hits

    def show(self, caller: Caller, source: str, *, channel: str) -> list[Hit]:
        source = _text(source, "source")
        self._keep_labels_current()
        with self.reads:
            return self.memex.show(source, principal=caller.principal, actor=caller.actor, channel=channel)

    def status(self, caller: Caller) -> dict[str, Any]:
        self._keep_labels_current()
        with self.reads:
            info = self.memex.status(principal=caller.principal)
        if caller.principal.admin:
            info["service"] = {"generation": self.worker.status()}
        else:  # where the server keeps its files is the operators' business
            info.pop("home", None)
            info.pop("policy", None)
        info["roles"] = list(caller.principal.roles)
        info["admin"] = caller.principal.admin
        return info

    def audit_entries(self, caller: Caller, *, limit: int = 100) -> list[AuditEntry]:
        if not caller.principal.admin:
            raise Forbidden("this needs an admin")
        with self.reads:
            return self.memex.audit.entries(reader=caller.principal, limit=max(1, min(limit, 10_000)))

    # -- asking --
    def submit_ask(
        self,
        caller: Caller,
        question: str,
        *,
        channel: str,
        k: int | None = None,
        dates: bool = True,
        on_token: Callable[[str], None] | None = None,
    ) -> Job:
        """Queue a question for the model; raises Busy when there is no room. The job's result
        is an Answer; `on_token` gets the answer as it is written (already through the output
        rules), in the worker's thread. With `dates`, a time expression in the question keeps
        only sources of those dates."""
        question = _text(question, "question")
        k = _k(k or self.memex.settings.k)
        principal = caller.principal
        date_range = Memex.find_dates(question) if dates else None
        prompt_key = self.memex.prompt_key
        self._keep_labels_current()

        def run(model: LanguageModel, job: Job) -> Answer:
            served: list[Hit] = []
            index = _SerialisedIndex(self.memex, self.reads, served)
            try:
                answer = answer_question(
                    question,
                    principal=principal,
                    index=index,  # type: ignore[arg-type]
                    model=_Interruptible(model, job),
                    k=k,
                    dates=date_range,
                    max_tokens=self.memex.settings.max_answer_tokens,
                    on_token=on_token,
                    prompt_key=prompt_key,
                )
            except BaseException:
                with self.reads:  # what was retrieved for the asker counts as served
                    self._audit(caller, "ask", question, served, channel)
                raise
            with self.reads:
                self._audit(caller, "ask", question, answer.hits, channel)
            return answer

        return self.worker.submit(run, owner=principal.name)

    def ask(
        self, caller: Caller, question: str, *, channel: str, k: int | None = None, dates: bool = True
    ) -> Answer:
        """Blocking (for threads)."""
        job = self.submit_ask(caller, question, channel=channel, k=k, dates=dates)
        try:
            return job.future.result()
        finally:
            job.cancel()

    async def ask_streaming(
        self, caller: Caller, question: str, *, channel: str, k: int | None = None, dates: bool = True
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

        job = self.submit_ask(
            caller, question, channel=channel, k=k, dates=dates, on_token=lambda piece: put(("token", piece))
        )

        def finished(future: Any) -> None:
            exc = future.exception()
            put(("error", exc) if exc is not None else ("answer", future.result()))

        job.future.add_done_callback(finished)
        return AnswerStream(job, events)

    # -- internals --
    def _keep_labels_current(self) -> None:
        """After a policy edit, relabel online, at the first request (the index's last check
        already hides what the policy in force hides; this makes the stored labels, and so the
        counts, agree). Only where this service owns the store: an embedded one it holds
        exclusively, or a Chroma server (relabelling is idempotent)."""
        if not (self.memex.writable or self.memex.settings.store_url):
            return
        with self.reads:
            try:
                self.memex.keep_labels_current()
            except MemexError as exc:  # the last check still applies; the next request tries again
                log.error("could not relabel after a policy change: %s", exc)

    def _audit(self, caller: Caller, action: str, question: str, hits: Sequence[Hit], channel: str) -> None:
        self.memex.audit.record(
            principal=caller.principal,
            action=action,
            question=question,
            hits=hits,
            actor=caller.actor,
            channel=channel,
        )


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


class _SerialisedIndex:
    """What answer_question needs of an Index, each call under the service's read lock; the
    hits it hands out are remembered for the audit log."""

    def __init__(self, memex: Memex, lock: threading.RLock, served: list[Hit]) -> None:
        self._index = memex.index
        self._lock = lock
        self._served = served
        self.embedder = _SerialisedEmbedder(self._index.embedder, lock)

    def search(
        self,
        query: str | None,
        *,
        principal: Principal,
        k: int = 10,
        narrowing: Narrowing = NO_NARROWING,
        mode: str = "hybrid",
    ) -> list[Hit]:
        with self._lock:
            hits = self._index.search(query, principal=principal, k=k, narrowing=narrowing, mode=mode)
        self._served.extend(hits)
        return hits


class _SerialisedEmbedder:
    def __init__(self, embedder: Any, lock: threading.RLock) -> None:
        self._embedder = embedder
        self._lock = lock
        self.name = embedder.name
        self.dimension = embedder.dimension

    def embed(self, texts: Sequence[str], **kwargs: Any) -> Any:
        with self._lock:
            return self._embedder.embed(texts, **kwargs)

    def embed_query(self, text: str) -> Any:
        with self._lock:
            return self._embedder.embed_query(text)


class _Interruptible(LanguageModel):
    """The worker's model, stopping between pieces when the job is cancelled."""

    def __init__(self, model: LanguageModel, job: Job) -> None:
        self._model = model
        self._job = job
        self.name = model.name
        self.context_tokens = model.context_tokens

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        self._job.check()
        pieces = self._model.stream(messages, max_tokens=max_tokens)
        try:
            for piece in pieces:
                self._job.check()
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{what} must be a non-empty string")
    if len(value) > MAX_QUESTION:
        raise BadRequest(f"{what} is too long (at most {MAX_QUESTION} characters)")
    return value.strip()


def _k(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}")
    return value


__all__ = ["BadRequest", "Cancelled", "Service"]
