"""Parsing in child processes with a time limit and a memory limit.

Parsers meet hostile and broken files: a PDF that loops forever, an archive that unpacks to
gigabytes. Each parse runs in a worker process (started with `spawn`, so it inherits no threads
or locks) whose address space is capped with RLIMIT_AS; a parse that runs past its time limit is
killed. Either way the file gets a reason and the run goes on; the worker is replaced.

Workers are long-lived (importing the parsers takes seconds), and while they parse the next files
the parent embeds the previous ones.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from memex.errors import ParseError
from memex.ingest.notices import captured

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 3072
# Imported once by the fork server, so that each worker starts with the parsers loaded: what the
# plugins name (memex.ingest.plugins.parser_modules), set by whoever opens the pools.
PRELOAD: list[str] = []
_tell_parent: list[Callable[[str], None]] = []  # in a worker, while a task runs: `tell`'s channel


def set_preload(modules: Iterable[str]) -> None:
    PRELOAD[:] = list(modules)


@dataclass(frozen=True)
class Limits:
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB


def _worker(conn: Connection, memory_mb: int) -> None:
    import resource

    global _in_worker
    _in_worker = True
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _few_malloc_arenas()
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        key, fn = task
        _tell_parent[:] = [lambda text, key=key: conn.send((key, ("note", text, [])))]
        try:
            value, said = captured(fn)  # what the parser warned travels with its result
            result: tuple[Any, ...] = ("ok", value, said)
        except ParseError as exc:
            result = ("error", exc)
        except MemoryError:
            result = (
                "error",
                ParseError(f"refused: parsing needs more than the {memory_mb} MB memory limit"),
            )
        except Exception as exc:  # anything a parser raises is that file's problem only
            result = ("error", ParseError(f"parser error ({type(exc).__name__}: {exc})"[:500]))
        _tell_parent.clear()
        try:
            conn.send((key, result))
        except (MemoryError, OSError, ValueError):
            conn.send((key, ("error", ParseError("the parsed result was too large to return"))))


def task_timeout(fn: Callable[[], Any], limits: Limits) -> float:
    """The time limit of one task: the pool's, or longer where the task asks for more (a parse
    function's `parse_timeout` attribute, set by a connector from a recording's duration)."""
    asked = getattr(fn, "parse_timeout", None)
    return max(limits.timeout, float(asked)) if isinstance(asked, int | float) else limits.timeout


def _few_malloc_arenas() -> None:
    """glibc reserves 64 MB of address space per thread that allocates (its malloc arenas): the
    threads of the OCR and speech runtimes would spend the RLIMIT_AS budget on reservations
    (std::bad_alloc with half a gigabyte in use). Two arenas keep the limit about real memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


class _Worker:
    def __init__(self, context: Any, limits: Limits) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, limits.memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[Any, float, float] | None = None  # (key, started, time limit)

    def send(self, key: Any, fn: Callable[[], Any], timeout: float) -> None:
        payload = ForkingPickler.dumps((key, fn))  # fails here, before anything is sent
        self.conn.send_bytes(payload)
        self.task = (key, time.monotonic(), timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)
        self.conn.close()


