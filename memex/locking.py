"""One writer per embedded store: an advisory lock file in MEMEX_HOME.

Writers (ingest, forget, reindex, relabel, the daemon) hold it exclusively; readers hold it
shared, so a reader never sees a write half-done and a second writer gets a clear message instead
of corrupting Chroma's files.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from memex.errors import StoreBusy


class StoreLock:
    def __init__(self, path: Path, *, exclusive: bool, wait_seconds: float = 0.0) -> None:
        self.path = path
        self.exclusive = exclusive
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise StoreBusy(self._busy_message(holder)) from None
                time.sleep(0.1)
        if self.exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv[:3])}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _busy_message(self, holder: dict) -> str:
        who = (
            f"process {holder.get('pid', '?')} ({holder.get('command', 'memex')})"
            if holder
            else "another process"
        )
        if self.exclusive:
            return (
                f"the store in {self.path.parent} is in use by {who}. Only one memex process may "
                f"write to an embedded store: wait for it to finish, stop it, or use a Chroma server "
                f"(store_url in config.toml) for several processes"
            )
        return (
            f"the store in {self.path.parent} is being written by {who}; try again when it "
            f"finishes (or run memex through the daemon)"
        )


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}
