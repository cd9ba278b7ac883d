"""Ingests handed to the daemon (`memex ingest` while it runs): queued for its one writing loop,
their progress streamed back to the terminal that asked, and stopped between documents when that
terminal goes away or asks to stop (Ctrl-C). Reads go on meanwhile on the daemon's reading view.

Only the account the daemon runs as may hand it an ingest: the daemon reads the files with its
own rights, so another account on its socket must not make it read what that account cannot.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memex.errors import BadRequest, MemexError
from memex.ingest.report import IngestReport

Send = Any  # Callable[[dict], None]; raises OSError once the client is gone
FLUSH_SECONDS = 0.2  # progress frames are coalesced: a fast ingest must not flood the socket


@dataclass
class IngestJob:
    id: int
    uid: int  # who asked (only they may stop it)
    targets: list[str]
    retry_failed: bool
    options: dict[str, str]
    progress: RelayProgress
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    report: IngestReport | None = None
    error: BaseException | None = None


class RelayProgress:
    """The ingest's progress as frames on the asker's socket ({"progress": {...}}). A frame that
    cannot be sent (the terminal closed) stops the job between documents."""

    def __init__(self, send: Send, stop: threading.Event) -> None:
        self._send = send
        self.stop = stop
        self._pending: dict[str, int] = {}
        self._last = 0.0
        self._lock = threading.Lock()

    def begin(self, stage: str, total: int | None) -> None:
        self._flush(force=True)
        self._frame({"begin": stage, "total": total})

    def grow(self, stage: str, n: int) -> None:
        self._flush(force=True)
        self._frame({"grow": stage, "n": n})

    def advance(self, stage: str, n: int = 1) -> None:
        with self._lock:
            self._pending[stage] = self._pending.get(stage, 0) + n
        self._flush()

    def note(self, text: str) -> None:
        self._frame({"note": text})

    def close(self) -> None:
        self._flush(force=True)

    def _flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._pending or (not force and now - self._last < FLUSH_SECONDS):
                return
            pending, self._pending = self._pending, {}
            self._last = now
        for stage, n in pending.items():
            self._frame({"advance": stage, "n": n})

    def _frame(self, body: dict[str, Any]) -> None:
        if self.stop.is_set():
            return
        try:
            self._send({"progress": body})
        except (OSError, ValueError):
            self.stop.set()  # nobody is watching any more: stop between documents


class JobQueue:
    """Ingest jobs, run one at a time by the daemon's writing loop (`run_next`)."""

    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake
        self._queue: deque[IngestJob] = deque()
        self._jobs: dict[int, IngestJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.current: IngestJob | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue) + (self.current is not None)

    def submit(self, params: dict[str, Any], *, uid: int, send: Send) -> IngestJob:
        targets = params.get("targets")
        options = params.get("options") or {}
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise BadRequest("ingest needs targets: a list of paths or URIs")
        if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in options.items()
        ):
            raise BadRequest("ingest options must be KEY=VALUE strings")
        stop = threading.Event()
        job = IngestJob(
            id=next(self._ids),
            uid=uid,
            targets=list(targets),
            retry_failed=bool(params.get("retry_failed")),
            options=dict(options),
            progress=RelayProgress(send, stop),
            stop=stop,
        )
        with self._lock:
            self._queue.append(job)
            self._jobs[job.id] = job
            waiting = len(self._queue) - 1 + (self.current is not None)
        if waiting:
            job.progress.note(f"waiting for {waiting} earlier ingest(s) to finish")
        self._wake.set()
        return job

    def cancel(self, job_id: Any, *, uid: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, int) else None
        if job is None or job.uid != uid:
            raise MemexError("no such ingest of yours is running")
        job.stop.set()
        return True

    def run_next(self, work) -> bool:
        """Run the oldest job with `work(job) -> IngestReport`; False if none waits."""
        with self._lock:
            if not self._queue:
                return False
            job = self.current = self._queue.popleft()
        try:
            job.report = work(job)
        except BaseException as exc:  # handed back to the asker; the loop goes on
            job.error = exc
        finally:
            with self._lock:
                self.current = None
                self._jobs.pop(job.id, None)
            job.progress.close()
            job.done.set()
        return True

    def abandon(self) -> None:
        """The daemon is stopping: the running job stops between documents, the waiting ones
        are answered that they did not run."""
        with self._lock:
            waiting, self._queue = list(self._queue), deque()
            for job in waiting:
                self._jobs.pop(job.id, None)
            if self.current is not None:
                self.current.stop.set()
        for job in waiting:
            job.error = MemexError("the memex daemon stopped before this ingest began; run it again")
            job.done.set()


class EitherSet:
    """Set when either event is: a job stops when its asker goes or the daemon stops."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


class StatusProgress:
    """The watcher's own ingest progress, for `memex daemon status` (the phase, not totals)."""

    shows_totals = False

    def __init__(self, service: Any) -> None:
        self.service = service  # has a `busy` line

    def begin(self, stage: str, total: int | None) -> None:
        self.service.busy = stage

    def advance(self, stage: str, n: int = 1) -> None:
        pass

    def grow(self, stage: str, n: int) -> None:
        self.service.busy = stage  # more to embed: busy embedding
