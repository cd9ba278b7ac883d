"""What the watcher asks the system: which file system a folder is on, how many inotify watches
this process holds and may hold, how many folders a tree has, how much memory a process holds."""

from __future__ import annotations

import os
from pathlib import Path


def filesystem_type(path: str) -> str:
    """The type of the file system `path` is on (from /proc/self/mountinfo; "" if unknown)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    best, kind = "", ""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def inotify_watches() -> int | None:
    """How many inotify watches this process holds (None where /proc does not tell)."""
    total = 0
    try:
        fds = os.listdir("/proc/self/fdinfo")
    except OSError:
        return None
    for fd in fds:
        try:
            with open(f"/proc/self/fdinfo/{fd}") as handle:
                total += sum(1 for line in handle if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


def count_folders(root: str) -> int:
    """Folders under `root`, itself included, as watchdog watches them (symlinks not followed)."""
    count = 0
    for _, _, _ in os.walk(root, followlinks=False):
        count += 1
    return count


def read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process, in MB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None
