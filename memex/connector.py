"""The connector contract: one class per source family, one method that yields documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from memex.documents import SourceDocument


class Connector:
    """Reads one target (a path or a URI) into SourceDocuments, lazily.

    Subclasses set `name`, implement `load`, and say which targets they read with `accepts`.
    Options come from the command line or config (`memex ingest --option key=value`).
    """

    name: ClassVar[str] = ""

    def __init__(self, target: str, **options: Any) -> None:
        self.target = target
        self.options = options

    @classmethod
    def accepts(cls, target: str) -> bool:
        """True if this connector can read `target`. Connectors are asked in registration order;
        the files connector comes last."""
        return False

    def load(self) -> Iterator[SourceDocument]:  # pragma: no cover - abstract
        """Every document of the target. Ingest removes, after a complete load, the documents
        it had from this target that were not yielded again."""
        raise NotImplementedError
