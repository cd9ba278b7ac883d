"""Advisory lock files in MEMEX_HOME: one writer per embedded store, one daemon per home.

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
from collections.abc import Callable
from pathlib import Path

from memex.errors import MemexError, StoreBusy


class FileLock:
    """An advisory lock (flock) on a file in MEMEX_HOME: exclusive or shared, waited for up to
    `wait_seconds`, refused with `refused(holder)` (the holder the kernel names: pid, command).
    An exclusive holder writes `record()` into the file for the next one's message. The one lock
    memex takes: the store's (StoreLock) and the daemon's (one per home) are this."""

    def __init__(
        self,
        path: Path,
        *,
        exclusive: bool,
        wait_seconds: float = 0.0,
        refused: Callable[[dict], MemexError],
        record: Callable[[], bytes] | None = None,
        clear_on_release: bool = False,
    ) -> None:
        self.path = path
        self.exclusive = exclusive
        self.wait_seconds = wait_seconds
        self._refused = refused
        self._record = record or (
            lambda: json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv[:3])}).encode()
        )
        self._clear_on_release = clear_on_release
        self._fd: int | None = None

    def acquire(self) -> FileLock:
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
                    holder = _holder(fd, self.path)
                    os.close(fd)
                    raise self._refused(holder) from None
                time.sleep(0.1)
        if self.exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, self._record())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            if self._clear_on_release and self.exclusive:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def StoreLock(path: Path, *, exclusive: bool, wait_seconds: float = 0.0) -> FileLock:  # noqa: N802
    """One writer per embedded store: writers hold it exclusively, readers shared."""
    return FileLock(
        path,
        exclusive=exclusive,
        wait_seconds=wait_seconds,
        refused=lambda holder: StoreBusy(_store_busy(path, holder, exclusive=exclusive)),
    )


def _store_busy(path: Path, holder: dict, *, exclusive: bool) -> str:
    who = (
        f"process {holder.get('pid', '?')} ({holder.get('command', 'memex')})"
        if holder
        else "another process"
    )
    if exclusive:
        return (
            f"the store in {path.parent} is in use by {who}. Only one memex process may "
            f"write to an embedded store: wait for it to finish, stop it, or use a Chroma server "
            f"(store_url in config.toml) for several processes. A running `memex serve` or daemon "
            f"applies policy edits itself (no `memex relabel` needed)"
        )
    return (
        f"the store in {path.parent} is being written by {who}; try again when it finishes. "
        f"Reads go on during an ingest when it is handed to memex in the background (the default; "
        f"not with --no-daemon or daemon = false)"
    )


def _holder(fd: int, path: Path) -> dict:
    """Who really holds the lock: the kernel's lock table (/proc/locks) names the processes
    holding it, shared or exclusive; the pid written in the file is only the last exclusive
    holder's, and may be long gone. Without /proc, that pid if it still runs."""
    recorded = _read_holder(fd)
    pids = _lock_holders(fd)
    if pids is None:  # no /proc/locks: trust the file only if its process is alive
        pid = recorded.get("pid")
        return recorded if isinstance(pid, int) and _alive(pid) else {}
    for pid in pids:
        if pid == recorded.get("pid"):
            return recorded
    if not pids:
        return {}
    return {"pid": pids[0], "command": _command(pids[0])}


def _lock_holders(fd: int) -> list[int] | None:
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    exact, same_inode = [], []
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue  # a waiter, or another kind of lock
        pid, where = int(fields[4]), fields[5]
        if pid == os.getpid():
            continue
        if where == device:
            exact.append(pid)
        elif where.rsplit(":", 1)[-1] == str(st.st_ino):  # layered file systems report another device
            same_inode.append(pid)
    return sorted(set(exact or same_inode))


def _command(pid: int) -> str:
    """`memex serve`, `memex daemon`... from the process's command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "memex"
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == "memex":
            return " ".join(["memex", *argv[i + 1 : i + 2]])
    if "memex.daemon.process" in argv:
        return "memex daemon"
    shown = [os.path.basename(argv[0]), *argv[1:3]] if argv else ["memex"]
    return " ".join(arg.splitlines()[0][:40] if arg.strip() else "''" for arg in shown)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> dict:
    """What the last exclusive holder wrote: {"pid", "command"} (JSON), or a bare pid."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        value = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"pid": value, "command": "memex daemon"}
    return value if isinstance(value, dict) else {}
