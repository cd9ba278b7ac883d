"""A language model in a child process, so that a crash of native model code (a segfault in
llama.cpp, the kernel's OOM killer) ends the child, not the service. The service talks to it
through a pipe; a dead child is noticed at once (ModelError) and a new one is started on the
next call. Used by `memex serve` for the in-process GGUF model."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from memex.errors import ModelError
from memex.models.llm import LanguageModel, Message

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


class ModelProcess(LanguageModel):
    """`factory` builds the real model in the child; it must be picklable (e.g. a
    functools.partial of a class). One call at a time (the generation worker sees to that)."""

    def __init__(
        self,
        factory: Callable[[], LanguageModel],
        *,
        context_tokens: int = 4096,
        start_timeout: float = 300.0,
        reply_timeout: float = 600.0,
    ) -> None:
        self._factory = factory
        self.name = "model process"
        self.context_tokens = context_tokens
        self.start_timeout = start_timeout
        self.reply_timeout = reply_timeout
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._discard()
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child, self._factory), name="memex-model", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.starts += 1
        reply = self._receive(self.start_timeout)
        if reply[0] != "ready":
            message = reply[1] if len(reply) > 1 else "no reason given"
            self._discard()
            raise ModelError(f"the model process could not load the model: {message}")
        _, self.name, self.context_tokens = reply

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str]:
        self.start()
        self._send(("stream", list(messages), max_tokens))
        finished = False
        try:
            while True:
                reply = self._receive(self.reply_timeout)
                if reply[0] == "piece":
                    yield reply[1]
                elif reply[0] == "end":
                    finished = True
                    return
                else:
                    finished = True
                    raise ModelError(f"the model failed: {reply[1]}")
        finally:
            if not finished:
                self._stop_generation()

    def count_tokens(self, text: str) -> int:
        self.start()
        self._send(("count", text))
        reply = self._receive(self.reply_timeout)
        if reply[0] != "count":
            raise ModelError(f"the model failed: {reply[1]}")
        return int(reply[1])

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(("stop",))
            except OSError:
                pass
            self._process.join(timeout=5)
        self._discard()

    # -- internals --
    def _stop_generation(self) -> None:
        """The reader stopped early (the asker went away): tell the child, wait for its end."""
        try:
            self._send(("cancel",))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if self._receive(deadline - time.monotonic())[0] in ("end", "error"):
                    return
        except ModelError:
            return
        self._discard()

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError, AttributeError):
            code = self._exit_code()
            self._discard()
            raise ModelError(f"the model process stopped (exit code {code})") from None

    def _receive(self, timeout: float) -> tuple:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._conn.poll(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
                    return self._conn.recv()
            except (EOFError, OSError):
                pass
            else:
                if self._process.is_alive() and time.monotonic() < deadline:
                    continue
                if self._process.is_alive():
                    self._discard()
                    raise ModelError(
                        f"the model process did not answer within {timeout:.0f} s; restarting it"
                    )
            code = self._exit_code()
            self._discard()
            raise ModelError(f"the model process stopped (exit code {code})")

    def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        self._process.join(timeout=1)
        return self._process.exitcode

    def _discard(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)


def _serve(conn: Any, factory: Callable[[], LanguageModel]) -> None:  # pragma: no cover - child
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which stops us
    try:
        model = factory()
        model.count_tokens("warm up")  # load now, so that "ready" means ready
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", model.name, model.context_tokens))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op = message[0]
        if op == "stop":
            return
        try:
            if op == "count":
                conn.send(("count", model.count_tokens(message[1])))
            elif op == "stream":
                for piece in model.stream(message[1], max_tokens=message[2]):
                    conn.send(("piece", piece))
                    if conn.poll() and conn.recv()[0] == "cancel":
                        break
                conn.send(("end",))
        except (EOFError, OSError):
            return
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
