"""The index: dense vectors in Chroma (`vectors`), a BM25 index in SQLite FTS5 (`lexical`), and
the only way to read either.

Reading goes through `Index.search(query, *, principal, ...)` (and `Index.count` /
`Index.readable_source_ids` for status figures and exports): the access filter is built here from
the principal, ANDed with whatever narrowing the caller asks for, applied inside both the vector
query and the lexical query, and every hit is checked again with `access.allowed` before it
leaves.

Access classes: every distinct (labels, level, ACL) combination gets a small integer `ac`. A chunk
stores its `ac` (for filtering) and its full access labels (for the second check). A principal's
filter is the set of classes `access.allowed` accepts, so the rule is written once.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memex.access import Access, Principal, allowed
from memex.documents import Chunk, Hit
from memex.index.compaction import compact_chroma, compact_fts
from memex.index.fusion import fuse
from memex.index.lexical import LexicalStore, access_from_json, access_json, counts_by
from memex.index.vectors import VectorStore, partition_of
from memex.models.embeddings import Embedder
from memex.remote import Endpoint
from memex.store import sqlite
from memex.store.labelling import CurrentLabels

log = logging.getLogger(__name__)

# A record (a database row: short, templated, and often thousands of them) is close in meaning to
# many short questions, so records crowd out mail and documents on similarity alone ("data jam
# venue" -> a Deep Purple track). In hybrid search a record that holds fewer than half of the
# query's words (two are enough: a long question still names the record) ranks after every other
# candidate: a question about a record names it. Measured on a life archive (BENCHMARKS.md,
# "Databases in a life archive").
RECORD_SHARE = 0.5
RECORD_ENOUGH = 2


@dataclass(frozen=True)
class Narrowing:
    """What a caller may add to a search. It can only ever remove chunks from what the
    principal may read."""

    source_ids: frozenset[str] | None = None
    without_labels: frozenset[str] = frozenset()
    date_from: float | None = None  # epoch seconds, inclusive
    date_to: float | None = None  # epoch seconds, exclusive

    def chroma_where(self) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if self.source_ids is not None:
            clauses.append({"source_id": {"$in": sorted(self.source_ids)}})
        if self.date_from is not None:
            clauses.append({"date": {"$gte": self.date_from}})
        if self.date_to is not None:
            clauses.append({"date": {"$lt": self.date_to}})
        return clauses

    def sql_where(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        if self.source_ids is not None:
            parts.append("c.source_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(sorted(self.source_ids)))
        if self.date_from is not None:
            parts.append("c.date >= ?")
            args.append(self.date_from)
        if self.date_to is not None:
            parts.append("c.date < ?")
            args.append(self.date_to)
        return "".join(f" AND {p}" for p in parts), args


NO_NARROWING = Narrowing()


class Index:
    """Open with `Index.open(path, embedder=...)` (embedded store) or `url=` (a Chroma server)."""

    def __init__(self, vectors: VectorStore, lexical: LexicalStore, embedder: Embedder) -> None:
        self._vectors = vectors
        self._lexical = lexical
        self.embedder = embedder
        self._chroma_folder: Path | None = None  # an embedded store's folder (compacted on purge)
        # The labels of each hit's source under the policy in force (memex.store.labelling), checked
        # with its stored labels before a hit leaves; set by the Memex that opens the index.
        self.current: CurrentLabels | None = None

    @classmethod
    def open(
        cls, path: Path, *, embedder: Embedder, url: str | Endpoint | None = None, reset: bool = False
    ) -> Index:
        """Open (creating if needed). `url`: a Chroma server (memex.remote checks it). `reset=True`
        empties the index first (for a rebuild)."""
        path.mkdir(parents=True, exist_ok=True)
        vectors = VectorStore.open(
            path, name=embedder.name, dimension=embedder.dimension, url=url, reset=reset
        )
        lexical = LexicalStore(path / "lexical.sqlite", reset=reset)
        if lexical.needs_text:  # the lexical schema changed: refill it from the stored chunks
            lexical.refill(vectors.texts())
        index = cls(vectors, lexical, embedder)
        index._chroma_folder = None if url else path / "chroma"
        return index

    def close(self) -> None:
        self._lexical.close()

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add or replace chunks (idempotent: ids are deterministic)."""
        if not chunks:
            return
        classes = [self._lexical.class_id(chunk.access) for chunk in chunks]
        metadatas = [_metadata(c, ac) for c, ac in zip(chunks, classes, strict=True)]
        self._vectors.upsert(chunks, np.asarray(vectors, dtype=np.float32), classes, metadatas)
        with self._lexical.transaction():
            for chunk, ac in zip(chunks, classes, strict=True):
                self._lexical.add(chunk, ac, _date_of(chunk.metadata))

    def delete(self, chunk_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return 0
        classes = self._lexical.classes()
        partitions = {
            chunk_id: partition_of(classes[ac]) for chunk_id, ac in self._lexical.classes_of(ids).items()
        }
        self._vectors.delete(ids, partitions)
        with self._lexical.transaction():
            return self._lexical.delete(ids)

    def compact(self) -> None:
        """Leave nothing deleted recoverable from the files (memex.index.compaction)."""
        compact_fts(self._lexical.db, "fts")
        sqlite.truncate_wal(self._lexical.db)
        if self._chroma_folder is not None:
            compact_chroma(self._chroma_folder)

    def relabel(self, changes: Mapping[str, Access]) -> int:
        """Change the access labels of stored chunks in place (no re-embedding)."""
        if not changes:
            return 0
        classes = {chunk_id: self._lexical.class_id(access) for chunk_id, access in changes.items()}
        self._vectors.relabel({i: (changes[i], classes[i]) for i in changes})
        with self._lexical.transaction():
            self._lexical.set_classes((classes[i], i) for i in changes)
        return len(changes)

    def chunk_ids(self) -> set[str]:
        """Every stored chunk id (for reconciling with the ledger; carries no text)."""
        return self._lexical.chunk_ids() | self._vectors.ids()

    def sizes(self) -> tuple[int, int]:
        """How many chunks each half holds (a cheap consistency check; carries nothing else)."""
        lexical = self._lexical.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return lexical, self._vectors.collection.count()

    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are fully stored (in both halves of the index)."""
        ids = list(ids)
        if not ids:
            return set()
        return set(self._lexical.classes_of(ids)) & self._vectors.existing(ids)

    # -- reading: the choke point ----------------------------------------------------------
    def search(
        self,
        query: str | None,
        *,
        principal: Principal,
        k: int = 10,
        narrowing: Narrowing = NO_NARROWING,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """The chunks `principal` may read that best match `query`, best first.

        With `query=None`, the readable chunks selected by `narrowing` (e.g. one source), in
        document order: used to show a source.
        """
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown search mode {mode!r}")
        visible = self._visible_classes(principal, narrowing)
        if not visible:
            return []
        if query is None:
            limit = k
            while True:
                ids = self._lexical.listing(visible, narrowing.sql_where(), limit=limit)
                hits, dropped = self._release(ids, {}, {}, principal, visible, want=k)
                if len(hits) >= k or not dropped or len(ids) < limit:
                    return hits
                limit *= 4  # hits were held back (a policy edit not yet relabelled): fetch more
        vector = self.embedder.embed_query(query) if mode in ("hybrid", "dense") else None
        depth = max(k * 4, 40)
        while True:
            dense: list[tuple[str, float]] = []
            lexical: list[tuple[str, float]] = []
            if vector is not None:
                dense = self._vectors.query(
                    vector,
                    wanted=depth,
                    visible=visible,
                    classes=self._lexical.classes(),
                    counts=self._lexical.class_counts(),
                    classes_of=self._lexical.classes_of,
                    where=narrowing.chroma_where(),
                )
            phrase: list[tuple[str, float]] = []
            if mode in ("hybrid", "lexical"):
                lexical = self._lexical.search(query, visible, narrowing.sql_where(), depth)
                phrase = self._lexical.phrase_search(query, visible, narrowing.sql_where(), depth)
            weak = self._weak_records(query, dense, lexical, phrase) if mode == "hybrid" else set()
            ranked = fuse(dense, lexical, phrase, depth, depth=depth, weak=weak)
            details = {"similarity": dict(dense), "bm25": dict(lexical)}
            ids = [chunk_id for chunk_id, _ in ranked]
            hits, dropped = self._release(ids, dict(ranked), details, principal, visible, want=k)
            if len(hits) >= k or not dropped or (len(dense) < depth and len(lexical) < depth):
                return hits
            if depth >= sum(n for ac, n in self._lexical.class_counts().items() if ac in visible):
                return hits
            depth *= 4  # hits were held back (a policy edit not yet relabelled): look deeper

    def count(self, *, principal: Principal) -> dict[str, Any]:
        """Counts of what `principal` may read: chunks and sources, by label and level."""
        visible = self._visible_classes(principal, NO_NARROWING)
        chunks, by_label, by_level = counts_by(visible, self._lexical.class_counts())
        sources = len(self._lexical.source_ids(visible)) if visible else 0
        return {"chunks": chunks, "sources": sources, "by_label": by_label, "by_level": by_level}

    def readable_source_ids(self, *, principal: Principal) -> list[str]:
        """The sources of which `principal` may read at least one chunk."""
        visible = self._visible_classes(principal, NO_NARROWING)
        return self._lexical.source_ids(visible) if visible else []

    # -- internals -------------------------------------------------------------------------
    def _weak_records(
        self,
        query: str,
        dense: Sequence[tuple[str, float]],
        lexical: Sequence[tuple[str, float]],
        phrase: Sequence[tuple[str, float]],
    ) -> set[str]:
        """The candidates that are records holding too few of the query's words (RECORD_SHARE,
        RECORD_ENOUGH); never one that holds the query verbatim."""
        candidates = {c for c, _ in dense} | {c for c, _ in lexical}
        candidates -= {c for c, _ in phrase}
        held, words = self._lexical.record_words(query, candidates)
        needed = min(math.ceil(RECORD_SHARE * words), RECORD_ENOUGH)
        return {chunk_id for chunk_id, n in held.items() if n < needed}

    def _visible_classes(self, principal: Principal, narrowing: Narrowing) -> dict[int, Access]:
        return {
            ac: access
            for ac, access in self._lexical.classes().items()
            if allowed(principal=principal, access=access) and not (access.labels & narrowing.without_labels)
        }

    def _release(
        self,
        ids: Sequence[str],
        scores: Mapping[str, float],
        details: Mapping[str, Mapping[str, float]],
        principal: Principal,
        visible: Mapping[int, Access],
        *,
        want: int,
    ) -> tuple[list[Hit], int]:
        """Fetch the chunks, best first, and check each one again before it leaves the index:
        its stored labels, and its source's labels under the policy in force. Stops at `want`
        hits; returns them and how many were held back by the policy in force."""
        hits: list[Hit] = []
        dropped = 0
        position = 0
        while position < len(ids) and len(hits) < want:
            window = ids[position : position + want - len(hits)]
            position += len(window)
            found = self._vectors.fetch(window)
            sources = {meta["source_id"] for _, meta in found.values()}
            now = self.current.access_of(sources) if self.current is not None else {}
            for chunk_id in window:
                if chunk_id not in found:
                    continue
                text, meta = found[chunk_id]
                access = access_from_json(meta["access"])
                if meta.get("ac") not in visible or not allowed(principal=principal, access=access):
                    log.error(
                        "access check refused chunk %s for %s after filtering", chunk_id, principal.name
                    )
                    continue
                source_id = meta["source_id"]
                if source_id in now:
                    current = now[source_id]
                    if current is None or not allowed(principal=principal, access=current):
                        dropped += 1  # hidden by the policy in force: its stored labels are stale
                        continue
                hits.append(self._hit(chunk_id, text, meta, access, scores, details))
        return hits, dropped

    @staticmethod
    def _hit(
        chunk_id: str,
        text: str,
        meta: Mapping[str, Any],
        access: Access,
        scores: Mapping[str, float],
        details: Mapping[str, Mapping[str, float]],
    ) -> Hit:
        extra = _json(meta.get("extra"))
        extra.update({name: values.get(chunk_id) for name, values in details.items()})
        return Hit(
            chunk_id=chunk_id,
            source_id=meta["source_id"],
            uri=meta["uri"],
            title=meta.get("title", ""),
            section=meta.get("section", ""),
            page=meta.get("page"),
            text=text,
            score=scores.get(chunk_id, 0.0),
            access=access,
            metadata=extra,
        )


def _metadata(chunk: Chunk, ac: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "ac": ac,
        "access": access_json(chunk.access),
        "source_id": chunk.source_id,
        "uri": chunk.uri,
        "title": chunk.title,
        "section": chunk.section,
        "ordinal": chunk.ordinal,
        "extra": json.dumps(dict(chunk.metadata), default=str),
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    date = _date_of(chunk.metadata)
    if date is not None:
        meta["date"] = date
    return meta


def _json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def _date_of(metadata: Mapping[str, Any]) -> float | None:
    value = metadata.get("timestamp")
    return float(value) if isinstance(value, int | float) else None
