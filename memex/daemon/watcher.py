"""The watcher: keeps the index equal to the watched folders, and answers reads meanwhile.

One loop does all the writing, in this order of business:
- on start, and every `watch_reconcile_minutes`, and whenever events may have been lost (the
  kernel's queue overflowed, a folder came back), a *reconcile*: the folder is ingested as a
  whole, which costs a stat per unchanged file and repairs whatever a crash or missed events left
  (sources changed, added or deleted while nobody watched; pending writes; orphan chunks);
- in between, the paths that settled (memex.daemon.watch) are read again, in batches, with
  `Ingestor.update_paths`: as part of their watched folder, so deletions, both ends of a move
  and folder moves come out right.
Parsing runs in the sandboxed parser processes (memex.ingest.sandbox): a file that hangs or eats memory
is killed, recorded as failed with its reason (`memex status` lists it) and tried again only
when it changes. Anything else that goes wrong with a batch is logged and the loop goes on; the
next reconcile repairs what the batch left.

Reads (`memex search/ask/show/status/export` from other terminals) arrive on the socket
(memex.daemon.rpc) and run on a second view of the store (its own SQLite connections, so readers see
committed writes only), one at a time, for the principal the kernel vouches for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memex.api.reads import Reads
from memex.daemon.folders import folder_root, outermost
from memex.daemon.jobs import EitherSet, IngestJob, JobQueue, StatusProgress
from memex.daemon.rpc import Peer, Send, error_frame
from memex.daemon.system import rss_mb
from memex.daemon.watch import Debouncer, Ignore, Observers, coalesce, target_for
from memex.errors import MemexError
from memex.ingest.ahead import ParseAhead
from memex.ingest.report import IngestReport

log = logging.getLogger("memex.daemon.watcher")

Emit = Callable[[dict[str, Any]], None]
MISSING_RECHECK_SECONDS = 5.0
ERROR_RETRY_SECONDS = 30.0


class Watcher:
    def __init__(
        self,
        memex,
        reader,
        *,
        folders: list[str],
        emit: Emit = lambda event: None,
        idle_exit_seconds: float | None = None,
    ) -> None:
        """`idle_exit_seconds`: a daemon started on demand (by the first command that needed
        it) stops after this long without a request, unless it watches folders."""
        settings = memex.settings
        self.memex = memex  # writable: owns the store
        self.reader = reader  # the same store through other connections, for reads
        self.reads = Reads(reader)  # the read facade: what every door calls
        self.emit = emit
        self.ignore = Ignore(tuple(settings.ignore))
        self.wake = threading.Event()
        quiet = settings.watch_quiet_seconds
        self.debouncer = Debouncer(quiet=quiet, open_quiet=max(2.0, 10 * quiet), wakeup=self.wake)
        self.observers = Observers(
            self.debouncer,
            self.ignore,
            poll_seconds=settings.watch_poll_seconds,
            polling=settings.watch_polling,
            on_overflow=self.request_reconcile,
            on_note=lambda root, message: self._emit("note", root=root, message=message),
        )
        self.roots: list[str] = outermost(folder_root(folder) for folder in folders)
        self.period = settings.watch_reconcile_minutes * 60
        self.stopping = threading.Event()
        self.idle = threading.Event()  # set while the loop waits with nothing pending or due
        self._due: dict[str, float] = {}  # roots to reconcile, and when
        self._due_lock = threading.Lock()
        self._claims_cache: dict[str, bool] = {}
        self.started = time.time()
        self.busy: str | None = None
        self.counts = {"batches": 0, "reconciles": 0, "indexed": 0, "removed": 0, "failed": 0, "errors": 0}
        self.last: dict[str, Any] | None = None
        self._known_failures: set[tuple[str, str]] = set()
        self.owner_uid = os.getuid()
        self.jobs = JobQueue(self.wake)
        self.idle_exit_seconds = idle_exit_seconds
        self.last_used = time.monotonic()
        self.in_use = 0  # requests being answered
        self._ready: list[str] = []  # files whose long parse finished: to read again
        self.ahead = ParseAhead(
            on_ready=self._parsed_ahead,
            on_note=lambda text: self._emit("note", message=text),
            limits=getattr(memex.pool, "limits", None),
        )

    # -- control -------------------------------------------------------------------------------
    def request_reconcile(self, root: str | None = None, *, after: float = 0.0) -> None:
        with self._due_lock:
            for target in [root] if root else list(self.roots):
                when = time.monotonic() + after
                self._due[target] = min(self._due.get(target, when), when)
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def add(self, folder: str) -> str:
        root = folder_root(folder)
        if not os.path.isdir(root):
            raise MemexError(
                f"{folder}: not a folder (memex watch keeps folders current; use memex ingest for files)"
            )
        if any(root == r or root.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots):
            return root  # watched already, itself or as part of a watched folder
        for inner in [r for r in self.roots if r.startswith(root.rstrip(os.sep) + os.sep)]:
            self.remove(inner)  # the new folder covers it
        self.roots.append(root)
        self._start(root)
        self.request_reconcile(root)
        return root

    def remove(self, folder: str) -> str:
        root = folder_root(folder)
        if root in self.roots:
            self.roots.remove(root)
            self.observers.stop(root)
            self.debouncer.discard_within(root)
            with self._due_lock:
                self._due.pop(root, None)
        return root

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        for root in self.roots:
            self._start(root)
        self._emit("started", pid=os.getpid(), home=str(self.memex.paths.root), watched=self.watched())
        self.request_reconcile()
        next_period = time.monotonic() + self.period
        next_missing = time.monotonic() + MISSING_RECHECK_SECONDS
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_period:
                    self.request_reconcile()
                    next_period = now + self.period
                if now >= next_missing:
                    self._recheck_missing()
                    next_missing = now + MISSING_RECHECK_SECONDS
                self._keep_labels_current()
                self._reconcile_due()
                while not self.stopping.is_set() and self.jobs.run_next(self._run_job):
                    pass
                if self.stopping.is_set():
                    break
                if self._idle_for_too_long():
                    log.info("no request for %.0f s and no folder watched: stopping", self.idle_exit_seconds)
                    break
                ready = self.debouncer.ready() + self._take_parsed_ahead()
                if ready:
                    self._process(ready)
                    continue
                waits = [next_period - now, next_missing - now, self._next_due() - now]
                if self.idle_exit_seconds is not None:
                    waits.append(max(1.0, self.last_used + self.idle_exit_seconds - now))
                pending = self.debouncer.due()
                if pending is not None:
                    waits.append(pending)
                elif waits[2] == float("inf"):
                    self.idle.set()
                self.wake.wait(max(0.01, min(waits)))
                self.wake.clear()
                self.idle.clear()
        finally:
            self.jobs.abandon()
            self.ahead.close()
            self.observers.close()
            self._emit("stopped")

    def _idle_for_too_long(self) -> bool:
        return (
            self.idle_exit_seconds is not None
            and not self.roots
            and not self.in_use
            and not len(self.jobs)
            and time.monotonic() - self.last_used > self.idle_exit_seconds
        )

    def _run_job(self, job: IngestJob) -> IngestReport:
        """An ingest handed over by `memex ingest`, in this loop (the one writer)."""
        self.busy = f"ingest {', '.join(job.targets)}"[:200]
        try:
            report = self.memex.ingest(
                job.targets,
                progress=job.progress,
                retry_failed=job.retry_failed,
                options=job.options,
                stop=EitherSet(job.stop, self.stopping),
            )
        finally:
            self.busy = None
        self.counts["indexed"] += len(report.indexed)
        self.counts["removed"] += len(report.removed)
        self._emit("ingest", targets=job.targets, indexed=len(report.indexed), stopped=report.stopped)
        return report

    def _keep_labels_current(self) -> None:
        """A policy edit is relabelled here, online, in the writing loop (a read that notices it
        wakes the loop; meanwhile the index's last check already applies the policy in force)."""
        try:
            relabelled = self.memex.keep_labels_current()
        except Exception as exc:  # the loop goes on; the next turn tries again
            log.exception("relabelling after a policy change failed")
            self._emit(
                "error", message=f"relabelling after a policy change failed: {type(exc).__name__}: {exc}"
            )
            return
        if relabelled:
            self._emit("relabelled", sources=relabelled)

    def _start(self, root: str) -> None:
        watch = self.observers.start(root)
        self._emit("watching", root=root, mode=watch.mode, reason=watch.reason)

    def _recheck_missing(self) -> None:
        for root in self.roots:
            watch = self.observers.watches.get(root)
            if watch is not None and watch.mode == "missing" and os.path.isdir(root):
                self._start(root)
                self.request_reconcile(root)

    def _next_due(self) -> float:
        with self._due_lock:
            return min(self._due.values(), default=float("inf"))

    def _reconcile_due(self) -> None:
        now = time.monotonic()
        with self._due_lock:
            due = [root for root, when in self._due.items() if when <= now]
            for root in due:
                del self._due[root]
        for root in due:
            if root in self.roots and not self.stopping.is_set():
                self._reconcile(root)

    def _reconcile(self, root: str) -> None:
        """Compare the whole folder with the ledger and fix every difference."""
        if not os.path.isdir(root):
            self._missing(root)
            return
        self._guarded(
            root,
            "reconcile",
            lambda: self.memex.ingest(
                [root], progress=self._progress(), stop=self.stopping, ahead=self.ahead
            ),
        )
        self.counts["reconciles"] += 1

    def _missing(self, root: str) -> None:
        watch = self.observers.watches.get(root)
        if watch is None or watch.mode != "missing":
            self.observers.start(root)  # records it as missing
            self._emit(
                "watching",
                root=root,
                mode="missing",
                reason="the folder is gone or not mounted; its sources stay indexed until it is back "
                "(memex forget removes them)",
            )

    def _process(self, paths: list[str]) -> None:
        """Read the settled paths again, folder by watched folder."""
        by_root: dict[str, list[str]] = {}
        for path in paths:
            root = self._root_of(path)
            if root is not None:
                by_root.setdefault(root, []).append(path)
        for root, inside in by_root.items():
            if self.stopping.is_set():
                return
            if not os.path.isdir(root) or root in inside:
                self._reconcile(root)  # the folder itself was deleted, moved or replaced
                continue
            targets = self._targets(root, inside)
            self._guarded(
                root,
                "batch",
                lambda root=root, targets=targets: self.memex.ingestor(ahead=self.ahead).update_paths(
                    root,
                    targets,
                    progress=self._progress(),
                    options=self.memex.ignore_option(),
                    stop=self.stopping,
                ),
                paths=len(inside),
            )
            self.counts["batches"] += 1

    def _parsed_ahead(self, uri: str) -> None:
        """A long parse (a recording) is done: read its file again, in the loop."""
        with self._due_lock:
            self._ready.append(uri)
        self.wake.set()

    def _take_parsed_ahead(self) -> list[str]:
        with self._due_lock:
            ready, self._ready = self._ready, []
        return ready

    def _targets(self, root: str, paths: list[str]) -> list[str]:
        self._claims_cache.clear()
        if self._claimed(root):
            return [root]  # a watched Maildir or chat export is read as a whole
        return coalesce(target_for(root, path, self._claimed) for path in paths)

    def _claimed(self, folder: Path | str) -> bool:
        key = str(folder)
        if key not in self._claims_cache:
            from memex.ingest.plugins import connectors

            path = Path(folder)
            self._claims_cache[key] = path.is_dir() and any(
                c.name != "files" and c.claims_folder(path) for c in connectors()
            )
        return self._claims_cache[key]

    def _root_of(self, path: str) -> str | None:
        best = None
        for root in self.roots:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                if best is None or len(root) > len(best):
                    best = root
        return best

    def _guarded(self, root: str, kind: str, work: Callable[[], IngestReport], **extra: Any) -> None:
        """Run one batch or reconcile; whatever goes wrong is logged, and that folder is
        reconciled again a little later. Only a request to stop ends the loop."""
        self.busy = f"{kind} {root}"
        started = time.monotonic()
        try:
            report = work()
        except Exception as exc:  # the daemon never dies of one batch
            self.counts["errors"] += 1
            log.exception("%s of %s failed", kind, root)
            self._emit("error", root=root, message=f"{kind} failed: {type(exc).__name__}: {exc}")
            self.request_reconcile(root, after=ERROR_RETRY_SECONDS)
            return
        finally:
            self.busy = None
        self._report(kind, root, report, time.monotonic() - started, **extra)

    def _report(self, kind: str, root: str, report: IngestReport, seconds: float, **extra: Any) -> None:
        new_failures = []
        for failure in report.failures:
            key = (failure.uri, failure.reason)
            if key not in self._known_failures:
                self._known_failures.add(key)
                new_failures.append({"source": failure.uri, "kind": failure.kind, "reason": failure.reason})
        self.counts["indexed"] += len(report.indexed)
        self.counts["removed"] += len(report.removed)
        self.counts["failed"] += len(new_failures)
        event = {
            "root": root,
            **extra,
            "indexed": report.indexed,
            "removed": report.removed,
            "failed": new_failures,
            "unchanged": report.unchanged,
            "chunks_added": report.chunks_added,
            "chunks_removed": report.chunks_removed,
            "seconds": round(seconds, 3),
        }
        self.last = {"event": kind, "time": time.time(), **event}
        if kind == "batch" or report.indexed or report.removed or new_failures:
            self._emit(kind, **event)

    def _progress(self) -> StatusProgress:
        return StatusProgress(self)

    # -- status and requests ----------------------------------------------------------------------
    def watched(self) -> list[dict[str, str]]:
        out = []
        for root in self.roots:
            watch = self.observers.watches.get(root)
            out.append(
                {
                    "root": root,
                    "mode": watch.mode if watch else "starting",
                    "reason": watch.reason if watch else "",
                }
            )
        return out

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "home": str(self.memex.paths.root),
            "started": self.started,
            "uptime_seconds": round(time.time() - self.started, 1),
            "watched": self.watched(),
            "queue": len(self.debouncer),
            "busy": self.busy,
            "in_background": self.ahead.busy,  # long parses (recordings) running beside the loop
            "counts": dict(self.counts),
            "last": self.last,
            "memory_mb": rss_mb(),
        }

    def handle(self, request: dict[str, Any], peer: Peer, send: Send) -> None:
        """One request from the socket (memex.daemon.rpc). Runs in the connection's thread."""
        from memex.daemon.requests import answer

        self.in_use += 1
        try:
            send({"result": answer(self, request, peer, send)})
        except MemexError as exc:
            send(error_frame(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the asker went away (`memex export | head`): nothing to answer, nothing wrong
        except Exception:  # a bug: the caller gets a reason, the daemon goes on
            log.exception("request %r failed", request.get("command"))
            send({"error": "internal error (see the daemon's log)", "type": "InternalError", "exit_code": 1})
        finally:
            self.in_use -= 1
            self.last_used = time.monotonic()

    def remember(self) -> None:
        from memex import config

        config.save_watched(self.memex.paths, list(self.roots))

    def _emit(self, event: str, **fields: Any) -> None:
        try:
            self.emit({"event": event, "time": round(time.time(), 3), **fields})
        except Exception:  # a broken terminal must not stop the watcher
            log.exception("could not report %s", event)
