"""Watching folders: file-system events in, settled paths out.

Events are level-triggered hints: an event only says "look at this path again". What happened
(written, replaced, renamed, deleted) is read from the disk when the path has settled, so editors'
atomic saves (write a temporary file, rename it over the original), `sed -i`, JetBrains'
`___jb_tmp___` dance, partial copies and storms of thousands of events all come down to the same
question about each path: what is there now? Lost events cannot leave the index wrong for long
either: the daemon also compares the whole folder with the ledger (memex.daemon.watcher).

A path is *settled* when no event came for it for `quiet` seconds and, unless the last thing that
happened to it was a close after writing, a move or a deletion, its size and mtime did not change
over one more `quiet` interval; a file still open for writing (written, not yet closed: inotify
tells) waits `open_quiet` seconds. A folder is settled when everything changed inside it is.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from memex.daemon.system import count_folders, filesystem_type, inotify_watches, read_int
from memex.ingest.plugins import is_ignored

log = logging.getLogger("memex.daemon.watch")

# Where events are not delivered (network and some FUSE file systems), folders are scanned.
NETWORK_FILESYSTEMS = {
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs", "lustre",
    "gpfs", "beegfs", "davfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse",
    "fuse.glusterfs", "fuse.cephfs", "fuse.davfs2", "fuse.smbnetfs", "fuse.afpfs",
}  # fmt: skip
MAX_WATCHES_SYSCTL = "/proc/sys/fs/inotify/max_user_watches"


# -- what is never indexed -------------------------------------------------------------------
@dataclass(frozen=True)
class Ignore:
    """Hidden files and folders, editors' swap, backup and temporary files, unfinished downloads
    (what the plugins ignore: memex.ingest.plugins.is_ignored), and the `ignore` patterns of config.toml (shell globs on names)."""

    patterns: tuple[str, ...] = ()

    def name(self, name: str) -> bool:
        return is_ignored(name, self.patterns)

    def path(self, root: str, path: str) -> bool:
        """True if `path` or a folder between `root` and it is ignored."""
        relative = os.path.relpath(path, root)
        if relative == ".":
            return False
        if relative.startswith(".." + os.sep) or relative == "..":
            return True  # outside the root
        return any(self.name(part) for part in relative.split(os.sep))

    def option(self) -> dict[str, str]:
        """The connector option that makes a folder's walk skip the same names."""
        return {"ignore": ",".join(self.patterns)} if self.patterns else {}


# -- settling ----------------------------------------------------------------------------------
Stat = tuple[int, int, int] | None  # (size, mtime_ns, inode); None: not there


def stat_of(path: str) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return (-1, 0, st.st_ino)  # a folder (or something else): its own events say enough
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class _Pending:
    last_event: float
    writing: bool  # written and not closed yet (as far as the events tell)
    stable: bool  # the events say the content is final (closed, moved in, deleted)
    settle: float | None = None  # how long it must be quiet, if not the debouncer's default
    checked: Stat | bool = False  # the stat at the first settled look (False: not looked yet)
    checked_at: float = 0.0
    events: int = 1


