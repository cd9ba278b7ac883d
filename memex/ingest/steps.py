"""One source's steps inside an ingest: what a changed source carries between them (Candidate,
Prepared), parsing it here when it needs no sandbox, and cutting it into labelled chunks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from memex.access import Access
from memex.documents import Chunk, Element, SourceDocument, chunk_id_for
from memex.errors import ParseError, UnsupportedFormat
from memex.store.ledger import SourceRecord


@dataclass
class Candidate:
    """A source that changed (or is new) and must be parsed."""

    doc: SourceDocument
    root: str
    content_hash: str
    access: Access
    rules: tuple[str, ...]
    record: SourceRecord | None


@dataclass
class Prepared:
    doc: SourceDocument
    root: str
    content_hash: str
    access: Access
    rules: tuple[str, ...]
    chunks: list[Chunk]
    to_embed: list[Chunk]
    to_relabel: list[str]
    to_delete: list[str]


def parse_here(doc: SourceDocument) -> list[Element] | ParseError:
    try:
        return doc.elements()
    except ParseError as exc:
        return exc
    except OSError as exc:
        return ParseError(f"cannot read: {exc.strerror or exc}")


def chunks_for(doc: SourceDocument, pieces: Iterable, access: Access) -> list[Chunk]:
    chunks = []
    occurrences: dict[str, int] = {}
    for ordinal, piece in enumerate(pieces):
        occurrence = occurrences.get(piece.text, 0)
        occurrences[piece.text] = occurrence + 1
        chunks.append(
            Chunk(
                chunk_id=chunk_id_for(doc.source_id, piece.text, occurrence),
                source_id=doc.source_id,
                ordinal=ordinal,
                text=piece.text,
                uri=doc.uri,
                title=doc.title,
                section=piece.section,
                page=piece.page,
                access=access,
                metadata=dict(doc.metadata),
            )
        )
    return chunks


def failure_kind(exc: ParseError) -> str:
    return "unsupported" if isinstance(exc, UnsupportedFormat) else "failed"


def normalise_target(target: str) -> str:
    if "://" in target:
        return target
    return os.path.abspath(os.path.expanduser(target))
