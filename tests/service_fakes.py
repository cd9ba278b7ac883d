"""Fake models for the service tests: ones that block, fail, crash the worker, or write slowly
(module level, so a spawned model process can build them)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence

from memex.models.llm import FakeModel, LanguageModel, Message


class BlockingModel(FakeModel):
    """Writes its reply only once `release` is set; `started` tells that a stream began."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.release = threading.Event()
        self.started = threading.Event()

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        self.started.set()
        if not self.release.wait(60):
            raise RuntimeError("the test never released the model")
        yield from ["released ", "answer"]


class FailingModel(FakeModel):
    """Raises on its first `failures` answers, then echoes."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__(echo=True)
        self.failures = failures

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("llama_decode returned -3")
        yield from super().stream(messages, max_tokens=max_tokens)


class WorkerCrash(BaseException):
    """Not an Exception: what takes a thread down (as SystemExit or a fatal error in native code
    surfacing as one would)."""


class CrashingModel(FakeModel):
    def __init__(self, crashes: int = 1) -> None:
        super().__init__(echo=True)
        self.crashes = crashes

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        if self.crashes > 0:
            self.crashes -= 1
            raise WorkerCrash("boom")
        yield from super().stream(messages, max_tokens=max_tokens)


class SlowModel(LanguageModel):
    """Writes `words` words, `delay` seconds apart (for a model process: picklable, no state)."""

    name = "slow"

    def __init__(self, words: int = 200, delay: float = 0.05) -> None:
        self.words = words
        self.delay = delay

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        for i in range(self.words):
            time.sleep(self.delay)
            yield f"w{i} "


class CountingSlowModel(SlowModel):
    """A SlowModel in the service's own process that counts the words it wrote."""

    def __init__(self, words: int = 200, delay: float = 0.05) -> None:
        super().__init__(words, delay)
        self.written = 0

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        for piece in super().stream(messages, max_tokens=max_tokens):
            self.written += 1
            yield piece


def process_id_model() -> LanguageModel:
    """A model (built in a model process) whose answer names the process it runs in."""
    model = FakeModel(echo=False)
    for _ in range(100):
        model.enqueue(f"answered by process {os.getpid()}")
    return model