@dataclass
class Debouncer:
    """Per-path debouncing. `touch` records an event; `ready` hands out the paths that settled.
    Thread-safe: events come from observer threads, `ready` is called by the daemon's loop."""

    quiet: float = 0.5
    open_quiet: float = 5.0
    clock: Callable[[], float] = time.monotonic
    stat: Callable[[str], Stat] = stat_of
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    wakeup: threading.Event = field(default_factory=threading.Event)

    def touch(
        self, path: str, *, writing: bool = False, stable: bool = False, settle: float | None = None
    ) -> None:
        """An event about `path`. `writing`: written and not closed; `stable`: the content is final
        (closed after writing, moved here, deleted); `settle`: quiet needed instead of the default
        (a scanned folder's events come a scan interval apart)."""
        now = self.clock()
        with self._lock:
            entry = self._pending.get(path)
            if entry is None:
                self._pending[path] = _Pending(now, writing, stable, settle)
            else:
                entry.last_event = now
                entry.writing = writing
                entry.stable = stable
                entry.settle = settle
                entry.checked = False
                entry.events += 1
        self.wakeup.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def due(self) -> float | None:
        """Seconds until a path may be ready (None: nothing pending)."""
        with self._lock:
            if not self._pending:
                return None
            now = self.clock()
            soonest = min(self._deadline(entry) for entry in self._pending.values())
        return max(0.0, soonest - now)

    def _quiet(self, entry: _Pending) -> float:
        if entry.settle is not None:
            return entry.settle
        return self.open_quiet if entry.writing else self.quiet

    def _deadline(self, entry: _Pending) -> float:
        base = entry.last_event + self._quiet(entry)
        if entry.checked is not False:
            base = max(base, entry.checked_at + self.quiet)
        return base

    def ready(self) -> list[str]:
        """Paths that settled, removed from the pending set. A folder waits for what is pending
        inside it; a path inside a folder that is ready comes out with it (the folder covers it)."""
        now = self.clock()
        with self._lock:
            settled, waiting = [], []
            for path, entry in self._pending.items():
                (settled if self._settled(path, entry, now) else waiting).append(path)
            if not settled:
                return []
            held = set()
            if waiting:
                for path in settled:
                    prefix = path.rstrip(os.sep) + os.sep
                    if any(w.startswith(prefix) for w in waiting):
                        held.add(path)
                        continue
                # what a held folder covers waits with it
                for path in settled:
                    if any(path.startswith(h.rstrip(os.sep) + os.sep) for h in held):
                        held.add(path)
            out = [p for p in settled if p not in held]
            for path in out:
                del self._pending[path]
        return sorted(out)

    def _settled(self, path: str, entry: _Pending, now: float) -> bool:
        if now < entry.last_event + self._quiet(entry):
            return False
        if entry.stable:
            return True
        current = self.stat(path)
        if current is None or current[0] == -1:
            return True  # gone, or a folder
        if entry.checked is False or entry.checked != current:
            entry.checked, entry.checked_at = current, now  # look again in `quiet` seconds
            return False
        return now >= entry.checked_at + self.quiet

    def discard_within(self, folder: str) -> None:
        prefix = folder.rstrip(os.sep) + os.sep
        with self._lock:
            for path in [p for p in self._pending if p == folder or p.startswith(prefix)]:
                del self._pending[path]


def coalesce(paths: Iterable[str]) -> list[str]:
    """Drop paths that lie inside another path of the set (reading the folder covers them)."""
    out: list[str] = []
    for path in sorted(set(paths)):
        if out and (path == out[-1] or path.startswith(out[-1].rstrip(os.sep) + os.sep)):
            continue
        out.append(path)
    return out


# -- events ------------------------------------------------------------------------------------
class EventSink:
    """Turns watchdog events into `Debouncer.touch` calls for the paths inside `root` that are not
    ignored. Opening, reading, attribute changes and a folder's own modification (an entry
    added or removed: its entries have events of their own) are not changes of content."""

    def __init__(self, root: str, debouncer: Debouncer, ignore: Ignore) -> None:
        self.root = root
        self.debouncer = debouncer
        self.ignore = ignore
        self.settle: float | None = None  # set when the folder is scanned, not watched
        self.events = 0

    def dispatch(self, event) -> None:  # watchdog's handler interface
        try:
            self._dispatch(event)
        except Exception:  # an observer thread must never die of one event
            log.exception("could not handle the event %r", event)

    def _dispatch(self, event) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write", "attrib"):
            return
        if kind == "modified" and event.is_directory:
            return
        self.events += 1
        src = _text(event.src_path)
        if kind == "moved":
            self._touch(src, stable=True)
            self._touch(_text(event.dest_path), stable=True)
        elif kind == "closed":
            self._touch(src, stable=True)
        elif kind == "deleted":
            self._touch(src, stable=True)
        elif kind == "created" and event.is_directory:
            self._touch(src, stable=True)
        else:  # created, modified: may still be being written
            self._touch(src, writing=kind == "modified")

    def _touch(self, path: str, *, writing: bool = False, stable: bool = False) -> None:
        path = os.path.normpath(path)
        if self.ignore.path(self.root, path):
            return
        if self.settle is not None:  # scanning: no close events; settled = unchanged over a scan
            self.debouncer.touch(path, stable=False, settle=self.settle)
        else:
            self.debouncer.touch(path, writing=writing, stable=stable)


def _text(path: bytes | str) -> str:
    return os.fsdecode(path)


# -- observers ---------------------------------------------------------------------------------
@dataclass
class Watch:
    """One watched folder and how it is watched ("events", "scanning" or "missing")."""

    root: str
    mode: str = "missing"
    reason: str = ""
    observer: object | None = None
    sink: EventSink | None = None


class WatchLimit(OSError):
    """The inotify watch limit was reached."""


