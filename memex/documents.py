"""What flows through memex: connectors yield SourceDocuments, ingest turns them into Chunks,
the index returns Hits."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from memex.access import Access
from memex.errors import ParseError, UnsupportedFormat

DEFAULT_MAX_FILE_BYTES = 1024 * 1024 * 1024  # config.toml max_file_mb
_READ_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Element:
    """A piece of a parsed document, with the headings it sits under."""

    text: str
    kind: str = "text"  # "title" for headings; anything else is body text
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class SourceDocument:
    """One document a connector found. Parsing is deferred so unchanged sources cost only a stat.

    source_id: stable and unique across connectors ("file:/abs/path", "mail:<message-id>").
    uri: what a citation shows (a path or a URI).
    attributes: what the policy's source rules match on (see memex.access.MATCH_KEYS).
    acl: identities from the source itself (an email's recipients); None when it has none.
    fingerprint: cheap change detector (e.g. mtime and size); None means "always check the hash".
    """

    source_id: str
    uri: str
    title: str
    connector: str
    attributes: Mapping[str, Any]
    read_bytes: Callable[[], bytes] | None = None
    # A file whose bytes are the content: hashed by streaming (instead of read_bytes), and
    # refused, before anything reads it whole, when larger than the limit given to content_hash.
    content_file: str | None = None
    parse: Callable[[], list[Element]] | None = None
    acl: frozenset[str] | None = None
    fingerprint: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Parse in a sandboxed worker process (then `parse` must be picklable, e.g. a
    # functools.partial of a module-level function). False for data that is already parsed.
    isolated: bool = True
    _hash: str | None = None

    def content_hash(self, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
        """SHA-256 of the raw content (or of the parsed text where there are no raw bytes).
        ParseError for a content_file larger than max_bytes."""
        if self._hash is None:
            digest = hashlib.sha256()
            if self.content_file is not None:
                _hash_file(digest, self.content_file, max_bytes)
            elif self.read_bytes is not None:
                digest.update(self.read_bytes())
            else:
                for element in self.elements():
                    digest.update(element.text.encode("utf-8", "surrogatepass"))
            self._hash = digest.hexdigest()
        return self._hash

    def elements(self) -> list[Element]:
        if self.parse is None:
            return []
        return self.parse()


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    source_id: str
    ordinal: int
    text: str  # what is embedded and searched: headings first, then the body
    uri: str
    title: str
    section: str
    page: int | None
    access: Access
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, already checked against the asker's principal."""

    chunk_id: str
    source_id: str
    uri: str
    title: str
    section: str
    page: int | None
    text: str
    score: float
    access: Access
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "source": self.uri,
            "source_id": self.source_id,
            "title": self.title,
            "section": self.section,
            "page": self.page,
            "labels": sorted(self.access.labels),
            "level": self.access.level,
            "score": round(self.score, 6),
            "text": self.text,
        }


def chunk_id_for(source_id: str, text: str, occurrence: int) -> str:
    """Deterministic: the same text at the same place in the same source gets the same id."""
    digest = hashlib.sha256(f"{source_id}\x00{occurrence}\x00{text}".encode()).hexdigest()
    return digest[:32]


def _hash_file(digest: Any, path: str, max_bytes: int) -> None:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise ParseError(
                f"refused: the file is {size / 2**20:,.0f} MB, more than max_file_mb = "
                f"{max_bytes // 2**20} (config.toml)"
            )
        read = 0
        while block := handle.read(_READ_BLOCK):
            read += len(block)
            if read > max_bytes:  # it grew while being read
                raise ParseError(f"refused: the file grew past max_file_mb = {max_bytes // 2**20}")
            digest.update(block)


def failing_document(
    *,
    source_id: str,
    uri: str,
    connector: str,
    attributes: Mapping[str, Any],
    reason: str,
    title: str | None = None,
    acl: frozenset[str] | None = None,
    fingerprint: str | None = None,
    unsupported: bool = False,
) -> SourceDocument:
    """A stand-in for a source that cannot be read: ingest reports `reason` against `uri` and
    goes on. It carries the attributes the source would have had, so the policy's rules for it
    apply (and the report is labelled like the source). `unsupported`: reported as a kind of
    file memex does not read here (e.g. without an optional extra), not as a broken one. The one
    builder every connector uses."""
    return SourceDocument(
        source_id=source_id,
        uri=uri,
        title=title or uri.rsplit("/", 1)[-1],
        connector=connector,
        attributes=dict(attributes),
        read_bytes=reason.encode,
        parse=partial(_unsupported if unsupported else _fail, reason),
        acl=acl,
        fingerprint=fingerprint,
        isolated=False,
    )


def _fail(reason: str) -> list[Element]:
    raise ParseError(reason)


def _unsupported(reason: str) -> list[Element]:
    raise UnsupportedFormat(reason)
