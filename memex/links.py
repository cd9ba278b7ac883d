"""Symbolic links met inside an ingested folder (part of the connector SDK: the files walk and
ingest judge links alike).

A file is labelled by the path it really has: a link is read as its target, under the target's
path and so under the target's rules, never under the link's name. By default a link whose
target lies outside the ingested folder is not read at all, and is reported with its reason;
`follow_links = true` in config.toml (or `-o follow_links=true`) reads such targets too, still
labelled by their own paths. Hard links have no "other" path to resolve: see the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from memex.documents import SourceDocument, failing_document

TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Scope:
    """Where link targets may lie (resolved folders), and whether targets elsewhere are read."""

    roots: tuple[str, ...]
    follow: bool = False

    @classmethod
    def of(cls, target: str | Path, options: dict | None = None) -> Scope:
        """The scope of a walk of `target`; the option `within` (the watched folder a changed
        path belongs to) widens it to that folder."""
        options = options or {}
        folder = str(options.get("within") or target)
        if os.path.isfile(folder):
            folder = os.path.dirname(folder)
        follow = options.get("follow_links")
        follow = follow if isinstance(follow, bool) else str(follow or "").strip().lower() in TRUE
        return cls((os.path.realpath(os.path.expanduser(folder)),), follow)

    def contains(self, real: str) -> bool:
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots)


def resolve(path: str | Path, scope: Scope) -> tuple[Path | None, str]:
    """(the real path to read, "") or (None, why it is not read) for a path that is or passes
    through a symbolic link. A loop or a dangling link is a reason, never a hang."""
    try:
        real = os.path.realpath(path, strict=True)
    except OSError as exc:
        return None, f"a symbolic link that does not resolve ({exc.strerror or exc}); not read"
    if scope.follow or scope.contains(real):
        return Path(real), ""
    return None, (
        f"a symbolic link to {real}, outside the ingested folder {scope.roots[0]}; not read "
        "(follow_links = true in config.toml reads link targets, labelled by their own paths)"
    )


def is_link_path(path: str | Path, root: str | Path) -> bool:
    """True if `path` (inside `root`) is a link or lies in a linked folder below `root`."""
    relative = os.path.relpath(path, root)
    return os.path.realpath(path) != os.path.normpath(os.path.join(os.path.realpath(root), relative))


def skipped_link(path: str | Path, scope: Scope) -> SourceDocument:
    """A link that is not read, reported with its reason under the link's own path."""
    posix = Path(path).as_posix()
    return failing_document(
        source_id=f"file:{posix}",
        uri=posix,
        connector="files",
        attributes={"connector": "files", "path": posix},
        reason=resolve(path, scope)[1] or "a symbolic link; not read",
    )
