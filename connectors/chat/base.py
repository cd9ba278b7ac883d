"""What the chat connectors share: options, windows, and reporting a broken export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from connectors.chat.model import Conversation
from connectors.chat.windows import Limits, documents, failing_document
from memex.connector import Connector
from memex.documents import SourceDocument
from memex.errors import ParseError


class ChatConnector(Connector):
    """A chat export (a file or a folder). Subclasses set `name` and implement `conversations`.

    Options (all optional): window_gap_minutes (default 120), window_messages (40),
    window_chars (3000); Slack also takes `workspace` (the name policy rules and citations use).
    """

    name = "chat"

    def conversations(self, path: Path) -> Iterator[Conversation | SourceDocument]:  # pragma: no cover
        raise NotImplementedError

    def load(self) -> Iterator[SourceDocument]:
        path = Path(self.target).expanduser().resolve()
        try:
            limits = Limits.from_options(self.options)
            for item in self.conversations(path):
                if isinstance(item, SourceDocument):
                    yield item
                else:
                    yield from documents(item, limits)
        except (ParseError, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            yield self.broken(path, f"{self.name}: {reason}")

    def broken(self, path: Path, reason: str, *, workspace: str | None = None) -> SourceDocument:
        """A stand-in that fails with `reason`, so that ingest reports the export and goes on."""
        return failing_document(
            source_id=f"{self.name}:broken:{path.as_posix()}",
            uri=path.as_posix(),
            attributes={
                "connector": "chat",
                "workspace": workspace or self.name,
                "path": path.as_posix(),
                "field.platform": self.name,
            },
            reason=reason,
        )