class ParserPool:
    """Runs picklable callables in worker processes. `submit` queues a task; `poll` returns
    finished (key, result-or-ParseError) pairs; `map` wraps both with bounded look-ahead. A task
    that times out or kills its worker gives a ParseError, and the worker is replaced."""

    def __init__(self, *, workers: int = 1, limits: Limits | None = None) -> None:
        self.size = max(1, workers)
        self.limits = limits or Limits()
        self._context = _context()
        self._idle: list[_Worker] = []
        self._queue: deque[tuple[Any, Callable[[], Any]]] = deque()
        self._busy: dict[Connection, _Worker] = {}
        self._done: deque[tuple[Any, Any]] = deque()
        self._said: dict[Any, list[str]] = {}
        self.restarts = 0
        self.on_note: Callable[[Any, str], None] | None = None  # (key, what a parse `tell`s)

    @property
    def pending(self) -> int:
        """Tasks submitted whose results have not been returned by `poll` yet."""
        return len(self._queue) + len(self._busy) + len(self._done)

    def submit(self, key: Any, fn: Callable[[], Any]) -> None:
        self._queue.append((key, fn))
        self._dispatch()

    def poll(self, timeout: float | None = 0.0) -> list[tuple[Any, Any]]:
        """Finished results; waits up to `timeout` seconds (None: until one is ready) if none is."""
        self._dispatch()
        if not self._done and self._busy:
            deadline = min(w.task[1] + w.task[2] for w in self._busy.values() if w.task)
            wait_for = max(0.0, deadline - time.monotonic())
            if timeout is not None:
                wait_for = min(wait_for, timeout)
            for conn in wait(list(self._busy), timeout=wait_for):
                self._collect(conn)
            self._expire()
            self._dispatch()
        done = list(self._done)
        self._done.clear()
        return done

    def take_warnings(self, key: Any) -> list[str]:
        """What the parse of `key` warned (third-party warnings, log records, text on stderr)."""
        return self._said.pop(key, [])

    def map(self, tasks: Iterable[tuple[Any, Callable[[], Any]]]) -> Iterator[tuple[Any, Any]]:
        lookahead = 2 * self.size + 2
        for key, fn in tasks:
            self.submit(key, fn)
            while self.pending > lookahead:
                yield from self.poll(None)
            yield from self.poll(0.0)
        while self.pending:
            yield from self.poll(None)

    def run(self, fn: Callable[[], Any]) -> Any:
        """One task, synchronously; raises its ParseError."""
        for _, result in self.map([(0, fn)]):
            if isinstance(result, ParseError):
                raise result
            return result
        raise ParseError("no result")  # pragma: no cover

    def _dispatch(self) -> None:
        while self._queue and len(self._busy) < self.size:
            worker = self._idle.pop() if self._idle else _Worker(self._context, self.limits)
            key, fn = self._queue.popleft()
            try:
                worker.send(key, fn, task_timeout(fn, self.limits))
            except (OSError, ValueError) as exc:  # the worker died between tasks
                self._replace(worker)
                self._done.append((key, ParseError(f"cannot hand the file to a parser process ({exc})")))
                continue
            except Exception as exc:  # the task cannot be pickled: a connector bug
                self._idle.append(worker)
                self._done.append((key, ParseError(f"cannot hand the file to a parser process ({exc})")))
                continue
            self._busy[worker.conn] = worker

    def _collect(self, conn: Connection) -> None:
        worker = self._busy[conn]
        key = worker.task[0] if worker.task else None
        try:
            _, (status, value, *said) = conn.recv()
        except (EOFError, OSError):
            del self._busy[conn]
            self._replace(worker)
            self._done.append((key, ParseError(_death_reason(worker, self.limits))))
            return
        if status == "note":  # how far a long parse is (`tell`); the parse goes on
            if self.on_note is not None:
                self.on_note(key, value)
            return
        del self._busy[conn]
        if said and said[0]:
            self._said[key] = said[0]
        worker.task = None
        self._idle.append(worker)
        self._done.append((key, value))

    def _expire(self) -> None:
        now = time.monotonic()
        for conn, worker in list(self._busy.items()):
            if worker.task and now - worker.task[1] >= worker.task[2]:
                self._busy.pop(conn)
                key, _, limit = worker.task
                self._replace(worker)
                self._done.append((key, ParseError(f"refused: parsing took longer than {limit:g} s")))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.restarts += 1

    def close(self) -> None:
        for worker in [*self._idle, *self._busy.values()]:
            worker.stop()
        self._idle, self._busy = [], {}
        self._queue.clear()
        self._done.clear()
        self._said.clear()

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _context() -> Any:
    """Workers fork from a fork server: a clean single-threaded process that imported the parsers
    once (unlike this process, which may run model threads, so plain fork is unsafe here)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _death_reason(worker: _Worker, limits: Limits) -> str:
    worker.process.join(1)
    code = worker.process.exitcode
    if code is not None and code < 0:
        signal_number = -code
        if signal_number == 9:
            return f"refused: the parser was killed (likely over the {limits.memory_mb} MB memory limit)"
        return f"the parser crashed (signal {signal_number})"
    return f"the parser process died (exit code {code}); likely over the {limits.memory_mb} MB memory limit"


# -- parsing that connectors do while they list documents ---------------------------------------

_in_worker = False  # True inside a worker: a nested isolated() runs in place, under its limits
_side_pool: ParserPool | None = None
_side_limits = Limits()
_side_lock = threading.Lock()


def set_limits(limits: Limits) -> None:
    """The limits of `isolated` (the settings' parse_timeout and parse_memory_mb)."""
    global _side_limits, _side_pool
    with _side_lock:
        if limits != _side_limits and _side_pool is not None:
            _side_pool.close()
            _side_pool = None
        _side_limits = limits


def tell(text: str) -> None:
    """How far a long parse is ("standup.m4a: 12:00 of 62:00 transcribed"), from inside it: sent
    to the pool's `on_note` (the ingest's progress) while the parse goes on; outside a worker,
    logged as a connector's notice."""
    if _tell_parent:
        try:
            _tell_parent[0](text)
        except (OSError, ValueError):  # the parent is gone: the parse is about to be killed
            pass
    else:
        logging.getLogger("memex.connectors.progress").info(text)


def isolated(fn: Callable[[], Any]) -> Any:
    """fn() run in a worker process under the file parsers' time and memory limits; raises its
    ParseError (or one saying which limit it ran into). For connectors that must parse a file
    while they list its documents (a calendar's occurrences, a note's front matter, a bookmarks
    file), so that nothing from a file is parsed in the main process. fn must be picklable."""
    global _side_pool
    if _in_worker:
        return fn()
    with _side_lock:
        if _side_pool is None:
            _side_pool = ParserPool(limits=_side_limits)
            atexit.register(_side_pool.close)
        return _side_pool.run(fn)
