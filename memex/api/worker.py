"""One model, many users: every generation goes through one worker thread and a bounded queue.

llama.cpp contexts are not thread-safe, and one CPU-bound model gains nothing from running
answers side by side, so answers are made one at a time, in order. When the queue is full (or
one user already has their share of it) `submit` raises Busy with a Retry-After estimate
instead of letting requests pile up. A job whose model fails gets the error; the model is
thrown away and built again for the next job (a crashed model process is restarted), and a
worker thread that dies is replaced: the service stays up.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from memex.errors import MemexError, ModelError
from memex.models.llm import LanguageModel, Message

log = logging.getLogger(__name__)

_STOP = object()


class Busy(MemexError):
    """The generation queue is full: try again after `retry_after` seconds (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailable(MemexError):
    """The model failed while answering; it is being restarted (HTTP 503)."""


class Cancelled(Exception):
    """The asker went away; the job stops at the next token."""


class _NotBuilt(Exception):
    def __init__(self, error: MemexError) -> None:
        self.error = error


class Job:
    def __init__(self, run: Callable[[LanguageModel, Job], Any], owner: str) -> None:
        self.run = run
        self.owner = owner
        self.future: Future[Any] = Future()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop as soon as possible: a queued job is skipped, a running one stops at its next token."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Called by the job between tokens."""
        if self._cancelled.is_set():
            raise Cancelled()


class GenerationWorker:
    def __init__(
        self,
        model_factory: Callable[[], LanguageModel],
        *,
        queue_size: int = 8,
        per_user: int = 2,
        owns_model: bool = True,
    ) -> None:
        """`owns_model`: the factory builds a model for this worker alone, closed when it fails
        or the worker closes (False: a model someone else owns, never closed here)."""
        self._factory = model_factory
        self._owns_model = owns_model
        self._model: LanguageModel | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._per_user = per_user
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._seconds = 10.0  # running estimate of one job's duration, for Retry-After
        self.restarts = 0
        self.completed = 0
        self.failed = 0
        self.running: Job | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._start_thread()

    # -- submitting --
    def submit(self, run: Callable[[LanguageModel, Job], Any], *, owner: str) -> Job:
        """Queue `run(model, job)`; returns at once. Raises Busy when there is no room."""
        job = Job(run, owner)
        with self._lock:
            if self._closed:
                raise ModelUnavailable("the service is shutting down")
            if self._pending.get(owner, 0) >= self._per_user:
                raise Busy(
                    f"you already have {self._pending[owner]} question(s) waiting for the model; "
                    "wait for an answer first",
                    retry_after=self.retry_after(),
                )
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise Busy(
                    "the model is busy answering other questions; try again shortly",
                    retry_after=self.retry_after(),
                ) from None
            self._pending[owner] = self._pending.get(owner, 0) + 1
        job.future.add_done_callback(lambda _: self._release(owner))
        return job

    def warm_up(self) -> None:
        """Build the model in the worker now (a model process starts loading at once)."""
        try:
            self.submit(lambda model, job: model.count_tokens("warm up"), owner="(warm-up)")
        except Busy:
            pass

    def retry_after(self) -> int:
        waiting = self._queue.qsize() + (1 if self.running else 0)
        return max(1, min(300, math.ceil(self._seconds * max(1, waiting) / 2)))

    def _release(self, owner: str) -> None:
        with self._lock:
            left = self._pending.get(owner, 0) - 1
            if left > 0:
                self._pending[owner] = left
            else:
                self._pending.pop(owner, None)

    def status(self) -> dict[str, Any]:
        return {
            "queued": self._queue.qsize(),
            "queue_size": self._queue.maxsize,
            "busy": self.running is not None,
            "completed": self.completed,
            "failed": self.failed,
            "restarts": self.restarts,
            "seconds_per_answer": round(self._seconds, 2),
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:  # fail what is still queued
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and not job.future.done():
                job.future.set_exception(ModelUnavailable("the service is shutting down"))
        if self.running is not None:
            self.running.cancel()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._drop_model()

    # -- the worker --
    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="memex-generation", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if job.cancelled:
                job.future.set_exception(Cancelled())
                continue
            self.running = job
            started = time.monotonic()
            try:
                if self._model is None:
                    self._model = self._build()
                result = job.run(self._model, job)
            except _NotBuilt as exc:
                # No model to restart (not installed, a bad path): the reason is the answer.
                self.failed += 1
                job.future.set_exception(exc.error)
            except Cancelled as exc:
                job.future.set_exception(exc)
            except ModelError as exc:
                self.failed += 1
                log.error("the model failed while answering (%s); restarting it", exc)
                self._restart_model()
                job.future.set_exception(ModelUnavailable("the model is unavailable; try again shortly"))
            except MemexError as exc:
                # A refusal with a reason (not the model's fault): the model stays.
                self.failed += 1
                job.future.set_exception(exc)
            except Exception as exc:
                self.failed += 1
                log.exception("the model failed while answering; restarting it")
                self._restart_model()
                job.future.set_exception(
                    ModelUnavailable(f"the model failed ({type(exc).__name__}); try again")
                )
            except BaseException as exc:
                # The worker itself is going down (a crash in the model's code): hand over to a
                # new thread with a new model, then let this one end.
                self.failed += 1
                log.error("the generation worker crashed (%r); starting a new one", exc)
                self.running = None
                self._restart_model()
                job.future.set_exception(ModelUnavailable("the model crashed; try again"))
                if not self._closed:
                    self._start_thread()
                return
            else:
                self.completed += 1
                self._seconds = 0.7 * self._seconds + 0.3 * (time.monotonic() - started)
                job.future.set_result(result)
            finally:
                self.running = None

    def _build(self) -> LanguageModel:
        try:
            return self._factory()
        except MemexError as exc:
            raise _NotBuilt(exc) from exc

    def _restart_model(self) -> None:
        self.restarts += 1
        self._drop_model()

    def _drop_model(self) -> None:
        model, self._model = self._model, None
        close = getattr(model, "close", None) if self._owns_model else None
        if close is not None:
            try:
                close()
            except Exception:  # already broken: nothing more to do
                log.exception("closing the model failed")


class Interruptible(LanguageModel):
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
