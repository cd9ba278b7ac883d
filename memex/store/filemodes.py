"""MEMEX_HOME holds every chunk, the audit log and the tokens, so no other local account may read
it (PostgreSQL's data directory, OpenSSH's keys): folders 0700, files 0600, whatever the umask.
The one exception: with the daemon's socket opened to its group (`socket_mode = 0o660`) the home
is 0710, and opened to every account (0o666) 0711, so that they can reach the socket by name and
nothing else (the daemon asks the kernel who is on the other end)."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PRIVATE_UMASK = 0o077
SOCKET_NAME = "daemon.sock"


def use_private_umask() -> None:
    """Everything this process creates from now on is for its own account only (Chroma's files
    too, which memex does not create itself)."""
    os.umask(PRIVATE_UMASK)


def create_private(path: Path) -> None:
    """Create `path` as an empty 0600 file if it is not there, and make it 0600 if it is (SQLite
    then gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def home_mode(socket_mode: int) -> int:
    """0700, with search (x) only for whoever the socket is opened to: its group (0710), or
    every account (0711, socket_mode 0o666). Nobody else can list the home or read its files."""
    mode = 0o700
    if socket_mode & 0o070:
        mode |= 0o010
    if socket_mode & 0o007:
        mode |= 0o001
    return mode


def _allowed(root: Path, path: Path, socket_mode: int) -> int:
    """The permission bits beyond the owner's that `path` may have."""
    if path == root:
        return home_mode(socket_mode) & 0o077
    if path == root / SOCKET_NAME:
        return socket_mode & 0o077
    return 0


def _entries(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for folder, folders, files in os.walk(root, followlinks=False):
        base = Path(folder)
        yield from (
            (base / name, os.lstat(base / name)) for name in [*folders, *files] if _exists(base / name)
        )
    if _exists(root):
        yield root, os.lstat(root)


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def loose_paths(root: Path, *, socket_mode: int = 0o600) -> list[str]:
    """Paths in `root` that other accounts may read or write (beyond what a group socket needs)."""
    out = []
    for path, info in _entries(root):
        if stat.S_ISLNK(info.st_mode):
            continue
        if stat.S_IMODE(info.st_mode) & 0o077 & ~_allowed(root, path, socket_mode):
            out.append(str(path))
    return sorted(out)


def secure_home(
    root: Path, *, socket_mode: int = 0o600, note: Callable[[str], None] | None = None
) -> list[str]:
    """Create MEMEX_HOME private, or tighten an existing one: the process umask, then every folder
    and file in it that others could read or write. Says what it changed (once: the next time
    nothing is left to change). Returns the paths tightened."""
    use_private_umask()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = []
    for name in loose_paths(root, socket_mode=socket_mode):
        path = Path(name)
        try:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            os.chmod(path, (mode & 0o700) | _allowed(root, path, socket_mode))
        except OSError:
            continue  # another account's file: `memex status` names it
        changed.append(name)
    try:
        if stat.S_IMODE(os.stat(root).st_mode) != home_mode(socket_mode):
            os.chmod(root, home_mode(socket_mode))  # the socket's group (or all) may reach it, no more
    except OSError:
        pass
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        (note or _stderr)(
            f"memex: {root} was readable by other accounts; tightened {len(changed)} path(s) to "
            f"owner-only: {shown}"
        )
    return changed


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def warning(root: Path, *, socket_mode: int = 0o600) -> str | None:
    """The warning `memex status` and `memex serve` print, naming what others may read."""
    loose = loose_paths(root, socket_mode=socket_mode)
    if not loose:
        return None
    shown = ", ".join(loose[:10]) + (f" and {len(loose) - 10} more" if len(loose) > 10 else "")
    return (
        f"memex: warning: other accounts may read or write {len(loose)} path(s) in {root}: {shown}; "
        f"run `chmod -R go-rwx {root}` (memex also tightens them when it next opens the home as "
        f"their owner)"
    )