class Observers:
    """Starts and stops one observer per watched folder: inotify where it works, scanning where
    events are not delivered (network file systems) or when the inotify watch limit is reached."""

    def __init__(
        self,
        debouncer: Debouncer,
        ignore: Ignore,
        *,
        poll_seconds: float = 5.0,
        polling: bool = False,
        on_overflow: Callable[[str], None] = lambda root: None,
        on_note: Callable[[str, str], None] = lambda root, message: None,
    ) -> None:
        self.debouncer = debouncer
        self.ignore = ignore
        self.poll_seconds = poll_seconds
        self.polling = polling
        self.on_overflow = on_overflow
        self.on_note = on_note
        self.watches: dict[str, Watch] = {}
        self._overflow = _OverflowHook(self._overflowed)

    def start(self, root: str) -> Watch:
        self.stop(root)
        watch = Watch(root)
        self.watches[root] = watch
        if not os.path.isdir(root):
            watch.mode, watch.reason = "missing", "the folder does not exist (or is not mounted)"
            return watch
        sink = EventSink(root, self.debouncer, self.ignore)
        watch.sink = sink
        fs = filesystem_type(root)
        if self.polling or fs in NETWORK_FILESYSTEMS:
            reason = "polling is configured" if self.polling else f"{fs} delivers no events"
            return self._scan(watch, reason)
        try:
            watch.observer = self._inotify(root, sink)
            watch.mode = "events"
        except WatchLimit as exc:
            limit = read_int(MAX_WATCHES_SYSCTL)
            message = (
                f"the inotify watch limit was reached ({exc}; fs.inotify.max_user_watches = {limit}); "
                f"scanning {root} every {self.poll_seconds:g} s instead. To get events, raise it: "
                f"sudo sysctl fs.inotify.max_user_watches=524288 (and in /etc/sysctl.d/ to keep it)"
            )
            log.warning(message)
            self.on_note(root, message)
            return self._scan(watch, "the inotify watch limit was reached (fs.inotify.max_user_watches)")
        except OSError as exc:
            log.warning("cannot watch %s for events (%s); scanning it instead", root, exc)
            return self._scan(watch, f"events unavailable: {exc}")
        return watch

    def _scan(self, watch: Watch, reason: str) -> Watch:
        from watchdog.observers.polling import PollingObserverVFS

        ignore = self.ignore

        def listdir(path):
            return (entry for entry in os.scandir(path) if not ignore.name(entry.name))

        watch.sink.settle = self.poll_seconds + self.debouncer.quiet
        observer = PollingObserverVFS(os.stat, listdir, polling_interval=self.poll_seconds)
        observer.schedule(_Handler(watch.sink), watch.root, recursive=True)
        observer.daemon = True
        observer.start()
        watch.observer, watch.mode, watch.reason = observer, "scanning", reason
        return watch

    def _inotify(self, root: str, sink: EventSink):
        from watchdog.observers.inotify import InotifyObserver

        before = inotify_watches()
        observer = InotifyObserver()
        observer.daemon = True
        try:
            observer.schedule(_Handler(sink), root, recursive=True)
            observer.start()
        except OSError as exc:
            _stop(observer)
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise WatchLimit(exc.errno, exc.strerror or str(exc)) from None
            raise
        # watchdog skips subfolders it cannot watch without a word: count what it watches.
        if before is not None:
            wanted = count_folders(root)
            got = (inotify_watches() or 0) - before
            if got < wanted:
                _stop(observer)
                raise WatchLimit(errno.ENOSPC, f"{got} of {wanted} folders could be watched")
        return observer

    def stop(self, root: str) -> None:
        watch = self.watches.pop(root, None)
        if watch is not None and watch.observer is not None:
            _stop(watch.observer)

    def close(self) -> None:
        for root in list(self.watches):
            self.stop(root)
        self._overflow.remove()

    def _overflowed(self) -> None:
        for root, watch in self.watches.items():
            if watch.mode == "events":
                self.on_overflow(root)


class _Handler:
    """watchdog calls `dispatch(event)`."""

    def __init__(self, sink: EventSink | None) -> None:
        self.sink = sink

    def dispatch(self, event) -> None:
        if self.sink is not None:
            self.sink.dispatch(event)


def _stop(observer) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(5)
    except (RuntimeError, OSError):
        pass


class _OverflowHook(logging.Handler):
    """watchdog only logs when the kernel's event queue overflowed (events were lost); this
    turns that line into a reconcile of the folders watched by events."""

    LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            try:
                self.callback()
            except Exception:  # never break the observer thread that logged
                pass

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


def target_for(root: str, path: str, claims_folder: Callable[[Path], bool]) -> str:
    """What to read again for a changed `path` inside `root`: the path itself, or the outermost
    folder between them that a connector claims (a message file inside a Maildir changes the
    Maildir; a day file inside a Slack export changes the export)."""
    relative = os.path.relpath(path, root)
    if relative == ".":
        return root
    current = root
    for part in relative.split(os.sep)[:-1]:
        current = os.path.join(current, part)
        if claims_folder(Path(current)):
            return current
    return path
