"""What an ingest reports: its outcome (IngestReport, with a Failure per source it could not
read) and the progress protocol it reports through while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Progress(Protocol):
    def begin(self, stage: str, total: int | None) -> None: ...
    def advance(self, stage: str, n: int = 1) -> None: ...


class Silent:
    """Progress that nobody watches."""

    def begin(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, stage: str, n: int = 1) -> None:
        pass


@dataclass(frozen=True)
class Failure:
    uri: str
    reason: str
    kind: str  # "failed", "unsupported" or "refused"


@dataclass
class IngestReport:
    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    relabelled: int = 0
    failures: list[Failure] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (uri skipped, uri kept)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "indexed": len(self.indexed),
            "unchanged": self.unchanged,
            "relabelled": self.relabelled,
            "failed": len(self.failures),
            "removed": len(self.removed),
            "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "seconds": round(self.seconds, 3),
            "indexed_sources": self.indexed,
            "removed_sources": self.removed,
            "failures": [{"source": f.uri, "kind": f.kind, "reason": f.reason} for f in self.failures],
            "duplicates": [{"source": skipped, "same_as": kept} for skipped, kept in self.duplicates],
        }
