"""What an ingest reports: its outcome (IngestReport, with a Failure per source it could not
read) and the progress protocol it reports through while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Progress(Protocol):
    """One bar per phase ("reading FOLDER", "embedding"): `begin` starts a phase with its total
    (None while unknown), `grow` adds to a phase's total as more work is found (the embedding
    queue grows batch by batch), `advance` counts work done. A progress with `shows_totals =
    False` is not given totals that cost a walk to count."""

    def begin(self, stage: str, total: int | None) -> None: ...
    def advance(self, stage: str, n: int = 1) -> None: ...
    def grow(self, stage: str, n: int) -> None: ...


class StopSignal(Protocol):
    """Anything with is_set() (a threading.Event): set, an ingest stops between documents."""

    def is_set(self) -> bool: ...


class Silent:
    """Progress that nobody watches."""

    shows_totals = False  # no need to count ahead (memex.connector.Connector.count)

    def begin(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, stage: str, n: int = 1) -> None:
        pass

    def grow(self, stage: str, n: int) -> None:
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
    # Stopped on request (Ctrl-C, the daemon stopping) between documents: what was read is kept,
    # nothing is removed, and the next run reads the rest.
    stopped: bool = False
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (uri, text) from parsers, libraries
    notices: list[str] = field(default_factory=list)  # connectors' lines for the person

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
            "stopped": self.stopped,
            "indexed_sources": self.indexed,
            "removed_sources": self.removed,
            "failures": [{"source": f.uri, "kind": f.kind, "reason": f.reason} for f in self.failures],
            "duplicates": [{"source": skipped, "same_as": kept} for skipped, kept in self.duplicates],
            "notices": self.notices,
            "warnings": [{"source": uri, "text": text} for uri, text in self.warnings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IngestReport:
        """The report `to_json` wrote (an ingest the daemon ran, sent back over its socket)."""
        return cls(
            indexed=list(data.get("indexed_sources") or []),
            unchanged=int(data.get("unchanged") or 0),
            relabelled=int(data.get("relabelled") or 0),
            failures=[Failure(f["source"], f["reason"], f["kind"]) for f in data.get("failures") or []],
            removed=list(data.get("removed_sources") or []),
            duplicates=[(d["source"], d["same_as"]) for d in data.get("duplicates") or []],
            chunks_added=int(data.get("chunks_added") or 0),
            chunks_removed=int(data.get("chunks_removed") or 0),
            seconds=float(data.get("seconds") or 0.0),
            stopped=bool(data.get("stopped")),
            warnings=[(w["source"], w["text"]) for w in data.get("warnings") or []],
            notices=list(data.get("notices") or []),
        )
