"""The connector contract: one class per source family, one method that yields documents.

The connector SDK is this module with memex.documents (what connectors yield, and the one
stand-in for a source that cannot be read), memex.errors, memex.hookspecs (registration) and
memex.links (symbolic links): connectors import nothing else of memex. `isolated` runs parsing
that a connector must do while it lists (a calendar's occurrences) in the sandboxed workers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from memex.documents import SourceDocument
from memex.ingest.sandbox import isolated, tell

__all__ = ["Connector", "isolated", "tell"]


class Connector:
    """Reads one target (a path or a URI) into SourceDocuments, lazily.

    Subclasses set `name` and implement `load`. They say which targets they read with `accepts`;
    a connector for a kind of file or folder (an mbox, a Maildir, a chat export) sets
    `file_suffixes` or overrides `claims_folder`, and then also reads such files and folders when
    they turn up inside a folder being ingested.

    Options come from the command line or config (`memex ingest --option key=value`).
    """

    name: ClassVar[str] = ""
    file_suffixes: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        target: str,
        *,
        others: Sequence[type[Connector]] = (),
        data_dir: Path | None = None,
        **options: Any,
    ) -> None:
        """`others`: every registered connector, handed over by ingest, for connectors that
        delegate what they find to the connector that claims it (the files walk does).
        `data_dir`: this connector's own folder in MEMEX_HOME (a mail server's sync state), or
        None where there is none: a connector never looks for memex's folders itself."""
        self.target = target
        self.others = tuple(others)
        self.data_dir = data_dir
        self.options = options

    @classmethod
    def claims_file(cls, path: Path) -> bool:
        return path.suffix.lower() in cls.file_suffixes

    @classmethod
    def claims_folder(cls, path: Path) -> bool:
        return False

    @classmethod
    def accepts(cls, target: str) -> bool:
        """True if this connector reads `target`. Connectors are asked in registration order;
        the files connector, which reads any path, comes last."""
        path = Path(target).expanduser()
        if path.is_file():
            return cls.claims_file(path)
        if path.is_dir():
            return cls.claims_folder(path)
        return False

    def count(self) -> int | None:
        """About how many documents `load` will yield, if that is cheap to know (for progress
        with a total and the time left); None if not."""
        return None

    def load(self) -> Iterator[SourceDocument]:  # pragma: no cover - abstract
        """Every document of the target. Ingest removes, after a complete load, the documents
        it had from this target that were not yielded again."""
        raise NotImplementedError
