"""Files and folders on the local disk. Files and folders another connector claims (an mbox, a
Maildir, a chat export...) are read by that connector, wherever they turn up."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from connectors.fileparse import parse_file
from memex.connector import Connector
from memex.documents import SourceDocument, failing_document
from memex.errors import ParseError
from memex.links import Scope, resolve, skipped_link

IGNORED_NAMES = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".DS_Store", "Thumbs.db"}
IGNORED_SUFFIXES = (".swp", ".swo", ".swx", ".tmp", ".part", ".crdownload", ".partial", "~")
# JetBrains IDEs save through FILE___jb_tmp___ and FILE___jb_old___; KDE through FILE.kate-swp.
IGNORED_SUFFIXES += ("___jb_tmp___", "___jb_old___", ".kate-swp", ".download", ".aria2")


def is_ignored(name: str, patterns: Sequence[str] = ()) -> bool:
    """Hidden files, editors' swap, backup and temporary files, unfinished downloads, and names
    matching any of `patterns` (shell globs, the `ignore` option)."""
    return (
        name in IGNORED_NAMES
        or name.startswith(".")
        or name.startswith("~$")
        or name.startswith(".#")
        or name.endswith(IGNORED_SUFFIXES)
        or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    )


def ignore_patterns(options: dict) -> tuple[str, ...]:
    """The `ignore` option: comma-separated globs on names, e.g. `-o ignore=*.log,build`."""
    return tuple(p.strip() for p in str(options.get("ignore") or "").split(",") if p.strip())


class FilesConnector(Connector):
    """Any file or folder (recursively). The fallback for paths no other connector claims."""

    name = "files"

    @classmethod
    def accepts(cls, target: str) -> bool:
        return os.path.exists(target)

    def load(self) -> Iterator[SourceDocument]:
        """Every document under the target. The same file met twice (through a link and where
        it lies) comes out once; one source in two files (a message saved as .eml and as .msg)
        comes out twice, and ingest keeps the first and reports the other as its duplicate."""
        seen: set[tuple[str, str]] = set()
        for doc in self._documents():
            if (doc.source_id, doc.uri) not in seen:
                seen.add((doc.source_id, doc.uri))
                yield doc

    def count(self) -> int | None:
        """The files to read (one walk of names, no file opened): a file another connector reads
        as many documents (an mbox) counts once, so this is where the total starts."""
        root = Path(self.target).expanduser().resolve()
        if root.is_file():
            return 1
        handlers = [c for c in self.others if c is not FilesConnector]
        scope = Scope.of(root, self.options)
        total = 0
        for kind, path in walk(root, handlers, ignore_patterns(self.options), scope=scope):
            if kind == "folder":
                total += sum(len(files) for _, _, files in os.walk(path))
            else:
                total += 1
        return total

    def _documents(self) -> Iterator[SourceDocument]:
        root = Path(self.target).expanduser().resolve()
        handlers = [c for c in self.others if c is not FilesConnector]
        if root.is_file():
            yield from _documents_for_file(root, handlers, self.options, self.others)
            return
        scope = Scope.of(root, self.options)
        for kind, path in walk(root, handlers, ignore_patterns(self.options), scope=scope):
            if kind == "folder":
                yield from _delegate(path, _claimant(path, handlers, folder=True), self.options, self.others)
            elif kind == "skipped":
                yield skipped_link(path, scope)
            else:
                yield from _documents_for_file(path, handlers, self.options, self.others)


def walk(
    root: Path,
    handlers: list[type[Connector]] = (),
    patterns: Sequence[str] = (),
    *,
    scope: Scope | None = None,
    _entered: set[tuple[int, int]] | None = None,
) -> Iterator[tuple[str, Path]]:
    """("file", path) and ("folder", path) for folders another connector claims, in a stable
    order, skipping ignored names (and those matching `patterns`). A symbolic link comes out as
    its real path (memex.links), or as ("skipped", link) when it is not to be read; a
    linked folder inside the scope is skipped (it is read where it lies)."""
    scope = scope or Scope.of(root)
    entered = _entered if _entered is not None else set()
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if is_ignored(entry.name, patterns):
            continue
        path = Path(entry.path)
        try:
            if entry.is_symlink():
                yield from _link(path, handlers, patterns, scope, entered)
            elif entry.is_dir(follow_symlinks=False):
                if _claimant(path, handlers, folder=True):
                    yield "folder", path
                else:
                    yield from walk(path, handlers, patterns, scope=scope, _entered=entered)
            elif entry.is_file(follow_symlinks=False):
                yield "file", path
        except OSError:
            continue


def _link(
    path: Path, handlers, patterns: Sequence[str], scope: Scope, entered: set[tuple[int, int]]
) -> Iterator[tuple[str, Path]]:
    real, _ = resolve(path, scope)
    if real is None:
        yield "skipped", path
        return
    if is_ignored(real.name, patterns):
        return
    if real.is_file():
        yield "file", real
    elif real.is_dir() and not scope.contains(str(real)):
        stat = real.stat()
        if (stat.st_dev, stat.st_ino) in entered:
            return  # a loop through links
        entered.add((stat.st_dev, stat.st_ino))
        if _claimant(real, handlers, folder=True):
            yield "folder", real
        else:
            yield from walk(real, handlers, patterns, scope=scope, _entered=entered)


def _claimant(path: Path, handlers: list[type[Connector]], *, folder: bool) -> type[Connector] | None:
    for handler in handlers:
        if handler.claims_folder(path) if folder else handler.claims_file(path):
            return handler
    return None


def _documents_for_file(
    path: Path, handlers: list[type[Connector]], options: dict | None, others: tuple[type[Connector], ...]
) -> Iterator[SourceDocument]:
    handler = _claimant(path, handlers, folder=False)
    if handler is None:
        yield file_document(path)
    else:
        yield from _delegate(path, handler, options, others)


def _delegate(
    path: Path, handler: type[Connector] | None, options: dict | None, others: tuple[type[Connector], ...]
) -> Iterator[SourceDocument]:
    """A claimed file or folder, read by its connector (with the options given for the folder,
    e.g. `-o timezone=Europe/Lisbon`). If the connector cannot even open it, the failure is
    reported against the path, and the walk goes on."""
    assert handler is not None
    try:
        yield from handler(str(path), others=others, **(options or {})).load()
    except (ParseError, OSError, ValueError) as exc:
        yield broken_document(path, f"{handler.name}: {exc}", connector=handler.name)


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
        content_file=posix,  # hashed by streaming; refused beyond max_file_mb
        parse=partial(parse_file, path),
        fingerprint=fingerprint,
        # The mtime is when the file was last saved, not what it is about: no date filter uses it.
        metadata={"modified": modified} if modified is not None else {},
    )


def broken_document(path: Path, reason: str, *, connector: str = "files") -> SourceDocument:
    """A stand-in for a file that could not be read at all, so that it is reported."""
    posix = path.as_posix()
    return failing_document(
        source_id=f"file:{posix}",
        uri=posix,
        title=path.name,
        connector=connector,
        attributes={"connector": "files", "path": posix},
        reason=reason,
    )
