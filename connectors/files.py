"""Files and folders on the local disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from connectors.fileparse import parse_file
from memex.connector import Connector
from memex.documents import SourceDocument

IGNORED_NAMES = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".DS_Store", "Thumbs.db"}
IGNORED_SUFFIXES = (".swp", ".swo", ".swx", ".tmp", ".part", ".crdownload", ".partial", "~")


def is_ignored(name: str) -> bool:
    """Hidden files, editors' swap and backup files, and unfinished downloads."""
    return (
        name in IGNORED_NAMES
        or name.startswith(".")
        or name.startswith("~$")
        or name.startswith(".#")
        or name.endswith(IGNORED_SUFFIXES)
    )


class FilesConnector(Connector):
    """Any file or folder (recursively). The fallback for paths no other connector claims."""

    name = "files"

    @classmethod
    def accepts(cls, target: str) -> bool:
        return os.path.exists(target)

    def load(self) -> Iterator[SourceDocument]:
        root = Path(self.target).expanduser().resolve()
        if root.is_file():
            yield file_document(root)
            return
        for path in walk(root):
            yield file_document(path)


def walk(root: Path) -> Iterator[Path]:
    """Files under root, in a stable order, skipping ignored names and symlinked folders."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if is_ignored(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from walk(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


def file_document(path: Path) -> SourceDocument:
    try:
        stat = path.stat()
        fingerprint = f"{stat.st_mtime_ns}:{stat.st_size}"
        modified = stat.st_mtime
    except OSError:
        fingerprint, modified = None, None
    posix = path.as_posix()
    return SourceDocument(
        source_id=f"file:{posix}",
        uri=posix,
        title=path.name,
        connector="files",
        attributes={"connector": "files", "path": posix},
        read_bytes=path.read_bytes,
        parse=partial(parse_file, path),
        fingerprint=fingerprint,
        metadata={"timestamp": modified} if modified is not None else {},
    )
