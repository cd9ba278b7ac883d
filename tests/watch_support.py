"""Helpers for the watcher tests: a Service running in a thread, and "does the index equal the
disk" as exact sets."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from connectors.files import is_ignored

QUIET = 0.2  # seconds: fast settling for tests


def disk_state(root: Path) -> dict[str, str]:
    """{path: sha256} of every file under `root` that is not ignored."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not is_ignored(d)]
        for name in files:
            if not is_ignored(name):
                path = Path(folder) / name
                out[path.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def index_state(memex) -> dict[str, str]:
    """{uri: content hash} of what the ledger says is indexed."""
    return {r.uri: r.content_hash for r in memex.ledger.records(status="indexed")}


def consistent(memex) -> bool:
    """Ledger and store agree: no pending source, no chunk in one and not in the other."""
    pending = memex.ledger.records(status="pending")
    return not pending and memex.ledger.all_chunk_ids() == memex.index.chunk_ids()


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Running:
    """A memex.daemon.watcher.Watcher over `memex` watching `folders`, its loop in a thread."""

    def __init__(self, memex, folders, **settings) -> None:
        from memex.api.wiring import Memex
        from memex.daemon.watcher import Watcher
        from memex.index import Index

        memex.settings = replace(
            memex.settings, watch_quiet_seconds=QUIET, watch_poll_seconds=0.5, **settings
        )
        memex.index  # noqa: B018
        self.reader = Memex(
            memex.paths,
            policy=memex.policy_source,  # one policy in force, as in the daemon
            settings=memex.settings,
            embedder=memex.embedder,
            model=memex._model,
            index=Index.open(memex.paths.store, embedder=memex.embedder),
        )
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self.service = Watcher(memex, self.reader, folders=[str(f) for f in folders], emit=self._record)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.crashed: BaseException | None = None

    def _record(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as exc:  # the test asserts it never happens
            self.crashed = exc
            raise

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def last_event(self, kind: str) -> dict:
        return self.of(kind)[-1]

    def indexed_ever(self) -> list[str]:
        with self._lock:
            return [uri for e in self.events if e["event"] in ("batch", "reconcile") for uri in e["indexed"]]

    def __enter__(self) -> Running:
        self.thread.start()
        assert wait_until(lambda: self.of("reconcile") or self._reconciled(), timeout=120), self.events
        return self

    def _reconciled(self) -> bool:
        return self.service.counts["reconciles"] >= len(self.service.roots)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until nothing is pending or being written."""
        assert wait_until(
            lambda: self.service.idle.is_set() and len(self.service.debouncer) == 0, timeout=timeout
        ), self.events

    def __exit__(self, *exc) -> None:
        self.service.stop()
        self.thread.join(30)
        self.reader.close()
        assert not self.thread.is_alive()


def stop_daemon(paths) -> None:
    """Stop the daemon that runs for `paths`' home, if any: cleanly, else with SIGKILL (a test's
    daemon must not outlive it, whatever the test left it doing)."""
    import signal

    from memex.daemon import process as daemon_process
    from memex.errors import MemexError

    pid = daemon_process.running_pid(paths)
    if pid is None or pid < 0:
        return
    try:
        daemon_process.stop(paths, timeout=30, force=True)
    except MemexError:
        os.kill(pid, signal.SIGKILL)
